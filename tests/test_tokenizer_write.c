/* rostesim: llm/text/tokenizer_write.c. The vocabularies and merges of the three fixture
 * tokenizers of tests/fixtures/tok (written by HF `tokenizers`) are written back with
 * tok_write_json; llm/text/tokenizer.c must load the result and encode every golden string of
 * that fixture to the golden ids (with and without special tokens). Also: same spec, same
 * bytes; the spec checks name what is wrong. Run from the repository root. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/text/tokenizer.h"
#include "llm/text/tokenizer_write.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

/* ids of every golden string (both flag settings) equal the fixture's; returns mismatches */
static int golden_mismatches(const tok_tokenizer *t, const char *golden_path, int *nstr)
{
    char *b = fx_read_file(golden_path, NULL);
    int bad = 0;
    *nstr = 0;
    if (!b) return -1;
    char *save = NULL;
    for (char *line = strtok_r(b, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *r = cJSON_Parse(line);
        if (!r) continue;
        size_t n;
        char *text = fx_unhex(cJSON_GetObjectItem(r, "text")->valuestring, &n);
        for (int flags = 0; flags < 2; flags++) {
            const cJSON *want = cJSON_GetObjectItem(r, flags ? "ids_special" : "ids");
            int32_t *ids = NULL;
            size_t m = 0;
            int ok = !tok_encode(t, text, n, flags ? TOK_ADD_SPECIAL : 0, &ids, &m) &&
                     (int)m == cJSON_GetArraySize(want);
            size_t i = 0;
            for (const cJSON *x = want->child; ok && x; x = x->next, i++) ok = ids[i] == (int32_t)x->valuedouble;
            bad += !ok;
            free(ids);
        }
        (*nstr)++;
        free(text);
        cJSON_Delete(r);
    }
    free(b);
    return bad;
}

typedef struct {
    tok_spec spec;
    char **vocab, **ma, **mb, **added;
    int *added_id, *added_special;
} owned_spec;

static void owned_free(owned_spec *o)
{
    for (size_t i = 0; i < o->spec.nvocab; i++) free(o->vocab[i]);
    for (size_t i = 0; i < o->spec.nmerges; i++) { free(o->ma[i]); free(o->mb[i]); }
    for (size_t i = 0; i < o->spec.nadded; i++) free(o->added[i]);
    free(o->vocab); free(o->ma); free(o->mb); free(o->added); free(o->added_id); free(o->added_special);
}

/* The spec of a fixture tokenizer.json (vocab ids must be 0..n-1). */
static int spec_from_json(owned_spec *o, const char *path, tok_pre_style pre, int nfc, const char *bos)
{
    memset(o, 0, sizeof *o);
    char *b = fx_read_file(path, NULL);
    cJSON *j = b ? cJSON_Parse(b) : NULL;
    free(b);
    if (!j) return -1;
    const cJSON *model = cJSON_GetObjectItem(j, "model"), *vocab = cJSON_GetObjectItem(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItem(model, "merges"), *added = cJSON_GetObjectItem(j, "added_tokens");
    size_t nv = (size_t)cJSON_GetArraySize(vocab), nm = (size_t)cJSON_GetArraySize(merges);
    size_t na = (size_t)cJSON_GetArraySize(added);
    o->vocab = calloc(nv, sizeof(char *));
    o->ma = calloc(nm, sizeof(char *));
    o->mb = calloc(nm, sizeof(char *));
    o->added = calloc(na + 1, sizeof(char *));
    o->added_id = calloc(na + 1, sizeof(int));
    o->added_special = calloc(na + 1, sizeof(int));
    for (const cJSON *x = vocab->child; x; x = x->next) {
        int id = (int)x->valuedouble;
        if (id < 0 || (size_t)id >= nv || o->vocab[id]) { cJSON_Delete(j); return -1; }
        o->vocab[id] = strdup(x->string);
    }
    size_t r = 0;
    for (const cJSON *x = merges->child; x; x = x->next, r++) {
        if (cJSON_IsString(x)) {
            const char *sp = strchr(x->valuestring, ' ');
            o->ma[r] = strndup(x->valuestring, (size_t)(sp - x->valuestring));
            o->mb[r] = strdup(sp + 1);
        } else {
            o->ma[r] = strdup(x->child->valuestring);
            o->mb[r] = strdup(x->child->next->valuestring);
        }
    }
    size_t i = 0;
    for (const cJSON *x = added->child; x; x = x->next, i++) {
        o->added[i] = strdup(cJSON_GetObjectItem(x, "content")->valuestring);
        o->added_id[i] = (int)cJSON_GetObjectItem(x, "id")->valuedouble;
        o->added_special[i] = cJSON_IsTrue(cJSON_GetObjectItem(x, "special"));
    }
    cJSON_Delete(j);
    o->spec = (tok_spec){.pre = pre, .nfc = nfc, .nvocab = nv, .vocab = (const char *const *)o->vocab,
                         .nmerges = nm, .merge_a = (const char *const *)o->ma, .merge_b = (const char *const *)o->mb,
                         .nadded = na, .added = (const char *const *)o->added, .added_id = o->added_id,
                         .added_special = o->added_special, .bos_prepend = bos};
    return 0;
}

int main(void)
{
    char tmpl[] = "/tmp/rs_tokw_XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL, "temporary folder");
    if (!tmp) return check_summary("test_tokenizer_write");
    static const struct { const char *dir; tok_pre_style pre; int nfc; const char *bos; } fx[] = {
        {"neox", TOK_PRE_GPT2, 1, NULL},
        {"llama3", TOK_PRE_LLAMA3, 0, "<|begin_of_text|>"},
        {"qwen2", TOK_PRE_QWEN2, 1, NULL},
    };
    char path[512], out[512], out2[512];
    for (int k = 0; k < 3; k++) {
        owned_spec o;
        snprintf(path, sizeof path, "tests/fixtures/tok/%s/tokenizer.json", fx[k].dir);
        int rc = spec_from_json(&o, path, fx[k].pre, fx[k].nfc, fx[k].bos);
        CHECK(rc == 0, "%s: fixture spec read (%zu tokens, %zu merges, %zu added)", fx[k].dir, o.spec.nvocab,
              o.spec.nmerges, o.spec.nadded);
        if (rc) continue;
        snprintf(out, sizeof out, "%s/%s.json", tmp, fx[k].dir);
        snprintf(out2, sizeof out2, "%s/%s-2.json", tmp, fx[k].dir);
        rc = tok_write_json(out, &o.spec);
        CHECK(rc == 0, "%s: tok_write_json %s", fx[k].dir, rc ? rs_last_error() : "");
        tok_tokenizer *t = NULL;
        rc = rc ? rc : tok_load(&t, out);
        CHECK(rc == 0, "%s: written file loads with llm/text/tokenizer.c %s", fx[k].dir, rc ? rs_last_error() : "");
        if (t) {
            int nstr;
            snprintf(path, sizeof path, "tests/fixtures/tok/%s/golden.jsonl", fx[k].dir);
            int bad = golden_mismatches(t, path, &nstr);
            CHECK(bad == 0 && nstr > 100, "%s: %d golden strings x 2 flag settings encode as HF (%d mismatches)",
                  fx[k].dir, nstr, bad);
            CHECK(tok_vocab_size(t) == (int)(o.spec.nvocab > (size_t)o.added_id[o.spec.nadded - 1] + 1
                                             ? o.spec.nvocab : (size_t)o.added_id[o.spec.nadded - 1] + 1),
                  "%s: vocabulary size %d", fx[k].dir, tok_vocab_size(t));
            tok_free(t);
        }
        size_t n1 = 0, n2 = 0;
        tok_write_json(out2, &o.spec);
        char *a = fx_read_file(out, &n1), *b = fx_read_file(out2, &n2);
        CHECK(a && b && n1 == n2 && !memcmp(a, b, n1), "%s: same spec, same bytes (%zu)", fx[k].dir, n1);
        free(a);
        free(b);
        remove(out2);
        if (k == 0) {
            /* spec checks */
            char *keep = o.mb[5];
            o.mb[5] = strdup("zzz-not-a-token");
            rc = tok_write_json(out2, &o.spec);
            CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "merge 5") && strstr(rs_last_error(), "zzz-not-a-token"),
                  "a merge part outside the vocabulary is refused: %s", rs_last_error());
            free(o.mb[5]);
            o.mb[5] = keep;
            char *v = o.vocab[300];
            o.vocab[300] = strdup(o.vocab[299]);
            rc = tok_write_json(out2, &o.spec);
            CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "vocab[300]"), "a repeated token is refused: %s",
                  rs_last_error());
            free(o.vocab[300]);
            o.vocab[300] = v;
            o.spec.bos_prepend = "<nope>";
            rc = tok_write_json(out2, &o.spec);
            CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "<nope>"), "bos_prepend must be an added token: %s",
                  rs_last_error());
            o.spec.bos_prepend = NULL;
            CHECK(access(out2, F_OK) != 0, "nothing is written on error");
        }
        if (!getenv("TOKW_KEEP")) remove(out); /* TOKW_KEEP=1: keep them for tools/bpe_fixture.py --check */
        owned_free(&o);
    }
    tok_pre_style s;
    CHECK(tok_pre_style_parse("llama3", &s) == 0 && s == TOK_PRE_LLAMA3, "preset names parse");
    CHECK(tok_pre_style_parse("bert", &s) == RS_EINVAL && strstr(rs_last_error(), "bert"), "unknown preset: %s",
          rs_last_error());
    snprintf(out, sizeof out, "%s/tokenizer_config.json", tmp);
    CHECK(tok_write_config(out, NULL, "<|endoftext|>", "<|padding|>") == 0, "tok_write_config");
    char *c = fx_read_file(out, NULL);
    cJSON *j = c ? cJSON_Parse(c) : NULL;
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "bos_token")) &&
              !strcmp(cJSON_GetObjectItem(j, "eos_token")->valuestring, "<|endoftext|>"),
          "tokenizer_config.json parses and names eos");
    cJSON_Delete(j);
    free(c);
    remove(out);
    if (getenv("TOKW_KEEP")) printf("written files kept in %s\n", tmp);
    else rmdir(tmp);
    return check_summary("test_tokenizer_write");
}
