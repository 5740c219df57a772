#!/usr/bin/env bash
# CLI behaviour: help, version, bad input (exit 2 with one clear line), determinism
# (same command and seed -> byte-identical files), and the headline command's outputs.
set -u
. "$(dirname "$0")/lib.sh"
EXPECT_ARGS=0

for c in "" lsq plot verify hadamard; do
  if $B $c --help >"$T/h" 2>&1 && grep -q "usage: rostesim" "$T/h"; then ok "rostesim $c --help"; else bad "rostesim $c --help"; fi
done
$B --version | grep -qE '^rostesim [0-9]' && ok "--version" || bad "--version"

expect_exit 2 "unknown command 'frobnicate'" $B frobnicate
expect_exit 2 "unknown option '--frob'" $B lsq --frob
expect_exit 2 "--d: 0 is out of range" $B lsq --d 0
expect_exit 2 "--d: '-5' is not an integer|--d: -5 is out of range" $B lsq --d -5
expect_exit 2 "N=512 >= d=256" $B lsq --d 256 --N 512
expect_exit 2 "N=256 >= d=256" $B lsq --d 256 --N 256
expect_exit 2 "--bits: 17 is out of range" $B lsq --bits 17
expect_exit 2 "bits must be 1..8 or 16" $B lsq --bits 12
expect_exit 2 "--wbits: 0 is out of range" $B lsq --wbits 0
expect_exit 2 "--clip: 1.5 is out of range" $B lsq --clip 1.5
expect_exit 2 "--eta: 'abc' is not a finite number" $B lsq --eta abc
expect_exit 2 "--bits needs a value" $B lsq --bits
expect_exit 2 "--features: 'cauchy' is not one of" $B lsq --features cauchy
expect_exit 2 "--rotations: 'qr' is not one of" $B lsq --rotations none,qr
expect_exit 2 "--sweep abits: value 12: bits must be" $B lsq --sweep abits=2,12
expect_exit 2 "--sweep: expected VAR=" $B lsq --sweep abits
expect_exit 2 "--sweep foo: value 1: unknown variable" $B lsq --sweep foo=1
expect_exit 2 "--rounds 3 needs --reselect-every" $B lsq --rounds 3
expect_exit 2 "1 bits is invalid for sym" $B lsq --bits 1
expect_exit 2 "claims.tsv" $B verify /nonexistent-paper
expect_exit 2 "is not a valid order" $B hadamard abc

# a small run: files, determinism
small="--d 128 --N 32 --seeds 2 --max-steps 3000 --prop44 200 --no-plot --quiet"
if $B lsq $small --out "$T/a" >"$T/a.txt" 2>&1; then ok "small lsq run"; else bad "small lsq run: $(tail -3 "$T/a.txt")"; fi
for f in meta.tsv steps.tsv runs.tsv summary.tsv fit.tsv prop44.tsv summary.json; do
  [ -s "$T/a/$f" ] && ok "wrote $f" || bad "missing $f"
done
[ -z "$(ls "$T/a" | grep '\.tmp$')" ] && ok "no temporary files left" || bad "temporary files left"
$B lsq $small --out "$T/b" >/dev/null 2>&1
same=1; for f in meta.tsv steps.tsv runs.tsv summary.tsv fit.tsv prop44.tsv; do cmp -s "$T/a/$f" "$T/b/$f" || same=0; done
[ $same -eq 1 ] && ok "same seed -> byte-identical data files" || bad "same seed gave different files"
$B lsq $small --out "$T/c" --seed 2 >/dev/null 2>&1
cmp -s "$T/a/runs.tsv" "$T/c/runs.tsv" && bad "a different seed gave identical runs" || ok "a different seed gives different runs"
OMP_NUM_THREADS=1 $B lsq $small --out "$T/d" >/dev/null 2>&1
cmp -s "$T/a/runs.tsv" "$T/d/runs.tsv" && cmp -s "$T/a/fit.tsv" "$T/d/fit.tsv" \
  && ok "1 thread and 2 threads give identical results (runs and fits)" || bad "results depend on the thread count"
# the summary table has one row per rotation
for r in none hadamard haar adaptive; do grep -qE "^$r +32/32" "$T/a.txt" && ok "table row $r" || bad "no table row for $r"; done
# duplicate runs: adaptive (K = 1) repeats the rotation it chose; it is shown, marked, and
# left out of the fits (3 distinct rotations x 2 seeds = 6 runs fitted, 8 with duplicates)
grep -qE "^adaptive .*\(= (none|hadamard): identical runs\)" "$T/a.txt" && ok "adaptive row marked as a duplicate" || bad "adaptive row not marked as a duplicate"
grep -qE "^  all settings +6 " "$T/a.txt" && ok "fit over the 6 distinct runs" || bad "fit not over 6 distinct runs: $(grep 'all settings' "$T/a.txt")"
grep -q "counting the 2 duplicate runs too (n = 8)" "$T/a.txt" && ok "old fit with duplicates reported" || bad "no fit with duplicates"
for r in none hadamard haar; do grep -qE "^  $r \(seeds only\) +2  \(fewer than 3 distinct runs: not fitted\)" "$T/a.txt" && ok "$r: 2 runs are too few to fit" || bad "$r: a 2-run fit printed"; done
awk -F'\t' 'NR == 2 && $5 == 6 && $6 == "all_distinct" { f = 1 } END { exit !f }' "$T/a/fit.tsv" && ok "fit.tsv: headline row over 6 distinct runs" || bad "fit.tsv headline row"
[ "$(awk -F'\t' 'NR > 1 && $3 == "adaptive" && $NF != "-"' "$T/a/runs.tsv" | wc -l)" -eq 2 ] && ok "runs.tsv: both adaptive runs name the run they repeat" || bad "runs.tsv duplicate_of"
grep -q '"spearman_ci95"' "$T/a/summary.json" && grep -q '"within_setting"' "$T/a/summary.json" && grep -q '"mu_measured"' "$T/a/summary.json" \
  && ok "summary.json has the fits with CIs and the measured constants" || bad "summary.json lacks the fits"
grep -q "Thm 4.3 form with mu_m" "$T/a.txt" && ok "measured-constant recursion printed" || bad "no measured-constant recursion"
# an unwritable output folder: clear error, exit 1, earlier results kept
mkdir -p "$T/ro" && cp "$T/a/summary.tsv" "$T/ro/" && chmod 555 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
  expect_exit 1 "cannot write" $B lsq $small --out "$T/ro"
  cmp -s "$T/a/summary.tsv" "$T/ro/summary.tsv" && ok "earlier results kept" || bad "earlier results lost"
fi
expect_exit 1 "is not a directory|cannot create" $B lsq $small --out "$T/a/summary.tsv/x"
echo "cli_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
