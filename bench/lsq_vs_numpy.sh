#!/usr/bin/env bash
# STE-SGD step rate: rostesim (C) against numpy running the same loop, side by side,
# one thread each. Needs a Python with numpy (tools/.venv, or $PYTHON); skipped if none.
set -u
BUILD=${BUILD:-build}
PY=${PYTHON:-}
for p in "$PY" tools/.venv/bin/python python3; do
  [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && "$p" -c "import numpy" 2>/dev/null && { PY=$p; break; }
done
c=$(OMP_NUM_THREADS=1 "$BUILD/bench/bench_lsq" 512 64 200000) || exit 1
echo "$c" | grep -v '^steps_per_s'
if [ -z "$PY" ] || ! "$PY" -c "import numpy" 2>/dev/null; then
  echo "numpy not found: skipping the peer (python3 -m venv tools/.venv && tools/.venv/bin/pip install numpy)"; exit 0
fi
n=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" bench/ste_sgd_numpy.py 512 64 20000) || exit 1
echo "$n" | grep -v '^steps_per_s'
cs=$(echo "$c" | awk '/^steps_per_s/{print $2}'); ns=$(echo "$n" | awk '/^steps_per_s/{print $2}')
awk -v c="$cs" -v n="$ns" 'BEGIN{printf "STE-SGD steps/s: rostesim %.0f, numpy %.0f -> rostesim is %.1fx numpy\n", c, n, c/n}'
