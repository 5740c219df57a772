#!/usr/bin/env bash
# par/ under mpirun: the fixed-order collectives of tests/test_par.c on 2 and 3 ranks (sizes
# that do not divide, several message pieces), every command that runs whole refusing to run
# on several ranks, and a build without MPI refusing an mpirun launch instead of letting
# every rank do the whole job.
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
BUILD=${BUILD:-build}
if [ "${MPI:-1}" = 1 ]; then
  if ! command -v mpirun >/dev/null; then bad "built with MPI but mpirun is missing (make deps installs openmpi-bin)"
  else
    for np in 2 3; do
      $MPIRUN -np $np "$BUILD/tests/test_par" >"$T/par$np" 2>&1; rc=$?
      n=$(grep -cE "^test_par_np${np}_r[0-9]+: [0-9]+ passed, 0 failed$" "$T/par$np")
      if [ $rc -eq 0 ] && [ "$n" -eq $np ]; then ok "test_par on $np ranks: $(grep -E '^test_par_np' "$T/par$np" | sort | tr '\n' ' ')"
      else bad "test_par on $np ranks (exit $rc): $(grep -E '^FAIL|passed' "$T/par$np" | head -8)"; fi
    done
    $MPIRUN -np 2 $B hadamard 12 >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 2 ] && grep -q "'hadamard' runs in one process; launched by mpirun with 2 ranks" "$T/err"; then
      ok "a one-process command on 2 ranks: exit 2, $(grep -m1 "runs in one process" "$T/err" | head -c 100)"
    else bad "hadamard on 2 ranks: exit $rc, $(head -c 300 "$T/err")"; fi
    out=$($MPIRUN -np 1 $B --version 2>&1)
    [ "$out" = "$($B --version)" ] && ok "mpirun -np 1: runs as one process ($out)" || bad "mpirun -np 1 --version: $out"
  fi
fi
# A build without MPI: par/par.c compiled without RS_HAVE_MPI (the code `make MPI=0` builds).
if ${CC:-gcc} -std=c11 -D_GNU_SOURCE -I. -o "$T/par_nompi" tests/test_par.c par/par.c quant/status.c -lm 2>"$T/cc"; then
  "$T/par_nompi" >"$T/o1" 2>&1 && grep -q "built with MPI: 0" "$T/o1" && ok "without MPI: $(tail -1 "$T/o1")" || bad "without MPI: $(tail -3 "$T/o1")"
  OMPI_COMM_WORLD_SIZE=2 "$T/par_nompi" >"$T/o2" 2>&1; rc=$?
  if [ $rc -ne 0 ] && grep -q "launched by mpirun with 2 ranks, but this rostesim was built without MPI" "$T/o2"; then
    ok "without MPI, launched by mpirun with 2 ranks: refused ($(grep -m1 -o 'launched by mpirun.*' "$T/o2" | head -c 110))"
  else bad "without MPI under a 2-rank launcher: exit $rc, $(head -3 "$T/o2")"; fi
else bad "compiling par/ without MPI: $(head -5 "$T/cc")"; fi
echo "mpi_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
