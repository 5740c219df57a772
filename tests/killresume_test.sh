#!/usr/bin/env bash
# Crash-safe training, proven with SIGKILL: `llm sft` and `llm qat --method roste` on a tiny
# GPT-NeoX (tests/fixtures/sft) with --save-every are killed at six moments each (during
# start-up, right after the first checkpoint appears, twice in the middle of a checkpoint
# write, after a random delay, and after a few logged steps), resumed each time with
# --resume (or started afresh when no checkpoint was written yet), and the final
# model.safetensors must be byte-identical to an uninterrupted run's; the log must hold every
# step once. The moments are found by polling files (no timing assumptions); the random delay
# comes from $RANDOM, printed so that a failure can be replayed (KILL_SEED=...).
set -u
. "$(dirname "$0")/lib.sh"
RANDOM=${KILL_SEED:-$$}; echo "KILL_SEED=${KILL_SEED:-$$}"
NSTEPS=320
tiny_model "$T/m0" || bad "llm init"

nlog() { [ -f "$1/train_log.jsonl" ] && wc -l <"$1/train_log.jsonl" || echo 0; }
has_tmp() { [ -e "$1/trainer_state.bin.tmp" ]; }
# a .tmp written by the run started after $T/mark (a stale one from an earlier kill is older)
new_tmp() { [ "$1/trainer_state.bin.tmp" -nt "$T/mark" ]; }
has_ck() { [ -e "$1/trainer_state.bin" ]; }
log_grew() { [ "$(nlog "$1")" -ge "$2" ]; }

# killed_runs NAME CMD...: the interrupted run of CMD into $T/NAME-cut, compared with $T/NAME-full
killed_runs() {
  local name=$1; shift
  local full=$T/$name-full cut=$T/$name-cut kills=0 midwrite=0 moment pid res
  "$@" --out "$full" >/dev/null 2>"$T/e" || bad "$name: uninterrupted run: $(tail -2 "$T/e")"
  # a checkpoint write lasts about a millisecond: when neither planned kill lands inside one,
  # up to 8 more tries (each a valid kill and resume all the same)
  local extra=0
  for moment in startup first-checkpoint checkpoint-write random checkpoint-write after-steps \
                retry retry retry retry retry retry retry retry; do
    if [ "$moment" = retry ]; then
      [ $midwrite -ge 1 ] && break
      moment=checkpoint-write; extra=$((extra + 1))
    fi
    res=""; has_ck "$cut" && res=--resume
    touch "$T/mark"; sleep 0.01 # mtimes of later writes are newer
    "$@" --out "$cut" $res >/dev/null 2>"$T/e.$kills" &
    pid=$!
    case $moment in
      startup) ;;
      first-checkpoint) wait_for $pid has_ck "$cut" ;;
      checkpoint-write) wait_for $pid new_tmp "$cut" ;;
      random) sleep "$(printf '0.%03d' $((RANDOM % 150 + 10)))" ;;
      after-steps) local n0; n0=$(nlog "$cut"); wait_for $pid log_grew "$cut" $((n0 + 7)) ;;
    esac
    if kill -9 $pid 2>/dev/null; then
      wait $pid 2>/dev/null
      kills=$((kills + 1))
      [ "$moment" = checkpoint-write ] && new_tmp "$cut" && midwrite=$((midwrite + 1))
      echo "  $name: SIGKILL #$kills ($moment) after $(nlog "$cut") logged steps, checkpoint at step $(od -An -t u8 -j 24 -N 8 "$cut/trainer_state.bin" 2>/dev/null | tr -d ' ' || echo none)$(new_tmp "$cut" && echo ', killed in the middle of writing the next one (its .tmp)')"
    else
      wait $pid; echo "  $name: the run ended before the kill ($moment): $(tail -1 "$T/e.$kills")"
    fi
  done
  [ $kills -ge 5 ] && ok "$name: killed $kills times with SIGKILL" || bad "$name: only $kills kills landed"
  [ $midwrite -ge 1 ] && ok "$name: $midwrite kill(s) landed in the middle of a checkpoint write (.tmp on disk; $extra extra tries)" \
    || bad "$name: no kill landed during a checkpoint write"
  res=""; has_ck "$cut" && res=--resume
  "$@" --out "$cut" $res >/dev/null 2>"$T/e" && ok "$name: the last resume completes" || bad "$name: final resume: $(tail -2 "$T/e")"
  cmp "$full/model.safetensors" "$cut/model.safetensors" && ok "$name: killed $kills times + resumed: model.safetensors == uninterrupted (cmp)" \
    || bad "$name: the resumed model differs from the uninterrupted one"
  local steps; steps=$(sed -E 's/.*"step": ([0-9]+),.*/\1/' "$cut/train_log.jsonl" | tr '\n' ' ')
  [ "$steps" = "$(seq -s ' ' 1 $NSTEPS) " ] && ok "$name: the log holds steps 1..$NSTEPS once each" || bad "$name: log steps: $(head -c 200 <<<"$steps")"
  [ -z "$(ls "$cut" | grep -E '\.tmp$|^trainer_state.bin$')" ] && ok "$name: no .tmp or stale checkpoint left" || bad "$name: left $(ls "$cut")"
  [ ! -f "$full/rostesim_qat.json" ] || cmp -s "$full/rostesim_qat.json" "$cut/rostesim_qat.json" \
    && ok "$name: same rostesim_qat.json (or none)" || bad "$name: rostesim_qat.json differs"
}

OPTS="--data $FIX/train.jsonl --lr 3e-3 --max-steps $NSTEPS --batch 2 --seed 5 --threads 1 --quiet --save-every 4"
killed_runs sft $B llm sft --model "$T/m0" $OPTS
killed_runs qat-roste $B llm qat --method roste --calib 8 --model "$T/m0" $OPTS
echo "killresume_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
