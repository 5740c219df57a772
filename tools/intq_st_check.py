#!/usr/bin/env python3
"""Read a packed int model exported as safetensors (`rostesim llm export-int --format
safetensors`) with nothing but numpy and the safetensors library, as a user would, and check
it against the Hugging Face checkpoint it came from.

For a Llama / Qwen2 model quantized without rotations (e.g. `llm ptq --method rtn`), every
packed linear layer must hold, per output row o, 4-bit codes u whose dequantized values
(u - zeros[o]) * scales[o] are within scales[o] / 2 of the checkpoint's weight (the
quantization error bound of any round-to-nearest quantizer on that grid), for the rows in
the documented order (qkv = [q_proj; k_proj; v_proj], up = [gate_proj; up_proj]); the stored
code sums must equal the codes' sums and the padding codes must be zero. A wrong nibble
order, row order or scale would break the bound by far.

Usage (from the repository root, with a venv that has numpy and safetensors):
    python tools/intq_st_check.py CHECKPOINT_DIR INT.safetensors
Prints one line per layer and site and "intq safetensors check: N passed, M failed".
"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def unpack(q, ic):
    """U8 rows of ICp/2 bytes -> codes (OC, ICp): byte 32b+j holds 64b+j low, 64b+32+j high."""
    oc, half = q.shape
    lo, hi = q & 0x0F, q >> 4
    u = np.empty((oc, 2 * half), np.int64)
    for b in range(half // 32):
        u[:, 64 * b:64 * b + 32] = lo[:, 32 * b:32 * b + 32]
        u[:, 64 * b + 32:64 * b + 64] = hi[:, 32 * b:32 * b + 32]
    return u


def main(ckpt, path):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    if cfg.get("model_type") not in ("llama", "qwen2"):
        sys.exit("this check reads Llama / Qwen2 checkpoints (GPT-NeoX interleaves its fused qkv per head)")
    with safe_open(path, "np") as f:
        meta = f.metadata()
    t = load_file(path)
    w = load_file(os.path.join(ckpt, "model.safetensors"))
    ok = bad = 0
    print(f"{path}: format {meta.get('format')} version {meta.get('version')}; weights: {meta.get('weights')}")
    for key in ("rotation.r1_signs", "rotation.r3_signs", "rotation.r4_signs"):
        if key in t:
            sys.exit(f"{key} present: the weights are rotated; export a model without rotations for this check")
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        hf = {"qkv": np.concatenate([w[p + "self_attn.q_proj.weight"], w[p + "self_attn.k_proj.weight"],
                                     w[p + "self_attn.v_proj.weight"]]),
              "o": w[p + "self_attn.o_proj.weight"],
              "up": np.concatenate([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]),
              "down": w[p + "mlp.down_proj.weight"]}
        for site, ref in hf.items():
            q = f"layers.{layer}.{site}."
            oc, ic = ref.shape
            u = unpack(t[q + "qweight"], ic)
            s, z, sums = t[q + "scales"].astype(np.float64), t[q + "zeros"], t[q + "code_sums"]
            deq = (u[:, :ic] - z[:, None]) * s[:, None]
            err = np.abs(deq - ref.astype(np.float64)) / s[:, None]
            good = (t[q + "qweight"].shape[0] == oc and u.max() <= 15 and not u[:, ic:].any()
                    and np.array_equal(u[:, :ic].sum(1), sums) and err.max() <= 0.5 + 1e-5)
            ok += good
            bad += not good
            print(f"{'PASS' if good else 'FAIL'} layer {layer} {site}: {oc} x {ic}, max |deq - W| / scale {err.max():.4f}"
                  f" (<= 0.5), codes 0..{u.max()}, code sums {'equal' if np.array_equal(u[:, :ic].sum(1), sums) else 'DIFFER'}")
    print(f"intq safetensors check: {ok} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
