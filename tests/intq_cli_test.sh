#!/usr/bin/env bash
# tests/intq_cli_test.sh: the int backend end to end on a tiny GPT-NeoX (tests/fixtures/sft):
# RTN and QuaRot (R1-R4) folders from llm ptq; llm eval --backend int gives the fake-quant
# loss to 1e-5 relative, llm generate --backend int the same greedy text; llm export-int
# writes a file that --int-model runs with the same numbers; clear errors for a folder without
# rostesim_qat.json, a GPTQ folder (wbits 16), an unknown backend, a file that is not an int
# model or is truncated.
set -u
. "$(dirname "$0")/lib.sh"
EXPECT_ARGS=4; EXPECT_HEAD=160
loss() { grep -oE '^loss [0-9.]+' "$1" | awk '{print $2}'; }
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-5 * (a < 0 ? -a : a)) }'; }

$B llm export-int --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm export-int" "$T/h" && ok "llm export-int --help" || bad "export-int --help"
$B llm eval --help 2>&1 | grep -q -- "--backend" && $B llm generate --help 2>&1 | grep -q -- "--int-model" \
  && ok "eval/generate --help list --backend and --int-model" || bad "eval/generate --help lack the int backend"

tiny_model "$T/m0" || bad "init"
D="--data $FIX/train.jsonl --calib 8 --threads 1"
$B llm ptq --model "$T/m0" --out "$T/rtn" --method rtn $D >/dev/null 2>&1 || bad "ptq rtn"
$B llm ptq --model "$T/m0" --out "$T/qr" --method quarot $D >/dev/null 2>&1 || bad "ptq quarot"
$B llm ptq --model "$T/m0" --out "$T/gq" --method gptq $D >/dev/null 2>&1 || bad "ptq gptq"

P="SUBREDDIT: r/test TITLE: a post"
for n in rtn qr; do
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 >"$T/f_$n" 2>&1
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --backend int >"$T/i_$n" 2>"$T/ie_$n"
  lf=$(loss "$T/f_$n"); li=$(loss "$T/i_$n")
  close "$lf" "$li" && grep -q "int backend: " "$T/ie_$n" && ok "$n: eval --backend int loss $li, fake-quant $lf" \
    || bad "$n: eval int '$li' vs fake '$lf': $(cat "$T/i_$n" "$T/ie_$n")"
  $B llm generate --model "$T/$n" --prompt "$P" --max-new-tokens 20 --threads 1 >"$T/gf_$n" 2>/dev/null
  $B llm generate --model "$T/$n" --prompt "$P" --max-new-tokens 20 --threads 1 --backend int >"$T/gi_$n" 2>/dev/null
  [ -s "$T/gf_$n" ] && cmp -s "$T/gf_$n" "$T/gi_$n" && ok "$n: generate --backend int: same greedy text ($(head -c 60 "$T/gi_$n" | tr '\n' ' '))" \
    || bad "$n: generate differs: fake '$(cat "$T/gf_$n")' int '$(cat "$T/gi_$n")'"
  if $B llm export-int --model "$T/$n" --out "$T/$n.rsiq" >"$T/x_$n" 2>&1; then ok "$n: $(cat "$T/x_$n")"
  else bad "$n: export-int: $(cat "$T/x_$n")"; fi
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --int-model "$T/$n.rsiq" >"$T/k_$n" 2>/dev/null
  [ "$(loss "$T/k_$n")" = "$li" ] && ok "$n: eval --int-model (the exported file): the same loss $li" \
    || bad "$n: --int-model loss '$(loss "$T/k_$n")' vs packed at load '$li'"
  $B llm generate --model "$T/$n" --prompt "$P" --max-new-tokens 20 --threads 1 --int-model "$T/$n.rsiq" >"$T/gk_$n" 2>/dev/null
  cmp -s "$T/gi_$n" "$T/gk_$n" && ok "$n: generate --int-model: the same text" || bad "$n: generate --int-model differs"
done
$B llm export-int --model "$T/qr" --out "$T/qr2.rsiq" >/dev/null 2>&1
cmp -s "$T/qr.rsiq" "$T/qr2.rsiq" && ok "export-int: same folder, same bytes" || bad "export-int is not deterministic"
$B llm eval --model "$T/qr" --data $FIX/train.jsonl --threads 2 --backend int >"$T/i2" 2>/dev/null
close "$(loss "$T/i2")" "$(loss "$T/i_qr")" && ok "qr: --threads 2 loss $(loss "$T/i2")" || bad "qr: threads 2: $(cat "$T/i2")"

expect_exit 2 "has no rostesim_qat.json" $B llm eval --model "$T/m0" --data $FIX/train.jsonl --backend int
expect_exit 2 "has no rostesim_qat.json" $B llm generate --model "$T/m0" --prompt hi --backend int
expect_exit 2 "has no rostesim_qat.json" $B llm export-int --model "$T/m0" --out "$T/x.rsiq"
expect_exit 2 "wbits 16|not quantized" $B llm generate --model "$T/gq" --prompt hi --backend int
expect_exit 2 "--backend: 'bf16'" $B llm eval --model "$T/rtn" --data $FIX/train.jsonl --backend bf16
expect_exit 2 "--int-model: cannot read" $B llm generate --model "$T/rtn" --prompt hi --int-model "$T/none.rsiq"
expect_exit 1 "magic" $B llm generate --model "$T/rtn" --prompt hi --int-model "$T/rtn/config.json"
head -c 3000 "$T/rtn.rsiq" >"$T/cut.rsiq"
expect_exit 1 "truncated|section" $B llm generate --model "$T/rtn" --prompt hi --int-model "$T/cut.rsiq"
[ ! -e "$T/x.rsiq" ] && ok "export-int: nothing written on error" || bad "export-int left $T/x.rsiq"

echo "intq_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
