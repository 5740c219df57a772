#!/usr/bin/env bash
# tests/paper_cli_test.sh: rostesim paper table1 / table3 end to end on a micro setup (a
# tiny GPT-NeoX from `llm init` and the committed TL;DR sample split into train/validation/
# test): every method row, the files, the paper's numbers beside ours, the printed command
# lines rerun by hand, cached steps skipped on rerun, an interrupted run resumed to the same
# table, --sweep choosing on validation, table3's rotations, usage errors naming the flag.
set -u
. "$(dirname "$0")/lib.sh"

$B --help | grep -q "paper " && ok "rostesim --help lists paper" || bad "--help lacks paper"
for t in table1 table3; do
  $B paper $t --help >"$T/h" 2>&1 && grep -q "usage: rostesim paper $t" "$T/h" && ok "paper $t --help" || bad "paper $t --help"
done
$B paper --help | grep -q table3 && ok "paper --help" || bad "paper --help"

# micro setup: data split from the committed sample, a tiny random model with room for the prompts
table_micro "$T" || bad "init"
A="--model $T/m0 --data $T/d --steps 3 --batch 2 --max-len 384 --test-limit 3 --calib 3 --threads 1"

# table1, two bit settings
if $B paper table1 $A --bits W4A4KV4,W4A8KV4 --out "$T/t1" >"$T/o1" 2>"$T/e1"; then ok "paper table1 ($(grep 'all steps done' "$T/o1"))"
else bad "paper table1: $(tail -5 "$T/e1")"; fi
for f in table1.tsv table1.json table1_chart.tsv settings.txt base/test.json sft/train.done sft/test.json \
         W4A4KV4/rtn/test.json W4A4KV4/gptq/test.json W4A4KV4/quarot/test.json W4A4KV4/ste/test.json \
         W4A4KV4/roste/test.json W4A8KV4/roste/test.json W4A4KV4/roste/model/rostesim_qat.json; do
  [ -s "$T/t1/$f" ] || { bad "table1 did not write $f"; continue; }; ok "table1 wrote $f"; done
for row in "Base" "SFT (full precision)" "RTN" "GPTQ" "QuaRot" "SpinQuant" "STE" "RoSTE"; do
  grep -q "^| $row" "$T/o1" && ok "markdown row: $row" || bad "markdown lacks the $row row"; done
grep -q "^| method | W4A4KV4 R1 | R2 | RL | RLsum | mean \[95% CI\] | delta vs roste \[95% CI\], p | W4A8KV4 R1 |" "$T/o1" \
  && ok "markdown header: R1/R2/RL/RLsum/mean with its CI and the paired delta vs RoSTE per bit setting" \
  || bad "markdown header: $(grep '^| method' "$T/o1")"
# statistics: every row's bootstrap CI holds its mean; every row but RoSTE's has a paired
# comparison with RoSTE at its bit setting (base/SFT: one line per setting)
bad_ci=$(awk -F'\t' 'NR > 1 && $7 != "NaN" && !($10 <= $7 && $7 <= $11) { print $1, $2, $7, $10, $11 }' "$T/t1/table1.tsv")
[ -z "$bad_ci" ] && [ "$(awk -F'\t' 'NR > 1 && $7 != "NaN"' "$T/t1/table1.tsv" | wc -l)" -ge 14 ] \
  && ok "table1.tsv: every row's 95% CI holds its mean" || bad "table1.tsv: CIs: $bad_ci"
np=$(awk -F'\t' 'NR > 1 && $12 ~ /^roste W4A[48]KV4$/ && $13 >= $14 - 1e-9 && $13 <= $15 + 1e-9 && $16 > 0 && $16 <= 1' "$T/t1/table1.tsv" | wc -l)
nr=$(awk -F'\t' 'NR > 1 && $1 == "roste" && $12 == "-"' "$T/t1/table1.tsv" | wc -l)
[ "$np" -ge 12 ] && [ "$nr" -eq 2 ] && grep -q '"against":[[:space:]]*"roste W4A4KV4"' "$T/t1/table1.json" \
  && grep -q '"paired_W4A8KV4"' "$T/t1/table1.json" && grep -q '"ci95"' "$T/t1/table1.json" && grep -q "(reference)" "$T/o1" \
  && ok "paired bootstrap vs RoSTE: $np rows (diff inside its CI, 0 < p <= 1), in table1.tsv, table1.json and the markdown" \
  || bad "paired bootstrap: $np rows, $nr reference rows: $(cut -f1,2,12- "$T/t1/table1.tsv" | head -5)"
for m in base sft rtn gptq quarot spinquant ste roste; do
  grep -q "^$m	" "$T/t1/table1.tsv" && ok "table1.tsv: $m" || bad "table1.tsv lacks $m"; done
[ "$(grep -c '	W4A8KV4	' "$T/t1/table1.tsv")" -ge 5 ] && ok "table1.tsv: W4A8KV4 rows" || bad "table1.tsv: no W4A8KV4 rows"
# the paper's numbers printed beside ours are those of table1_paper.tsv
P=papers/roste-2502.09003/table1_paper.tsv
q=$(awk -F'\t' '$1 == "Qwen2.5-0.5B" { print $8 }' $P); p=$(awk -F'\t' '$1 == "Pythia-1B" { print $2 }' $P)
grep -q "^| RoSTE |.* $q |" "$T/o1" && grep -q "^| SFT (full precision) |.* $p |" "$T/o1" \
  && ok "paper columns match $P (RoSTE Qwen2.5-0.5B $q, SFT Pythia-1B $p)" || bad "paper columns differ from $P"
grep -q '"paper_W4A4KV4_mean"' "$T/t1/table1.json" && grep -q '"steps":[[:space:]]*3' "$T/t1/table1.json" \
  && ok "table1.json: settings and paper numbers" || bad "table1.json: $(head -c 300 "$T/t1/table1.json")"
if command -v gnuplot >/dev/null; then [ -s "$T/t1/table1.png" ] && ok "table1.png drawn" || bad "no table1.png"; fi
n=$(grep -c '^  \$ rostesim llm ' "$T/o1")
# 12 steps, 14 when this build's llm ptq has SpinQuant (one more per bit setting)
ns=12; grep -q "spinquant" <($B llm ptq --help 2>&1) && ns=14
[ "$n" -ge 20 ] && grep -q "^\[paper table1 $ns/$ns, " "$T/o1" && ok "progress and $n command lines printed" \
  || bad "progress: $(grep -c '^\[paper' "$T/o1") lines, $n commands"
if grep -q "spinquant" <($B llm ptq --help 2>&1); then
  [ -s "$T/t1/W4A4KV4/spinquant/test.json" ] && ok "spinquant row run (available in this build)" || bad "spinquant available but not run"
else
  grep -q "SpinQuant: not available in this build" "$T/o1" && grep -q "^spinquant	.*not available" "$T/t1/table1.tsv" \
    && ok "spinquant: 'not available in this build'" || bad "spinquant: no 'not available' note"
fi

# a printed command line, rerun by hand, gives the same result
cmdl=$(grep '^  \$ rostesim llm ptq --method gptq .*W4A4KV4' "$T/o1" | head -1 | sed 's/^  \$ rostesim //')
eval "$B ${cmdl//$T\/t1\/W4A4KV4\/gptq\/model/$T/gptq_by_hand}" >/dev/null 2>&1
cmp -s "$T/gptq_by_hand/model.safetensors" "$T/t1/W4A4KV4/gptq/model/model.safetensors" \
  && ok "printed gptq command rerun by hand: same model bytes" || bad "gptq by hand differs ($cmdl)"

# rerun: every step skipped, same table
cp "$T/t1/table1.tsv" "$T/tsv1"
$B paper table1 $A --bits W4A4KV4,W4A8KV4 --out "$T/t1" >"$T/o2" 2>"$T/e2" || bad "rerun: $(tail -3 "$T/e2")"
ns=$(grep -c "skip: .* already" "$T/o2"); nr=$(grep -c '^  \$ rostesim' "$T/o2")
[ "$ns" -ge 12 ] && [ "$nr" -eq 0 ] && cmp -s "$T/tsv1" "$T/t1/table1.tsv" && ok "rerun: $ns steps skipped, nothing run, same table1.tsv" \
  || bad "rerun: $ns skipped, $nr run"

# interrupted, then resumed: the same scores as the uninterrupted run
$B paper table1 $A --bits W4A4KV4,W4A8KV4 --out "$T/t2" >"$T/o3" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/t2/W4A4KV4/rtn" ] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ ! -e "$T/t2/table1.tsv" ] && ok "killed mid-run (no table yet; $(ls "$T/t2" | tr '\n' ' '))" || bad "the run finished before the kill"
$B paper table1 $A --bits W4A4KV4,W4A8KV4 --out "$T/t2" >"$T/o4" 2>"$T/e4" || bad "resume: $(tail -3 "$T/e4")"
cmp -s <(cut -f1-8 "$T/tsv1") <(cut -f1-8 "$T/t2/table1.tsv") && grep -q "skip: " "$T/o4" \
  && ok "resumed after the kill: $(grep -c 'skip: ' "$T/o4") steps skipped, same scores as uninterrupted" \
  || bad "resume differs: $(diff <(cut -f1-8 "$T/tsv1") <(cut -f1-8 "$T/t2/table1.tsv") | head -5)"
# the resumed run's ETA starts from the times recorded beside the cells finished before the kill
sed -n 2p <(grep '^\[paper table1 ' "$T/o4") | grep -q "table ETA [0-9]" \
  && ok "resumed: an ETA from the second cell on ($(sed -n 2p <(grep '^\[paper table1 ' "$T/o4") | cut -c1-60))" \
  || bad "resumed: no ETA on the second cell: $(grep -m2 '^\[paper table1 ' "$T/o4")"

# table3 with --sweep: nine cells per row on validation, the chosen one on test
if $B paper table3 $A --steps 2 --test-limit 2 --sweep --out "$T/t3" >"$T/o5" 2>"$T/e5"; then ok "paper table3 --sweep"
else bad "paper table3: $(tail -5 "$T/e5")"; fi
for row in "RoSTE, no rotation" "RoSTE, every rotation" "RoSTE, adaptive"; do
  grep -q "^| $row" "$T/o5" && ok "table3 row: $row" || bad "table3 lacks $row"; done
[ "$(ls -d "$T"/t3/W4A4KV4/*-lr*-c* | wc -l)" -eq 27 ] && [ "$(ls "$T"/t3/W4A4KV4/*/validation.json | wc -l)" -eq 27 ] \
  && ok "sweep: 27 cells scored on validation" || bad "sweep cells: $(ls "$T/t3/W4A4KV4" | tr '\n' ' ')"
[ "$(ls "$T"/t3/W4A4KV4/*/test.json | wc -l)" -eq 3 ] && [ "$(grep -c 'chosen on validation' "$T/o5")" -eq 3 ] \
  && ok "sweep: only the 3 chosen cells scored on test" || bad "sweep: test.json in $(ls "$T"/t3/W4A4KV4/*/test.json | wc -l) cells"
grep -qE "\"is_rotate_R1\":[[:space:]]+true" "$T/t3/W4A4KV4/roste-all-lr0.0005-c1/model/rostesim_qat.json" 2>/dev/null \
  && grep -qE '"method":[[:space:]]+"ste"' "$T/t3/W4A4KV4/ste-lr0.0005-c1/model/rostesim_qat.json" \
  && grep -q -- "--method roste .*--out $T/t3/W4A4KV4/roste-lr0.0005-c1/model" "$T/o5" \
  && ok "table3: every rotation in roste-all's config; no rotation is STE (ste-*); adaptive is RoSTE's search (roste-*)" \
  || bad "table3 rotation configs"
[ -s "$T/t3/table3.tsv" ] && [ "$(wc -l <"$T/t3/table3.tsv")" -eq 4 ] && ok "table3.tsv: 3 rows" || bad "table3.tsv"
# table3 in table1's --out: the no-rotation and adaptive rows are table1's STE and RoSTE cells,
# reused; only the every-rotation row trains
if $B paper table3 $A --out "$T/t1" >"$T/o6" 2>"$T/e6"; then
  nq=$(grep -c '^  \$ rostesim llm qat' "$T/o6")
  m1() { awk -F'\t' -v r="$1" -v b=W4A4KV4 '$1 == r && $2 == b { print $7 }' "$2"; }
  [ "$nq" -eq 1 ] && grep -q -- "--out $T/t1/W4A4KV4/roste-all/model" "$T/o6" \
    && [ -n "$(m1 ste "$T/t1/table1.tsv")" ] && [ "$(m1 roste-none "$T/t1/table3.tsv")" = "$(m1 ste "$T/t1/table1.tsv")" ] \
    && [ "$(m1 roste-adaptive "$T/t1/table3.tsv")" = "$(m1 roste "$T/t1/table1.tsv")" ] \
    && ok "table3 in table1's folder: $nq run trained (roste-all); no rotation = table1's STE, adaptive = table1's RoSTE" \
    || bad "table3 in table1's folder: $nq qat runs; $(cut -f1,2,7 "$T/t1/table3.tsv" | tr '\n' ' ')"
else bad "paper table3 in table1's folder: $(tail -3 "$T/e6")"; fi

# usage errors name the flag
# --seeds 2 (table3, references with words the tiny model generates: scores that are not 0):
# each row's second seed in its own folder, the row's mean the mean of its seeds' test.json
mkdir -p "$T/ds" && cp "$T"/d/*.jsonl "$T/ds/" && sed -i 's/"}$/ lay question 4 win Frank"}/' "$T/ds/test.jsonl"
if $B paper table3 --model "$T/m0" --data "$T/ds" --steps 2 --batch 2 --max-len 384 --test-limit 4 --calib 3 --threads 1 \
     --seeds 2 --out "$T/s3" >"$T/os" 2>"$T/es"; then
  jm() { grep -o '"mean": [0-9.eE+-]*' "$1" | cut -d' ' -f2; }
  okrows=0
  for md in roste-none:ste roste-all:roste-all roste-adaptive:roste; do
    m=${md%%:*} d=${md#*:}
    a=$(jm "$T/s3/W4A4KV4/$d/test.json"); b=$(jm "$T/s3/W4A4KV4/$d-s43/test.json")
    row=$(awk -F'\t' -v m=$m '$1 == m { print $7, $17, $18 }' "$T/s3/table3.tsv")
    awk -v a="$a" -v b="$b" -v r="$row" 'BEGIN { split(r, x, " "); sd = sqrt((a - b) ^ 2 / 2);
      exit !(x[2] == 2 && (x[1] - (a + b) / 2) ^ 2 < 1e-12 && (x[3] - sd) ^ 2 < 1e-12) }' && okrows=$((okrows + 1))
  done
  nz=$(awk -F'\t' 'NR > 1 && $7 > 0' "$T/s3/table3.tsv" | wc -l)
  [ "$okrows" -eq 3 ] && [ "$nz" -ge 1 ] && grep -q '"seed_means"' "$T/s3/table3.json" && grep -q ' ± ' "$T/os" \
    && ok "--seeds 2: 3 rows, each the mean and sd of its two seeds' cells ($nz rows not 0)" \
    || bad "--seeds 2: $okrows rows agree; $(cut -f1,7,17,18 "$T/s3/table3.tsv")"
else bad "paper table3 --seeds 2: $(tail -3 "$T/es")"; fi
expect_exit 2 "--seeds" $B paper table1 $A --seeds 9 --out "$T/x"
# a short grid (--sweep-steps) on fewer validation rows (--valid-limit), SFT swept too: grid
# points in their own folders, the choice trained again in full (-full, and -full-s43 for the
# second seed), the post-training rows quantizing the chosen SFT model
G=(--sweep --sweep-lr 1,2 --sweep-clip 1 --sweep-steps 1 --valid-limit 2 --seeds 2)
if $B paper table1 --model "$T/m0" --data "$T/d" --steps 2 --batch 2 --max-len 384 --test-limit 3 --calib 3 --threads 1 \
     "${G[@]}" --out "$T/g1" >"$T/og" 2>"$T/eg"; then
  sc=$(ls -d "$T"/g1/sft-lr0.00[12] 2>/dev/null | wc -l); qc=$(ls -d "$T"/g1/W4A4KV4/{ste,roste}-lr0.00[12]-c1 2>/dev/null | wc -l)
  full=$(ls -d "$T"/g1/sft-lr*-full "$T"/g1/sft-lr*-full-s43 "$T"/g1/W4A4KV4/*-lr*-c1-full "$T"/g1/W4A4KV4/*-lr*-c1-full-s43 2>/dev/null | wc -l)
  nv=$(wc -l <"$T/g1/sft-lr0.001/validation_predictions.jsonl")
  chosen=$(ls -d "$T"/g1/sft-lr*-full | head -1)
  grep -q -- "ptq --method rtn --model $chosen/model " "$T/og" && grep -q "^sweep-steps 1$" "$T/g1/settings.txt" \
    && grep -q "^valid-limit 2$" "$T/g1/settings.txt" && [ "$sc" -eq 2 ] && [ "$qc" -eq 4 ] && [ "$full" -eq 6 ] && [ "$nv" -eq 2 ] \
    && grep -q -- "--max-steps 1 " <(grep "sft-lr0.001/model" "$T/og") && grep -q -- "--max-steps 2 " <(grep -- "-full/model" "$T/og") \
    && grep -q "^\[paper table1 $(grep -c '^\[paper table1 ' "$T/og")/$(grep -c '^\[paper table1 ' "$T/og"), " "$T/og" \
    && ok "short grid: SFT $sc + QA-SFT $qc grid points (1 step, 2 validation rows), $full full-length runs of the choices, RTN quantizes $(basename "$chosen")" \
    || bad "short grid: sft $sc, qat $qc, full $full, validation rows $nv, settings $(tr '\n' ' ' <"$T/g1/settings.txt")"
else bad "paper table1 --sweep-steps: $(tail -3 "$T/eg")"; fi
expect_exit 2 "--sweep-lr: at most 3 values" $B paper table1 $A --sweep --sweep-lr 1,2,3,4 --out "$T/x"
expect_exit 2 "--sweep-clip: '1.5' is not a number" $B paper table1 $A --sweep --sweep-clip 1.5 --out "$T/x"
expect_exit 2 "only with --sweep" $B paper table1 $A --sweep-steps 3 --out "$T/x"
# a cell's wall time beside its marker, and the table's ETA from the rates measured so far
grep -q '"elapsed_s": [0-9.]*, "steps": 3, "tokens_per_s": [0-9.]*' "$T/t1/sft/train.json" && grep -q '"elapsed_s"' "$T/t1/W4A4KV4/rtn/train.json" \
  && grep -q "^\[paper table1 1/[0-9]*, [0-9.]* s, table ETA after the first cells\] base" "$T/o1" \
  && [ "$(grep -c '^\[paper table1 [0-9]*/[0-9]*, [0-9.]* s, table ETA [0-9]' "$T/o1")" -ge 10 ] \
  && ok "train.json holds each cell's wall time; progress lines give the table's ETA" \
  || bad "train.json / ETA: $(cat "$T/t1/sft/train.json"; grep -m3 '^\[paper' "$T/o1")"
# the chart's data: per bit setting the mean and its CI (the error bars), as in table1.tsv
awk -F'\t' 'NR == 1 { ok = (NF == 7 && $2 == "W4A4KV4" && $3 == "W4A4KV4_ci_lo" && $7 == "W4A8KV4_ci_hi") }
  NR > 1 { n++; for (c = 2; c <= NF; c += 3) if (!($(c+1) <= $c && $c <= $(c+2))) ok = 0 } END { exit !(ok && n == 8) }' \
  "$T/t1/table1_chart.tsv" && [ "$(awk -F'\t' '$1 == "rtn" { print $2, $3, $4 }' "$T/t1/table1_chart.tsv")" = \
  "$(awk -F'\t' '$1 == "rtn" && $2 == "W4A4KV4" { print $7, $10, $11 }' "$T/t1/table1.tsv")" ] \
  && ok "table1_chart.tsv: mean and 95% CI per bit setting (8 rows), those of table1.tsv" \
  || bad "table1_chart.tsv: $(head -3 "$T/t1/table1_chart.tsv")"
# table1_times.tsv: every cell once with the times recorded beside it, and their total
TT="$T/t1/table1_times.tsv"
nc=$(grep -c '^\[paper table1 ' "$T/o1")
if [ -s "$TT" ] && [ "$(wc -l <"$TT")" -eq $((nc + 2)) ] && head -1 "$TT" | grep -q "^cell	row	split	train_s	" \
   && awk -F'\t' -v d="$T/t1" 'NR > 1 && $1 != "total" { f = d "/" $1 "/train.json"; e = "-"
        while ((getline l < f) > 0) if (match(l, /"elapsed_s": [0-9.]+/)) e = sprintf("%.1f", substr(l, RSTART + 13, RLENGTH - 13))
        close(f); if (e != $4) bad = 1; if ($4 != "-") sum += $4 }
      $1 == "total" { tot = $4 } END { exit !(!bad && (sum - tot) ^ 2 < 0.01 && tot > 0) }' "$TT" \
   && grep -q "^time recorded beside the cells: .*table1_times.tsv" "$T/o1"; then
  ok "table1_times.tsv: $nc cells, each with its train.json's time, and their total ($(grep ^total "$TT" | cut -f4,7 | tr '\t' ' ') s)"
else bad "table1_times.tsv: $(head -4 "$TT" 2>&1)"; fi
# --preset smollm2 on the micro model: its values where no flag is given (lr 5e-5, the 1,0.9
# clip grid, two seeds, the sweep), the flags given where they are
if $B paper table3 --preset smollm2 --model "$T/m0" --data "$T/d" --out "$T/p3" --steps 2 --sweep-steps 1 --batch 2 \
     --max-len 384 --test-limit 2 --valid-limit 2 --calib 3 --threads 1 >"$T/op" 2>"$T/ep"; then
  ng=$(ls -d "$T"/p3/W4A4KV4/roste-lr{5e-05,0.0001}-c{1,0.9} 2>/dev/null | wc -l)
  grep -q "^lr 5.0000000000000002e-05$" "$T/p3/settings.txt" && grep -q "^steps 2$" "$T/p3/settings.txt" && [ "$ng" -eq 4 ] \
    && [ -n "$(ls "$T"/p3/W4A4KV4/roste-lr*-full-s43/test.json 2>/dev/null)" ] \
    && ok "--preset smollm2: its lr, grid and seeds, the flags given override ($ng grid points of roste-adaptive)" \
    || bad "--preset smollm2: $ng grid points; $(tr '\n' ' ' <"$T/p3/settings.txt")"
else bad "paper table3 --preset smollm2: $(tail -3 "$T/ep")"; fi
expect_exit 2 "--preset: 'big' is not a preset" $B paper table1 --preset big --out "$T/x"
mkdir -p "$T/partial" && cp "$T/m0/config.json" "$T/partial/"
expect_exit 2 "--model: .*partial.* has config.json but no model.safetensors" $B paper table1 --model "$T/partial" --data "$T/d" --out "$T/x"
cp "$T/m0/model.safetensors" "$T/partial/"
expect_exit 2 "--model: .*partial.* has no tokenizer.json" $B paper table1 --model "$T/partial" --data "$T/d" --out "$T/x"
expect_exit 2 "--bits" $B paper table1 $A --bits W4X4 --out "$T/x"
expect_exit 2 "--steps" $B paper table1 $A --steps 0 --out "$T/x"
expect_exit 2 "--bits: 'W4A17KV4' is not like W4A4KV4 \\(bits 1-16\\)" $B paper table1 $A --bits W4A4KV4,W4A17KV4 --out "$T/x"
# a data folder without its validation and test splits: named, before any cell runs
mkdir -p "$T/trainonly" && cp "$T/d/train.jsonl" "$T/trainonly/"
expect_exit 2 "--data: '$T/trainonly' needs train.jsonl, validation.jsonl" $B paper table3 --model "$T/m0" --data "$T/trainonly" --out "$T/x2"
[ ! -e "$T/x2" ] && ok "bad input creates no --out folder" || bad "bad input left $T/x2"
expect_exit 2 "--data" $B paper table1 --model "$T/m0" --data "$T/nodata" --out "$T/x"
expect_exit 2 "--model" $B paper table1 --model "$T/nomodel" --data "$T/d" --out "$T/x"
expect_exit 2 "--frobnicate" $B paper table1 $A --frobnicate --out "$T/x"
expect_exit 2 "--out" $B paper table1 $A --steps 4 --out "$T/t1"
expect_exit 2 "table9" $B paper table9

echo "paper_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
