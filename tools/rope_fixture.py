#!/usr/bin/env python3
"""Writes tests/fixtures/rope_llama3.txt: rotary-embedding references from HF transformers.

tests/test_kernels.c checks lk_rope_inv_freq and lk_rope_forward against it:

  inv_freq <type> <theta> <rot_dim> <factor> <low> <high> <orig_max_pos> <n> v_0 .. v_{n-1}
      inverse frequencies from transformers' own functions: _compute_llama3_parameters
      (type 1, Llama 3.1/3.2 scaling) and GPTNeoXRotaryEmbedding.compute_default_rope_parameters
      (type 0, with partial_rotary_factor giving rot_dim < head_dim). torch computes them in
      float32, the C code in double: the test allows a few float32 ulps.
  apply <theta> <head_dim> <rot_dim> <T> <pos0> <n> x_0 .. x_{n-1} <n> y_0 .. y_{n-1}
      one head of T tokens at positions pos0..pos0+T-1 before (x) and after (y) transformers'
      apply_rotary_pos_emb (GPT-NeoX: rotate-half on the first rot_dim dims, the rest passed
      through), with cos/sin from GPTNeoXRotaryEmbedding.forward.

Usage (from the repository root): /tmp/venv/bin/python tools/rope_fixture.py
Deterministic: a seeded torch.Generator; regenerating with the same torch writes the same bytes.
"""
import os
import sys

import torch
from transformers import GPTNeoXConfig, LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding, apply_rotary_pos_emb


def fmt(vals):
    return f"{len(vals)} " + " ".join(f"{v:.9e}" for v in vals)


def llama3_case(theta, head_dim, factor, low, high, orig):
    cfg = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                      max_position_embeddings=4 * orig,
                      rope_parameters=dict(rope_type="llama3", rope_theta=theta, factor=factor,
                                           low_freq_factor=low, high_freq_factor=high,
                                           original_max_position_embeddings=orig))
    inv, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    return f"inv_freq 1 {theta!r} {head_dim} {factor!r} {low!r} {high!r} {orig} " + fmt(inv.tolist())


def neox_config(theta, head_dim, partial):
    return GPTNeoXConfig(hidden_size=head_dim * 4, num_attention_heads=4, max_position_embeddings=4096,
                         rope_parameters=dict(rope_type="default", rope_theta=theta,
                                              partial_rotary_factor=partial))


def default_case(theta, head_dim, partial):
    cfg = neox_config(theta, head_dim, partial)
    inv, _ = GPTNeoXRotaryEmbedding.compute_default_rope_parameters(cfg, "cpu")
    rot_dim = int(head_dim * partial)
    return f"inv_freq 0 {theta!r} {rot_dim} 1.0 1.0 1.0 0 " + fmt(inv.tolist())


def apply_case(theta, head_dim, partial, T, pos0, gen):
    cfg = neox_config(theta, head_dim, partial)
    rope = GPTNeoXRotaryEmbedding(cfg)
    rot_dim = int(head_dim * partial)
    x = torch.randn(1, 1, T, head_dim, generator=gen)  # (batch, heads, T, head_dim)
    pos = torch.arange(pos0, pos0 + T).unsqueeze(0)
    cos, sin = rope(x, pos)
    x_rot, x_pass = x[..., :rot_dim], x[..., rot_dim:]
    y_rot, _ = apply_rotary_pos_emb(x_rot, x_rot, cos, sin)
    y = torch.cat((y_rot, x_pass), dim=-1)
    return (f"apply {theta!r} {head_dim} {rot_dim} {T} {pos0} " + fmt(x.flatten().tolist()) + " "
            + fmt(y.flatten().tolist()))


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20240604)
    lines = ["# rotary-embedding references from HF transformers " + __import__("transformers").__version__
             + ", torch " + torch.__version__ + "; written by tools/rope_fixture.py"]
    # Llama 3.1 8B (factor 8) and Llama 3.2 1B/3B (factor 32): head_dim 128 and 64
    lines.append(llama3_case(500000.0, 128, 8.0, 1.0, 4.0, 8192))
    lines.append(llama3_case(500000.0, 64, 32.0, 1.0, 4.0, 8192))
    # small: a context short enough that the low, medium and high bands all occur
    lines.append(llama3_case(10000.0, 16, 4.0, 1.0, 4.0, 64))
    lines.append(llama3_case(10000.0, 32, 8.0, 2.0, 8.0, 256))
    # default RoPE, full and partial (Pythia: rotary_pct 0.25)
    lines.append(default_case(10000.0, 64, 0.25))
    lines.append(default_case(10000.0, 80, 0.25))
    lines.append(default_case(1000000.0, 128, 1.0))
    # rotate-half application, partial and full
    lines.append(apply_case(10000.0, 16, 0.5, 5, 0, gen))
    lines.append(apply_case(10000.0, 8, 1.0, 3, 7, gen))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "rope_llama3.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.normpath(out)} ({len(lines) - 1} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
