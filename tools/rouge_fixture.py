#!/usr/bin/env python3
# rostesim: fixtures for llm/eval/rouge.c, written with Google's `rouge-score` (and NLTK's Porter
# stemmer, which it uses).
# SPDX-License-Identifier: GPL-3.0-or-later
#
#   pairs.jsonl  ~400 (target, prediction) pairs, each scored with and without the stemmer:
#                {"target", "prediction", "stem": 0|1, "rouge1": [p, r, f], "rouge2", "rougeL",
#                 "rougeLsum"}. Pairs: real Debian synopses (tests/fixtures/tldr samples)
#                against perturbed copies and other synopses, random word salads with
#                inflected words, multi-line texts (Lsum), punctuation, digits, non-ASCII
#                (U+0130 and U+212A lower to ASCII in Python), empty and symbol-only texts.
#   porter.tsv   word<TAB>stem for ~3000 words (every word of the samples + suffix probes)
#
# Usage (from the repository root): /tmp/venv/bin/python tools/rouge_fixture.py [outdir]
# Default outdir: tests/fixtures/rouge. Deterministic (seeded).
import json
import os
import random
import re
import sys

from nltk.stem import porter
from rouge_score import rouge_scorer

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/rouge"
os.makedirs(out, exist_ok=True)
rng = random.Random(5)

syn, desc = [], []
for f in ("tests/fixtures/tldr/sample_train.jsonl", "tests/fixtures/tldr/sample_test.jsonl"):
    for line in open(f, encoding="utf-8"):
        r = json.loads(line)
        syn.append(r["completion"].strip())
        desc.append(r["prompt"].split("\n", 1)[1].rsplit("\nTL;DR:", 1)[0])

SUFFIXES = ["ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization",
            "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli",
            "logi", "icate", "ative", "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic",
            "able", "ible", "ant", "ement", "ment", "ent", "sion", "tion", "ou", "ism", "ate", "iti", "ous", "ive",
            "ize", "e", "ll", "sses", "ies", "ss", "s", "ied", "eed", "ed", "ing", "y", "ly", "at", "bl", "iz"]
STEMS = ["rel", "condit", "val", "hop", "fil", "tann", "fall", "hiss", "fizz", "fail", "gener", "sens", "radic",
         "digit", "form", "sky", "agre", "feed", "plaster", "bled", "motor", "sing", "conflat", "troubl", "siz",
         "happ", "electr", "hope", "formal", "adopt", "cry", "die", "ly", "ty", "sy", "ski", "pl", "ab", "x",
         "trai", "yell", "boy", "say", "ey", "yy", "syzygy", "analog", "geolog", "bal", "controll", "roll"]
probes = sorted({s + x for s in STEMS for x in SUFFIXES} |
                {"skies", "dying", "lying", "tying", "news", "innings", "inning", "outings", "canning", "howe",
                 "proceed", "exceed", "succeed", "ties", "dies", "died", "tied", "cried", "spied", "sees", "agreed",
                 "feed", "bleed", "generously", "fully", "generalization", "oscillators", "yyyy", "ayyy",
                 "byyye", "abcd", "1234", "abc1ing", "hopping", "hoping", "filing", "filling", "allied"})
words = set(probes)
for t in syn + desc[:40]:
    words.update(re.sub(r"[^a-z0-9]+", " ", t.lower()).split())
st = porter.PorterStemmer()
with open(os.path.join(out, "porter.tsv"), "w", encoding="utf-8") as f:
    for w in sorted(words):
        if len(w) > 2:
            f.write(f"{w}\t{st.stem(w)}\n")

def perturb(s):
    w = s.split()
    k = rng.randrange(4)
    if k == 0 and len(w) > 1:
        del w[rng.randrange(len(w))]
    elif k == 1:
        w.insert(rng.randrange(len(w) + 1), rng.choice(["the", "a", "tool", "library", "for", "and"]))
    elif k == 2 and len(w) > 2:
        i = rng.randrange(len(w) - 1)
        w[i], w[i + 1] = w[i + 1], w[i]
    else:
        w = [x + rng.choice(["s", "ing", "ed", "ly", ""]) for x in w]
    return " ".join(w)

pairs = []
for i in range(150):
    a = syn[i % len(syn)]
    pairs.append((a, perturb(a)))
for i in range(60):
    pairs.append((rng.choice(syn), rng.choice(syn)))
for i in range(60):  # word salads with inflections, repeated words
    vocab = rng.sample(probes, 8) + ["the", "of", "a"]
    t = " ".join(rng.choice(vocab) for _ in range(rng.randrange(1, 15)))
    p = " ".join(rng.choice(vocab) for _ in range(rng.randrange(1, 15)))
    pairs.append((t, p))
for i in range(50):  # multi-line (Lsum), blank lines, sentences in other orders
    sents = [perturb(rng.choice(syn)) for _ in range(rng.randrange(1, 5))]
    psents = [perturb(s) for s in sents]
    rng.shuffle(psents)
    if rng.random() < 0.5:
        psents.append(rng.choice(syn))
    pairs.append(("\n".join(sents), "\n\n".join(psents) if rng.random() < 0.3 else "\n".join(psents)))
for i in range(20):  # descriptions against synopses (long vs short)
    pairs.append((syn[i], desc[i][:200]))
specials = [("", ""), ("", "something"), ("a tool", ""), ("!!! ???", "..."), ("C++ library (v2.0)", "c library v2 0"),
            ("İstanbul KELVIN Kelvin", "istanbul kelvin"), ("naïve café résumé", "naive cafe resume"),
            ("x86_64 GNU/Linux 3.14", "x86 64 gnu linux 3 14"), ("Hello\tWorld\r\nagain", "hello world again"),
            ("the the the the", "the the"), ("a b a b a b", "b a b a"), ("日本語 text", "text"),
            ("\n\nline one\n\nline two\n", "line two\nline one"), ("caresses ponies ties", "caress poni ti"),
            ("relational conditional rational", "relate condition ration"), ("a", "a"), ("A.", "a")]
pairs += specials
scorers = {s: rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=bool(s)) for s in (0, 1)}
with open(os.path.join(out, "pairs.jsonl"), "w", encoding="utf-8") as f:
    for t, p in pairs:
        for s in (0, 1):
            r = scorers[s].score(t, p)
            rec = {"target": t, "prediction": p, "stem": s}
            for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
                rec[k] = [r[k].precision, r[k].recall, r[k].fmeasure]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
print(f"{len(pairs)} pairs x 2, {len(words)} words -> {out}")
