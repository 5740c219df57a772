#!/usr/bin/env bash
# tests/ptq_cli_test.sh: rostesim llm ptq end to end on a tiny GPT-NeoX (tests/fixtures/sft):
# --help, rtn / gptq / quarot / spinquant (RTN and GPTQ weights) folders with their rostesim_qat.json,
# `llm eval` on each (quantizers applied at load), determinism, usage errors naming the flag.
set -u
. "$(dirname "$0")/lib.sh"
loss() { sed -nE 's/^loss ([0-9.]+).*/\1/p' "$1"; }

$B llm ptq --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm ptq" "$T/h" && ok "llm ptq --help" || bad "llm ptq --help"
$B llm --help | grep -q "ptq " && ok "llm --help lists ptq" || bad "llm --help lacks ptq"

tiny_model "$T/m0" || bad "init"
D="--data $FIX/train.jsonl --calib 8 --threads 1"
$B llm eval --model "$T/m0" --data $FIX/train.jsonl --threads 1 >"$T/ev0" 2>&1
l0=$(loss "$T/ev0")

run() { # name, ptq args...
  local n=$1; shift
  if $B llm ptq --model "$T/m0" --out "$T/$n" "$@" >"$T/o" 2>"$T/e"; then ok "ptq $*: $(cat "$T/o")"
  else bad "ptq $n: $(tail -3 "$T/e")"; return; fi
  cp "$T/e" "$T/$n.err"
  for f in rostesim_qat.json model.safetensors config.json tokenizer.json; do
    [ -s "$T/$n/$f" ] || bad "$n did not write $f"; done
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 >"$T/ev_$n" 2>&1
  local l=$(loss "$T/ev_$n")
  [ -n "$l" ] && [ "$l" != "$l0" ] && ok "llm eval on the $n folder applies its quantizers (loss $l, full precision $l0)" \
    || bad "eval $n: $(cat "$T/ev_$n")"
}
run rtn --method rtn
run gptq --method gptq $D
run quarot --method quarot
run qg --method quarot --quarot-weights gptq $D --act-order --group 8
run spin --method spinquant $D --spin-steps 4 --spin-rows 2
run sg --method spinquant --spinquant-weights gptq $D --spin-steps 3 --spin-rows 2 --progress 0.000001
# progress: by default (every 30 s) only the last step's line on a run this short; every step's
# with a tiny --progress
[ "$(grep -c '^spinquant: step ' "$T/spin.err")" -eq 1 ] && grep -qE "^spinquant: step 4/4, loss [0-9.]+, lr [0-9.e-]+, [0-9]+ s, ETA 0 s$" "$T/spin.err" \
  && [ "$(grep -cE '^spinquant: step [123]/3, loss [0-9.]+' "$T/sg.err")" -eq 3 ] \
  && ok "spinquant progress lines (default: the last step's; --progress 1e-6: $(grep -c '^spinquant: step ' "$T/sg.err"))" \
  || bad "spinquant progress: $(grep '^spinquant: step' "$T/spin.err" "$T/sg.err")"
grep -qE "SpinQuant: R2 .*learned, 4 Cayley steps; calibration loss .* -> [0-9.]+; max \|R\^T R - I\| [0-9.e-]+" "$T/spin.err" \
  && ok "spinquant: reports the learning ($(grep SpinQuant "$T/spin.err" | cut -c1-160))" || bad "spinquant report: $(cat "$T/spin.err")"

J() { grep -qE "$2" "$T/$1/rostesim_qat.json"; }
J rtn '"method":[[:space:]]+"rtn"' && J rtn '"wbits":[[:space:]]+4' && J rtn '"rotation":[[:space:]]+null' \
  && ok "rtn: json (4-bit weights quantized at load, no rotation)" || bad "rtn json: $(cat "$T/rtn/rostesim_qat.json")"
J gptq '"wbits":[[:space:]]+16' && J gptq '"weights_on_grid":[[:space:]]+true' && J gptq '"weights":[[:space:]]+"gptq"' \
  && ok "gptq: json (weights on GPTQ's grid, weight quantizer off, ptq record)" || bad "gptq json: $(cat "$T/gptq/rostesim_qat.json")"
[ "$(wc -l <"$T/gptq/gptq_errors.tsv")" -eq 9 ] && awk 'NR > 1 && !($5 < 1) { b = 1 } END { exit b }' "$T/gptq/gptq_errors.tsv" \
  && ok "gptq_errors.tsv: 2 layers x 4 sites, every GPTQ/RTN ratio < 1" || bad "gptq_errors.tsv: $(cat "$T/gptq/gptq_errors.tsv")"
J quarot '"is_rotate_R1":[[:space:]]+true' && J quarot '"aclip":[[:space:]]+0.9,' && J quarot '"kvclip":[[:space:]]+0.95' \
  && ok "quarot: json (R1-R4, QuaRot's clips)" || bad "quarot json: $(cat "$T/quarot/rostesim_qat.json")"
J spin '"method":[[:space:]]+"spinquant"' && J spin '"is_rotate_R2":[[:space:]]+true' && J spin '"spin_steps":[[:space:]]+4' \
  && J spin '"aclip":[[:space:]]+0.9,' && J spin '"spin_loss_after"' && ok "spinquant: json (rotations, QuaRot's clips, the learning recorded)" \
  || bad "spinquant json: $(cat "$T/spin/rostesim_qat.json")"
J sg '"weights":[[:space:]]+"gptq"' && J sg '"wbits":[[:space:]]+16' && ok "spinquant+gptq: json (GPTQ weights)" \
  || bad "sg json: $(cat "$T/sg/rostesim_qat.json")"
J qg '"act_order":[[:space:]]+true' && J qg '"group":[[:space:]]+8' && ok "quarot+gptq: act-order and groups recorded" \
  || bad "qg json: $(cat "$T/qg/rostesim_qat.json")"
$B llm generate --model "$T/qg" --prompt "the" --max-new-tokens 4 --threads 1 >"$T/g1" 2>&1 && \
$B llm generate --model "$T/qg" --prompt "the" --max-new-tokens 4 --threads 1 >"$T/g2" 2>&1 && cmp -s "$T/g1" "$T/g2" \
  && ok "llm generate on a quarot+gptq folder" || bad "generate: $(cat "$T/g1")"

# determinism
$B llm ptq --model "$T/m0" --out "$T/qg2" --method quarot --quarot-weights gptq $D --act-order --group 8 >/dev/null 2>&1
cmp -s "$T/qg/model.safetensors" "$T/qg2/model.safetensors" && cmp -s "$T/qg/rostesim_qat.json" "$T/qg2/rostesim_qat.json" \
  && ok "quarot+gptq: same options, same bytes" || bad "ptq is not deterministic"

# usage errors
expect_exit 2 "--method" $B llm ptq --method awq --model "$T/m0" --out "$T/x"
expect_exit 2 "required" $B llm ptq --model "$T/m0" --out "$T/x"
expect_exit 2 "--data" $B llm ptq --method gptq --model "$T/m0" --out "$T/x"
expect_exit 2 "--data" $B llm ptq --method quarot --quarot-weights gptq --model "$T/m0" --out "$T/x"
expect_exit 2 "--data" $B llm ptq --method spinquant --model "$T/m0" --out "$T/x"
expect_exit 2 "spinquant only" $B llm ptq --method quarot --spin-steps 3 --model "$T/m0" --out "$T/x"
expect_exit 2 "--progress applies to --method spinquant only" $B llm ptq --method gptq $D --progress 5 --model "$T/m0" --out "$T/x"
expect_exit 2 "--spinquant-weights" $B llm ptq --method spinquant --spinquant-weights awq $D --model "$T/m0" --out "$T/x"
expect_exit 2 "--wbits" $B llm ptq --method rtn --wbits 17 --model "$T/m0" --out "$T/x"
expect_exit 2 "--abits" $B llm ptq --method rtn --abits 0 --model "$T/m0" --out "$T/x"
expect_exit 2 "GPTQ" $B llm ptq --method rtn --group 8 --model "$T/m0" --out "$T/x"
expect_exit 2 "quarot" $B llm ptq --method gptq --quarot-weights gptq $D --model "$T/m0" --out "$T/x"
expect_exit 2 "already quantized" $B llm ptq --method rtn --model "$T/rtn" --out "$T/x"
expect_exit 1 "group" $B llm ptq --method gptq --group 7 $D --model "$T/m0" --out "$T/x"
[ ! -e "$T/x" ] && ok "no output folder after the errors" || bad "an error left $T/x"

echo "ptq_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
