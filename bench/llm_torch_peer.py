#!/usr/bin/env python3
"""PyTorch eager peer of bench/bench_llm.c: training tokens/s of a Llama-style model.

Same config, batch, sequence length and thread count as the C side; HF transformers'
LlamaForCausalLM in float32 with torch.optim.AdamW (forward, backward, clip, step per
iteration). Prints `tokens_per_s X` and a few facts on stdout.

usage: llm_torch_peer.py D LAYERS HEADS KV_HEADS FF VOCAB B T STEPS [attn]
       attn: sdpa (default; the fastest eager path) or eager
"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    if len(sys.argv) < 10:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d, L, H, KV, F, V, B, T, steps = (int(a) for a in sys.argv[1:10])
    attn = sys.argv[10] if len(sys.argv) > 10 else "sdpa"
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=V, hidden_size=d, intermediate_size=F, num_hidden_layers=L,
                      num_attention_heads=H, num_key_value_heads=KV, max_position_embeddings=max(T, 256),
                      tie_word_embeddings=False, attn_implementation=attn)
    model = LlamaForCausalLM(cfg).float().train()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (B, T), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=tokens, labels=tokens)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up (allocations, first-touch)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    print(f"torch {torch.__version__} threads {threads} attn {attn} params {nparams}")
    print(f"tokens_per_s {B * T * steps / dt:.1f}")


if __name__ == "__main__":
    main()
