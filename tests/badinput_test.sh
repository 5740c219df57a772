#!/usr/bin/env bash
# The bad-input table of the README ("Bad input"): each malformed input gives one clear error
# line naming the file (and line, tensor or flag) and a non-zero exit: 1 for bad files, 2 for
# bad command lines. Every row of the README's table is a check here (same input, exit code and
# message); `bash tests/badinput_test.sh` prints them.
set -u
. "$(dirname "$0")/lib.sh"

# row WHAT CODE PATTERN command...: exit CODE and a one-line stderr matching PATTERN
row() {
  local what=$1 code=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local msg; msg=$(grep -v '^rostesim [a-z ]*: [0-9]* rows' "$T/err" | head -1 | sed "s#$T#T#g")
  if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$T/err" && [ "$(grep -cE -- "$pat" "$T/err")" -eq 1 ]; then
    ok "$what | exit $rc | $msg"
  else bad "$what: expected exit $code and /$pat/, got $rc: $(head -c 300 "$T/err")"; fi
}

tiny_model "$T/m0" || bad "llm init"
mk() { rm -rf "$T/$1"; cp -r "$T/m0" "$T/$1"; }
EVAL="--data $FIX/train.jsonl --threads 1"
hdrlen=$(od -An -t u8 -N 8 "$T/m0/model.safetensors" | tr -d ' ')

# ---- checkpoint folders (llm eval loads everything)
mk trunc; head -c 100000 "$T/m0/model.safetensors" >"$T/trunc/model.safetensors"
row "truncated model.safetensors" 1 "model.safetensors: tensor '.*': data_offsets \[[0-9]+, [0-9]+\] exceed the [0-9]+ bytes of data" \
  $B llm eval --model "$T/trunc" $EVAL
mk hdr; printf '\xff\xff\xff\xff\xff\x00\x00\x00' | dd of="$T/hdr/model.safetensors" conv=notrunc 2>/dev/null
row "safetensors header length past the end" 1 "model.safetensors: header length 1099511627775 exceeds the [0-9]+ bytes after the length field" \
  $B llm eval --model "$T/hdr" $EVAL
mk empty; : >"$T/empty/model.safetensors"
row "empty model.safetensors" 1 "model.safetensors: .*(too short|truncated|empty|bytes)" $B llm eval --model "$T/empty" $EVAL
mk dt; sed -i '0,/"F32"/s//"I32"/' "$T/dt/model.safetensors"
row "unsupported dtype (I32 weights)" 1 "tensor 'gpt_neox.embed_in.weight': dtype I32 is not a floating type \(F32, F16, BF16, F64\)" \
  $B llm eval --model "$T/dt" $EVAL
mk shp; sed -i 's/"intermediate_size": 64/"intermediate_size": 80/' "$T/shp/config.json"
row "shape mismatch with config.json" 1 "tensor 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight' has shape \[64, 32\], expected \[80, 32\]" \
  $B llm eval --model "$T/shp" $EVAL
mk miss; sed -i '/"hidden_size"/d' "$T/miss/config.json"
row "config.json missing a field" 1 "config.json: missing field 'hidden_size'" $B llm eval --model "$T/miss" $EVAL
mk nan; printf '\x00\x00\xc0\x7f' | dd of="$T/nan/model.safetensors" bs=1 seek=$((8 + hdrlen + 4)) conv=notrunc 2>/dev/null
row "NaN in a weight" 1 "model.safetensors: tensor gpt_neox.embed_in.weight: element 1 of 22400 is NaN" \
  $B llm eval --model "$T/nan" $EVAL
mk big; head -c 89600 /dev/zero | tr '\0' '\177' | dd of="$T/big/model.safetensors" bs=1 seek=$((8 + hdrlen)) conv=notrunc 2>/dev/null
row "weights so large the loss overflows (3.4e38)" 1 "llm sft: non-finite loss at step 1 \(lower the learning rate\?\); no checkpoint has been written yet" \
  $B llm sft --model "$T/big" --data $FIX/train.jsonl --max-steps 3 --batch 2 --threads 1 --quiet --save-every 1 --out "$T/bigout"
mk tokj; head -c 5000 "$T/m0/tokenizer.json" >"$T/tokj/tokenizer.json"
row "truncated tokenizer.json" 1 "tokenizer.json: malformed JSON near byte 4999" $B llm eval --model "$T/tokj" $EVAL
head -c 30000 tests/fixtures/gguf/llama_tiny.gguf >"$T/t.gguf"
row "truncated GGUF" 1 "t.gguf: offset [0-9]+: tensor 0 \('token_embd.weight'\): [0-9]+ bytes of data cannot fit in a file of 30000 bytes" \
  $B llm import-gguf "$T/t.gguf" --out "$T/g"

# ---- data files
printf '{"prompt": "a", "completion": "b"}\n{"prompt": "\xff", "completion": "b"}\n' >"$T/utf.jsonl"
row "invalid UTF-8 in JSONL data" 1 "utf.jsonl:2: invalid UTF-8 at byte 13 of the line" $B llm eval --model "$T/m0" --data "$T/utf.jsonl"
printf '{"prompt": "a", "completion": "b"}\n{"prompt": NaN, "completion": "b"}\n' >"$T/nan.jsonl"
row "NaN (not JSON) in JSONL data" 1 "nan.jsonl:2: invalid JSON near column 12" $B llm eval --model "$T/m0" --data "$T/nan.jsonl"
printf '{"prompt": "a"}\n' >"$T/mf.jsonl"
row "JSONL line missing a field" 1 "mf.jsonl:1: missing \"completion\"" $B llm eval --model "$T/m0" --data "$T/mf.jsonl"

# ---- training checkpoints
OPTS="--data $FIX/train.jsonl --max-steps 4 --batch 2 --threads 1 --quiet --save-every 1"
mkdir -p "$T/ck"; head -c 50 "$T/m0/model.safetensors" >"$T/ck/trainer_state.bin"
row "not a checkpoint (trainer_state.bin)" 1 "trainer_state.bin: not a rostesim training checkpoint \(bad magic number\)" \
  $B llm sft --model "$T/m0" $OPTS --out "$T/ck" --resume
printf 'RSTRAIN\0\1\0\0\0' >"$T/ck/trainer_state.bin"
row "truncated checkpoint" 1 "trainer_state.bin: truncated checkpoint \(12 bytes, the header alone has 112\)" \
  $B llm sft --model "$T/m0" $OPTS --out "$T/ck" --resume

# ---- command-line values
row "--d 1e99 (not an integer)" 2 "lsq: --d: '1e99' is not an integer" $B lsq --d 1e99
row "--d 99999999999999999999 (overflow)" 2 "lsq: --d: 99999999999999999999 is out of range" $B lsq --d 99999999999999999999
row "--bits 0" 2 "lsq: --bits: 0 is out of range \[1, 16\]" $B lsq --bits 0
row "--eta 1e400 (overflows a double)" 2 "lsq: --eta: 1e400 is out of range \(not a finite double\)" $B lsq --eta 1e400
row "--eta 1e-400 (underflows)" 2 "lsq: --eta: 1e-400 is out of range \(underflows a double\)" $B lsq --eta 1e-400
row "--eta nan" 2 "lsq: --eta: 'nan' is not a finite number" $B lsq --eta nan
row "--batch -1" 2 "llm sft: --batch: -1 is out of range \[1, 4096\]" $B llm sft --model "$T/m0" $OPTS --batch -1 --out "$T/x"
row "--lr abc" 2 "llm sft: --lr: 'abc' is not a finite number" $B llm sft --model "$T/m0" $OPTS --lr abc --out "$T/x"
row "--wbits 0 (ptq)" 2 "llm ptq: --wbits: 0 is out of range \[1, 16\]" $B llm ptq --method rtn --model "$T/m0" --wbits 0 --out "$T/x"

# ---- an unwritable --out (below a regular file: refused even for root)
: >"$T/afile"
row "unwritable lsq --out" 1 "lsq: --out: cannot create folder '.*/afile/x': Not a directory" \
  $B lsq --d 64 --N 16 --seeds 1 --max-steps 50 --prop44 10 --no-plot --quiet --out "$T/afile/x"
row "unwritable llm sft --out" 1 "llm sft: cannot create folder '.*/afile/x': Not a directory" \
  $B llm sft --model "$T/m0" $OPTS --out "$T/afile/x"
row "unwritable llm ptq --out" 1 "llm ptq: cannot create folder '.*/afile/x': Not a directory" \
  $B llm ptq --method rtn --model "$T/m0" --out "$T/afile/x"
echo "badinput_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
