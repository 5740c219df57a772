#!/usr/bin/env bash
# tests/qat_cli_test.sh: rostesim llm qat / search / diagnose end to end on a tiny GPT-NeoX
# (tests/fixtures/sft): --help, STE and RoSTE runs (E in the train log, quantization and
# rotation JSON written), reload for eval/generate with identical outputs, the search's
# JSON and TSV, determinism, --rotation-config, usage errors naming the flag.
set -u
. "$(dirname "$0")/lib.sh"

$B llm qat --help 2>&1 | tr '\n' ' ' | grep -q "K/V cache quantizers always use *the identity STE" \
  && ok "qat --help: --clipped-ste leaves K/V with the identity STE, said clearly" || bad "qat --help: K/V STE not stated"
for c in qat search diagnose; do
  $B llm $c --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm $c" "$T/h" && ok "llm $c --help" || bad "llm $c --help"
done
$B llm --help | grep -q "qat " && ok "llm --help lists qat" || bad "llm --help lacks qat"

tiny_model "$T/m0" || bad "init"
OPTS="--data $FIX/train.jsonl --lr 3e-3 --max-steps 12 --batch 4 --threads 1 --quiet"

# STE
if $B llm qat --method ste --model "$T/m0" $OPTS --out "$T/ste" >"$T/o" 2>"$T/e"; then ok "qat --method ste: $(cat "$T/o")"
else bad "qat ste: $(tail -3 "$T/e")"; fi
grep -q '"E": ' "$T/ste/train_log.jsonl" && [ "$(wc -l <"$T/ste/train_log.jsonl")" -eq 12 ] && ok "train log: 12 records with E" \
  || bad "train log: $(head -1 "$T/ste/train_log.jsonl")"
grep -qE '"rotation":[[:space:]]+null' "$T/ste/rostesim_qat.json" && grep -qE '"wbits":[[:space:]]+4' "$T/ste/rostesim_qat.json" \
  && ok "ste: rostesim_qat.json (4 bits, no rotation)" || bad "ste json: $(cat "$T/ste/rostesim_qat.json")"

# RoSTE (search first)
if $B llm qat --method roste --calib 8 --model "$T/m0" $OPTS --out "$T/ro" >"$T/o" 2>"$T/e"; then ok "qat --method roste: $(cat "$T/o")"
else bad "qat roste: $(tail -3 "$T/e")"; fi
for f in search.tsv rotation_config.json rostesim_qat.json model.safetensors tokenizer.json; do
  [ -s "$T/ro/$f" ] && ok "roste wrote $f" || bad "roste did not write $f"; done
grep -qE '"is_rotate_R1":[[:space:]]+true' "$T/ro/rostesim_qat.json" && grep -q '"in_block_rotation"' "$T/ro/rostesim_qat.json" \
  && ok "roste: rotation config recorded (R1 on)" || bad "roste json: $(cat "$T/ro/rostesim_qat.json")"
[ "$(wc -l <"$T/ro/search.tsv")" -eq 7 ] && ok "search.tsv: 2 layers x 3 rotations" || bad "search.tsv: $(cat "$T/ro/search.tsv")"

# determinism
$B llm qat --method roste --calib 8 --model "$T/m0" $OPTS --out "$T/ro2" >/dev/null 2>&1
cmp -s "$T/ro/model.safetensors" "$T/ro2/model.safetensors" && cmp -s "$T/ro/rostesim_qat.json" "$T/ro2/rostesim_qat.json" \
  && ok "roste: same seed, same bytes" || bad "roste is not deterministic"

# reload: eval of the run folder applies the quantizers and rotations. The last training
# record's loss is of the weights before the last update; eval on the saved folder twice
# must agree, and differ from the same weights without rostesim_qat.json.
$B llm eval --model "$T/ro" --data $FIX/train.jsonl --threads 1 >"$T/ev1" 2>&1
$B llm eval --model "$T/ro" --data $FIX/train.jsonl --threads 1 >"$T/ev2" 2>&1
mkdir -p "$T/noq" && cp "$T/ro"/{config.json,model.safetensors,tokenizer.json} "$T/noq/" 2>/dev/null
$B llm eval --model "$T/noq" --data $FIX/train.jsonl --threads 1 >"$T/ev3" 2>&1
l1=$(grep -oE 'loss [0-9.]+' "$T/ev1"); l3=$(grep -oE 'loss [0-9.]+' "$T/ev3")
[ -n "$l1" ] && cmp -s <(grep -oE 'loss [0-9.]+' "$T/ev2") <(echo "$l1") && [ "$l1" != "$l3" ] \
  && ok "eval applies the saved quantizers and rotations ($l1; without the JSON: $l3)" || bad "eval: $(cat "$T/ev1") / $(cat "$T/ev3")"
$B llm generate --model "$T/ro" --prompt "a b" --max-new-tokens 8 --threads 1 >"$T/g1" 2>/dev/null
$B llm generate --model "$T/ro" --prompt "a b" --max-new-tokens 8 --threads 1 >"$T/g2" 2>/dev/null
[ -s "$T/g1" ] && cmp -s "$T/g1" "$T/g2" && ok "generate on the qat folder: reproducible" || bad "generate: $(cat "$T/g1")"

# search alone, then training from its config
if $B llm search --model "$T/m0" --data $FIX/train.jsonl --calib 8 --out "$T/rot.json" >"$T/o" 2>"$T/e"; then ok "search: $(cat "$T/o")"
else bad "search: $(cat "$T/e")"; fi
[ -s "$T/rot.tsv" ] && cmp -s <(grep -v seed "$T/rot.json") <(grep -v seed "$T/ro/rotation_config.json") \
  && ok "search: same choice as qat's own search, TSV beside the JSON" || bad "search differs: $(cat "$T/rot.json")"
$B llm search --model "$T/m0" --data $FIX/train.jsonl --calib 8 --error mean --r1 search --out "$T/rotm.json" >/dev/null 2>"$T/e" \
  && grep -q "r1 search" "$T/e" && ok "search --error mean --r1 search" || bad "search mean: $(cat "$T/e")"
$B llm qat --method roste --rotation-config "$T/rot.json" --model "$T/m0" $OPTS --out "$T/ro3" >/dev/null 2>&1 \
  && cmp -s <(grep -A40 in_block "$T/ro/rostesim_qat.json") <(grep -A40 in_block "$T/ro3/rostesim_qat.json") \
  && ok "qat --rotation-config FILE: same rotations as the searched run" || bad "qat --rotation-config differs"
$B llm qat --method roste --calib 4 --reselect-every 5 --model "$T/m0" $OPTS --out "$T/ro4" >/dev/null 2>"$T/e" \
  && grep -q "2 re-selections" "$T/e" && ok "qat --reselect-every 5: 2 re-selections in 12 steps" || bad "reselect: $(tail -2 "$T/e")"

# --r2-mode: R2 on in both layers (forced), online (default, the authors' code) vs merged
# from the start: both complete, AdamW makes the final weights differ, both save R2 merged
# and reload reproducibly, rostesim_qat.json records the mode
printf '{"is_rotate_R1": true, "in_block_rotation": {"0": {"is_rotate_R2": true, "is_rotate_R3": true, "is_rotate_R4": true}, "1": {"is_rotate_R2": true, "is_rotate_R3": false, "is_rotate_R4": true}}, "signs": "all", "seed": 3}\n' >"$T/rot2.json"
for mode in online merged; do
  if $B llm qat --method roste --rotation-config "$T/rot2.json" --r2-mode $mode --model "$T/m0" $OPTS --out "$T/r2$mode" >"$T/o" 2>"$T/e" \
    && grep -qE "\"r2_mode\":[[:space:]]+\"$mode\"" "$T/r2$mode/rostesim_qat.json"; then ok "qat --r2-mode $mode: $(cat "$T/o")"
  else bad "qat --r2-mode $mode: $(tail -3 "$T/e")"; fi
  $B llm eval --model "$T/r2$mode" --data $FIX/train.jsonl --threads 1 >"$T/ev$mode.1" 2>&1
  $B llm eval --model "$T/r2$mode" --data $FIX/train.jsonl --threads 1 >"$T/ev$mode.2" 2>&1
  $B llm generate --model "$T/r2$mode" --prompt "a b" --max-new-tokens 8 --threads 1 >"$T/g$mode.1" 2>/dev/null
  $B llm generate --model "$T/r2$mode" --prompt "a b" --max-new-tokens 8 --threads 1 >"$T/g$mode.2" 2>/dev/null
  grep -q "loss" "$T/ev$mode.1" && cmp -s <(grep -oE 'loss [0-9.]+ +perplexity [0-9.]+' "$T/ev$mode.1") \
    <(grep -oE 'loss [0-9.]+ +perplexity [0-9.]+' "$T/ev$mode.2") && [ -s "$T/g$mode.1" ] && cmp -s "$T/g$mode.1" "$T/g$mode.2" \
    && ok "--r2-mode $mode: eval and generate on the reloaded folder reproducible ($(grep -oE 'loss [0-9.]+' "$T/ev$mode.1"))" \
    || bad "--r2-mode $mode reload: $(cat "$T/ev$mode.1")"
done
cmp -s "$T/r2online/model.safetensors" "$T/r2merged/model.safetensors" && bad "--r2-mode online and merged: same final weights" \
  || ok "--r2-mode online and merged train different weights (AdamW is not rotation-equivariant)"
$B llm qat --method roste --rotation-config "$T/rot2.json" --model "$T/m0" $OPTS --out "$T/r2def" >/dev/null 2>&1 \
  && cmp -s "$T/r2def/model.safetensors" "$T/r2online/model.safetensors" && ok "--r2-mode online is the default (same bytes)" \
  || bad "--r2-mode default is not online"
expect_exit 2 "--r2-mode" $B llm qat --r2-mode sideways --model "$T/m0" $OPTS --out "$T/x"

# RoSTE with every rotation off is STE, byte for byte, on GPT-NeoX and on Llama (paper table3's
# no-rotation row runs STE on this ground)
printf '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 700, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false, "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"}\n' >"$T/llama.json"
printf '{"is_rotate_R1": false, "in_block_rotation": {"0": {"is_rotate_R2": false, "is_rotate_R3": false, "is_rotate_R4": false}, "1": {"is_rotate_R2": false, "is_rotate_R3": false, "is_rotate_R4": false}}, "signs": "all", "seed": 0}\n' >"$T/rotoff.json"
$B llm init --config "$T/llama.json" --tokenizer $TOK --out "$T/ll" --seed 1 >/dev/null 2>&1 || bad "llm init (tiny llama)"
for m in m0 ll; do
  $B llm qat --method ste --model "$T/$m" $OPTS --out "$T/eq-ste-$m" >/dev/null 2>&1
  $B llm qat --method roste --calib 8 --rotation-config "$T/rotoff.json" --model "$T/$m" $OPTS --out "$T/eq-off-$m" >/dev/null 2>&1
  [ -s "$T/eq-ste-$m/model.safetensors" ] && cmp -s "$T/eq-ste-$m/model.safetensors" "$T/eq-off-$m/model.safetensors" \
    && ok "RoSTE with every rotation off = STE, byte for byte ($(grep -o '"model_type": *"[a-z_]*"' "$T/$m/config.json"))" \
    || bad "RoSTE with rotations off differs from STE on $m"
done

# diagnose
if $B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --rows 4 --out "$T/diag" --runs "$T/ste,$T/ro" >"$T/o" 2>"$T/e"; then
  ok "diagnose: $(cat "$T/o")"; else bad "diagnose: $(cat "$T/e")"; fi
for f in fig7.tsv fig3.tsv fig4.tsv fig6.tsv; do [ -s "$T/diag/$f" ] && ok "diagnose wrote $f" || bad "no $f"; done
# Fig. 6: one row per channel of q/k/v (d) and down_proj (d_ff) inputs, one column per run
awk -F'\t' 'NR==1 { ok = ($3 == "ste" && $4 == "ro") } NR>1 { n[$1]++; if (NF != 4 || $3 < 0 || $4 < 0) ok = 0 }
  END { exit !(ok && n["qkv"] > 0 && n["down"] > n["qkv"]) }' "$T/diag/fig6.tsv" \
  && ok "fig6.tsv: per-channel max |input| of the final STE and RoSTE models ($(wc -l <"$T/diag/fig6.tsv") lines)" \
  || bad "fig6.tsv: $(head -3 "$T/diag/fig6.tsv")"
cmp -s <(cut -f3 "$T/diag/fig6.tsv") <(cut -f4 "$T/diag/fig6.tsv") && bad "fig6: STE and RoSTE columns identical" \
  || ok "fig6: the STE and RoSTE models differ"
# Fig. 4: every step's E and training loss as the runs' logs recorded them
head -1 "$T/diag/fig4.tsv" | grep -qx "$(printf 'run\tstep\tE\tloss')" && ok "fig4.tsv: run step E loss" \
  || bad "fig4.tsv header: $(head -1 "$T/diag/fig4.tsv")"
if paste <(awk -F'\t' 'NR>1 && $1==0 {print $2, $4}' "$T/diag/fig4.tsv") \
         <(grep '"E"' "$T/ste/train_log.jsonl" | sed -E 's/.*"step": ([0-9]+).*"loss": ([-0-9.e+]+).*/\1 \2/') \
   | awk '{ n++; d = $2 - $4; if ($1 != $3 || d > 1e-6 * (1 + ($4 < 0 ? -$4 : $4)) || -d > 1e-6 * (1 + ($4 < 0 ? -$4 : $4))) bad = 1 }
          END { exit !(n > 0 && !bad) }'; then ok "fig4.tsv: the STE run's losses are its train_log's, step by step"
else bad "fig4.tsv losses differ from $T/ste/train_log.jsonl"; fi
# a paper cell's CELL/model is labelled CELL in the tables and legends
mkdir -p "$T/cells/ste-cell" && ln -sfn "$T/ste" "$T/cells/ste-cell/model"
$B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --rows 2 --out "$T/diag3" --runs "$T/cells/ste-cell/model/,$T/ro" \
  >/dev/null 2>&1 && head -1 "$T/diag3/fig6.tsv" | grep -qx "$(printf 'site\tchannel\tste-cell\tro')" \
  && ok "--runs CELL/model is labelled CELL" || bad "label of CELL/model: $(head -1 "$T/diag3/fig6.tsv" 2>&1)"
expect_exit 1 "--runs" $B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --rows 2 --out "$T/diag2" --runs "$T/ste,$T/none"
if command -v gnuplot >/dev/null; then
  for f in fig7_reduction.png fig3_channels.png fig4_error.png fig6_channels.png; do [ -s "$T/diag/$f" ] && ok "diagnose drew $f" || bad "no $f"; done
fi
# a gnuplot that fails without reading its input: warnings, not a SIGPIPE death (exit 141), and the
# tables stand (tests/test_plot.c makes the unread write certain with 1 MiB of input)
ROSTESIM_GNUPLOT=/bin/false $B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --rows 2 --out "$T/diagf" \
  --runs "$T/ste,$T/ro" >"$T/o" 2>"$T/e"; rc=$?
[ $rc -eq 0 ] && grep -q "and 0 figures" "$T/o" && grep -q "warning: no figure from llm_fig7: gnuplot failed drawing llm_fig7 (exit status 1)" "$T/e" \
  && [ -s "$T/diagf/fig7.tsv" ] && [ -s "$T/diagf/fig6.tsv" ] && ok "diagnose with a failing gnuplot: exit 0, tables written, each figure a warning" \
  || bad "diagnose with ROSTESIM_GNUPLOT=/bin/false: exit $rc: $(head -c 300 "$T/e")"
expect_exit 2 "--runs: at most 8 folders" $B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --out "$T/x" --runs a,b,c,d,e,f,g,h,i
expect_exit 2 "--runs: no folder named" $B llm diagnose --model "$T/m0" --data $FIX/train.jsonl --out "$T/x" --runs ,

# usage errors
expect_exit 2 "--method" $B llm qat --method foo --model "$T/m0" $OPTS --out "$T/x"
expect_exit 2 "--wbits" $B llm qat --wbits 40 --model "$T/m0" $OPTS --out "$T/x"
expect_exit 2 "--reselect-every" $B llm qat --method ste --reselect-every 3 --model "$T/m0" $OPTS --out "$T/x"
expect_exit 2 "--scheme" $B llm search --scheme odd --model "$T/m0" --data $FIX/train.jsonl --out "$T/x.json"
expect_exit 1 "missing.json" $B llm qat --rotation-config "$T/missing.json" --model "$T/m0" $OPTS --out "$T/x"
expect_exit 2 "already quantized" $B llm search --model "$T/ro" --data $FIX/train.jsonl --out "$T/x.json"

echo "qat_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
