#!/usr/bin/env python3
"""An independent numpy implementation of the least-squares experiment of the RoSTE paper
(arXiv 2502.09003, Section 4; the equations as given in ROSTE.md section 5), written from
the equations, not from sim/lsq.c. It draws its own data with numpy's RNG, so it agrees
with `rostesim lsq` in distribution only: tests/test_lsq.c runs the C simulator on the
same setting over many data seeds and compares the means with this script's (|z| < 3).

Data (papers/roste-2502.09003/README.md, "The data generator"): X is N x d with entries
N(0, 1); k channels (a random subset, the same for every sample) are multiplied by
feat_scale; then X is scaled by one constant so that the mean squared row norm is 1. The
teacher w has N(0, 1) entries, m random coordinates multiplied by teach_scale, and
y = X w (no noise). Rotations: none, random Hadamard H diag(r) (normalised Sylvester H,
random signs r), Haar (QR of a Gaussian, signs fixed), adaptive (K = 1: the Hadamard iff
its activation error is lower, as the weight error of w = 0 is 0). A = Q_x(R X) row by
row, w* = pinv(A) y, G = A^T A / N, lambda_min = the smallest non-zero eigenvalue of G,
rho = max_i a_i^T G a_i, eta = lambda_min / (6 rho), mu = lambda_min^2 / (12 rho).
STE-SGD from v = 0: v <- v - eta (<a_i, Q_w(v)> - y_i) a_i, i uniform. Q: b-bit symmetric
per-tensor, s = max|v| / (2^(b-1) - 1), Q(v) = clip(round_half_even(v / s), -2^(b-1),
2^(b-1) - 1) s. Final metrics: loss = mean((A Q_w(v) - y)^2) / 2, D = ||Q_w(v) - w*||_G^2,
eG = ||Q_w(v) - v||_G^2; log10 D
(lighter-tailed than D, so its mean is the sharper check).

Usage: python3 tools/lsq_reference.py [--seeds S] [--out FILE]
Writes tests/fixtures/lsq_reference.tsv (rotation, quantity, mean, se, n)."""
import argparse
import os
import sys

import numpy as np

SET = dict(d=32, N=8, bits=4, feat_k=4, feat_scale=2.0, teach_m=4, teach_scale=20.0, steps=4000)


def quant(v, bits):
    """Symmetric per-tensor fake quantization of each row of v (half to even)."""
    qmax = 2 ** (bits - 1) - 1
    m = np.max(np.abs(v), axis=-1, keepdims=True)
    s = np.where(m > 0, m / qmax, 1.0)
    return np.clip(np.round(v / s), -qmax - 1, qmax) * s * (m > 0)


def hadamard(d):
    H = np.array([[1.0]])
    while H.shape[0] < d:
        H = np.block([[H, H], [H, -H]])
    return H / np.sqrt(d)


def problem(X, y, R, bits):
    A = quant(X @ R.T, bits)                      # rows Q_x(R x_i)
    N = A.shape[0]
    G = A.T @ A / N
    ev = np.linalg.eigvalsh(A @ A.T / N)          # the non-zero spectrum of G
    lmin = ev[ev > N * np.finfo(float).eps * ev[-1]][0]
    rho = np.max(np.einsum("ij,jk,ik->i", A, G, A))
    act = np.mean(np.sum((A - X @ R.T) ** 2, axis=1))
    return dict(A=A, y=y, w=np.linalg.pinv(A) @ y, G=G, lmin=lmin, rho=rho, act=act)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--out", default="tests/fixtures/lsq_reference.tsv")
    a = ap.parse_args()
    c, S = SET, a.seeds
    rng = np.random.default_rng(20250213)
    rots = ["none", "hadamard", "haar", "adaptive"]
    probs = {r: [] for r in rots}
    for _ in range(S):
        d, N = c["d"], c["N"]
        X = rng.standard_normal((N, d))
        X[:, rng.permutation(d)[: c["feat_k"]]] *= c["feat_scale"]
        X /= np.sqrt(np.sum(X ** 2) / N)
        w = rng.standard_normal(d)
        w[rng.permutation(d)[: c["teach_m"]]] *= c["teach_scale"]
        y = X @ w
        RH = hadamard(d) * rng.choice([-1.0, 1.0], size=d)[None, :]
        Q, Rq = np.linalg.qr(rng.standard_normal((d, d)))
        RO = Q * np.sign(np.diag(Rq))[None, :]
        p = {"none": problem(X, y, np.eye(d), c["bits"]), "hadamard": problem(X, y, RH, c["bits"]),
             "haar": problem(X, y, RO, c["bits"])}
        p["adaptive"] = p["hadamard"] if p["hadamard"]["act"] < p["none"]["act"] else p["none"]
        for r in rots:
            probs[r].append(p[r])
    rows = []
    for r in rots:
        P = probs[r]
        A = np.stack([p["A"] for p in P])           # S x N x d
        Y = np.stack([p["y"] for p in P])          # S x N
        eta = np.array([p["lmin"] / (6 * p["rho"]) for p in P])
        v = np.zeros((S, c["d"]))
        for _ in range(c["steps"]):
            i = rng.integers(0, c["N"], size=S)
            a_t = A[np.arange(S), i]
            res = np.sum(a_t * quant(v, c["bits"]), axis=1) - Y[np.arange(S), i]
            v -= (eta * res)[:, None] * a_t
        qv = quant(v, c["bits"])
        g = lambda u: np.sum(np.einsum("snd,sd->sn", A, u) ** 2, axis=1) / c["N"]  # ||u||_G^2 per seed
        out = {"final_loss": np.mean((np.einsum("snd,sd->sn", A, qv) - Y) ** 2, axis=1) / 2,
               "final_D": g(qv - np.stack([p["w"] for p in P])),
               "final_eG": g(qv - v),
               "log10_final_D": np.log10(g(qv - np.stack([p["w"] for p in P]))),
               "mu": np.array([p["lmin"] ** 2 / (12 * p["rho"]) for p in P]),
               "lambda_min": np.array([p["lmin"] for p in P]),
               "rho": np.array([p["rho"] for p in P])}
        for k, x in out.items():
            rows.append((r, k, x.mean(), x.std(ddof=1) / np.sqrt(S), S))
    with open(a.out + ".tmp", "w") as f:
        f.write("# tools/lsq_reference.py --seeds %d (numpy %s); setting %s\n" % (S, np.__version__, c))
        f.write("rotation\tquantity\tmean\tse\tn\n")
        for r in rows:
            f.write("%s\t%s\t%.10g\t%.10g\t%d\n" % r)
    os.replace(a.out + ".tmp", a.out)
    for r in rows:
        print("%-9s %-11s %.6g +- %.2g" % r[:4], file=sys.stderr)


if __name__ == "__main__":
    main()
