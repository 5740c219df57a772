#!/usr/bin/env python3
# rostesim: fixtures for llm/text/bpe_train.c, written with Hugging Face `tokenizers`' BpeTrainer.
# SPDX-License-Identifier: GPL-3.0-or-later
#
# corpus.txt (committed): the long descriptions of tests/fixtures/tldr/sample_train.jsonl,
# one blank line apart (as `rostesim data debian-tldr` writes pretrain.txt). For each preset
# (gpt2: ByteLevel with its regex; llama3 / qwen2: Split(regex) + ByteLevel), NFC, special
# token <|endoftext|>, initial alphabet ByteLevel.alphabet(), vocab 800, the corpus read as
# Tokenizer.train(files) reads it (lines with their endings):
#   <preset>.merges.jsonl  HF's merges in rank order, one ["a", "b"] per line
#   <preset>.golden.jsonl  {"text", "ids"}: HF's encodings of the sample_test descriptions
#
# Check mode: --check DIR loads DIR/tokenizer.json (written by `rostesim llm tokenizer-train`)
# with HF, encodes every line of FILE (--text FILE, default corpus.txt) and compares with the
# ids in DIR/encoded.jsonl if present, else prints the encodings as JSONL to stdout.
#
# Usage (from the repository root): /tmp/venv/bin/python tools/bpe_fixture.py [outdir]
import json
import os
import sys

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, decoders, trainers

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

if len(sys.argv) > 2 and sys.argv[1] == "--check":
    d = sys.argv[2]
    text = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--text" else "tests/fixtures/bpe/corpus.txt"
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    docs = [x for x in open(text, encoding="utf-8").read().split("\n\n") if x]
    enc = os.path.join(d, "encoded.jsonl")
    if os.path.exists(enc):
        want = [json.loads(l)["ids"] for l in open(enc)]
        bad = sum(tok.encode(t).ids != w for t, w in zip(docs, want))
        print(f"HF tokenizers {__import__('tokenizers').__version__} loads {d}/tokenizer.json; "
              f"{len(docs)} documents, {bad} encode differently from rostesim")
        sys.exit(1 if bad or len(want) != len(docs) else 0)
    for t in docs:
        print(json.dumps({"ids": tok.encode(t).ids}))
    sys.exit(0)

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/bpe"
os.makedirs(out, exist_ok=True)

def descs(path):
    r = []
    for line in open(path, encoding="utf-8"):
        p = json.loads(line)["prompt"]
        r.append(p.split("\n", 1)[1].rsplit("\nTL;DR:", 1)[0])
    return r

corpus = os.path.join(out, "corpus.txt")
with open(corpus, "w", encoding="utf-8") as f:
    for d in descs("tests/fixtures/tldr/sample_train.jsonl")[:120]:
        f.write(d + "\n\n")
test_texts = descs("tests/fixtures/tldr/sample_test.jsonl")[:40] + [
    "Ünïcödé café naïve — “quotes” 123456 x86_64 don't WON'T\ttab  spaces\n\nnew\r\nlines"]

for preset in ("gpt2", "llama3", "qwen2"):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    if preset == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3 if preset == "llama3" else QWEN2), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>"], show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([corpus], tr)
    j = json.loads(tok.to_str())
    with open(os.path.join(out, f"{preset}.merges.jsonl"), "w", encoding="utf-8") as f:
        for m in j["model"]["merges"]:
            f.write(json.dumps(m if isinstance(m, list) else m.split(" "), ensure_ascii=False) + "\n")
    if preset == "llama3":  # rostesim writes ignore_merges for this preset, as Llama-3 does
        j["model"]["ignore_merges"] = True
        tok = Tokenizer.from_str(json.dumps(j))
    with open(os.path.join(out, f"{preset}.golden.jsonl"), "w", encoding="utf-8") as f:
        for t in test_texts:
            f.write(json.dumps({"text": t, "ids": tok.encode(t).ids}, ensure_ascii=False) + "\n")
    print(preset, len(j["model"]["vocab"]), "tokens", len(j["model"]["merges"]), "merges")
