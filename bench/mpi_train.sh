#!/usr/bin/env bash
# Data-parallel training on this machine (README "Training on several processes (MPI)"):
# `llm sft` of a random model with SmolLM2-135M's shapes (tests/fixtures/config/smollm2-135m.json:
# Llama, d 576, 30 layers, 9 heads, 3 KV heads, d_ff 1536, vocab 49152, tied embeddings),
# STEPS steps of 4 rows x 128 tokens (a global batch of 512 tokens), as
#   1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread, 2 ranks x 1 thread --zero1
# Prints training tokens/s (input positions per second of the training loop, from the run's
# summary line) and the peak RSS of each rank (GNU time's %M, per process), and the load of
# the machine before and after (other work on a shared machine slows every figure). The
# model and data are built once in a temporary folder.
set -u
BIN=${BIN:-bin}
B=$BIN/rostesim
STEPS=${STEPS:-3}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
if ! "$B" --version >/dev/null 2>&1; then echo "mpi_train: $B not built"; exit 1; fi
if ! command -v mpirun >/dev/null || ! "$B" llm sft --help 2>&1 | grep -q -- --zero1; then
  echo "mpi_train: no mpirun: skipped"; exit 0
fi
TIME=/usr/bin/time
[ -x $TIME ] || { echo "mpi_train: GNU time (/usr/bin/time) is needed for the peak RSS: skipped"; exit 0; }
"$B" llm init --config tests/fixtures/config/smollm2-135m.json --tokenizer tests/fixtures/tok/neox --out "$T/m" --seed 1 >/dev/null || exit 1
# text cut into 128-token blocks: enough rows for every run
for i in 1 2 3 4; do cat README.md docs/*.md; done >"$T/data.txt"
MPIRUN="mpirun --oversubscribe --allow-run-as-root --bind-to none"
OPTS="--model $T/m --data $T/data.txt --max-len 128 --batch 4 --max-steps $STEPS --lr 1e-4 --seed 1 --quiet"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
printf '%-28s %12s  %s\n' "configuration" "tokens/s" "peak RSS per rank (MB)"
row() { # NAME NP THREADS [EXTRA]
  local name=$1 np=$2 th=$3; shift 3
  rm -rf "$T/out"
  if [ "$np" = 0 ]; then
    OMP_NUM_THREADS=$th $TIME -f "rss_kb %M" -o "$T/rss.0" "$B" llm sft $OPTS --threads "$th" --out "$T/out" "$@" >"$T/log" 2>&1
  else
    $MPIRUN -np "$np" -x OMP_NUM_THREADS="$th" bash -c "$TIME -f 'rss_kb %M' -o $T/rss.\$OMPI_COMM_WORLD_RANK $B llm sft $OPTS --threads $th --out $T/out $*" >"$T/log" 2>&1
  fi || { echo "mpi_train: $name failed: $(tail -3 "$T/log")"; exit 1; }
  local tps rss
  tps=$(sed -nE 's/.*s \(([0-9]+) tok\/s\).*/\1/p' "$T/log")
  rss=$(for f in "$T"/rss.*; do awk '/^rss_kb/{printf "%.0f ", $2 / 1024}' "$f"; done)
  rm -f "$T"/rss.*
  printf '%-28s %12s  %s\n' "$name" "$tps" "$rss"
}
row "1 rank x 1 thread" 0 1
row "1 rank x 2 threads" 0 2
row "2 ranks x 1 thread" 2 1
row "2 ranks x 1 thread, --zero1" 2 1 --zero1
echo "load after:  $(uptime | sed 's/.*load average/load average/')"
