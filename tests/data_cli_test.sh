#!/usr/bin/env bash
# rostesim data debian-tldr (and, once they exist, the embedded-default subcommands) end to
# end on the committed excerpt of Debian's Translation-en and Packages (tests/fixtures/tldr):
# splits and manifest written, same bytes on a rebuild, no package in two splits, clear
# errors with non-zero exits.
set -u
. "$(dirname "$0")/lib.sh"
FIX=tests/fixtures/tldr
EXPECT_ARGS=4; EXPECT_HEAD=150

for c in "" debian-tldr; do
  if $B data $c --help >"$T/h" 2>&1 && grep -q "usage: rostesim data" "$T/h"; then ok "rostesim data $c --help"; else bad "rostesim data $c --help"; fi
done

build() { $B data debian-tldr --translation $FIX/Translation-en.excerpt --packages $FIX/Packages.excerpt --out "$1"; }
if build "$T/d1" >"$T/out" 2>"$T/err"; then ok "debian-tldr on the excerpt: $(tail -2 "$T/out" | head -1)"
else bad "debian-tldr: $(cat "$T/err")"; fi
for f in train.jsonl validation.jsonl test.jsonl pretrain.txt pretrain_validation.txt manifest.json; do
  [ -s "$T/d1/$f" ] && ok "wrote $f" || bad "no $f"; done
grep -q "kept 129 pairs in 78 families: train 121, validation 3, test 5" "$T/out" && ok "counts printed" || bad "counts: $(cat "$T/out")"
build "$T/d2" >/dev/null 2>&1
for f in train.jsonl validation.jsonl test.jsonl pretrain.txt pretrain_validation.txt manifest.json; do
  cmp -s "$T/d1/$f" "$T/d2/$f" && ok "rebuild: same $f bytes" || bad "rebuild changed $f"; done
want=$(sha256sum "$T/d1/test.jsonl" | cut -d' ' -f1)
grep -q "\"test.jsonl\": {\"pairs\": 5, \"bytes\": [0-9]*, \"sha256\": \"$want\"}" "$T/d1/manifest.json" \
  && ok "manifest: test.jsonl sha256 matches sha256sum" || bad "manifest sha256 of test.jsonl (want $want)"
want=$(sha256sum $FIX/Translation-en.excerpt | cut -d' ' -f1)
grep -q "\"translation_sha256\": \"$want\"" "$T/d1/manifest.json" && ok "manifest: input sha256" || bad "manifest input sha256"

# no package in two splits, and no source package either (sources from the Packages excerpt)
for s in train validation test; do
  sed -E 's/^\{"prompt":"Package: ([^\\]+)\\n.*/\1/' "$T/d1/$s.jsonl" | sort >"$T/$s.pk"
  awk -v RS= '{p=""; s=""; for (i=1;i<=NF;i++) { if ($i=="Package:") p=$(i+1); if ($i=="Source:") s=$(i+1) } if (s=="") s=p; print p, s}' \
    $FIX/Packages.excerpt | sort | join - "$T/$s.pk" | cut -d' ' -f2 | sort -u >"$T/$s.src"
done
n=$(cat "$T"/{train,validation,test}.pk | sort | uniq -d | wc -l)
[ "$n" -eq 0 ] && ok "no package in two splits" || bad "$n packages in two splits"
n=$(cat "$T"/{train,validation,test}.src | sort | uniq -d | wc -l)
[ "$n" -eq 0 ] && ok "no source package in two splits" || bad "$n source packages in two splits: $(cat "$T"/{train,validation,test}.src | sort | uniq -d | head -3)"

# errors
expect_exit 2 "--out DIR is required" $B data debian-tldr --translation $FIX/Translation-en.excerpt
expect_exit 2 "unknown subcommand" $B data nope
expect_exit 1 "cannot read '$T/missing'" $B data debian-tldr --translation "$T/missing" --out "$T/x"
printf 'Package: foo\nDescription-md5: 00\n\n' >"$T/bad.txt"
expect_exit 1 "bad.txt:1: package foo has no Description-en" $B data debian-tldr --translation "$T/bad.txt" --packages none --out "$T/x"
[ ! -e "$T/x/train.jsonl" ] && ok "nothing written on error" || bad "train.jsonl written despite the error"

# llm tokenizer-train, pretrain (micro) and eval --generate on the committed samples
for c in tokenizer-train pretrain; do
  if $B llm $c --help >"$T/h" 2>&1 && grep -q "usage: rostesim llm $c" "$T/h"; then ok "rostesim llm $c --help"; else bad "rostesim llm $c --help"; fi
done
grep -q -- "--generate" <($B llm eval --help) && ok "llm eval --help names --generate" || bad "llm eval --help lacks --generate"
if $B llm tokenizer-train --corpus tests/fixtures/bpe/corpus.txt --vocab 600 --out "$T/tok" >"$T/out" 2>"$T/err"; then ok "tokenizer-train: $(cat "$T/out")"
else bad "tokenizer-train: $(cat "$T/err")"; fi
$B llm tokenizer-train --corpus tests/fixtures/bpe/corpus.txt --vocab 600 --out "$T/tok2" >/dev/null 2>&1
cmp -s "$T/tok/tokenizer.json" "$T/tok2/tokenizer.json" && ok "tokenizer-train: same corpus, same bytes" || bad "tokenizer-train is not deterministic"
grep -q '"eos_token": "<|endoftext|>"' "$T/tok/tokenizer_config.json" && ok "tokenizer_config.json names eos" || bad "tokenizer_config.json"
expect_exit 2 "--pre: pre-tokenizer \"bert\" is unknown" $B llm tokenizer-train --corpus tests/fixtures/bpe/corpus.txt --out "$T/x" --pre bert
expect_exit 2 "--corpus: cannot read" $B llm tokenizer-train --corpus "$T/none.txt" --out "$T/x"

mkdir -p "$T/dm"
cp "$T/d1/pretrain.txt" "$T/d1/pretrain_validation.txt" "$T/dm/"
cp -r "$T/tok" "$T/dm/tokenizer"
if $B llm pretrain --preset micro --data "$T/dm" --out "$T/base" --threads 1 --quiet >"$T/out" 2>"$T/err"; then ok "pretrain micro: $(cat "$T/out")"
else bad "pretrain micro: $(cat "$T/err")"; fi
for f in config.json model.safetensors tokenizer.json pretrain.json pretrain_log.jsonl; do [ -s "$T/base/$f" ] && ok "pretrain wrote $f" || bad "pretrain did not write $f"; done
first=$(head -1 "$T/base/pretrain_log.jsonl" | sed -E 's/.*"loss": ([^,]+),.*/\1/'); last=$(tail -1 "$T/base/pretrain_log.jsonl" | sed -E 's/.*"loss": ([^,]+),.*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a - 0.5)}' && ok "pretrain lowers the loss ($first -> $last)" || bad "pretrain loss $first -> $last"
$B llm pretrain --preset micro --data "$T/dm" --out "$T/base2" --threads 1 --quiet >/dev/null 2>&1
cmp -s "$T/base/model.safetensors" "$T/base2/model.safetensors" && ok "pretrain: same command, same model bytes" || bad "pretrain is not deterministic"
grep -q '"model_type": "llama"' "$T/base/config.json" && ok "pretrain: a Llama checkpoint" || bad "config.json: $(head -c 300 "$T/base/config.json")"
expect_exit 2 "--preset: 'huge' is not one of" $B llm pretrain --preset huge --data "$T/dm" --out "$T/x"
expect_exit 2 "pretrain.txt' missing" $B llm pretrain --preset micro --data "$T/nothing" --out "$T/x"

if $B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --generate --limit 5 --max-new-tokens 8 --predictions "$T/pred.jsonl" \
   --threads 1 >"$T/out" 2>"$T/err"; then ok "eval --generate: $(tail -1 "$T/out")"; else bad "eval --generate: $(cat "$T/err")"; fi
[ "$(wc -l <"$T/pred.jsonl")" -eq 5 ] && ok "5 predictions written" || bad "predictions: $(wc -l <"$T/pred.jsonl") lines"
grep -qE "ROUGE \(stemmed\) F: R1 [0-9.]+  R2 [0-9.]+  RL [0-9.]+  RLsum [0-9.]+  mean [0-9.]+" "$T/out" && ok "ROUGE line printed" || bad "no ROUGE line: $(cat "$T/out")"
$B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --generate --limit 5 --max-new-tokens 8 --predictions "$T/pred2.jsonl" --threads 1 >/dev/null 2>&1
cmp -s "$T/pred.jsonl" "$T/pred2.jsonl" && ok "eval --generate: same predictions twice" || bad "eval --generate is not deterministic"
# one prompt at a time, every new token decoded, no loss pass: the same predictions
$B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --generate --limit 5 --max-new-tokens 8 --predictions "$T/pred3.jsonl" \
  --threads 1 --gen-batch 1 --full-length >/dev/null 2>&1
cmp -s "$T/pred.jsonl" "$T/pred3.jsonl" && ok "eval --generate: batched with the first-line stop = one at a time, every token" \
  || bad "eval --generate: --gen-batch 1 --full-length gives other predictions"
$B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --generate --no-loss --limit 5 --max-new-tokens 8 --gen-batch 3 \
  --progress 0.001 --predictions "$T/pred4.jsonl" --threads 1 >"$T/out4" 2>"$T/err4"
cmp -s "$T/pred.jsonl" "$T/pred4.jsonl" && ! grep -q "^loss" "$T/out4" && grep -q "generate: 5/5 prompts" "$T/err4" \
  && ok "eval --generate --no-loss --gen-batch 3 --progress: same predictions, no loss line, progress to 5/5" \
  || bad "eval --generate --no-loss: $(cat "$T/out4" "$T/err4")"
expect_exit 2 "--no-loss: only with --generate" $B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --no-loss
expect_exit 2 "--generate: .* is not a .jsonl" $B llm eval --model "$T/base" --data "$T/dm/pretrain.txt" --generate
# a line that is not a prompt/completion object: exit 1 naming file:line, the earlier predictions kept
{ head -2 $FIX/sample_test.jsonl; echo '{"prompt": "x"}'; } >"$T/bad.jsonl"
expect_exit 1 "bad.jsonl:3: .*completion" \
  $B llm eval --model "$T/base" --data "$T/bad.jsonl" --generate --max-new-tokens 4 --predictions "$T/pred.jsonl" --threads 1
cmp -s "$T/pred.jsonl" "$T/pred2.jsonl" && [ ! -e "$T/pred.jsonl.tmp" ] && ok "eval --generate failed: predictions file untouched, no .tmp left" \
  || bad "a failed eval --generate touched $T/pred.jsonl"
expect_exit 1 "new tokens per prompt: need 1 to 63" $B llm eval --model "$T/base" --data $FIX/sample_test.jsonl --generate --max-new-tokens 64

echo "data_cli_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
