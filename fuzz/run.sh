#!/usr/bin/env bash
# Run libFuzzer harnesses built by `make fuzz`, one at a time, FUZZ_SECONDS each (default 10),
# niced, with -rss_limit_mb=2048 -timeout=10. Corpora grow in $FUZZ_BUILD/corpus/<name>/, seeded
# from tests/fixtures (below) and fuzz/regress/<name>/; crashes land in
# $FUZZ_BUILD/artifacts/<name>/. Prints one summary line per harness (execs, coverage,
# features, corpus size, findings), then 'fuzz: N passed, N failed' (harnesses), and exits
# non-zero when any harness found something.
# Usage: fuzz/run.sh [name ...]   (default: every fuzz/fuzz_*.c)
set -u
cd "$(dirname "$0")/.."
FB=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-10}
NICE=${FUZZ_NICE:-15}
names=("$@")
[ ${#names[@]} -eq 0 ] && names=($(ls fuzz/fuzz_*.c | sed -E 's#fuzz/fuzz_(.*)\.c#\1#'))

SEP=$'\n--8<--\n'
seed() { # seed NAME: fill $FB/corpus/NAME from the fixtures
  local d=$FB/corpus/$1 f i=0
  mkdir -p "$d"
  case $1 in
    safetensors) for f in tests/fixtures/st/*.safetensors tests/fixtures/gguf/llama_tiny_hf/*.safetensors; do
                   [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 200000 ] && cp "$f" "$d/fix$((i++))"; done ;;
    st_index)    printf '{"metadata": {}, "weight_map": {}}' >"$d/empty" ;;
    gguf)        for f in tests/fixtures/gguf/*.gguf; do cp "$f" "$d/fix$((i++))"; done ;;
    tokenizer)   for f in tests/fixtures/tok/*/tokenizer.json tests/fixtures/gguf/llama_tiny_hf/tokenizer.json; do
                   [ -f "$f" ] && cp "$f" "$d/fix$((i++))"; done ;;
    config)      for f in tests/fixtures/config/*.json tests/fixtures/llm/*/config.json tests/fixtures/sft/*.json; do
                   cp "$f" "$d/fix$((i++))"; done ;;
    data)        for f in tests/fixtures/sft/train.jsonl tests/fixtures/tldr/sample_test.jsonl tests/fixtures/rouge/pairs.jsonl; do
                   head -n 30 "$f" >"$d/fix$((i++))"; done ;;
    rotcfg|qatcfg|trainer_state|intq) ;; # fuzz/regress holds their seeds
    tldr)        { head -c 6000 tests/fixtures/tldr/Translation-en.excerpt; printf '%s' "$SEP"; head -c 3000 tests/fixtures/tldr/Packages.excerpt; } >"$d/fix0"
                 head -c 6000 tests/fixtures/tldr/Translation-en.excerpt >"$d/fix1" ;;
  esac
}

status=0; npass=0; nfail=0
for n in "${names[@]}"; do
  bin=$FB/fuzz/fuzz_$n
  [ -x "$bin" ] || { echo "fuzz/run.sh: $bin missing (make fuzz)"; status=1; nfail=$((nfail + 1)); continue; }
  [ -d "$FB/corpus/$n" ] || seed "$n"
  art=$FB/artifacts/$n; mkdir -p "$art"
  dict=(); [ -f "fuzz/dict/$n.dict" ] && dict=(-dict="fuzz/dict/$n.dict")
  maxlen=4096; case $n in safetensors|gguf|tokenizer|tldr) maxlen=65536 ;; trainer_state|intq) maxlen=100000 ;; esac
  log=$FB/fuzz_$n.log
  before=$(ls "$art" | wc -l)
  OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} nice -n "$NICE" "$bin" -max_total_time="$SECS" \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len=$maxlen -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$art/" "$FB/corpus/$n" fuzz/regress/$n >"$log" 2>&1
  rc=$?
  after=$(ls "$art" | wc -l)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  last=$(grep -E '#[0-9]+.*(cov|ft):' "$log" | tail -n 1)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last"); ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")
  echo "fuzz_$n: ${SECS}s, execs ${execs:-?}, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, exit $rc, new findings $((after - before))"
  if [ "$rc" -ne 0 ] || [ "$after" -ne "$before" ]; then
    status=1; nfail=$((nfail + 1)); grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -n 5; ls "$art"
  else
    npass=$((npass + 1))
  fi
done
echo "fuzz: $npass passed, $nfail failed"
exit $status
