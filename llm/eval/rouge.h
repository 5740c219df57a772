/* rostesim LLM: ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum with the semantics of Google's
 * `rouge-score` package (rouge_scorer.RougeScorer, the default tokenizer):
 *   tokens: Python's str.lower(), every run of characters outside [a-z0-9] is a separator
 *           (non-ASCII letters included; U+0130 lowers to "i" + U+0307 and U+212A to "k",
 *           as in Python), optionally the Porter stemmer (NLTK's NLTK_EXTENSIONS mode, as
 *           rouge-score uses it) on tokens longer than 3 characters;
 *   ROUGE-N: clipped n-gram counts; precision / max(#pred n-grams, 1), recall likewise;
 *   ROUGE-L: longest common subsequence of the token lists (0 when either is empty);
 *   ROUGE-Lsum: texts split on "\n" (empty lines dropped), summary-level union-LCS with
 *           rouge-score's counting that prevents double hits;
 *   F = 2PR / (P + R), 0 when P + R = 0.
 * Invalid UTF-8 bytes count as separators. tests/test_rouge.c checks agreement to 1e-6
 * with rouge-score on a fixture from tools/rouge_fixture.py. */
#ifndef RS_LLM_ROUGE_H
#define RS_LLM_ROUGE_H

#include <stddef.h>

typedef struct { double p, r, f; } rouge_prf;
typedef struct { rouge_prf r1, r2, rl, rlsum; } rouge_scores;

/* Score a prediction against its target (reference). RS_ENOMEM only. */
int rouge_score(const char *target, const char *prediction, int use_stemmer, rouge_scores *out);

/* Tokens of text as rouge-score makes them: *toks (malloc'ed array of malloc'ed strings). */
int rouge_tokenize(const char *text, size_t len, int use_stemmer, char ***toks, size_t *n);
void rouge_tokens_free(char **toks, size_t n);

/* NLTK's PorterStemmer (NLTK_EXTENSIONS) of a lowercase ASCII word; malloc'ed. */
char *rouge_porter_stem(const char *word);

/* Mean of the F-measures over n pairs: sums of r1/r2/rl/rlsum F (out->*.f), P and R means too. */
typedef struct { rouge_scores sum; size_t n; } rouge_acc;
void rouge_acc_add(rouge_acc *a, const rouge_scores *s);
void rouge_acc_mean(const rouge_acc *a, rouge_scores *mean);

#endif
