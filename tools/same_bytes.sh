#!/usr/bin/env bash
# tools/same_bytes.sh OLD [NEW]: "no behaviour change", shown. Runs the same seeded commands
# with two rostesim binaries (NEW defaults to bin/rostesim) and compares every file they write
# and print: `lsq --bits 4` (data files), `llm sft`, `llm qat --method ste|roste` and
# `llm diagnose` on a tiny GPT-NeoX, and a `paper table1` cell (W4A4KV4) on a test checkpoint.
# Binary files must match byte for byte; text files too, once wall-clock figures (seconds,
# tokens/s) are masked. Prints "identical: N files (M byte for byte)" or each differing file;
# exit 1 on a difference. Run from the repository root (it reads tests/fixtures); takes about
# a minute. Figures are not compared (PNG/PDF carry dates); gnuplot is replaced by a sink.
set -u
OLD=$(readlink -f "$1"); NEW=$(readlink -f "${2:-bin/rostesim}")
W=/tmp/rostesim-same-bytes.$$      # one fixed path for both runs: outputs record their paths
trap 'rm -rf "$W" "$W.old" "$W.sink"' EXIT
printf '#!/bin/sh\ncat >/dev/null\n' >"$W.sink"; chmod +x "$W.sink"
FIX=tests/fixtures/sft; TOK=tests/fixtures/tok/neox
run() {
  local B=$1
  rm -rf "$W"; mkdir -p "$W/d"
  $B lsq --bits 4 --no-plot --quiet --out "$W/lsq" >"$W/lsq.stdout" 2>"$W/lsq.stderr"; echo "lsq $?" >>"$W/rc"
  $B llm init --config $FIX/tiny_neox.json --tokenizer $TOK --out "$W/m0" --seed 1 >"$W/init.stdout" 2>&1; echo "init $?" >>"$W/rc"
  $B llm sft --model "$W/m0" --data $FIX/train.jsonl --lr 5e-3 --max-steps 40 --batch 2 --grad-accum 2 --warmup 0.05 \
    --weight-decay 0.01 --seed 7 --threads 1 --quiet --out "$W/sft" >"$W/sft.stdout" 2>"$W/sft.stderr"; echo "sft $?" >>"$W/rc"
  local Q="--data $FIX/train.jsonl --lr 3e-3 --max-steps 12 --batch 4 --threads 1 --quiet"
  $B llm qat --method roste --calib 8 --model "$W/m0" $Q --out "$W/qat" >"$W/qat.stdout" 2>"$W/qat.stderr"; echo "qat $?" >>"$W/rc"
  $B llm qat --method ste --model "$W/m0" $Q --out "$W/ste" >"$W/ste.stdout" 2>"$W/ste.stderr"; echo "ste $?" >>"$W/rc"
  ROSTESIM_GNUPLOT="$W.sink" $B llm diagnose --model "$W/m0" --data $FIX/train.jsonl --rows 4 --out "$W/diag" \
    --runs "$W/ste,$W/qat" >"$W/diag.stdout" 2>"$W/diag.stderr"; echo "diag $?" >>"$W/rc"
  cp tests/fixtures/tldr/sample_train.jsonl "$W/d/train.jsonl"
  head -8 tests/fixtures/tldr/sample_test.jsonl >"$W/d/validation.jsonl"
  tail -20 tests/fixtures/tldr/sample_test.jsonl >"$W/d/test.jsonl"
  sed 's/"max_position_embeddings": 64/"max_position_embeddings": 512/' $FIX/tiny_neox.json >"$W/cfg.json"
  $B llm init --config "$W/cfg.json" --tokenizer $TOK --out "$W/p0" --seed 1 >/dev/null 2>&1
  ROSTESIM_GNUPLOT="$W.sink" $B paper table1 --model "$W/p0" --data "$W/d" --steps 3 --batch 2 --max-len 384 --test-limit 3 \
    --calib 3 --threads 1 --bits W4A4KV4 --out "$W/t1" >"$W/t1.stdout" 2>"$W/t1.stderr"; echo "table1 $?" >>"$W/rc"
  find "$W" \( -name '*.png' -o -name '*.pdf' \) -delete
}
mask() { sed -E -e 's/"(tokens_per_s|elapsed_s|eval_seconds|seconds|time_s|wall_s)": *[0-9.eE+-]+/"\1": T/g' \
  -e 's/[0-9]+(\.[0-9]+)? ?s([^a-zA-Z]|$)/T s\2/g' -e 's/[0-9.]+ tok\/s/T tok\/s/g' "$1"; }
run "$OLD"; rm -rf "$W.old"; mv "$W" "$W.old"
run "$NEW"
n=0; exact=0; d=0
while IFS= read -r f; do
  if cmp -s "$W.old/$f" "$W/$f"; then n=$((n + 1)); exact=$((exact + 1))
  elif [ -f "$W/$f" ] && grep -qI . "$W.old/$f" && cmp -s <(mask "$W.old/$f") <(mask "$W/$f"); then n=$((n + 1))
  else d=$((d + 1)); echo "DIFFERS: $f"; fi
done < <(cd "$W.old" && find . -type f | sort)
extra=$(comm -13 <(cd "$W.old" && find . -type f | sort) <(cd "$W" && find . -type f | sort))
[ -n "$extra" ] && { echo "only in NEW: $extra"; d=$((d + 1)); }
if [ $d -eq 0 ]; then echo "identical: $n files ($exact byte for byte, the rest equal but for wall-clock times)"
else echo "differ: $d, identical: $n"; exit 1; fi
