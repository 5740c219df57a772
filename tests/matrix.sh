#!/usr/bin/env bash
# The test suite under several OpenBLAS kernels and thread counts (`make test-matrix`).
# A float check that holds on one machine must hold on every machine of the kind: the
# BLAS kernel (chosen by CPU, or forced by OPENBLAS_CORETYPE) and the thread count change
# the last bits of every sum. Forcing older kernels (Core2, Atom: SSE, other blockings) on
# this machine shows what another machine's rounding does to a check (issue 12: the old
# single-run SpinQuant check failed under Core2 and Atom here).
# Usage: tests/matrix.sh [CORETYPES] [THREADS] -- defaults: "unset Haswell SkylakeX Core2 Atom"
# (SkylakeX only where the CPU has AVX-512F), "1 2". Prints one summary line per combination
# and, last, "N passed, N failed" counting combinations.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
cts=${1:-"unset Haswell SkylakeX Core2 Atom"}
ths=${2:-"1 2"}
tests=("$BUILD"/tests/test_* $(ls "$BUILD"/fuzz/replay_* 2>/dev/null) tests/*_test.sh)
pass=0; fail=0
for ct in $cts; do
  if [ "$ct" = SkylakeX ] && ! grep -qw avx512f /proc/cpuinfo; then
    echo "OPENBLAS_CORETYPE=SkylakeX: skipped (this CPU has no AVX-512F)"; continue; fi
  for th in $ths; do
    log=$(mktemp)
    start=$(date +%s)
    if [ "$ct" = unset ]; then
      env -u OPENBLAS_CORETYPE OMP_NUM_THREADS="$th" BIN="$BIN" bash tests/run.sh "${tests[@]}" >"$log" 2>&1
    else
      env OPENBLAS_CORETYPE="$ct" OMP_NUM_THREADS="$th" BIN="$BIN" bash tests/run.sh "${tests[@]}" >"$log" 2>&1
    fi
    rc=$?
    echo "OPENBLAS_CORETYPE=$ct OMP_NUM_THREADS=$th: $(tail -n 1 "$log") ($(($(date +%s) - start)) s)"
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); grep -E '^(FAIL|CRASH)' "$log" | head -n 20; fi
    rm -f "$log"
  done
done
echo "matrix: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
