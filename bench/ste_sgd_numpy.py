"""The same STE-SGD loop as bench/bench_lsq.c in numpy (the peer): eq. (15) with a
4-bit symmetric per-tensor weight quantizer, single-sample steps, d=512, N=64.
Prints 'steps_per_s <value>'. Usage: python3 bench/ste_sgd_numpy.py [d N steps]"""
import sys
import time

import numpy as np


def fake_quant_sym(v, bits=4):
    qmax = 2 ** (bits - 1) - 1
    m = np.max(np.abs(v))
    if m == 0:
        return v.copy()
    s = m / qmax
    return np.clip(np.round(v / s), -qmax - 1, qmax) * s


def main():
    d, N, steps = (int(a) for a in (sys.argv[1:4] if len(sys.argv) >= 4 else (512, 64, 20000)))
    rng = np.random.default_rng(1)
    A = rng.standard_normal((N, d)) / np.sqrt(d)
    y = rng.standard_normal(N)
    idx = rng.integers(0, N, size=steps)
    best = 1e30
    for _ in range(3):
        v = np.zeros(d)
        t0 = time.perf_counter()
        for t in range(steps):
            a = A[idx[t]]
            q = fake_quant_sym(v)
            r = a @ q - y[idx[t]]
            v -= 0.01 * r * a
        best = min(best, time.perf_counter() - t0)
    print(f"numpy {np.__version__}: {1e6 * best / steps:.3f} us/step")
    print(f"steps_per_s {steps / best:.1f}")


if __name__ == "__main__":
    main()
