#!/usr/bin/env bash
# Runs every test program and shell test given as arguments, adds their
# "name: N passed, M failed" lines up and prints the total last.
# Exit status is non-zero if any check failed or any program crashed.
set -u
total_pass=0; total_fail=0; crashed=0
for t in "$@"; do
  log=$(mktemp)
  start=$(date +%s.%N)
  if [[ "$t" == *.sh ]]; then bash "$t" >"$log" 2>&1; rc=$?; else "$t" >"$log" 2>&1; rc=$?; fi
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "CRASH $t (exit $rc, no summary line); last output:"; tail -n 20 "$log"
    crashed=$((crashed + 1)); total_fail=$((total_fail + 1))
  else
    p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.*, ([0-9]+) failed$/\1/' <<<"$line")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
      grep -E '^FAIL' "$log" | head -n 40
      [ "$f" -eq 0 ] && { echo "CRASH $t exited $rc after its summary"; tail -n 20 "$log"; total_fail=$((total_fail + 1)); }
    fi
    echo "$line  (${secs}s)"
  fi
  rm -f "$log"
done
echo "${total_pass} passed, ${total_fail} failed"
[ "$total_fail" -eq 0 ]
