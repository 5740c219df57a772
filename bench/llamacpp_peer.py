"""llama.cpp (through llama-cpp-python, the benchmark's peer only) on a GGUF file: prefill and
decode tokens/s with the same thread count and token counts as bench_intq, and the file's bytes.

usage: llamacpp_peer.py GGUF OUT_DIR P D THREADS
Writes OUT_DIR/<type>.gguf for Q4_0, Q4_1, F16 and F32 (requantized from GGUF by llama.cpp's
own llama_model_quantize, allow_requantize) and prints one line per type:
  llamacpp <type> bytes <n> prefill_tok_s <x> decode_tok_s <y> cpu_prefill_tok_s <x'> cpu_decode_tok_s <y'> rss_mb <m>
(cpu_*: tokens per process CPU second, steadier than the wall clock on a shared machine;
rss_mb: the peak resident memory of a process that loads that one file and runs the
benchmark, Python and llama-cpp-python included: each type runs in its own child process.)
Random token ids (seed 2) below the vocabulary, as bench_intq uses; the best of two runs.
"""
import ctypes
import os
import random
import resource
import subprocess
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
    best = [1e30] * 4  # wall prefill, wall decode, cpu prefill, cpu decode
    for _ in range(2):
        llm.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        llm.eval(toks[:P])
        t1, c1 = time.perf_counter(), time.process_time()
        for i in range(D):
            llm.eval([toks[P + i]])
        t2, c2 = time.perf_counter(), time.process_time()
        best = [min(a, b) for a, b in zip(best, [t1 - t0, t2 - t1, c1 - c0, c2 - c1])]
    del llm
    return P / best[0], D / best[1], P / best[2], D / best[3]


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--one":  # the child: one file, its figures and peak RSS
        path, P, D, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        pt, dt, pc, dc = bench(path, P, D, threads)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"prefill_tok_s {pt:.1f} decode_tok_s {dt:.1f} cpu_prefill_tok_s {pc:.1f} cpu_decode_tok_s {dc:.2f} "
              f"rss_mb {rss:.0f}", flush=True)
        return
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    src, out, P, D, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    os.makedirs(out, exist_ok=True)
    types = [("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0), ("Q4_1", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1),
             ("F16", llama_cpp.LLAMA_FTYPE_MOSTLY_F16), ("F32", llama_cpp.LLAMA_FTYPE_ALL_F32)]
    for name, ft in types:
        dst = os.path.join(out, name + ".gguf")
        quantize(src, dst, ft)
        r = subprocess.run([sys.executable, __file__, "--one", dst, str(P), str(D), str(threads)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            sys.exit(f"llamacpp_peer: {name}: {r.stderr.strip()[-300:]}")
        print(f"llamacpp {name} bytes {os.path.getsize(dst)} {r.stdout.strip()}", flush=True)


if __name__ == "__main__":
    main()
