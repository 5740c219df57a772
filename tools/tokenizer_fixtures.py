#!/usr/bin/env python3
# rostesim: golden files for llm/text/tokenizer.c, written with Hugging Face `tokenizers`.
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Trains three small byte-level BPE tokenizers on a varied text generated here (English prose,
# code, numbers, accents, CJK, emoji, combining marks, whitespace runs, contractions), one per
# pre-tokenizer family, and records how the reference library encodes and decodes ~200 test
# strings (many of them not in the training text):
#
#   neox/   ByteLevel(add_prefix_space=False) with its GPT-2 regex, NFC, merges as "a b" strings,
#           <|endoftext|> <|padding|>, ByteLevel post-processor (as GPT-NeoX-20B / Pythia)
#   qwen2/  Split(Qwen2 regex, Isolated) + ByteLevel(use_regex=False), NFC, merges as "a b"
#           strings, <|endoftext|> <|im_start|> <|im_end|> (special) and <tool_call> (an added,
#           non-special token, as Qwen2.5)
#   llama3/ Split(Llama-3 regex, Isolated) + ByteLevel(use_regex=False), no normalizer,
#           ignore_merges, merges as ["a","b"] pairs, <|begin_of_text|> <|end_of_text|>,
#           TemplateProcessing prepending <|begin_of_text|>
#
# Each folder gets tokenizer.json, tokenizer_config.json (bos/eos/pad as HF would name them)
# and golden.jsonl: one JSON object per test string,
#   {"text": hex UTF-8, "ids": [...] (add_special_tokens=False), "ids_special": [...] (True),
#    "decoded": hex of decode(ids_special, skip_special_tokens=False),
#    "decoded_skip": hex of decode(ids_special, skip_special_tokens=True), "show": readable}
# Strings are hex so that every byte (NUL included) survives any JSON reader.
#
# Usage (from the repository root): /tmp/venv/bin/python tools/tokenizer_fixtures.py [outdir]
# Default outdir: tests/fixtures/tok. Deterministic: same tokenizers version, same bytes.
import json
import os
import random
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

NOUNS = ("model weight rotation matrix token sentence river mountain teacher student garden "
         "window computer network layer gradient kitchen market library bridge question answer "
         "engine theory paper city morning evening winter summer island forest ocean").split()
VERBS = ("trains rotates quantizes reads writes sees builds finds keeps loses carries opens "
         "closes learns teaches moves holds covers follows changes measures").split()
ADJS = ("small large quiet bright heavy quick slow careful random uniform sparse dense "
        "ancient modern green golden broken hidden simple").split()
ADVS = "quickly slowly carefully rarely often never always gently loudly".split()
NAMES = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Oscar Peggy Trent Zoë".split()
CONTRACTIONS = ["don't", "I'LL", "it's", "we've", "they're", "I'm", "she'd", "You'll", "WON'T",
                "can't", "He'S", "isn't", "we'D", "THEY'RE"]
UNICODE_BITS = ["café", "naïve", "résumé", "Ångström", "São Paulo", "Zürich", "œuvre", "fiancée",
                "東京", "日本語のテキスト", "中文分词", "한국어", "Привет, мир", "Ελληνικά", "עברית",
                "العربية", "हिन्दी", "ไทย", "😀", "🚀🚀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "∑∫√∞",
                "e\u0301te\u0301", "n\u0303", "\u00e9t\u00e9", "ﬁ", "①②③", "½ ¾", "Ⅻ",
                "\u3000全角", "tab\tseparated", "non\u00a0breaking"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
    "if x == None or y != 3:\n        print('hi')\n",
    "#include <stdio.h>\nint main(void) { return 0; }\n",
    "const s = `${a}+${b}`; // template\n",
    "SELECT name, COUNT(*) FROM t WHERE id >= 42 GROUP BY name;\n",
    "    x = [1, 2, 3]\n    y = {'k': 'v'}\n\n\n",
    "<div class=\"box\">&nbsp;</div>\r\n",
]


def sentence(rng):
    w = [rng.choice(NAMES), rng.choice(VERBS), "the", rng.choice(ADJS), rng.choice(NOUNS)]
    if rng.random() < 0.4:
        w += [rng.choice(ADVS)]
    if rng.random() < 0.3:
        w += ["and", rng.choice(CONTRACTIONS), rng.choice(VERBS)]
    if rng.random() < 0.3:
        w += ["in", str(rng.randint(0, 10 ** rng.randint(1, 7))), rng.choice(NOUNS) + "s"]
    if rng.random() < 0.25:
        w += [rng.choice(UNICODE_BITS)]
    s = " ".join(w)
    return s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", "...", ":"])


def training_text():
    rng = random.Random(1234)
    parts = []
    for _ in range(3000):
        r = rng.random()
        if r < 0.70:
            parts.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 4))) + rng.choice(["\n", "\n\n", " ", "  "]))
        elif r < 0.82:
            parts.append(rng.choice(CODE))
        elif r < 0.90:
            parts.append(" ".join(rng.choice(UNICODE_BITS) for _ in range(rng.randint(1, 5))) + "\n")
        else:
            parts.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(rng.randint(1, 6)))
                         + rng.choice(["\n", " \t", "   \n"]))
    text = "".join(parts)
    # Chunks of ~1 KB: the trainer sees line structure, whitespace runs included.
    return [text[i:i + 1000] for i in range(0, len(text), 1000)]


def test_strings(specials):
    s = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n\n", "\r\n", " \n ", "\t\t  \n",
        "Hello", "hello", " hello", "  leading", "trailing  ", "trailing\n", "Hello world",
        "Hello, world!", "hello   world", "Hello\tworld\n", "a", "ab", "abc", "I", "x y z",
        "don't", "DON'T", "I'LL", "I'll", "we've", "they're", "It's", "it'S", "she'd", "'s",
        "'", "''", "rock 'n' roll", "can't won't shouldn't", "John's book", "O'Neil",
        "0", "12", "123", "1234", "12345", "123456", "1234567", "3.14159", "1,000,000",
        "-42", "+7e-10", "0x1F", "v1.2.3", "2024-01-31", "12:30pm", "$100.00", "50%",
        "café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m",
        "\u00e9", "e\u0301", "e\u0301\u0301", "\u0301", "ﬁne", "Å", "\u212b",
        "東京", "東京タワー", "日本語", "中文 English 混合", "한국어 텍스트", "Привет мир",
        "Γειά σου Κόσμε", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดี",
        "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "I ❤️ NY", "emoji😀inside",
        "a\u200bb", "a\u00a0b", "\u3000", "x\u2028y", "\ufeffBOM", "\U0001f600 ", "ℌ𝔢𝔩𝔩𝔬",
        "\x00", "a\x00b", "\x7f\x01\x1b[0m", "\u0085", "\u00ff\u0100",
        "def f(x):\n    return x * 2\n", "if (a && b) { c(); }", "x=1;y=2", "foo_bar.baz()",
        "    indented", "\tindented", "a  b   c    d", "end.   ", "\n\nparagraph\n\n",
        "http://example.com/path?q=1&r=2", "user@example.com", "#hashtag @mention",
        "((()))", "!!!???", "...", "--", "—", "«quoted»", "\"quoted\"", "`code`",
        "The quick brown fox jumps over the lazy dog.",
        "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
        "Mixed: English, français, Deutsch, 日本語, русский, 😀.",
    ]
    # special tokens in the middle of text, adjacent to words, repeated, and look-alikes
    for sp in specials:
        s += [sp, sp + sp, "hello" + sp + "world", "hello " + sp + " world", sp + "\n" + sp,
              "a" + sp, sp + "b", " " + sp + " "]
    s += ["<|endoftext", "<|", "|>", "<|unknown|>", "<|endoftext|>x<|endoftext|>",
          "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
          "<|begin_of_text|><|begin_of_text|>", "<tool_call>{\"a\": 1}</tool_call>",
          "x<tool_call>y"]
    # held-out sentences (another seed) and some training-like ones
    rng = random.Random(99)
    for _ in range(40):
        s.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 3))))
    for _ in range(6):
        s.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(4)))
    s.append("".join(CODE))
    s.append(" " * 40 + "x" + "\n" * 12 + "\t" * 5)
    out, seen = [], set()
    for x in s:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def byte_level_trainer(vocab_size, specials):
    return trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=specials,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)


def build(style, corpus):
    if style == "neox":
        specials = ["<|endoftext|>", "<|padding|>"]
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(corpus, byte_level_trainer(700, specials))
        config = {"add_bos_token": False, "add_eos_token": False, "bos_token": "<|endoftext|>",
                  "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|padding|>",
                  "tokenizer_class": "GPTNeoXTokenizer", "model_max_length": 2048}
        merges_as = "strings"
    elif style == "qwen2":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(corpus, byte_level_trainer(800, specials))
        from tokenizers import AddedToken
        tok.add_tokens([AddedToken("<tool_call>", special=False, normalized=False)])
        config = {"add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>",
                  "pad_token": "<|endoftext|>", "unk_token": None, "errors": "replace",
                  "tokenizer_class": "Qwen2Tokenizer", "model_max_length": 32768, "split_special_tokens": False}
        merges_as = "strings"
    elif style == "llama3":
        specials = ["<|begin_of_text|>", "<|end_of_text|>"]
        tok = Tokenizer(models.BPE(ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(corpus, byte_level_trainer(900, specials))
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                          pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                          special_tokens=[("<|begin_of_text|>", bos)])])
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                  "pad_token": "<|end_of_text|>", "clean_up_tokenization_spaces": True,
                  "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 131072,
                  "model_input_names": ["input_ids", "attention_mask"]}
        merges_as = "pairs"
    else:
        raise ValueError(style)
    j = json.loads(tok.to_str())
    assert j["model"]["type"] == "BPE"
    if style == "llama3":
        assert j["model"].get("ignore_merges") is True, "this tokenizers version lost ignore_merges"
    merges = j["model"]["merges"]
    if merges_as == "strings":
        j["model"]["merges"] = [m if isinstance(m, str) else m[0] + " " + m[1] for m in merges]
        assert all(" " not in a and " " not in b for a, b in (m.split(" ") for m in j["model"]["merges"]))
    else:
        j["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in merges]
    config["added_tokens_decoder"] = {
        str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
        for a in j["added_tokens"]}
    text = json.dumps(j, ensure_ascii=False, indent=None, separators=(",", ":"))
    # Reload what we write: the golden ids come from the file itself.
    return Tokenizer.from_str(text), text, config, specials


def set_path(j, path, value):
    for k in path[:-1]:
        j = j[k]
    if isinstance(j, list) and path[-1] == len(j):
        j.append(value)
    else:
        j[path[-1]] = value


def tiny_tokenizer():
    """A hand-made byte-level BPE where BPE order and the vocabulary disagree: "abc" is a token,
    but the merge "b c" comes first, so only ignore_merges finds it."""
    from tokenizers.pre_tokenizers import ByteLevel
    alphabet = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    for extra in ("bc", "ab", "abc", "Ġa", "Ġab", "Ġabc", "<eos>"):
        vocab[extra] = len(vocab)
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": vocab["<eos>"], "content": "<eos>", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<eos>": {"id": "<eos>", "ids": [vocab["<eos>"]], "tokens": ["<eos>"]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": [["b", "c"], ["a", "b"], ["Ġ", "a"], ["ab", "c"], ["Ġa", "b"], ["Ġab", "c"]]}}


# Variants of the three tokenizers (and of tiny/) that the families do not use but the loader
# supports: each is a list of (JSON path, new value) patches the C test applies with cJSON.
PROBES = [
    ("neox", "prefix_space", [(["pre_tokenizer", "add_prefix_space"], True)]),
    ("qwen2", "split_removed", [(["pre_tokenizer", "pretokenizers", 0, "behavior"], "Removed")]),
    ("qwen2", "split_merged_prev", [(["pre_tokenizer", "pretokenizers", 0, "behavior"], "MergedWithPrevious")]),
    ("qwen2", "split_merged_next", [(["pre_tokenizer", "pretokenizers", 0, "behavior"], "MergedWithNext")]),
    ("qwen2", "split_contiguous", [(["pre_tokenizer", "pretokenizers", 0, "behavior"], "Contiguous")]),
    ("qwen2", "split_invert", [(["pre_tokenizer", "pretokenizers", 0, "invert"], True)]),
    ("qwen2", "split_literal_prefix", [(["pre_tokenizer", "pretokenizers", 0, "pattern"], {"String": "e"}),
                                       (["pre_tokenizer", "pretokenizers", 0, "behavior"], "MergedWithNext"),
                                       (["pre_tokenizer", "pretokenizers", 1, "add_prefix_space"], True)]),
    ("qwen2", "added_strip_normalized", [
        (["added_tokens", 4], {"id": 801, "content": "[MASK]", "single_word": False, "lstrip": True, "rstrip": True,
                               "normalized": False, "special": True}),
        (["added_tokens", 5], {"id": 802, "content": "\u00e9!", "single_word": False, "lstrip": False,
                               "rstrip": False, "normalized": True, "special": False}),
        (["normalizer"], {"type": "Sequence", "normalizers": [{"type": "NFC"}]})]),
    ("tiny", "merges_order", []),
    ("tiny", "ignore_merges", [(["model", "ignore_merges"], True)]),
]

PROBE_STRINGS = ["", "hello world", "  hello  world  ", "Hello, World! 123 4567", "don't I'LL", "a\tb\n\nc   ",
                 "naïve café e\u0301te\u0301", "日本語 テキスト", "👨‍👩‍👧 ok", "x  \n  y", "eeee", "the tree",
                 "abc", " abc", "abcabc", "xabc abc", "aabbcc", "ab c", "abc<eos>abc", "<eos>",
                 "[MASK]", "a [MASK] b", "a  [MASK]\t\n b", "x[MASK]y", "\u3000[MASK]\u00a0", "\u00e9!", "e\u0301!",
                 "caf\u00e9! e\u0301!x", "<|endoftext|> [MASK] <|im_start|>", "\u00a0\u00a0x",
                 "x<|endoftext|>y<|im_end|>z", "hello<|endoftext|> world<eos>abc"]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "tok")
    corpus = training_text()
    all_specials = ["<|endoftext|>", "<|padding|>", "<|im_start|>", "<|im_end|>",
                    "<|begin_of_text|>", "<|end_of_text|>"]
    strings = test_strings(all_specials)
    bases = {}
    for style in ("neox", "qwen2", "llama3"):
        tok, text, config, specials = build(style, corpus)
        d = os.path.join(outdir, style)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(text + "\n")
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
            f.write("\n")
        nroundtrip = 0
        with open(os.path.join(d, "golden.jsonl"), "w", encoding="utf-8") as f:
            for s in strings:
                ids = tok.encode(s, add_special_tokens=False).ids
                ids_sp = tok.encode(s, add_special_tokens=True).ids
                dec = tok.decode(ids_sp, skip_special_tokens=False)
                dec_skip = tok.decode(ids_sp, skip_special_tokens=True)
                want = s if style == "llama3" else unicodedata.normalize("NFC", s)
                nroundtrip += tok.decode(ids, skip_special_tokens=False) == want
                rec = {"text": s.encode("utf-8").hex(), "ids": ids, "ids_special": ids_sp,
                       "decoded": dec.encode("utf-8").hex(), "decoded_skip": dec_skip.encode("utf-8").hex()}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        # random id sequences: partial UTF-8 sequences decode through from_utf8_lossy (U+FFFD)
        rng = random.Random(7)
        with open(os.path.join(d, "decode.jsonl"), "w", encoding="utf-8") as f:
            for _ in range(60):
                ids = [rng.randrange(tok.get_vocab_size()) for _ in range(rng.randint(1, 8))]
                f.write(json.dumps({"ids": ids,
                                    "decoded": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex(),
                                    "decoded_skip": tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex()}) + "\n")
        print(f"{style}: vocab {tok.get_vocab_size()}, {len(strings)} strings, "
              f"{nroundtrip} round-trip exactly, tokenizer.json {len(text.encode())} bytes")
        bases[style] = json.loads(text)
        try:  # the folder must also load as a transformers tokenizer (the tiny test model uses one)
            from transformers import AutoTokenizer
            at = AutoTokenizer.from_pretrained(d)
            for s in strings[:60]:
                assert at(s, add_special_tokens=False)["input_ids"] == tok.encode(s, add_special_tokens=False).ids, s
            print(f"{style}: transformers loads it (eos {at.eos_token!r}, pad {at.pad_token!r})")
        except ImportError:
            pass
    tiny = tiny_tokenizer()
    os.makedirs(os.path.join(outdir, "tiny"), exist_ok=True)
    with open(os.path.join(outdir, "tiny", "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(tiny, ensure_ascii=False, separators=(",", ":")) + "\n")
    bases["tiny"] = tiny
    with open(os.path.join(outdir, "probes.jsonl"), "w", encoding="utf-8") as f:
        for base, name, patches in PROBES:
            j = json.loads(json.dumps(bases[base]))
            for path, value in patches:
                set_path(j, path, value)
            tok = Tokenizer.from_str(json.dumps(j))
            cases = []
            for s in PROBE_STRINGS:
                ids_sp = tok.encode(s, add_special_tokens=True).ids
                cases.append({"text": s.encode("utf-8").hex(), "ids": tok.encode(s, add_special_tokens=False).ids,
                              "ids_special": ids_sp,
                              "decoded": tok.decode(ids_sp, skip_special_tokens=False).encode("utf-8").hex()})
            f.write(json.dumps({"base": base, "name": name, "patches": [[p, v] for p, v in patches],
                                "cases": cases}, ensure_ascii=False) + "\n")
    print(f"probes: {len(PROBES)} variants x {len(PROBE_STRINGS)} strings")


if __name__ == "__main__":
    main()
