#!/usr/bin/env bash
# The paper's theory claims (papers/roste-2502.09003/claims.tsv) as a test: one check
# per claim. Under the sanitizers (a build-asan binary) only the two quick claims run.
set -u
. "$(dirname "$0")/lib.sh"
only=()
case "$B" in *asan*) only=(prop44 r45d) ;; esac
run() {
  "$B" verify papers/roste-2502.09003 --no-plot --out "$T" "$@" >"$T/log" 2>&1
  cat "$T/log"
  pass=$((pass + $(grep -c '^  PASS' "$T/log"))); fail=$((fail + $(grep -c '^  FAIL' "$T/log")))
  grep -q '^verify: ' "$T/log" || { echo "FAIL verify crashed"; fail=$((fail + 1)); }
}
if [ ${#only[@]} -eq 0 ]; then run; else for id in "${only[@]}"; do run --only "$id"; done; fi
echo "verify_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
