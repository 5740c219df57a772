# tests/lib.sh: the set-up the shell tests share. Source it first (`. tests/lib.sh`); it sets
#   B          the binary: $BIN/rostesim (BIN defaults to bin)
#   FIX, TOK   the tiny GPT-NeoX fixtures (tests/fixtures/sft) and its tokenizer
#   pass, fail the counts behind ok and bad, which print one PASS/FAIL line per check
#   T          a temporary folder, removed on exit
# and defines expect_exit, tiny_model, table_micro and wait_for below. Each test prints its own
# "name: N passed, N failed" line last (tests/run.sh adds them up).
B=${BIN:-bin}/rostesim
FIX=tests/fixtures/sft
TOK=tests/fixtures/tok/neox
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# expect_exit CODE PATTERN command...: the exit code and a stderr line matching PATTERN. The PASS
# line shows the last EXPECT_ARGS arguments (0: all; default 3) and EXPECT_HEAD bytes of stderr
# (default 120).
EXPECT_ARGS=3; EXPECT_HEAD=120
expect_exit() {
  local code=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local shown="$*"; [ "$EXPECT_ARGS" -gt 0 ] && shown="${*: -$EXPECT_ARGS}"
  if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$T/err"; then ok "exit $code: $shown ($(head -c "$EXPECT_HEAD" "$T/err" | tr '\n' ' '))"
  else bad "expected exit $code and /$pat/ from: $* (got $rc: $(head -c 300 "$T/err"))"; fi
}

# tiny_model DIR: `llm init` of the tiny GPT-NeoX (tests/fixtures/sft/tiny_neox.json), seed 1.
tiny_model() { $B llm init --config $FIX/tiny_neox.json --tokenizer $TOK --out "$1" --seed 1 >/dev/null 2>&1; }

# table_micro DIR: the `paper table1/table3` micro setup: DIR/d holds train/validation/test
# split from the committed TL;DR sample, DIR/m0 a tiny random GPT-NeoX with room for the
# prompts (max_position_embeddings 512). Non-zero if `llm init` fails.
table_micro() {
  mkdir -p "$1/d"
  cp tests/fixtures/tldr/sample_train.jsonl "$1/d/train.jsonl"
  head -8 tests/fixtures/tldr/sample_test.jsonl >"$1/d/validation.jsonl"
  tail -20 tests/fixtures/tldr/sample_test.jsonl >"$1/d/test.jsonl"
  sed 's/"max_position_embeddings": 64/"max_position_embeddings": 512/' $FIX/tiny_neox.json >"$1/cfg.json"
  $B llm init --config "$1/cfg.json" --tokenizer $TOK --out "$1/m0" --seed 1 >/dev/null 2>&1
}

# wait_for PID TEST...: busy-wait (no sleep: a checkpoint write lasts about a millisecond)
# until `TEST ...` holds or PID ends; 0 if it holds while PID runs
wait_for() {
  local pid=$1; shift
  for ((i = 0; i < 20000000; i++)); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
  done
  return 1
}

# mpirun as the tests use it: any user (CI runs as root), more ranks than cores, no pinning
# (ranks share the 2 cores), leak checks off inside MPI's own start-up under ASan (Open MPI
# keeps allocations to exit). Ranks get one thread unless the caller says otherwise.
MPIRUN="mpirun --oversubscribe --allow-run-as-root --bind-to none -x ASAN_OPTIONS=detect_leaks=0 -x OMP_NUM_THREADS=${MPI_THREADS:-1}"
