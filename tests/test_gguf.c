/* Tests of the GGUF reader (llm/io/gguf.c), the dequantizers (llm/io/gguf_types.c) and the
 * importer (llm/import/gguf_import.c). Fixtures: tests/fixtures/gguf/ (tools/gguf_fixture.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cJSON.h"
#include "llm/io/gguf.h"
#include "llm/import/gguf_import.h"
#include "llm/nn/model.h"
#include "llm/io/safetensors.h"
#include "llm/text/tokenizer.h"
#include "quant/status.h"
#include "tests/check.h"

#define FIX "tests/fixtures/gguf/"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* ------------------------------------------------------------------ dequantization */

static void test_quants(void)
{
    gguf_file *g = NULL;
    int rc = gguf_open(&g, FIX "quants.gguf");
    CHECK(rc == RS_OK, "open quants.gguf: %s", rc ? rs_last_error() : "ok");
    if (rc) return;
    CHECK(gguf_version(g) == 3, "version 3");
    CHECK(gguf_alignment(g) == 32, "default alignment 32");
    static const char *const types[] = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char refname[32];
        snprintf(refname, sizeof refname, "%s.ref", types[k]);
        const gguf_tensor *t = gguf_find_tensor(g, types[k]), *r = gguf_find_tensor(g, refname);
        CHECK(t && r, "%s: tensor and reference present", types[k]);
        if (!t || !r) continue;
        const gguf_type_traits *tr = gguf_type_info(t->type);
        CHECK(tr && !strcmp(tr->name, types[k]), "%s: type id %u is named %s", types[k], t->type, tr ? tr->name : "?");
        CHECK(t->ndim == 2 && t->ne[0] == 512 && t->ne[1] == 2, "%s: dims [512, 2] innermost first", types[k]);
        CHECK(r->type == GGML_F32 && r->nelem == t->nelem, "%s: F32 reference of the same size", types[k]);
        float *x = malloc(t->nelem * sizeof *x), *y = malloc(r->nelem * sizeof *y);
        rc = gguf_tensor_to_f32(g, t, x);
        CHECK(rc == RS_OK, "%s: dequantize", types[k]);
        gguf_tensor_to_f32(g, r, y);
        double maxd = 0, maxr = 0;
        size_t nexact = 0;
        for (size_t i = 0; i < t->nelem; i++) {
            double d = fabs((double)x[i] - (double)y[i]);
            if (d > maxd) maxd = d;
            if (fabs(y[i]) > maxr) maxr = fabs(y[i]);
            nexact += x[i] == y[i];
        }
        /* the reference computes in f32 (numpy) with ggml's formulas: a few ulps of the largest value */
        CHECK(maxd <= 4 * 1.2e-7 * maxr, "%s: max |x - ref| = %.3g (max |ref| %.3g), %zu of %llu bit-identical",
              types[k], maxd, maxr, nexact, (unsigned long long)t->nelem);
        free(x);
        free(y);
    }
    gguf_close(g);
}

/* ------------------------------------------------------------------ malformed files */

/* A tiny GGUF built in memory: one u32 key, one string-array key, two F32 tensors. */
typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n); b->n += n; }
static void put32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put64(buf *b, uint64_t v) { put(b, &v, 8); }
static void putstr(buf *b, const char *s) { put64(b, strlen(s)); put(b, s, strlen(s)); }

typedef struct {
    uint32_t version, t1_type, arr_type, kv_type;
    uint64_t nt, nkv, t1_off, t1_dim0, key_len, arr_n;
    const char *t1_name, *key2;
    int alignment; /* 0: none */
} spec;

static spec base_spec(void)
{
    spec s = {3, GGML_F32, GGUF_STRING, GGUF_U32, 2, 3, 64, 16, 0, 2, "b", "tokenizer.ggml.tokens", 0};
    return s;
}

static void build(buf *b, spec s)
{
    b->n = 0;
    put(b, "GGUF", 4);
    put32(b, s.version);
    put64(b, s.nt);
    put64(b, s.nkv);
    /* kv 0: general.architecture = "llama" */
    putstr(b, "general.architecture"); put32(b, GGUF_STRING); putstr(b, "llama");
    /* kv 1: llama.block_count (u32 unless changed) */
    if (s.key_len) { put64(b, s.key_len); put(b, "llama.block_count", 17); }
    else putstr(b, "llama.block_count");
    put32(b, s.kv_type);
    put32(b, 2);
    /* kv 2: a string array */
    putstr(b, s.key2); put32(b, GGUF_ARRAY); put32(b, s.arr_type); put64(b, s.arr_n);
    putstr(b, "ab"); putstr(b, "cd");
    if (s.alignment) { putstr(b, "general.alignment"); put32(b, GGUF_U32); put32(b, (uint32_t)s.alignment); }
    /* tensor a: F32 [16] at 0; tensor b: [dim0] at t1_off */
    putstr(b, "a"); put32(b, 1); put64(b, 16); put32(b, GGML_F32); put64(b, 0);
    putstr(b, s.t1_name); put32(b, 1); put64(b, s.t1_dim0); put32(b, s.t1_type); put64(b, s.t1_off);
    size_t al = s.alignment ? (size_t)s.alignment : 32;
    while (b->n % al) b->b[b->n++] = 0;
    for (int i = 0; i < 32; i++) { float v = (float)i; put(b, &v, 4); }
}

static int open_spec(spec s, const char *expect, const char *what)
{
    buf b;
    build(&b, s);
    gguf_file *g = NULL;
    int rc = gguf_open_mem(&g, b.b, b.n, "mem.gguf");
    if (!expect) {
        CHECK(rc == RS_OK, "%s: opens (%s)", what, rc ? rs_last_error() : "ok");
    } else {
        const char *e = rs_last_error();
        CHECK(rc != RS_OK && strstr(e, "mem.gguf: offset ") && strstr(e, expect), "%s: rejected: %s", what,
              rc ? e : "(opened)");
    }
    gguf_close(g);
    return rc;
}

static void test_malformed(void)
{
    spec s = base_spec();
    open_spec(s, NULL, "the hand-built file");
    {
        buf b;
        build(&b, s);
        gguf_file *g = NULL;
        if (gguf_open_mem(&g, b.b, b.n, "mem.gguf") == RS_OK) {
            int64_t v = 0;
            char *arch = NULL;
            const gguf_kv *arr = NULL;
            CHECK(gguf_get_int(g, "llama.block_count", 1, &v, NULL) == RS_OK && v == 2, "u32 getter");
            CHECK(gguf_get_str(g, "general.architecture", 1, &arch, NULL) == RS_OK && !strcmp(arch, "llama"), "string getter");
            CHECK(gguf_get_arr(g, "tokenizer.ggml.tokens", 1, &arr) == RS_OK && arr && arr->arr_n == 2, "array getter");
            if (arr) {
                const char *p; size_t n;
                gguf_arr_str(g, arr, 1, &p, &n);
                CHECK(n == 2 && !memcmp(p, "cd", 2), "string array element");
            }
            CHECK(gguf_get_int(g, "general.architecture", 1, &v, NULL) == RS_EINVAL &&
                  strstr(rs_last_error(), "expected an integer"), "wrong type: %s", rs_last_error());
            CHECK(gguf_get_int(g, "llama.nothing", 1, &v, NULL) == RS_EINVAL && strstr(rs_last_error(), "llama.nothing"),
                  "missing required key: %s", rs_last_error());
            int found = 1;
            CHECK(gguf_get_int(g, "llama.nothing", 0, &v, &found) == RS_OK && !found, "missing optional key");
            const gguf_tensor *t = gguf_find_tensor(g, "b");
            CHECK(t && t->offset == gguf_data_offset(g) + 64 && t->nbytes == 64, "tensor b at data + 64");
            free(arch);
            gguf_close(g);
        }
    }
    s = base_spec(); s.version = 1; open_spec(s, "version 1", "version 1");
    s = base_spec(); s.version = 7; open_spec(s, "unknown GGUF version 7", "version 7");
    s = base_spec(); s.nt = (uint64_t)1 << 60; open_spec(s, "tensor count", "tensor count 2^60");
    s = base_spec(); s.nkv = (uint64_t)1 << 62; open_spec(s, "metadata count", "metadata count 2^62");
    s = base_spec(); s.key_len = (uint64_t)1 << 40; open_spec(s, "string length", "key length 2^40");
    s = base_spec(); s.key_len = UINT64_MAX; open_spec(s, "string length", "key length 2^64-1");
    s = base_spec(); s.kv_type = 13; open_spec(s, "unknown value type 13", "value type 13");
    s = base_spec(); s.arr_type = GGUF_ARRAY; open_spec(s, "arrays of arrays", "nested array");
    s = base_spec(); s.arr_type = 99; open_spec(s, "unknown array element type", "array element type 99");
    s = base_spec(); s.arr_n = (uint64_t)1 << 61; open_spec(s, "cannot fit", "array length 2^61");
    s = base_spec(); s.arr_n = 3; open_spec(s, "string length", "array length 3 (reads into the tensor infos)");
    s = base_spec(); s.t1_type = 4; open_spec(s, "unknown ggml type 4", "removed ggml type 4");
    s = base_spec(); s.t1_type = 1000; open_spec(s, "unknown ggml type 1000", "ggml type 1000");
    s = base_spec(); s.t1_type = GGML_Q4_0; open_spec(s, "multiple of 32", "Q4_0 with 16 columns");
    s = base_spec(); s.t1_dim0 = 0; open_spec(s, "dimension 0 is 0", "zero dimension");
    s = base_spec(); s.t1_dim0 = (uint64_t)1 << 39; open_spec(s, "cannot fit", "huge dimension");
    s = base_spec(); s.t1_off = 4096; open_spec(s, "past the end", "offset past the end");
    s = base_spec(); s.t1_off = UINT64_MAX - 31; open_spec(s, "past the end", "offset 2^64-32");
    s = base_spec(); s.t1_off = 33; open_spec(s, "not a multiple of the alignment", "misaligned offset");
    s = base_spec(); s.t1_off = 32; open_spec(s, "overlap", "overlapping tensors");
    s = base_spec(); s.t1_name = "a"; open_spec(s, "appears twice", "duplicate tensor name");
    s = base_spec(); s.key2 = "llama.block_count"; open_spec(s, "appears twice", "duplicate key");
    s = base_spec(); s.nkv = 4; s.alignment = 64; open_spec(s, NULL, "general.alignment 64");
    s = base_spec(); s.nkv = 4; s.alignment = 48; open_spec(s, "power of two", "general.alignment 48");
    {
        buf b;
        build(&b, base_spec());
        memcpy(b.b, "GGUG", 4);
        gguf_file *g = NULL;
        CHECK(gguf_open_mem(&g, b.b, b.n, "mem.gguf") == RS_EINVAL && strstr(rs_last_error(), "not a GGUF file"),
              "bad magic: %s", rs_last_error());
        gguf_close(g);
    }
    gguf_file *g = NULL;
    CHECK(gguf_open(&g, FIX "no_such_file.gguf") == RS_EIO && strstr(rs_last_error(), "no_such_file.gguf"),
          "missing file: %s", rs_last_error());
}

/* Every prefix of a valid file that cuts a byte it needs is rejected with a message. */
static void test_truncated(const char *path)
{
    size_t n;
    unsigned char *full = slurp(path, &n);
    CHECK(full != NULL, "read %s", path);
    if (!full) return;
    gguf_file *g = NULL;
    if (gguf_open_mem(&g, full, n, path) != RS_OK) { CHECK(0, "%s opens", path); free(full); return; }
    /* without tensors the alignment padding after the header is not needed */
    size_t need = gguf_ntensors(g) ? gguf_data_offset(g) : gguf_data_offset(g) - gguf_alignment(g) + 1;
    for (size_t i = 0; i < gguf_ntensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (t->offset + t->nbytes > need) need = t->offset + t->nbytes;
    }
    gguf_close(g);
    size_t bad = 0, nomsg = 0;
    for (size_t len = 0; len < need; len++) {
        /* a copy of exactly len bytes, so that ASan sees any read past the end */
        unsigned char *p = malloc(len ? len : 1);
        memcpy(p, full, len);
        int rc = gguf_open_mem(&g, p, len, path);
        if (rc == RS_OK) { bad++; gguf_close(g); }
        else if (!strstr(rs_last_error(), path) || !strstr(rs_last_error(), "offset")) nomsg++;
        free(p);
    }
    CHECK(bad == 0 && nomsg == 0, "%s: all %zu truncated prefixes rejected (%zu opened, %zu without file/offset)", path,
          need, bad, nomsg);
    free(full);
}

/* Seeded byte flips in the header: never a crash; what opens also dequantizes. */
static void test_fuzz(const char *path, int iters)
{
    size_t n;
    unsigned char *full = slurp(path, &n);
    if (!full) { CHECK(0, "read %s", path); return; }
    gguf_file *g = NULL;
    gguf_open_mem(&g, full, n, path);
    size_t hdr = gguf_data_offset(g);
    gguf_close(g);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int opened = 0, msg = 0;
    unsigned char *p = malloc(n);
    for (int it = 0; it < iters; it++) {
        memcpy(p, full, n);
        int flips = 1 + (int)(x % 4);
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t at = (size_t)(x % hdr);
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            p[at] = (x & 1) ? (unsigned char)(x >> 8) : (unsigned char)(p[at] ^ (1u << ((x >> 8) % 8)));
        }
        size_t len = (x >> 20) % 8 == 0 ? (size_t)((x >> 24) % n) : n; /* sometimes also truncated */
        if (gguf_open_mem(&g, p, len, path) == RS_OK) {
            opened++;
            for (size_t i = 0; i < gguf_ntensors(g); i++) {
                const gguf_tensor *t = gguf_tensor_at(g, i);
                if (t->nelem > (1u << 20)) continue;
                float *y = malloc(t->nelem * sizeof *y);
                gguf_tensor_to_f32(g, t, y);
                free(y);
            }
            gguf_close(g);
        } else if (strstr(rs_last_error(), path)) {
            msg++;
        }
    }
    free(p);
    CHECK(opened + msg == iters, "%s: %d seeded mutations: %d opened, %d rejected naming the file, no crash", path,
          iters, opened, msg);
    free(full);
}

/* ------------------------------------------------------------------ import */

static void rm_dir(const char *dir)
{
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char p[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

static void test_import_model(const char *tmp)
{
    gguf_file *g = NULL;
    int rc = gguf_open(&g, FIX "llama_tiny.gguf");
    CHECK(rc == RS_OK, "open llama_tiny.gguf: %s", rc ? rs_last_error() : "ok");
    if (rc) return;
    llm_config c, ref;
    rc = gguf_import_config(g, &c);
    CHECK(rc == RS_OK, "config from metadata: %s", rc ? rs_last_error() : "ok");
    CHECK(llm_config_load(&ref, FIX "llama_tiny_hf/config.json") == RS_OK, "the HF twin's config loads");
    CHECK(c.arch == LLM_LLAMA && c.d == ref.d && c.n_layer == ref.n_layer && c.n_head == ref.n_head &&
          c.n_kv_head == ref.n_kv_head && c.head_dim == ref.head_dim && c.d_ff == ref.d_ff && c.vocab == ref.vocab &&
          c.max_pos == ref.max_pos && c.tied == ref.tied && c.rot_dim == ref.rot_dim,
          "sizes as the twin's (d %d, layers %d, heads %d/%d, head_dim %d, ff %d, vocab %d, ctx %d, tied %d)", c.d,
          c.n_layer, c.n_head, c.n_kv_head, c.head_dim, c.d_ff, c.vocab, c.max_pos, c.tied);
    CHECK_NEAR(c.rope_theta, ref.rope_theta, 0, "rope theta");
    CHECK_NEAR(c.norm_eps, ref.norm_eps, 1e-12, "rms norm eps (f32 in the file)");
    rc = gguf_import_weights(g, tmp);
    CHECK(rc == RS_OK, "import weights into %s: %s", tmp, rc ? rs_last_error() : "ok");
    gguf_close(g);
    llm_model *a = NULL, *b = NULL;
    CHECK(llm_model_load(&a, tmp) == RS_OK, "imported folder loads: %s", rs_last_error());
    CHECK(llm_model_load(&b, FIX "llama_tiny_hf") == RS_OK, "HF twin loads");
    if (a && b) {
        CHECK(a->nparams == b->nparams, "same parameter count (%zu)", a->nparams);
        size_t ndiff = 0;
        for (size_t i = 0; i < a->nparams && a->nparams == b->nparams; i++) ndiff += a->params[i] != b->params[i];
        CHECK(ndiff == 0, "every parameter bit-identical to the twin's (q/k un-permuted): %zu differ", ndiff);
        st_set *r = NULL;
        if (st_open(&r, FIX "llama_tiny_hf/ref.safetensors") == RS_OK) {
            const st_tensor *tt = st_find(r, "tokens"), *tl = st_find(r, "logits");
            int B = (int)tt->shape[0], T = (int)tt->shape[1];
            float *want = malloc(tl->nelem * sizeof *want);
            st_read_f32(tl, want);
            rc = llm_model_forward(a, tt->data, NULL, B, T, NULL, NULL);
            CHECK(rc == RS_OK, "forward");
            double md = 0, mr = 0;
            for (size_t i = 0; i < tl->nelem; i++) {
                double d = fabs((double)a->logits[i] - want[i]);
                if (d > md) md = d;
                if (fabs(want[i]) > mr) mr = fabs(want[i]);
            }
            CHECK(md <= 1e-4 * mr, "logits of the imported model vs transformers on the twin: max |diff| %.3g, rel %.3g "
                  "(tol 1e-4)", md, md / mr);
            free(want);
            st_close(r);
        }
    }
    llm_model_free(a);
    llm_model_free(b);
}

static int unhex(const char *h, char *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (char)v;
    }
    out[n] = 0;
    return (int)n;
}

/* Encode every golden line's text with the imported tokenizer and compare with "ids" (and
 * with "ids_special" under TOK_ADD_SPECIAL when with_special). */
static void check_golden(const char *tokdir, const char *golden, int with_special, const char *what)
{
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", tokdir);
    tok_tokenizer *t = NULL;
    int rc = tok_load(&t, p);
    CHECK(rc == RS_OK, "%s: imported tokenizer.json loads: %s", what, rc ? rs_last_error() : "ok");
    if (rc) return;
    FILE *f = fopen(golden, "r");
    CHECK(f != NULL, "%s: open %s", what, golden);
    if (!f) { tok_free(t); return; }
    static char line[1 << 16], text[1 << 15];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        const char *mode[2] = {"ids", "ids_special"};
        for (int s = 0; s < 1 + with_special; s++) {
            const cJSON *ids = cJSON_GetObjectItem(j, mode[s]);
            int len = unhex(cJSON_GetObjectItem(j, "text")->valuestring, text);
            int32_t *got = NULL;
            size_t ng = 0;
            int ok = tok_encode(t, text, (size_t)len, s ? TOK_ADD_SPECIAL : 0, &got, &ng) == RS_OK &&
                     ng == (size_t)cJSON_GetArraySize(ids);
            for (size_t k = 0; ok && k < ng; k++) ok = got[k] == cJSON_GetArrayItem(ids, (int)k)->valueint;
            if (!ok && bad++ < 3) printf("  mismatch (%s) on text %s\n", mode[s], cJSON_GetObjectItem(j, "text")->valuestring);
            free(got);
            n++;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    tok_free(t);
    CHECK(n > 0 && bad == 0, "%s: %d golden encodings of the HF tokenizer reproduced (%d differ)", what, n, bad);
}

static void test_import_tokenizer(const char *tmp)
{
    static const struct { const char *gguf, *golden; int special; const char *what; } cases[] = {
        {FIX "llama_tiny.gguf", FIX "tok_smollm.jsonl", 0, "smollm (digits + GPT-2 byte level)"},
        {FIX "tok_llama3.gguf", "tests/fixtures/tok/llama3/golden.jsonl", 1, "llama-bpe (Llama-3, BOS prepended)"},
        {FIX "tok_qwen2.gguf", "tests/fixtures/tok/qwen2/golden.jsonl", 0, "qwen2 (NFC)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gguf_file *g = NULL;
        int rc = gguf_open(&g, cases[i].gguf);
        if (!rc) rc = gguf_import_tokenizer(g, tmp);
        CHECK(rc == RS_OK, "%s: import tokenizer: %s", cases[i].what, rc ? rs_last_error() : "ok");
        gguf_close(g);
        if (!rc) check_golden(tmp, cases[i].golden, cases[i].special, cases[i].what);
    }
}

/* A fixture with one byte string replaced by another of the same length. */
static int open_patched(const char *path, const char *from, const char *to, unsigned char **bytes, gguf_file **g)
{
    size_t n;
    *bytes = slurp(path, &n);
    *g = NULL;
    size_t fl = strlen(from);
    for (size_t i = 0; *bytes && i + fl <= n; i++)
        if (!memcmp(*bytes + i, from, fl)) { memcpy(*bytes + i, to, fl); break; }
    return gguf_open_mem(g, *bytes, n, path);
}

static void test_import_errors(const char *tmp)
{
    unsigned char *b;
    gguf_file *g;
    int rc = open_patched(FIX "tok_qwen2.gguf", "qwen2", "qwenX", &b, &g);
    if (!rc) rc = gguf_import_tokenizer(g, tmp);
    CHECK(rc == RS_ENOTSUP && strstr(rs_last_error(), "'qwenX'") && strstr(rs_last_error(), "smollm") &&
          strstr(rs_last_error(), "llama-bpe"), "unknown pre-tokenizer name lists the known ones: %s", rs_last_error());
    gguf_close(g); free(b);
    rc = open_patched(FIX "tok_qwen2.gguf", "gpt2", "gptX", &b, &g);
    if (!rc) rc = gguf_import_tokenizer(g, tmp);
    CHECK(rc == RS_ENOTSUP && strstr(rs_last_error(), "'gptX'"), "tokenizer model other than gpt2: %s", rs_last_error());
    gguf_close(g); free(b);
    rc = open_patched(FIX "llama_tiny.gguf", "blk.1.ffn_up.weight", "blk.1.ffn_up.weighX", &b, &g);
    if (!rc) rc = gguf_import_weights(g, tmp);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "'blk.1.ffn_up.weight' is missing"), "missing tensor: %s",
          rs_last_error());
    gguf_close(g); free(b);
    rc = open_patched(FIX "llama_tiny.gguf", "llama", "llamo", &b, &g); /* the first "llama" in the file is the architecture */
    if (!rc) rc = gguf_import_weights(g, tmp);
    CHECK(rc == RS_ENOTSUP && strstr(rs_last_error(), "'llamo'"), "another architecture is refused: %s", rs_last_error());
    gguf_close(g); free(b);
    rc = open_patched(FIX "llama_tiny.gguf", "llama.block_count", "llama.block_counX", &b, &g);
    if (!rc) rc = gguf_import_weights(g, tmp);
    CHECK(rc == RS_EINVAL && strstr(rs_last_error(), "'llama.block_count' is missing"), "missing metadata: %s",
          rs_last_error());
    gguf_close(g); free(b);
    /* a NaN (then an infinity) in an F32 or F16 tensor: refused naming the tensor */
    for (int k = 0; k < 2; k++) {
        size_t n;
        b = slurp(FIX "llama_tiny.gguf", &n);
        g = NULL;
        rc = b ? gguf_open_mem(&g, b, n, "nan.gguf") : RS_EIO;
        const gguf_tensor *t = NULL;
        for (size_t i = 0; !rc && i < gguf_ntensors(g) && !t; i++) {
            const gguf_tensor *c = gguf_tensor_at(g, i);
            if (c->type == GGML_F32 || c->type == GGML_F16) t = c;
        }
        if (t && t->type == GGML_F32) memcpy(b + t->offset + 4, k ? "\x00\x00\x80\x7f" : "\x00\x00\xc0\x7f", 4);
        if (t && t->type == GGML_F16) memcpy(b + t->offset + 2, k ? "\x00\x7c" : "\x00\x7e", 2);
        if (t) rc = gguf_import_weights(g, tmp);
        CHECK(t && rc == RS_ENUMERIC && strstr(rs_last_error(), t->name) && strstr(rs_last_error(), "element 1 of") &&
              strstr(rs_last_error(), k ? "infinite" : "NaN"), "%s in a tensor is refused naming it: %s",
              k ? "an infinity" : "a NaN", rs_last_error());
        gguf_close(g); free(b);
    }
}

int main(void)
{
    char tmp[] = "/tmp/test_gguf_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    test_import_model(tmp);
    test_import_tokenizer(tmp);
    test_import_errors(tmp);
    rm_dir(tmp);
    test_quants();
    test_malformed();
    test_truncated(FIX "quants.gguf");
    test_truncated(FIX "tok_qwen2.gguf");
    test_fuzz(FIX "quants.gguf", 3000);
    test_fuzz(FIX "tok_qwen2.gguf", 1000);
    return check_summary("test_gguf");
}
