#!/usr/bin/env python3
"""Reference fixtures for llm/quantize/qat.c: a fake-quantized forward/backward in PyTorch.

For three tiny checkpoints of tests/fixtures/llm (llama_gqa, neox_parallel, qwen2_gqa) this
writes tests/fixtures/qat/<name>.safetensors with "logits" (B,T,V), "loss" (1) and
"grad.<HF name>" for every parameter, on the batch ("tokens", "targets") of that fixture's
ref.safetensors, at W4A4KV4:
  weights      per output channel (a row of the HF weight), asymmetric, c = 1 (code clipping)
  activations  per token at the input of every linear layer of attention and MLP
  K and V      per token per head after RoPE (the key/value tensors handed to attention)
  LM head and embeddings full precision; quantizers as tools/quant_fixture.py (half-even).
Gradients use the straight-through estimator written as x + (Q(x) - x).detach().

Usage (from the repository root): /tmp/venv/bin/python tools/qat_fixture.py
Deterministic: one thread, eager attention.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM
from transformers.models.gpt_neox import modeling_gpt_neox
from transformers.models.llama import modeling_llama
from transformers.models.qwen2 import modeling_qwen2

F32 = torch.float32
BITS = 4
NAMES = ["llama_gqa", "neox_parallel", "qwen2_gqa"]
LINEARS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}


def fake_rows(x, bits=BITS):
    """Asymmetric per-row (last dim) fake quantization, float32 ops in quant.c's order."""
    shape = x.shape
    xg = x.reshape(-1, shape[-1])
    mn = xg.amin(dim=1, keepdim=True)
    mx = xg.amax(dim=1, keepdim=True)
    c = torch.tensor(1.0, dtype=F32)
    n = torch.tensor(2.0**bits - 1, dtype=F32)
    lo = c * mn
    s = (c * mx - lo) / n
    deg_s = torch.maximum(mn.abs(), mx.abs())
    deg_s = torch.where(deg_s > 0, deg_s, torch.tensor(1.0, dtype=F32))
    degen = s == 0
    s = torch.where(degen, deg_s, s)
    lo = torch.where(degen, mn, lo)
    z = torch.round(-lo / s) + 0.0
    v = torch.clamp(torch.round(xg / s) + z, 0, 2**bits - 1)
    return ((v - z) * s).reshape(shape)


def ste(x):
    return x + (fake_rows(x) - x).detach()


def qlinear_forward(self, x):
    return F.linear(ste(x), ste(self.weight), self.bias)


def wrap_attention(orig):
    def f(module, query, key, value, *args, **kwargs):
        return orig(module, query, ste(key), ste(value), *args, **kwargs)
    return f


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for mod in (modeling_llama, modeling_qwen2, modeling_gpt_neox):
        mod.eager_attention_forward = wrap_attention(mod.eager_attention_forward)
    os.makedirs(os.path.join("tests", "fixtures", "qat"), exist_ok=True)
    for name in NAMES:
        d = os.path.join("tests", "fixtures", "llm", name)
        ref = load_file(os.path.join(d, "ref.safetensors"))
        model = AutoModelForCausalLM.from_pretrained(d, dtype=F32)
        model.config._attn_implementation = "eager"
        model.eval()
        for mname, sub in model.named_modules():
            if mname.split(".")[-1] in LINEARS and isinstance(sub, torch.nn.Linear):
                sub.forward = qlinear_forward.__get__(sub)
        tokens = ref["tokens"].to(torch.int64)
        targets = ref["targets"].to(torch.int64)
        logits = model(input_ids=tokens).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        out = {"logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1)}
        saved = load_file(os.path.join(d, "model.safetensors"))
        for pname, p in model.named_parameters():
            if pname in saved:
                sname = pname
            else:
                hits = [k for k, v in saved.items() if v.shape == p.shape and torch.equal(v, p.detach())]
                assert len(hits) == 1, (pname, hits)
                sname = hits[0]
            out["grad." + sname] = p.grad.detach().clone().contiguous()
        save_file(out, os.path.join("tests", "fixtures", "qat", name + ".safetensors"), metadata={"format": "pt"})
        print(f"{name}: W4A4KV4 loss {loss.item():.6f} (full precision {ref['loss'].item():.6f})")


if __name__ == "__main__":
    main()
