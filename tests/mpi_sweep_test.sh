#!/usr/bin/env bash
# Sweeps and tables on several processes (mpirun), equal to one process:
#  - `lsq --sweep` on 2 and 3 ranks (3 points on 2 ranks, 2 points on 3 ranks: a rank with
#    only Prop. 4.4's experiment), and on 2 ranks of 2 threads each: every data file and the
#    printed report (but its time line) byte for byte those of one process (same --out path);
#  - lsq without --sweep and ranks given different options (MPMD) refused, exit 2;
#  - `paper table1` on the micro setup on 2 ranks: every file of --out (tables, scores,
#    predictions, models, training logs) equal to one process's with the wall-clock fields
#    masked; one rank killed mid-run: the job ends, no cell process is left, the finished cells
#    are kept and a rerun finishes the same table; ranks that see different --data (same
#    command line, other working folders) or no shared --out refused.
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
if [ "${MPI:-1}" != 1 ] || ! command -v mpirun >/dev/null; then
  echo "mpi_sweep_test: built without MPI or no mpirun: nothing to check"
  echo "mpi_sweep_test: 0 passed, 0 failed"; exit 0
fi
table_micro "$T/pm" || bad "llm init (the micro setup of paper table1)"
# words the tiny random model generates, added to every reference: ROUGE scores that are not 0
# (and not round numbers), so that the tables compare real values
sed -i 's/"}$/ lay question 4 win Frank"}/' "$T/pm/d/test.jsonl" "$T/pm/d/validation.jsonl"
B=$PWD/$B
W=$T/w; mkdir -p "$W"; cd "$W" || exit 1

# same DIR1 DIR2: every file of both trees (but figures and the tables' wall times) byte for byte,
# wall-clock fields masked
files() { (cd "$1" && find . -type f ! -name '*.png' ! -name '*.pdf' ! -name '*_times.tsv' | sort | while read -r f; do
  printf '%s %s\n' "$f" "$(sed -E 's/"(eval_seconds|tokens_per_s|elapsed_s)": *[0-9.eE+-]+/"\1": T/g' "$f" | sha1sum | cut -c1-16)"
  done); }
same() { files "$1" >"$T/f1"; files "$2" >"$T/f2"; [ -s "$T/f1" ] && diff "$T/f1" "$T/f2" >"$T/diff"; }

# ---- lsq --sweep ----------------------------------------------------------------------------
L="lsq --d 32 --N 16 --steps 300 --seeds 4 --prop44 200 --no-plot --quiet --out o"
for sw in abits=2,3,4 wbits=3,4; do
  rm -rf o; OMP_NUM_THREADS=2 $B $L --sweep $sw >"$T/s1" 2>"$T/e1" || bad "lsq --sweep $sw, one process: $(head -3 "$T/e1")"
  rm -rf one; mv o one
  n=$(tr ',' '\n' <<<"${sw#*=}" | wc -l)
  for np in 2 3 2x2; do
    r=${np%x*}; th=1; [ "$np" = 2x2 ] && th=2
    rm -rf o
    ${MPIRUN/OMP_NUM_THREADS=${MPI_THREADS:-1}/OMP_NUM_THREADS=$th} -np "$r" $B $L --sweep $sw >"$T/s2" 2>"$T/e2"; rc=$?
    if [ $rc -eq 0 ] && same one o && diff <(grep -v '^time: ' "$T/s1") <(grep -v '^time: ' "$T/s2") >/dev/null; then
      ok "lsq --sweep $sw ($n points) on $r ranks x $th thread(s): $(ls o | wc -l) files and the report equal one process's"
    else bad "lsq --sweep $sw on $r ranks x $th: exit $rc, $(head -c 300 "$T/diff") $(head -3 "$T/e2")"; fi
  done
done
# the report printed once (rank 0), not once per rank
[ "$(grep -c '^Theorem 4.3: ' "$T/s2")" -eq 1 ] && ok "lsq on 2 ranks: one report (rank 0 prints)" \
  || bad "lsq on 2 ranks printed $(grep -c '^Theorem 4.3: ' "$T/s2") reports"
# a single point on several ranks: refused, and nothing written
rm -rf o
EXPECT_ARGS=4 expect_exit 2 "launched by mpirun with 2 ranks, but without --sweep there is one point" \
  $MPIRUN -np 2 $B lsq --d 32 --N 16 --steps 50 --out o
[ ! -e o ] && ok "refused lsq wrote no --out" || bad "refused lsq created o/"
# ranks given different options (MPMD): the hash exchange at start refuses the job
EXPECT_ARGS=3 expect_exit 2 "the ranks disagree on the lsq command line: rank 1 has hash [0-9a-f]+, rank 0 [0-9a-f]+" \
  $MPIRUN -np 1 $B $L --sweep abits=2,3 : -np 1 $B $L --sweep abits=2,3 --seed 2
[ ! -e o ] && ok "MPMD lsq with different --seed wrote no --out" || bad "MPMD lsq created o/"

# ---- paper table1 ---------------------------------------------------------------------------
cd "$T/pm" || exit 1
# --seeds 2: the SFT and QA-SFT rows' second seeds are jobs of their own
P=(paper table1 --model m0 --data d --steps 3 --batch 2 --max-len 384 --test-limit 3 --calib 3 --threads 1 --seeds 2)
$B "${P[@]}" --out t >"$T/p1" 2>"$T/pe1" || bad "paper table1, one process: $(tail -3 "$T/pe1")"
rm -rf one; mv t one
$MPIRUN -np 2 $B "${P[@]}" --out t >"$T/p2" 2>"$T/pe2"; rc=$?
if [ $rc -eq 0 ] && same one t; then ok "paper table1 on 2 ranks: the $(wc -l <"$T/f1") files of --out equal one process's (wall-clock fields masked)"
else bad "paper table1 on 2 ranks: exit $rc, $(head -c 400 "$T/diff") $(tail -3 "$T/pe2")"; fi
grep -q '"R1":[[:space:]]*0\.[0-9]\{9\}' one/table1.json && ok "paper table1: ROUGE scores not 0 ($(grep -m1 -o '"mean":[[:space:]]*[0-9.]*' one/table1.json | tr -d '\t'))" \
  || bad "paper table1: every score 0 (nothing compared): $(cut -f1-7 one/table1.tsv | head -4)"
n1=$(grep -cE '^\[paper table1 [0-9]+/[0-9]+, rank 1, ' "$T/p2")
[ "$n1" -ge 3 ] && [ "$(grep -c '^| RoSTE |' "$T/p2")" -eq 1 ] && grep -q "rank 0 reads them into the table" "$T/p2" \
  && ok "paper table1 on 2 ranks: $n1 steps run on rank 1, one table printed by rank 0" || bad "paper table1: rank 1 ran $n1 steps; $(tail -3 "$T/p2")"
cmp -s <(grep -v '^| method\|^|---' "$T/p1" | grep '^| ') <(grep '^| ' "$T/p2" | grep -v '^| method\|^|---') \
  && ok "paper table1 on 2 ranks: the printed table equals one process's" || bad "printed tables differ"

# table1 with a short grid that sweeps SFT too (its choice is what the baselines quantize:
# a phase between the grid and them), two seeds, on 2 ranks
PG=(paper table1 --model m0 --data d --steps 2 --batch 2 --max-len 384 --test-limit 2 --calib 3 --threads 1 --sweep
    --sweep-lr 1,2 --sweep-clip 1,0.9 --sweep-steps 1 --valid-limit 2 --seeds 2)
$B "${PG[@]}" --out tg >"$T/g1" 2>"$T/ge1" || bad "paper table1 short grid, one process: $(tail -3 "$T/ge1")"
rm -rf oneg; mv tg oneg
$MPIRUN -np 2 $B "${PG[@]}" --out tg >"$T/g2" 2>"$T/ge2"; rc=$?
if [ $rc -eq 0 ] && same oneg tg && grep -q "(6 of them choices on validation)" "$T/g2"; then
  ok "paper table1 --sweep-steps --seeds 2 on 2 ranks: the $(wc -l <"$T/f1") files of --out equal one process's"
else bad "paper table1 short grid on 2 ranks: exit $rc, $(head -c 400 "$T/diff") $(grep 'ranks:' "$T/g2") $(tail -3 "$T/ge2")"; fi

# table3 --sweep on 3 ranks: nine grid points per row on validation, the choice on test
P3=(paper table3 --model m0 --data d --steps 2 --batch 2 --max-len 384 --test-limit 2 --calib 3 --threads 1 --sweep --seeds 2)
$B "${P3[@]}" --out t3 >"$T/q1" 2>"$T/qe1" || bad "paper table3 --sweep, one process: $(tail -3 "$T/qe1")"
rm -rf one3; mv t3 one3
$MPIRUN -np 3 $B "${P3[@]}" --out t3 >"$T/q3" 2>"$T/qe3"; rc=$?
# the choice is printed once per seed; each row's second seed trains the chosen grid point again
if [ $rc -eq 0 ] && same one3 t3 && [ "$(grep -c '^  chosen on validation' "$T/q1")" -eq 6 ] \
   && [ "$(ls -d t3/W4A4KV4/*-lr*-s43 2>/dev/null | wc -l)" -eq 3 ]; then
  ok "paper table3 --sweep on 3 ranks: the $(wc -l <"$T/f1") files of --out equal one process's ($(grep -c '^  chosen' "$T/q1") choices)"
else bad "paper table3 --sweep on 3 ranks: exit $rc, $(head -c 400 "$T/diff") $(tail -3 "$T/qe3")"; fi

# one rank killed mid-run: mpirun ends the job, no cell process survives, finished cells are kept
in_pm() { for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = "$T/pm" ] && [ "$(readlink "$p/exe" 2>/dev/null)" = "$B" ] && echo "${p#/proc/}"; done; }
rank_pid() { for p in $(pgrep -P "$1"); do tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p"; done; }
rm -rf t
$MPIRUN -np 2 $B "${P[@]}" --out t >"$T/p3" 2>&1 &
mp=$!
has() { [ -e "$1" ]; }
wait_for $mp has t/sft/train.done; r1=$(rank_pid $mp 1)
[ -n "$r1" ] && kill -9 "$r1"; wait $mp; rc=$?
for _ in $(seq 1 100); do [ -z "$(in_pm)" ] && break; sleep 0.05; done
left=$(in_pm)
if [ -n "$r1" ] && [ $rc -ne 0 ] && [ ! -e t/table1.tsv ] && [ -z "$left" ] && [ -e t/sft/train.done ]; then
  ok "rank 1 killed after the SFT model was trained: mpirun exit $rc, no table, no process left, $(find t -name train.done -o -name test.json | wc -l) markers kept"
else bad "rank killed: pid '$r1', mpirun exit $rc, table $(ls t/table1.tsv 2>&1 | head -c 60), left: $left"; fi
$MPIRUN -np 2 $B "${P[@]}" --out t >"$T/p4" 2>"$T/pe4"; rc=$?
if [ $rc -eq 0 ] && grep -q "skip: sft already trained" "$T/p4" && same one t; then
  ok "rerun after the kill: finished cells skipped, every file equals one process's"
else bad "rerun after the kill: exit $rc, $(grep -c 'skip:' "$T/p4") skips, $(head -c 300 "$T/diff") $(tail -3 "$T/pe4")"; fi

# ranks that see different files under the same command line (MPMD, other working folders)
for x in a b; do mkdir -p $x && cp -r d m0 $x/; done
head -1 d/train.jsonl >>b/d/train.jsonl
EXPECT_ARGS=4 EXPECT_HEAD=150 expect_exit 2 "the ranks disagree on the files of --data and --model" \
  $MPIRUN -np 1 -wdir "$T/pm/a" $B "${P[@]}" --out t : -np 1 -wdir "$T/pm/b" $B "${P[@]}" --out t
cp d/train.jsonl b/d/train.jsonl
EXPECT_ARGS=4 EXPECT_HEAD=150 expect_exit 2 "rank 1 does not see 't/settings.txt', written by rank 0: --out must be a folder every rank shares" \
  $MPIRUN -np 1 -wdir "$T/pm/a" $B "${P[@]}" --out t : -np 1 -wdir "$T/pm/b" $B "${P[@]}" --out t
[ ! -e b/t ] && [ -z "$(ls a/t 2>/dev/null | grep -v settings.txt)" ] && ok "refused tables ran no cell" || bad "refused table wrote cells: $(ls a/t b/t 2>&1)"

echo "mpi_sweep_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
