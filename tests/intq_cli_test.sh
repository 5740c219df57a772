#!/usr/bin/env bash
# tests/intq_cli_test.sh: the int backend end to end on a tiny GPT-NeoX (tests/fixtures/sft):
# RTN and QuaRot (R1-R4) folders from llm ptq; llm eval --backend int gives the fake-quant
# loss to 1e-5 relative, llm generate --backend int the same greedy text; llm export-int
# writes a file that --int-model runs with the same numbers; clear errors for a folder without
# rostesim_qat.json, a GPTQ folder (wbits 16), an unknown backend, a file that is not an int
# model or is truncated. --int-head q8 (int8 embedding / LM head): packed at load and exported
# give the same loss, close to the fp32 head's, a smaller file; bad values and misplaced uses
# of the flag exit 2 naming it.
set -u
. "$(dirname "$0")/lib.sh"
EXPECT_ARGS=4; EXPECT_HEAD=160
loss() { grep -oE '^loss [0-9.]+' "$1" | awk '{print $2}'; }
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-5 * (a < 0 ? -a : a)) }'; }

$B llm export-int --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm export-int" "$T/h" && ok "llm export-int --help" || bad "export-int --help"
$B llm eval --help 2>&1 | grep -q -- "--backend" && $B llm generate --help 2>&1 | grep -q -- "--int-model" \
  && ok "eval/generate --help list --backend and --int-model" || bad "eval/generate --help lack the int backend"
for c in eval generate export-int; do
  $B llm $c --help 2>&1 | grep -q -- "--int-head f32|q8" || { bad "llm $c --help lacks --int-head"; continue; }
  ok "llm $c --help lists --int-head f32|q8"
done

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
# the int8 embedding / LM head
for n in rtn qr; do
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --backend int --int-head q8 >"$T/q_$n" 2>"$T/qe_$n"
  lq=$(loss "$T/q_$n"); li=$(loss "$T/i_$n")
  awk -v a="$lq" -v b="$li" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && a != b && d <= 0.01 * b) }' \
    && grep -q "int8 embedding/LM head" "$T/qe_$n" && ok "$n: eval --int-head q8 loss $lq, fp32 head $li (within 1%, not equal)" \
    || bad "$n: --int-head q8 loss '$lq' vs fp32 head '$li': $(cat "$T/qe_$n")"
  if $B llm export-int --model "$T/$n" --out "$T/$n-q8.rsiq" --int-head q8 >"$T/xq_$n" 2>&1 \
     && [ "$(stat -c %s "$T/$n-q8.rsiq")" -lt "$(stat -c %s "$T/$n.rsiq")" ]; then
    ok "$n: export-int --int-head q8: $(stat -c %s "$T/$n-q8.rsiq") bytes against $(stat -c %s "$T/$n.rsiq") ($(cat "$T/xq_$n"))"
  else bad "$n: export-int --int-head q8: $(cat "$T/xq_$n")"; fi
  $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --int-model "$T/$n-q8.rsiq" >"$T/kq_$n" 2>/dev/null
  [ "$(loss "$T/kq_$n")" = "$lq" ] && ok "$n: eval --int-model (q8 file): the same loss $lq as packed at load" \
    || bad "$n: q8 --int-model loss '$(loss "$T/kq_$n")' vs packed at load '$lq'"
  $B llm generate --model "$T/$n" --prompt "$P" --max-new-tokens 20 --threads 1 --backend int --int-head q8 >"$T/gq_$n" 2>/dev/null
  $B llm generate --model "$T/$n" --prompt "$P" --max-new-tokens 20 --threads 1 --int-model "$T/$n-q8.rsiq" >"$T/gkq_$n" 2>/dev/null
  [ -s "$T/gq_$n" ] && cmp -s "$T/gq_$n" "$T/gkq_$n" && ok "$n: generate --int-head q8 and its exported file: the same text" \
    || bad "$n: q8 generate differs: '$(cat "$T/gq_$n")' vs '$(cat "$T/gkq_$n")'"
done
$B llm export-int --model "$T/qr" --out "$T/qr-q8b.rsiq" --int-head q8 >/dev/null 2>&1
cmp -s "$T/qr-q8.rsiq" "$T/qr-q8b.rsiq" && ok "export-int --int-head q8: same folder, same bytes" || bad "q8 export is not deterministic"
expect_exit 2 "--int-head: 'q3' is not 'f32' or 'q8'" $B llm eval --model "$T/rtn" --data $FIX/train.jsonl --backend int --int-head q3
expect_exit 2 "--int-head: 'q3'" $B llm export-int --model "$T/rtn" --out "$T/x.rsiq" --int-head q3
expect_exit 2 "--int-head: applies to --backend int" $B llm generate --model "$T/rtn" --prompt hi --int-head q8
expect_exit 2 "--int-head: an exported int model" $B llm generate --model "$T/rtn" --prompt hi --int-model "$T/rtn.rsiq" --int-head q8

# the safetensors form (by the .safetensors name or --format): the same loss as the RSIQ file
for n in rtn qr; do
  for h in f32 q8; do
    $B llm export-int --model "$T/$n" --out "$T/$n-$h.rsiq" --int-head $h >/dev/null 2>&1
    $B llm export-int --model "$T/$n" --out "$T/$n-$h.safetensors" --int-head $h >"$T/xs" 2>&1
    $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --int-model "$T/$n-$h.rsiq" >"$T/ks1" 2>/dev/null
    $B llm eval --model "$T/$n" --data $FIX/train.jsonl --threads 1 --int-model "$T/$n-$h.safetensors" >"$T/ks2" 2>/dev/null
    if grep -q "(safetensors)" "$T/xs" && [ -n "$(loss "$T/ks1")" ] && [ "$(loss "$T/ks1")" = "$(loss "$T/ks2")" ]; then
      ok "$n, $h head: export-int to .safetensors, eval --int-model: loss $(loss "$T/ks2") = the RSIQ file's"
    else bad "$n $h: safetensors '$(loss "$T/ks2")' vs rsiq '$(loss "$T/ks1")': $(cat "$T/xs")"; fi
  done
done
$B llm export-int --model "$T/rtn" --out "$T/rtn-st.bin" --format safetensors >/dev/null 2>&1
head -c 8 "$T/rtn-st.bin" | od -An -tu8 | awk '{exit !($1 > 100)}' && cmp -s "$T/rtn-st.bin" "$T/rtn-f32.safetensors" \
  && ok "export-int --format safetensors: a safetensors file whatever the name, the same bytes" || bad "--format safetensors"
expect_exit 2 "--format: 'gguf' is not rsiq or safetensors" $B llm export-int --model "$T/rtn" --out "$T/x.rsiq" --format gguf

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
