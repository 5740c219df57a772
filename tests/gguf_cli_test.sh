#!/usr/bin/env bash
# rostesim llm import-gguf end to end on tests/fixtures/gguf/llama_tiny.gguf (a tiny Llama
# written with the gguf package from its HF twin llama_tiny_hf/): the imported folder has
# the twin's weights (model.safetensors tensors bit-identical after q/k un-permutation),
# info/generate/eval/sft work on it, the output is deterministic, and bad input gives a
# clear message and a non-zero exit.
set -u
. "$(dirname "$0")/lib.sh"
FIX=tests/fixtures/gguf
EXPECT_HEAD=150

if $B llm import-gguf --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm import-gguf" "$T/h" && grep -q "Q4_K" "$T/h"; then
  ok "import-gguf --help"; else bad "import-gguf --help: $(head -3 "$T/h")"; fi
$B llm --help | grep -q "import-gguf" && ok "listed by rostesim llm --help" || bad "import-gguf not in rostesim llm --help"

if $B llm import-gguf $FIX/llama_tiny.gguf --out "$T/m" >"$T/out" 2>"$T/err"; then ok "import: $(cat "$T/out")"
else bad "import: $(cat "$T/err")"; fi
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -s "$T/m/$f" ] && ok "wrote $f" || bad "did not write $f"; done
$B llm import-gguf $FIX/llama_tiny.gguf --out "$T/m2" --threads 1 >/dev/null 2>&1
same=1; for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do cmp -s "$T/m/$f" "$T/m2/$f" || same=0; done
[ $same = 1 ] && ok "deterministic: same bytes with 1 thread and the default" || bad "two imports differ"

$B llm info --model "$T/m" >"$T/info" 2>&1
grep -q "family: *llama" "$T/info" && grep -qE "heads: +4 \(kv heads 2, head dim 8" "$T/info" && grep -q "tied head: *yes" "$T/info" \
  && grep -q "eos: 2 <|im_end|>" "$T/info" && ok "info: llama, GQA 4/2, tied, eos <|im_end|>" || bad "info: $(cat "$T/info")"

# the same logits as the HF twin: generation from both folders gives the same tokens
P=$'<|im_start|>user\nHello 123<|im_end|>\n'
$B llm generate --model "$T/m" --prompt "$P" --max-new-tokens 12 >"$T/g1" 2>"$T/e1"
cp $FIX/llama_tiny_hf/config.json $FIX/llama_tiny_hf/model.safetensors "$T/m2/" 2>/dev/null
$B llm generate --model "$T/m2" --prompt "$P" --max-new-tokens 12 >"$T/g2" 2>"$T/e2"
[ -s "$T/g1" ] && cmp -s "$T/g1" "$T/g2" && ok "generate: imported model continues like the HF twin ($(head -c 60 "$T/g1" | tr '\n' ' '))" \
  || bad "generate differs or failed: $(cat "$T/g1" "$T/e1" | head -c 200) vs $(head -c 200 "$T/g2")"

printf '{"prompt": "Hello 12", "completion": " world 34"}\n{"prompt": "The year", "completion": " 2025"}\n' >"$T/d.jsonl"
if $B llm sft --model "$T/m" --data "$T/d.jsonl" --out "$T/r" --max-steps 3 --batch 2 --lr 1e-3 --quiet >"$T/s" 2>&1; then
  ok "sft on the imported model: $(tail -1 "$T/s")"; else bad "sft: $(tail -3 "$T/s")"; fi

# bad input
expect_exit 2 "missing argument" $B llm import-gguf --out "$T/x"
expect_exit 2 "--out DIR is required" $B llm import-gguf $FIX/llama_tiny.gguf
expect_exit 2 "cannot read '.*nope.gguf'" $B llm import-gguf "$T/nope.gguf" --out "$T/x"
head -c 1000 $FIX/llama_tiny.gguf >"$T/trunc.gguf"
expect_exit 1 "trunc.gguf: offset [0-9]+: .*cannot fit" $B llm import-gguf "$T/trunc.gguf" --out "$T/x"
expect_exit 1 "not a GGUF file" $B llm import-gguf $FIX/llama_tiny_hf/config.json --out "$T/x"
expect_exit 1 "tok_qwen2.gguf: metadata .llama.block_count. is missing" $B llm import-gguf $FIX/tok_qwen2.gguf --out "$T/x"
[ ! -e "$T/x/model.safetensors" ] && ok "nothing written on failure" || bad "a failed import left model.safetensors"

echo "gguf_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
