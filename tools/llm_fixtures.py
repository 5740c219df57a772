#!/usr/bin/env python3
"""Reference fixtures for llm/nn/model.c, written with PyTorch + HF transformers (CPU, float32).

For each tiny random model (2 layers) this writes tests/fixtures/llm/<name>/:
  config.json, model.safetensors   save_pretrained (safetensors, float32)
  ref.safetensors                  "tokens", "targets" (I32, (B,T); -100 = ignored),
                                   "logits" (B,T,V), "loss" (1): mean cross-entropy over the
                                   non-ignored targets, and "grad.<HF parameter name>" for every
                                   parameter (named_parameters(): for tied models the LM head's
                                   gradient is part of the embedding's)
  adamw.json                       3 steps of torch.optim.AdamW on the same batch:
                                   {lr, beta1, beta2, eps, weight_decay, losses: [before step 1,
                                   after 1, after 2, after 3]} (decay on every parameter, no clipping)

Models: (a) neox_parallel: GPT-NeoX, parallel residual, rotary_pct 0.25, untied embed_out;
(b) neox_sequential: GPT-NeoX, sequential residual, hidden 96, rotary_pct 0.5, gelu_new;
(c) llama_gqa: Llama, 6 heads / 2 kv heads, hidden 72, tied; (d) llama3_rope: Llama with
Llama-3 rope scaling, untied; (e) qwen2_gqa: Qwen2 (q/k/v biases), GQA, tied.
Weights are drawn with a larger std than HF's 0.02 (so attention is far from uniform), and
norm weights and all biases are perturbed away from 1 and 0 (so a swapped or missing bias
changes the numbers).

Usage (from the repository root):
  /tmp/venv/bin/python tools/llm_fixtures.py                  # (re)write all fixtures
  /tmp/venv/bin/python tools/llm_fixtures.py --check-saved DIR --ref tests/fixtures/llm/NAME
      loads DIR (a folder written by llm_model_save) with transformers, runs the reference
      batch and compares its logits with ref.safetensors (max |diff| / max |ref| <= 1e-5) and
      its parameters with the reference checkpoint's; exit status 1 on a mismatch.

Deterministic: fixed seeds, one thread, torch.use_deterministic_algorithms(True).
"""
import argparse
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import transformers
from transformers import (AutoModelForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig,
                          LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

OUT_ROOT = os.path.join("tests", "fixtures", "llm")
B, T = 2, 20
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
WEIGHT_STD = 0.15  # HF uses 0.02; larger so that attention and logits are far from uniform


def fixture_specs():
    common = dict(num_hidden_layers=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
                  pad_token_id=None)
    return [
        ("neox_parallel", GPTNeoXForCausalLM, GPTNeoXConfig(
            vocab_size=160, hidden_size=64, num_attention_heads=4, intermediate_size=128,
            hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=True,
            tie_word_embeddings=False, layer_norm_eps=1e-5, attention_bias=True, **common)),
        ("neox_sequential", GPTNeoXForCausalLM, GPTNeoXConfig(
            vocab_size=128, hidden_size=96, num_attention_heads=4, intermediate_size=192,
            hidden_act="gelu_new", rotary_pct=0.5, rotary_emb_base=10000, use_parallel_residual=False,
            tie_word_embeddings=False, layer_norm_eps=1e-5, attention_bias=True, **common)),
        ("llama_gqa", LlamaForCausalLM, LlamaConfig(
            vocab_size=144, hidden_size=72, num_attention_heads=6, num_key_value_heads=2,
            intermediate_size=144, hidden_act="silu", rms_norm_eps=1e-6, rope_theta=10000.0,
            tie_word_embeddings=True, attention_bias=False, mlp_bias=False, **common)),
        ("llama3_rope", LlamaForCausalLM, LlamaConfig(
            vocab_size=128, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, hidden_act="silu", rms_norm_eps=1e-5,
            rope_scaling={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16},
            tie_word_embeddings=False, attention_bias=False, mlp_bias=False, **common)),
        ("qwen2_gqa", Qwen2ForCausalLM, Qwen2Config(
            vocab_size=136, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, hidden_act="silu", rms_norm_eps=1e-6, rope_theta=1000000.0,
            tie_word_embeddings=True, use_sliding_window=False, **common)),
    ]


def randomise(model, gen):
    """Normal(0, WEIGHT_STD) matrices and embeddings, 1 + N(0, 0.2) norm weights, N(0, 0.1) biases."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * WEIGHT_STD)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:  # norm weight
                p.copy_(1.0 + torch.randn(p.shape, generator=gen) * 0.2)


def batch(vocab, gen):
    seq = torch.randint(0, vocab, (B, T + 1), generator=gen)
    tokens = seq[:, :T].contiguous()
    targets = seq[:, 1:].contiguous()
    targets[0, 3] = -100
    targets[0, T - 1] = -100
    targets[1, 0] = -100
    targets[1, 7] = -100
    targets[1, 8] = -100
    return tokens, targets


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def make_fixture(name, cls, cfg, seed):
    out = os.path.join(OUT_ROOT, name)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg.torch_dtype = torch.float32
    model = cls(cfg).to(torch.float32)
    model.config._attn_implementation = "eager"
    model.eval()  # no dropout (all dropouts are 0 anyway)
    randomise(model, gen)
    tokens, targets = batch(cfg.vocab_size, gen)

    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    model.save_pretrained(out, safe_serialization=True)

    model.zero_grad()
    logits = model(input_ids=tokens).logits
    loss = loss_of(logits, targets)
    loss.backward()
    ref = {"tokens": tokens.to(torch.int32), "targets": targets.to(torch.int32),
           "logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1)}
    # Gradients under the checkpoint's tensor names (transformers 5 renames some on save,
    # e.g. GPT-NeoX's lm_head is stored as embed_out): match each parameter to the one
    # saved tensor with the same values.
    saved = load_file(os.path.join(out, "model.safetensors"))
    for pname, p in model.named_parameters():
        if pname in saved:
            sname = pname
        else:
            hits = [k for k, v in saved.items() if v.shape == p.shape and torch.equal(v, p.detach())]
            if len(hits) != 1:
                raise SystemExit(f"{name}: cannot match parameter {pname} to a saved tensor: {hits}")
            sname = hits[0]
        ref["grad." + sname] = p.grad.detach().clone().contiguous()
    save_file(ref, os.path.join(out, "ref.safetensors"), metadata={"format": "pt"})

    opt = torch.optim.AdamW(model.parameters(), lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])
    losses = []
    for step in range(4):
        opt.zero_grad()
        lo = loss_of(model(input_ids=tokens).logits, targets)
        losses.append(float(lo.item()))
        if step == 3:
            break
        lo.backward()
        opt.step()
    with open(os.path.join(out, "adamw.json"), "w") as f:
        json.dump(dict(ADAMW, steps=3, batch="tokens and targets of ref.safetensors",
                       loss="mean cross-entropy over non-ignored targets", losses=losses), f, indent=1)
        f.write("\n")
    nparam = sum(p.numel() for p in model.parameters())
    print(f"{name}: {nparam} parameters, loss {loss.item():.6f}, adamw losses "
          + " ".join(f"{x:.6f}" for x in losses))


def check_saved(saved, refdir):
    ref = load_file(os.path.join(refdir, "ref.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.eval()
    refmodel = AutoModelForCausalLM.from_pretrained(refdir, dtype=torch.float32)
    with torch.no_grad():
        logits = model(input_ids=ref["tokens"].to(torch.int64)).logits
    rl = ref["logits"]
    absdiff = (logits - rl).abs().max().item()
    rel = absdiff / rl.abs().max().item()
    sd, rsd = model.state_dict(), refmodel.state_dict()
    pmax = 0.0
    same_keys = set(sd) == set(rsd)
    for k in rsd:
        if k in sd:
            pmax = max(pmax, (sd[k] - rsd[k]).abs().max().item())
    keys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "head_dim", "intermediate_size", "max_position_embeddings", "hidden_act", "rope_parameters",
            "tie_word_embeddings", "use_parallel_residual", "attention_bias", "mlp_bias", "layer_norm_eps",
            "rms_norm_eps"]
    refcfg = refmodel.config.to_dict()  # keys this architecture uses; extra keys are ignored by HF
    cfg_diff = [k for k in keys if k in refcfg and getattr(model.config, k, None) != refcfg[k]]
    ok = rel <= 1e-5 and same_keys and pmax == 0.0 and type(model) is type(refmodel) and not cfg_diff
    print(f"{os.path.basename(os.path.normpath(refdir))}: {type(model).__name__} "
          f"logits max|diff| {absdiff:.3g}, max|diff|/max|ref| {rel:.3g}; "
          f"parameters max|diff| vs reference checkpoint {pmax:.3g}, same names {same_keys}, "
          f"config differs in {cfg_diff or 'nothing'}: "
          f"{'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-saved", metavar="DIR", help="a folder written by llm_model_save")
    ap.add_argument("--ref", metavar="FIXTURE", help="the fixture folder it was loaded from")
    ap.add_argument("--only", metavar="NAME", help="write only this fixture")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.check_saved:
        if not args.ref:
            ap.error("--check-saved needs --ref")
        return check_saved(args.check_saved, args.ref)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    for i, (name, cls, cfg) in enumerate(fixture_specs()):
        if args.only and args.only != name:
            continue
        make_fixture(name, cls, cfg, seed=1234 + i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
