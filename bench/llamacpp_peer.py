"""llama.cpp (through llama-cpp-python, the benchmark's peer only) on a GGUF file: prefill and
decode tokens/s with the same thread count and token counts as bench_intq, and the file's bytes.

usage: llamacpp_peer.py GGUF OUT_DIR P D THREADS
Writes OUT_DIR/<type>.gguf for Q4_0 and F16 (requantized from GGUF by llama.cpp's own
llama_model_quantize, allow_requantize) and prints one line per type:
  llamacpp <type> bytes <n> prefill_tok_s <x> decode_tok_s <y>
Random token ids (seed 2) below the vocabulary, as bench_intq uses; the best of two runs.
"""
import ctypes
import os
import random
import sys
import time

import llama_cpp


def quantize(src, dst, ftype):
    if os.path.exists(dst):
        return
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.allow_requantize = True
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llamacpp_peer: llama_model_quantize({dst}) failed ({rc})")
    os.rename(dst + ".tmp", dst)


def bench(path, P, D, threads):
    llm = llama_cpp.Llama(model_path=path, n_ctx=max(256, P + D + 8), n_threads=threads, n_threads_batch=threads,
                          n_batch=max(P, 32), verbose=False)
    rng = random.Random(2)
    V = llm.n_vocab()
    toks = [rng.randrange(V) for _ in range(P + D)]
    best_p, best_d = 1e30, 1e30
    for _ in range(2):
        llm.reset()
        llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
        t0 = time.perf_counter()
        llm.eval(toks[:P])
        t1 = time.perf_counter()
        for i in range(D):
            llm.eval([toks[P + i]])
        t2 = time.perf_counter()
        best_p, best_d = min(best_p, t1 - t0), min(best_d, t2 - t1)
    del llm
    return P / best_p, D / best_d


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    src, out, P, D, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    os.makedirs(out, exist_ok=True)
    types = [("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0), ("F16", llama_cpp.LLAMA_FTYPE_MOSTLY_F16)]
    for name, ft in types:
        dst = os.path.join(out, name + ".gguf")
        quantize(src, dst, ft)
        pt, dt = bench(dst, P, D, threads)
        print(f"llamacpp {name} bytes {os.path.getsize(dst)} prefill_tok_s {pt:.1f} decode_tok_s {dt:.1f}", flush=True)


if __name__ == "__main__":
    main()
