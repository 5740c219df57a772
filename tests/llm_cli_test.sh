#!/usr/bin/env bash
# rostesim llm end to end on a tiny GPT-NeoX (d=32, 2 layers, vocab 700) made by `llm init`
# from tests/fixtures/sft/tiny_neox.json and the tokenizer fixture tests/fixtures/tok/neox:
# sft lowers the loss; eval, generate and info print what they should; a run killed with
# SIGKILL and resumed ends with the same model.safetensors bytes as an uninterrupted one;
# bad input gives a clear message, a non-zero exit, and leaves earlier outputs untouched.
set -u
. "$(dirname "$0")/lib.sh"
EXPECT_ARGS=4; EXPECT_HEAD=150

# first / last "loss" of a train_log.jsonl
loss_at() { sed -n "$1p" "$2" | sed -E 's/.*"loss": ([^,]+),.*/\1/'; }

for c in "" sft eval generate info init; do
  if $B llm $c --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm" "$T/h"; then ok "rostesim llm $c --help"; else bad "rostesim llm $c --help"; fi
done
grep -q "every parameter" <($B llm sft --help) && grep -q "WHOLE step" <($B llm sft --help) \
  && ok "sft --help says: decay on every parameter, loss normalised over the whole step" || bad "sft --help text"

# a tiny model
if $B llm init --config $FIX/tiny_neox.json --tokenizer $TOK --out "$T/m0" --seed 1 >"$T/out" 2>"$T/err"; then ok "llm init"
else bad "llm init: $(cat "$T/err")"; fi
for f in config.json model.safetensors tokenizer.json; do [ -s "$T/m0/$f" ] && ok "init wrote $f" || bad "init did not write $f"; done
$B llm init --config $FIX/tiny_neox.json --tokenizer $TOK --out "$T/m0b" --seed 1 >/dev/null 2>&1
cmp -s "$T/m0/model.safetensors" "$T/m0b/model.safetensors" && ok "init: same seed, same bytes" || bad "init is not deterministic"

# info: 61952 = 2 x 700x32 (embedding, untied head) + 2 x (2x2x32 norms + 96x32+96 qkv + 32x32+32 o
#                + 64x32+64 up + 32x64+32 down) + 2x32 final norm
$B llm info --model "$T/m0" >"$T/info" 2>&1
grep -qE "^parameters: +61952 " "$T/info" && ok "info: parameter count 61952" || bad "info: $(cat "$T/info")"
grep -q "gpt_neox" "$T/info" && grep -qE "heads: +4 \(kv heads 4" "$T/info" && grep -q "tokenizer: 700 tokens" "$T/info" \
  && grep -q "eos: 0 <|endoftext|>" "$T/info" && ok "info: family, heads, tokenizer vocab, special tokens" || bad "info: $(cat "$T/info")"

# sft: the loss falls
OPTS="--data $FIX/train.jsonl --lr 3e-3 --max-steps 60 --batch 4 --warmup 0.1 --threads 1 --quiet"
if $B llm sft --model "$T/m0" $OPTS --out "$T/r1" >"$T/sft.out" 2>"$T/sft.err"; then ok "sft ran: $(cat "$T/sft.out")"
else bad "sft: $(tail -3 "$T/sft.err")"; fi
n=$(wc -l <"$T/r1/train_log.jsonl" 2>/dev/null || echo 0)
[ "$n" -eq 60 ] && ok "train_log.jsonl: one record per step (60)" || bad "train_log.jsonl has $n records"
l1=$(loss_at 1 "$T/r1/train_log.jsonl"); l2=$(loss_at '$' "$T/r1/train_log.jsonl")
awk -v a="$l1" -v b="$l2" 'BEGIN{exit !(b < a - 1.0)}' && ok "loss falls: $l1 -> $l2" || bad "loss did not fall: $l1 -> $l2"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -s "$T/r1/$f" ] && ok "sft wrote $f" || bad "sft did not write $f"; done
[ -z "$(ls "$T/r1" | grep -E '\.tmp$|trainer_state')" ] && ok "no temporary files or stale checkpoint left" || bad "left: $(ls "$T/r1")"
# --progress S: a line every S seconds, the first and last step's always (stderr not a tty)
$B llm sft --model "$T/m0" ${OPTS/--quiet/} --max-steps 12 --progress 1000 --out "$T/rp" >/dev/null 2>"$T/rp.err"
$B llm sft --model "$T/m0" ${OPTS/--quiet/} --max-steps 12 --progress 0 --out "$T/rp0" >/dev/null 2>"$T/rp0.err"
[ "$(grep -cE '^step [0-9]+/12 +loss [0-9.]+ .* tok/s +ETA ' "$T/rp.err")" -eq 2 ] && grep -q '^step 1/12 ' "$T/rp.err" \
  && grep -q '^step 12/12 ' "$T/rp.err" && [ "$(grep -c '^step ' "$T/rp0.err")" -eq 12 ] \
  && ok "sft --progress 1000: the first and last step's lines; --progress 0: all 12" \
  || bad "sft --progress: $(grep -c '^step ' "$T/rp.err") and $(grep -c '^step ' "$T/rp0.err") lines"

# the note on OpenBLAS kernels older than the CPU: never with OPENBLAS_CORETYPE set (the user's
# choice); otherwise at most one line, naming the kernels and the variable that selects AVX2 ones
OPENBLAS_CORETYPE=Haswell $B llm sft --model "$T/m0" ${OPTS/--quiet/} --max-steps 1 --out "$T/rn1" >/dev/null 2>"$T/rn1.err"
env -u OPENBLAS_CORETYPE $B llm sft --model "$T/m0" ${OPTS/--quiet/} --max-steps 1 --out "$T/rn2" >/dev/null 2>"$T/rn2.err"
n1=$(grep -c 'note: OpenBLAS' "$T/rn1.err"); n2=$(grep -c 'note: OpenBLAS' "$T/rn2.err")
[ "$n1" -eq 0 ] && [ "$n2" -le 1 ] && { [ "$n2" -eq 0 ] || grep -qE 'note: OpenBLAS runs its [A-Za-z0-9]+ kernels on this CPU, which has AVX2.*OPENBLAS_CORETYPE=Haswell selects' "$T/rn2.err"; } \
  && ok "OpenBLAS note: none with OPENBLAS_CORETYPE set; $n2 line(s) without it on this CPU/OpenBLAS" \
  || bad "OpenBLAS note: $n1 line(s) with OPENBLAS_CORETYPE set, $n2 without: $(grep 'note: OpenBLAS' "$T/rn2.err")"

# eval: trained model has a lower completion loss than the initial one
$B llm eval --model "$T/m0" --data $FIX/train.jsonl --threads 1 >"$T/e0" 2>&1
$B llm eval --model "$T/r1" --data $FIX/train.jsonl --threads 1 >"$T/e1" 2>&1
grep -qE "^loss [0-9.]+ +perplexity [0-9.]+" "$T/e1" && ok "eval: $(cat "$T/e1")" || bad "eval output: $(cat "$T/e1")"
e0=$(awk '{print $2}' "$T/e0"); e1=$(awk '{print $2}' "$T/e1")
awk -v a="$e0" -v b="$e1" 'BEGIN{exit !(b < a)}' && ok "eval loss: initial $e0 > trained $e1" || bad "eval loss: initial $e0, trained $e1"

# kill -9 mid-run, --resume: byte-identical to the uninterrupted run
NSTEPS=600  # long enough that the poll below sees a checkpoint well before the end, even on a fast machine
ROPTS="--data $FIX/train.jsonl --lr 5e-3 --max-steps $NSTEPS --batch 2 --grad-accum 2 --warmup 0.05 --weight-decay 0.01 --seed 7 --threads 1 --quiet"
$B llm sft --model "$T/m0" $ROPTS --out "$T/full" >/dev/null 2>"$T/full.err" || bad "uninterrupted run: $(tail -2 "$T/full.err")"
$B llm sft --model "$T/m0" $ROPTS --save-every 5 --out "$T/cut" >/dev/null 2>"$T/cut.err" &
pid=$!
for _ in $(seq 1 3000); do
  grep -q '"checkpoint": true' "$T/cut/train_log.jsonl" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.01
done
if kill -9 $pid 2>/dev/null; then
  wait $pid 2>/dev/null
  k=$(wc -l <"$T/cut/train_log.jsonl")
  [ ! -e "$T/cut/model.safetensors" ] && [ -s "$T/cut/trainer_state.bin" ] && ok "killed with SIGKILL after $k logged steps, a checkpoint on disk" \
    || bad "after the kill: $(ls "$T/cut")"
  # a resume with other options or other data is refused, a fresh run too; the checkpoint stays
  ck=$(md5sum <"$T/cut/trainer_state.bin")
  sed 's/moo/mooo/' $FIX/train.jsonl >"$T/changed.jsonl"
  expect_exit 1 "lr: checkpoint 0.005.*, now 0.001" $B llm sft --model "$T/m0" $ROPTS --out "$T/cut" --resume --lr 1e-3
  expect_exit 1 "the data file .*changed.jsonl changed" $B llm sft --model "$T/m0" $ROPTS --out "$T/cut" --resume --data "$T/changed.jsonl"
  expect_exit 2 "holds the checkpoint of an earlier run" $B llm sft --model "$T/m0" $ROPTS --out "$T/cut"
  [ "$(md5sum <"$T/cut/trainer_state.bin")" = "$ck" ] && ok "refused resumes keep the checkpoint" || bad "checkpoint changed"
  # make the kill land between writing the checkpoint and logging its step: drop the
  # records from the checkpoint's step on (u64 step at byte 24 of trainer_state.bin)
  ckstep=$(od -An -t u8 -j 24 -N 8 "$T/cut/trainer_state.bin" | tr -d ' ')
  awk -v k="$ckstep" '{ s = $0; sub(/.*"step": /, "", s); sub(/,.*/, "", s); if (s + 0 < k) print }' \
    "$T/cut/train_log.jsonl" >"$T/log.tmp" && mv "$T/log.tmp" "$T/cut/train_log.jsonl"
  $B llm sft --model "$T/m0" $ROPTS --out "$T/cut" >"$T/res.out" 2>"$T/res.err" --resume --save-every 5
  rc=$?
  [ $rc -eq 0 ] && grep -q "resuming after step" "$T/res.err" && ok "resumed: $(grep resuming "$T/res.err")" || bad "resume failed ($rc): $(tail -3 "$T/res.err")"
  cmp "$T/full/model.safetensors" "$T/cut/model.safetensors" && ok "killed + resumed model.safetensors == uninterrupted (cmp)" \
    || bad "resumed run differs from the uninterrupted one"
  n=$(wc -l <"$T/cut/train_log.jsonl")
  steps=$(sed -E 's/.*"step": ([0-9]+),.*/\1/' "$T/cut/train_log.jsonl" | tr '\n' ' ')
  [ "$n" -eq $NSTEPS ] && [ "$steps" = "$(seq -s ' ' 1 $NSTEPS) " ] && ok "resumed log: steps 1..$NSTEPS once each" || bad "resumed log has $n records"
  grep -q "\"step\": $ckstep, .*\"tokens_per_s\": null, .*\"checkpoint\": true" "$T/cut/train_log.jsonl" \
    && ok "the checkpoint's step $ckstep, missing from the log, was logged from the checkpoint" || bad "step $ckstep not restored in the log"
  cmp -s <(loss_at '$' "$T/full/train_log.jsonl") <(loss_at '$' "$T/cut/train_log.jsonl") && ok "same last logged loss" || bad "last logged losses differ"
else
  bad "the run ended before a checkpoint could be seen and killed ($(tail -2 "$T/cut.err"))"
fi

# plain text: the file is cut into --max-len blocks, every token in the loss
sed -E 's/.*"prompt": "([^"]*)", "completion": "([^"]*)".*/\1\2/' $FIX/train.jsonl >"$T/animals.txt"
$B llm eval --model "$T/r1" --data "$T/animals.txt" --max-len 32 --threads 1 >"$T/et" 2>&1
grep -qE "^loss [0-9.]+ +perplexity [0-9.]+ +\([0-9]+ target tokens, [0-9]+ rows" "$T/et" && ok "eval on .txt: $(cat "$T/et")" \
  || bad "eval on .txt: $(cat "$T/et")"

# generate with the model of the 200-step run: it has learnt the cow says moo; greedy is
# deterministic, sampling is seeded
$B llm generate --model "$T/full" --prompt "The cow says" --max-new-tokens 8 >"$T/g1" 2>"$T/gerr"; rc1=$?
$B llm generate --model "$T/full" --prompt "The cow says" --max-new-tokens 8 >"$T/g2" 2>/dev/null
[ $rc1 -eq 0 ] && grep -q "moo" "$T/g1" && cmp -s "$T/g1" "$T/g2" \
  && ok "generate (greedy): '$(head -c 80 "$T/g1" | tr '\n' ' ')'" || bad "generate: rc $rc1 '$(cat "$T/g1")' $(cat "$T/gerr")"
$B llm generate --model "$T/full" --prompt "A dog goes" --temperature 1.0 --top-p 0.9 --seed 3 >"$T/s1" 2>/dev/null
$B llm generate --model "$T/full" --prompt "A dog goes" --temperature 1.0 --top-p 0.9 --seed 3 >"$T/s2" 2>/dev/null
cmp -s "$T/s1" "$T/s2" && ok "generate (sampled): same seed, same text" || bad "sampling is not deterministic"


# errors: clear message, non-zero exit, and the earlier outputs of r1 untouched
sum_before=$(md5sum "$T/r1/model.safetensors" "$T/r1/config.json" "$T/r1/train_log.jsonl")
expect_exit 2 "--model: '$T/nope' is not a folder" $B llm sft --model "$T/nope" $OPTS --out "$T/r1"
cp -r "$T/m0" "$T/mbad"; head -c 3000 "$T/m0/model.safetensors" >"$T/mbad/model.safetensors"
expect_exit 1 "model.safetensors" $B llm sft --model "$T/mbad" $OPTS --out "$T/r1"
{ head -n 6 $FIX/train.jsonl; echo '{"prompt": "The cow says", "completion": }'; tail -n +7 $FIX/train.jsonl; } >"$T/bad.jsonl"
expect_exit 1 "bad.jsonl:7: invalid JSON" $B llm sft --model "$T/m0" $OPTS --data "$T/bad.jsonl" --out "$T/r1"
{ head -n 11 $FIX/train.jsonl; echo '{"prompt": "x"}'; } >"$T/bad2.jsonl"
expect_exit 1 "bad2.jsonl:12: missing \"completion\"" $B llm eval --model "$T/m0" --data "$T/bad2.jsonl"
expect_exit 2 "unknown option '--frob'" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --frob
expect_exit 2 "--lr: 5 is out of range" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --lr 5
expect_exit 2 "--lr: '-1e-3' is not|--lr: -0.001 is out of range" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --lr -1e-3
expect_exit 2 "--resume: no checkpoint" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --resume
expect_exit 2 "--max-len: 100 exceeds the model's max_position_embeddings 64" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --max-len 100
expect_exit 2 "--schedule: 'step' is not one of" $B llm sft --model "$T/m0" $OPTS --out "$T/r1" --schedule step
expect_exit 2 "--data: cannot read" $B llm sft --model "$T/m0" $OPTS --data "$T/none.jsonl" --out "$T/r1"
expect_exit 2 "--out DIR is required" $B llm sft --model "$T/m0" $OPTS
expect_exit 2 "unknown subcommand 'train'" $B llm train
expect_exit 2 "--prompt TEXT is required" $B llm generate --model "$T/m0"
expect_exit 2 "--config: cannot read" $B llm init --config "$T/none.json" --tokenizer $TOK --out "$T/x"
[ "$(md5sum "$T/r1/model.safetensors" "$T/r1/config.json" "$T/r1/train_log.jsonl")" = "$sum_before" ] \
  && ok "failed runs left r1's model.safetensors, config.json and log untouched" || bad "a failed run changed r1's files"
echo "llm_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
