/* rostesim: llm/text/bpe_train.c against HF `tokenizers`' BpeTrainer (tools/bpe_fixture.py): on
 * the same corpus and settings (NFC, <|endoftext|>, byte-level alphabet, vocab 800), for the
 * three pre-tokenizer presets, the merges are HF's, in HF's order; the tokenizer.json we
 * write from them encodes HF's golden texts to HF's ids through llm/text/tokenizer.c. Also:
 * determinism, the vocabulary layout, a too-small vocabulary refused. Run from the
 * repository root. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "llm/text/bpe_train.h"
#include "llm/text/tokenizer.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

#define FX "tests/fixtures/bpe/"

int main(void)
{
    size_t clen = 0;
    char *corpus = fx_read_file(FX "corpus.txt", &clen);
    CHECK(corpus != NULL, "corpus present (%zu bytes)", clen);
    if (!corpus) return check_summary("test_bpe_train");
    static const char *special[] = {"<|endoftext|>"};
    static const char *names[] = {"gpt2", "llama3", "qwen2"};
    for (int p = 0; p < 3; p++) {
        bpe_train_opts o = {(tok_pre_style)p, 1, 800, 1, special, 0};
        bpe_result r;
        int rc = bpe_train(corpus, clen, &o, &r);
        CHECK(rc == 0 && r.nvocab == 800, "%s: trained %zu tokens, %zu merges from %zu words (%zu distinct) %s", names[p],
              r.nvocab, r.nmerges, r.ntokens, r.nwords, rc ? rs_last_error() : "");
        if (rc) continue;
        CHECK(!strcmp(r.vocab[0], "<|endoftext|>") && !strcmp(r.vocab[1], "!") && !strcmp(r.vocab[256], "\xc5\x83"),
              "%s: special token first, then the byte alphabet in code-point order ('!' .. U+0143)", names[p]);
        char path[256];
        snprintf(path, sizeof path, FX "%s.merges.jsonl", names[p]);
        char *m = fx_read_file(path, NULL);
        size_t k = 0, first_bad = (size_t)-1;
        for (char *l = m ? strtok(m, "\n") : NULL; l; l = strtok(NULL, "\n"), k++) {
            cJSON *x = cJSON_Parse(l);
            const char *a = cJSON_GetArrayItem(x, 0)->valuestring, *b = cJSON_GetArrayItem(x, 1)->valuestring;
            if (first_bad == (size_t)-1 && (k >= r.nmerges || strcmp(a, r.merge_a[k]) || strcmp(b, r.merge_b[k])))
                first_bad = k;
            cJSON_Delete(x);
        }
        free(m);
        CHECK(k > 500 && k == r.nmerges && first_bad == (size_t)-1, "%s: %zu merges equal HF's in rank order (HF: %zu; "
              "first difference at rank %zd)", names[p], r.nmerges, k, (ssize_t)first_bad);
        /* our tokenizer.json, through llm/text/tokenizer.c, against HF's encodings */
        int aid[1], asp[1];
        tok_spec s;
        bpe_result_spec(&r, &o, &s, aid, asp);
        char *json = NULL;
        size_t jn = 0;
        tok_tokenizer *t = NULL;
        rc = tok_write_json_buf(&s, &json, &jn);
        if (!rc) rc = tok_parse(&t, json, jn, "trained");
        CHECK(rc == 0, "%s: trained tokenizer.json loads %s", names[p], rc ? rs_last_error() : "");
        snprintf(path, sizeof path, FX "%s.golden.jsonl", names[p]);
        char *g = fx_read_file(path, NULL);
        int n = 0, bad = 0;
        for (char *l = g && t ? strtok(g, "\n") : NULL; l; l = strtok(NULL, "\n"), n++) {
            cJSON *x = cJSON_Parse(l);
            const char *text = cJSON_GetObjectItem(x, "text")->valuestring;
            const cJSON *want = cJSON_GetObjectItem(x, "ids");
            int32_t *ids = NULL;
            size_t ni = 0;
            int ok = !tok_encode(t, text, strlen(text), 0, &ids, &ni) && (int)ni == cJSON_GetArraySize(want);
            size_t i = 0;
            for (const cJSON *y = want->child; ok && y; y = y->next, i++) ok = ids[i] == (int32_t)y->valuedouble;
            bad += !ok;
            free(ids);
            cJSON_Delete(x);
        }
        free(g);
        CHECK(n >= 40 && bad == 0, "%s: %d test texts encode to HF's ids (%d differ)", names[p], n, bad);
        /* determinism */
        bpe_result r2;
        char *json2 = NULL;
        size_t jn2 = 0;
        rc = bpe_train(corpus, clen, &o, &r2);
        tok_spec s2;
        if (!rc) bpe_result_spec(&r2, &o, &s2, aid, asp);
        if (!rc) rc = tok_write_json_buf(&s2, &json2, &jn2);
        CHECK(!rc && jn == jn2 && !memcmp(json, json2, jn), "%s: same corpus, same tokenizer.json bytes", names[p]);
        free(json2);
        if (!rc) bpe_result_free(&r2);
        free(json);
        tok_free(t);
        bpe_result_free(&r);
    }
    bpe_train_opts o = {TOK_PRE_GPT2, 1, 200, 1, special, 0};
    bpe_result r;
    int rc = bpe_train(corpus, clen, &o, &r);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "200"), "vocabulary below the alphabet refused: %s", rs_last_error());
    const char bad_utf8[] = "fine line\nbad \xff byte\n";
    o.vocab_size = 300;
    rc = bpe_train(bad_utf8, sizeof bad_utf8 - 1, &o, &r);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "line 2"), "invalid UTF-8 names the line: %s", rs_last_error());
    free(corpus);
    return check_summary("test_bpe_train");
}
