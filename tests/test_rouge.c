/* rostesim: llm/eval/rouge.c against Google's rouge-score (tools/rouge_fixture.py):
 * ROUGE-1/2/L/Lsum precision, recall and F of ~360 pairs with and without the stemmer agree
 * to 1e-6, and NLTK's Porter stemmer (as rouge-score uses it) on ~4900 words exactly.
 * Run from the repository root. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/eval/rouge.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FX "tests/fixtures/rouge/"

int main(void)
{
    char *b = fx_read_file(FX "porter.tsv", NULL);
    CHECK(b != NULL, "porter.tsv present");
    int nw = 0, bad = 0;
    char why[300] = "";
    for (char *save = NULL, *l = b ? strtok_r(b, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(l, '\t');
        if (!tab) continue;
        *tab = 0;
        char *s = rouge_porter_stem(l);
        if (!s || strcmp(s, tab + 1)) {
            if (!bad++) snprintf(why, sizeof why, "; first: %s -> %s, want %s", l, s ? s : "(null)", tab + 1);
        }
        free(s);
        nw++;
    }
    free(b);
    CHECK(nw > 3000 && bad == 0, "Porter stemmer = NLTK's on %d words (%d differ%s)", nw, bad, why);

    b = fx_read_file(FX "pairs.jsonl", NULL);
    CHECK(b != NULL, "pairs.jsonl present");
    static const char *names[4] = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
    int n = 0, nbad = 0, nstem = 0;
    double maxdiff = 0;
    rouge_acc acc = {0};
    for (char *save = NULL, *l = b ? strtok_r(b, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *r = cJSON_Parse(l);
        if (!r) continue;
        const char *t = cJSON_GetObjectItem(r, "target")->valuestring, *p = cJSON_GetObjectItem(r, "prediction")->valuestring;
        int stem = (int)cJSON_GetObjectItem(r, "stem")->valuedouble;
        rouge_scores s;
        int rc = rouge_score(t, p, stem, &s);
        const rouge_prf *got = &s.r1;
        int ok = rc == 0;
        for (int k = 0; k < 4; k++) {
            const cJSON *w = cJSON_GetObjectItem(r, names[k]);
            double want[3] = {cJSON_GetArrayItem(w, 0)->valuedouble, cJSON_GetArrayItem(w, 1)->valuedouble,
                              cJSON_GetArrayItem(w, 2)->valuedouble};
            double g[3] = {got[k].p, got[k].r, got[k].f};
            for (int q = 0; q < 3; q++) {
                double d = fabs(g[q] - want[q]);
                if (d > maxdiff) maxdiff = d;
                if (d > 1e-6) {
                    if (ok && !nbad) printf("  mismatch (stem %d) %s[%d]: %.9f vs %.9f\n  target: %s\n  prediction: %s\n",
                                           stem, names[k], q, g[q], want[q], t, p);
                    ok = 0;
                }
            }
        }
        if (!rc) rouge_acc_add(&acc, &s);
        nbad += !ok;
        nstem += stem;
        n++;
        cJSON_Delete(r);
    }
    free(b);
    CHECK(n > 600 && nstem > 300 && nbad == 0, "%d scored pairs (%d with the stemmer) agree with rouge-score to 1e-6 "
          "(max |diff| %.2g, %d differ)", n, nstem, maxdiff, nbad);
    rouge_scores mean;
    rouge_acc_mean(&acc, &mean);
    CHECK(acc.n == (size_t)n && mean.r1.f > 0 && mean.r1.f < 1 && mean.r1.f >= mean.r2.f, "means: R1 %.4f R2 %.4f RL %.4f RLsum %.4f",
          mean.r1.f, mean.r2.f, mean.rl.f, mean.rlsum.f);
    /* hand checks */
    rouge_scores s;
    rouge_score("the cat sat", "the cat sat", 0, &s);
    CHECK(s.r1.f == 1 && s.r2.f == 1 && s.rl.f == 1 && s.rlsum.f == 1, "identical texts score 1");
    rouge_score("", "anything", 1, &s);
    CHECK(s.r1.f == 0 && s.rl.f == 0 && s.rlsum.f == 0, "empty target scores 0");
    char **tok;
    size_t nt;
    rouge_tokenize("Running-Dogs, İx\xff" "Caresses!", 27, 1, &tok, &nt);
    CHECK(nt == 5 && !strcmp(tok[0], "run") && !strcmp(tok[1], "dog") && !strcmp(tok[2], "i") && !strcmp(tok[3], "x") &&
              !strcmp(tok[4], "caress"),
          "tokens: lowercase, split on non-alphanumerics, stems, invalid byte is a separator");
    rouge_tokens_free(tok, nt);
    return check_summary("test_rouge");
}
