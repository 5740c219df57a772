#!/usr/bin/env python3
# rostesim: fixtures for llm/eval/stats.c (bootstrap CIs of mean ROUGE), written with numpy only.
# SPDX-License-Identifier: GPL-3.0-or-later
#
#   tests/fixtures/stats/stats.txt  whitespace-separated tokens ('#' starts a comment line):
#     vector NAME N MEAN SD LO HI X_1 .. X_N
#         score vectors shaped like per-prompt ROUGE F (many zeros, a spread, a few ones) and
#         others, with numpy's mean, its sample standard deviation (ddof = 1) and the
#         normal-theory 95% interval MEAN -/+ 1.96 SD / sqrt(N). N = 1: SD 0, LO = HI = MEAN
#         (ddof = 1 is undefined there; the bootstrap interval is the point).
#     quantile K X_1 .. X_K Q VALUE
#         VALUE = numpy.quantile(X, Q) (the default method, "linear"); X is ascending.
#   Every number is Python's repr of a double, so strtod reads back the same bits.
#
# Usage (from the repository root): /work/venv/bin/python tools/stats_fixture.py [outdir]
# Default outdir: tests/fixtures/stats. Deterministic (seeded): the same numpy writes the same bytes.
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/stats"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20250502)


def rouge_like(n):
    """ROUGE-L F of n prompts: ~25% zeros (nothing in common), ~3% ones (exact copies), the rest
    a right-skewed spread in (0, 1); 6 decimals as a predictions file would hold them."""
    x = rng.beta(2.0, 4.0, size=n)
    u = rng.random(n)
    x[u < 0.25] = 0.0
    x[u > 0.97] = 1.0
    return [float(v) for v in np.round(x, 6)]


vectors = [
    ("rouge500", rouge_like(500)),
    ("rouge37", rouge_like(37)),
    ("uniform200", [float(v) for v in np.round(rng.random(200), 6)]),
    ("single1", [0.4375]),
]

lines = ["# rostesim: llm/eval/stats.c reference values, written by tools/stats_fixture.py (numpy %s)" % np.__version__]
for name, x in vectors:
    a = np.array(x, dtype=np.float64)
    n = a.size
    mean = float(np.mean(a))
    sd = float(np.std(a, ddof=1)) if n > 1 else 0.0
    half = 1.96 * sd / np.sqrt(n)
    lines.append("vector %s %d %r %r %r %r" % (name, n, mean, sd, float(mean - half), float(mean + half)))
    for i in range(0, n, 10):
        lines.append(" ".join(repr(v) for v in x[i:i + 10]))

qs = [0.0, 0.025, 0.1, 0.25, 1 / 3, 0.5, 0.6, 0.75, 0.9, 0.975, 1.0]  # 0.025, 0.975: alpha = 0.05's
sets = [
    [0.0, 1.0, 2.0, 3.0],
    sorted(float(v) for v in np.round(rng.normal(size=7), 6)),
    sorted(float(v) for v in rng.random(40)),
]
for x in sets:
    a = np.array(x, dtype=np.float64)
    for q in qs:
        lines.append("quantile %d %s %r %r" % (len(x), " ".join(repr(v) for v in x), q, float(np.quantile(a, q))))

with open(os.path.join(out, "stats.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
