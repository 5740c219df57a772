#!/usr/bin/env bash
# Training tokens/s of Llama-style models: rostesim (C) against PyTorch eager (HF
# LlamaForCausalLM, torch.optim.AdamW) on the same config, batch and thread count, side by
# side: a ~7M and a ~30M model, and SmolLM2-135M's shapes (d 576, 30 layers, 9/3 heads, MLP
# 1536, vocab 49152; STEPS_SMOL steps, default 3). rostesim's runs print where the time goes
# (BENCH_PROFILE=1 of bench_llm: matmul, attention, optimizer, other). Then RoSTE against SFT
# on SmolLM2's shapes (bench_qat: W4A4KV4 with R1-R4 on; seconds per step and the phases).
# Needs a Python with torch + transformers (tools/.venv, /work/venv, or $PYTHON); the peer
# is skipped if there is none.
set -u
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
STEPS=${STEPS:-10}
STEPS_SMOL=${STEPS_SMOL:-3}
PY=${PYTHON:-}
for p in "$PY" tools/.venv/bin/python /work/venv/bin/python /tmp/venv/bin/python python3; do
  [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch, transformers" 2>/dev/null && { PY=$p; break; }
done
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# name d layers heads kv ff vocab batch T
for cfg in "7M 256 4 4 4 688 8192 8 256" "30M 512 7 8 8 1376 8192 8 256" "SmolLM2-135M 576 30 9 3 1536 49152 8 256"; do
  set -- $cfg; name=$1; shift
  n=$STEPS; [ "$name" = SmolLM2-135M ] && n=$STEPS_SMOL
  echo "-- ${name}: $* ($n steps)"
  c=$(BENCH_PROFILE=1 "$BUILD/bench/bench_llm" "$@" "$n") || exit 1
  echo "$c" | sed 's/^/   rostesim: /'
  # OpenBLAS picks its kernels at load time; kernels older than the CPU (an OPENBLAS_CORETYPE
  # such as the Haswell this workplace sets on AVX-512 machines, or 0.3.21's Prescott fallback
  # for a CPU model it does not know) leave speed unused: show what it costs, side by side.
  core=$(echo "$c" | sed -n 's/.*openblas=\([A-Za-z0-9_]*\).*/\1/p')
  for k in Haswell SkylakeX; do
    [ "${core,,}" = "${k,,}" ] && continue
    [ "${core,,}" = skylakex ] && continue
    [ $k = SkylakeX ] && ! grep -qw avx512f /proc/cpuinfo && continue
    grep -qw avx2 /proc/cpuinfo || continue
    s=$(OPENBLAS_CORETYPE=$k "$BUILD/bench/bench_llm" "$@" "$n") || exit 1
    st=$(echo "$s" | awk '/^tokens_per_s/{print $2}'); sg=$(echo "$s" | grep '^gflops')
    echo "   note: OpenBLAS ran its $core kernels${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}; with OPENBLAS_CORETYPE=$k rostesim does $st tokens/s ($sg)"
  done
  if [ -z "$PY" ] || ! "$PY" -c "import torch, transformers" 2>/dev/null; then
    echo "   torch + transformers not found: skipping the peer (see tools/README.md)"; continue
  fi
  t=$("$PY" bench/llm_torch_peer.py "$@" "$n") || exit 1
  echo "$t" | sed 's/^/   pytorch:  /'
  ct=$(echo "$c" | awk '/^tokens_per_s/{print $2}'); tt=$(echo "$t" | awk '/^tokens_per_s/{print $2}')
  awk -v c="$ct" -v t="$tt" -v n="$name" 'BEGIN{printf "   %s training tokens/s: rostesim %.0f, pytorch %.0f -> rostesim is %.2fx pytorch\n", n, c, t, c/t}'
done
echo "-- SmolLM2-135M shapes: a RoSTE W4A4KV4 step (R1-R4 on) against an SFT step (bench_qat, 1 timed step per pass)"
"$BUILD/bench/bench_qat" 576 30 9 3 1536 49152 8 256 1 | sed 's/^/   /' || exit 1
