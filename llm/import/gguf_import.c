/* rostesim LLM: llama-architecture GGUF -> Hugging Face checkpoint folder (see
 * llm/import/gguf_import.h). */
#include "llm/import/gguf_import.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"
#include "llm/io/safetensors.h"
#include "llm/text/tokenizer_write.h"
#include "quant/status.h"

/* ------------------------------------------------------------------ config */

static int get_pos_int(const gguf_file *g, const char *key, int required, int *out)
{
    int64_t v = 0;
    int found = 0;
    int rc = gguf_get_int(g, key, required, &v, &found);
    if (rc || !found) return rc;
    if (v < 1 || v > (1 << 30))
        return RS_ERROR(RS_EINVAL, "%s: metadata '%s' = %lld is out of range (1..2^30)", gguf_path(g), key, (long long)v);
    *out = (int)v;
    return RS_OK;
}

static int tok_id(const gguf_file *g, const char *key, int *out)
{
    int64_t v = -1;
    int found = 0;
    *out = -1;
    int rc = gguf_get_int(g, key, 0, &v, &found);
    if (rc || !found) return rc;
    if (v < 0 || v > (1 << 30))
        return RS_ERROR(RS_EINVAL, "%s: metadata '%s' = %lld is out of range", gguf_path(g), key, (long long)v);
    *out = (int)v;
    return RS_OK;
}

int gguf_import_config(const gguf_file *g, llm_config *c)
{
    const char *path = gguf_path(g);
    memset(c, 0, sizeof *c);
    char *arch = NULL;
    int rc = gguf_get_str(g, "general.architecture", 1, &arch, NULL);
    if (rc) return rc;
    int is_llama = !strcmp(arch, "llama");
    if (!is_llama) {
        rc = RS_ERROR(RS_ENOTSUP, "%s: general.architecture is '%s'; only 'llama' is imported", path, arch);
        free(arch);
        return rc;
    }
    free(arch);
    c->arch = LLM_LLAMA;
    c->act = LLM_ACT_SILU;
    c->rope_type = LLM_ROPE_DEFAULT;
    c->rope_factor = 1;
    c->n_kv_head = 0;
    int rot = 0;
    if ((rc = get_pos_int(g, "llama.block_count", 1, &c->n_layer)) ||
        (rc = get_pos_int(g, "llama.embedding_length", 1, &c->d)) ||
        (rc = get_pos_int(g, "llama.feed_forward_length", 1, &c->d_ff)) ||
        (rc = get_pos_int(g, "llama.attention.head_count", 1, &c->n_head)) ||
        (rc = get_pos_int(g, "llama.attention.head_count_kv", 0, &c->n_kv_head)) ||
        (rc = get_pos_int(g, "llama.context_length", 1, &c->max_pos)) ||
        (rc = get_pos_int(g, "llama.attention.key_length", 0, &c->head_dim)) ||
        (rc = get_pos_int(g, "llama.rope.dimension_count", 0, &rot)))
        return rc;
    if (!c->n_kv_head) c->n_kv_head = c->n_head;
    if (!c->head_dim) {
        if (c->d % c->n_head)
            return RS_ERROR(RS_EINVAL, "%s: llama.embedding_length %d is not a multiple of llama.attention.head_count %d",
                            path, c->d, c->n_head);
        c->head_dim = c->d / c->n_head;
    }
    int vlen = 0;
    if ((rc = get_pos_int(g, "llama.attention.value_length", 0, &vlen))) return rc;
    if (vlen && vlen != c->head_dim)
        return RS_ERROR(RS_ENOTSUP, "%s: llama.attention.value_length %d differs from the key length %d", path, vlen,
                        c->head_dim);
    if (rot && rot != c->head_dim)
        return RS_ERROR(RS_ENOTSUP, "%s: llama.rope.dimension_count %d: partial rotary (head_dim %d) is not supported for llama",
                        path, rot, c->head_dim);
    c->rot_dim = c->head_dim;
    c->rope_theta = 10000.0;
    if ((rc = gguf_get_float(g, "llama.rope.freq_base", 0, &c->rope_theta, NULL))) return rc;
    c->norm_eps = 1e-5;
    if ((rc = gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", 0, &c->norm_eps, NULL))) return rc;
    char *scaling = NULL;
    int found = 0;
    if ((rc = gguf_get_str(g, "llama.rope.scaling.type", 0, &scaling, &found))) return rc;
    if (found && strcmp(scaling, "none")) {
        rc = RS_ERROR(RS_ENOTSUP, "%s: llama.rope.scaling.type '%s' is not supported (only 'none')", path, scaling);
        free(scaling);
        return rc;
    }
    free(scaling);
    double sf = 1;
    if ((rc = gguf_get_float(g, "llama.rope.scaling.factor", 0, &sf, &found))) return rc;
    if (found && sf != 1)
        return RS_ERROR(RS_ENOTSUP, "%s: llama.rope.scaling.factor %g is not supported", path, sf);
    if (gguf_find_tensor(g, "rope_freqs.weight"))
        return RS_ERROR(RS_ENOTSUP, "%s: tensor 'rope_freqs.weight' (Llama-3 rope scaling factors) is not supported", path);
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return RS_ERROR(RS_EINVAL, "%s: tensor 'token_embd.weight' is missing", path);
    if (emb->ndim != 2 || emb->ne[0] != (uint64_t)c->d || emb->ne[1] > (1u << 24))
        return RS_ERROR(RS_EINVAL, "%s: tensor 'token_embd.weight' has dims [%llu, %llu], expected [%d, vocab]", path,
                        (unsigned long long)emb->ne[0], (unsigned long long)emb->ne[1], c->d);
    c->vocab = (int)emb->ne[1];
    c->tied = gguf_find_tensor(g, "output.weight") == NULL;
    c->qkv_bias = gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->o_bias = gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
    c->mlp_bias = gguf_find_tensor(g, "blk.0.ffn_up.bias") != NULL;
    if ((rc = tok_id(g, "tokenizer.ggml.bos_token_id", &c->bos_id)) ||
        (rc = tok_id(g, "tokenizer.ggml.eos_token_id", &c->eos_id)) ||
        (rc = tok_id(g, "tokenizer.ggml.padding_token_id", &c->pad_id)))
        return rc;
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
    if ((rc = llm_config_check(c)))
        return RS_ERROR(rc, "%s: the metadata describe an inconsistent model: %s", path, rs_last_error());
    return RS_OK;
}

/* ------------------------------------------------------------------ weights */

typedef enum { P_NONE = 0, P_Q, P_K } perm_kind;

typedef struct {
    char gname[64], hname[96];
    int ndim;
    int64_t shape[2];   /* HF shape (out, in) */
    perm_kind perm;
    int optional;       /* absent is fine (then not written) */
    const gguf_tensor *t;
    size_t off;
} map_entry;

static void add(map_entry *e, size_t *n, const char *gname, const char *hname, int ndim, int64_t s0, int64_t s1,
                perm_kind perm)
{
    map_entry *x = &e[(*n)++];
    snprintf(x->gname, sizeof x->gname, "%s", gname);
    snprintf(x->hname, sizeof x->hname, "%s", hname);
    x->ndim = ndim;
    x->shape[0] = s0;
    x->shape[1] = s1;
    x->perm = perm;
}

/* Rows of one head stored interleaved (GGUF: row 2j + i) back to rotate-half order (HF: row
 * i * hd/2 + j), for every head; `cols` floats per row (1 for a bias). */
static void unpermute(float *x, int nheads, int hd, size_t cols, float *tmp)
{
    int half = hd / 2;
    for (int h = 0; h < nheads; h++) {
        float *head = x + (size_t)h * hd * cols;
        memcpy(tmp, head, (size_t)hd * cols * sizeof *tmp);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < half; j++)
                memcpy(head + (size_t)(i * half + j) * cols, tmp + (size_t)(2 * j + i) * cols, cols * sizeof *tmp);
    }
}

int gguf_import_weights(const gguf_file *g, const char *dir)
{
    const char *path = gguf_path(g);
    llm_config c;
    int rc = gguf_import_config(g, &c);
    if (rc) return rc;
    const int64_t C = c.d, Q = (int64_t)c.n_head * c.head_dim, KV = (int64_t)c.n_kv_head * c.head_dim, F = c.d_ff;
    size_t cap = 3 + (size_t)c.n_layer * 16;
    map_entry *e = calloc(cap, sizeof *e);
    if (!e) return RS_ERROR(RS_ENOMEM, "out of memory");
    size_t n = 0;
    add(e, &n, "token_embd.weight", "model.embed_tokens.weight", 2, c.vocab, C, P_NONE);
    for (int l = 0; l < c.n_layer; l++) {
        char gn[64], hn[96];
#define L(gs, hs, nd, s0, s1, p, opt)                                                        \
    do {                                                                                     \
        snprintf(gn, sizeof gn, "blk.%d.%s", l, gs);                                         \
        snprintf(hn, sizeof hn, "model.layers.%d.%s", l, hs);                                \
        add(e, &n, gn, hn, nd, s0, s1, p);                                                   \
        e[n - 1].optional = opt;                                                             \
    } while (0)
        L("attn_norm.weight", "input_layernorm.weight", 1, C, 0, P_NONE, 0);
        L("attn_q.weight", "self_attn.q_proj.weight", 2, Q, C, P_Q, 0);
        L("attn_k.weight", "self_attn.k_proj.weight", 2, KV, C, P_K, 0);
        L("attn_v.weight", "self_attn.v_proj.weight", 2, KV, C, P_NONE, 0);
        L("attn_output.weight", "self_attn.o_proj.weight", 2, C, Q, P_NONE, 0);
        L("ffn_norm.weight", "post_attention_layernorm.weight", 1, C, 0, P_NONE, 0);
        L("ffn_gate.weight", "mlp.gate_proj.weight", 2, F, C, P_NONE, 0);
        L("ffn_up.weight", "mlp.up_proj.weight", 2, F, C, P_NONE, 0);
        L("ffn_down.weight", "mlp.down_proj.weight", 2, C, F, P_NONE, 0);
        if (c.qkv_bias) {
            L("attn_q.bias", "self_attn.q_proj.bias", 1, Q, 0, P_Q, 0);
            L("attn_k.bias", "self_attn.k_proj.bias", 1, KV, 0, P_K, 0);
            L("attn_v.bias", "self_attn.v_proj.bias", 1, KV, 0, P_NONE, 0);
        }
        if (c.o_bias) L("attn_output.bias", "self_attn.o_proj.bias", 1, C, 0, P_NONE, 0);
        if (c.mlp_bias) {
            L("ffn_gate.bias", "mlp.gate_proj.bias", 1, F, 0, P_NONE, 0);
            L("ffn_up.bias", "mlp.up_proj.bias", 1, F, 0, P_NONE, 0);
            L("ffn_down.bias", "mlp.down_proj.bias", 1, C, 0, P_NONE, 0);
        }
#undef L
    }
    add(e, &n, "output_norm.weight", "model.norm.weight", 1, C, 0, P_NONE);
    if (!c.tied) add(e, &n, "output.weight", "lm_head.weight", 2, c.vocab, C, P_NONE);

    /* every mapped tensor present with its shape (GGUF dims are the HF shape reversed) */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_find_tensor(g, e[i].gname);
        if (!t) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' is missing", path, e[i].gname);
            goto done;
        }
        int ok = t->ndim == e[i].ndim && t->ne[0] == (uint64_t)(e[i].ndim == 2 ? e[i].shape[1] : e[i].shape[0]) &&
                 (e[i].ndim == 1 || t->ne[1] == (uint64_t)e[i].shape[0]);
        if (!ok) {
            rc = RS_ERROR(RS_EINVAL, "%s: tensor '%s' has %d dims [%llu, %llu], expected [%lld%s%lld]", path, e[i].gname,
                          t->ndim, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                          (long long)(e[i].ndim == 2 ? e[i].shape[1] : e[i].shape[0]), e[i].ndim == 2 ? ", " : "",
                          e[i].ndim == 2 ? (long long)e[i].shape[0] : 0LL);
            goto done;
        }
        const gguf_type_traits *tr = gguf_type_info(t->type);
        if (!tr || !tr->to_f32) {
            rc = RS_ERROR(RS_ENOTSUP, "%s: tensor '%s' has type %s, which cannot be dequantized here (supported: %s)",
                          path, t->name, tr ? tr->name : "unknown", gguf_supported_types());
            goto done;
        }
        e[i].t = t;
        e[i].off = total;
        total += (size_t)t->nelem;
    }
    /* nothing unmapped */
    for (size_t k = 0; k < gguf_ntensors(g); k++) {
        const char *name = gguf_tensor_at(g, k)->name;
        int used = 0;
        for (size_t i = 0; i < n && !used; i++) used = !strcmp(e[i].gname, name);
        if (!used) {
            rc = RS_ERROR(RS_ENOTSUP, "%s: tensor '%s' is not one the llama importer maps", path, name);
            goto done;
        }
    }
    float *buf = malloc((total ? total : 1) * sizeof *buf);
    st_out *o = calloc(n, sizeof *o);
    float *tmp = malloc((size_t)c.head_dim * (size_t)(C > F ? C : F) * sizeof *tmp);
    if (!buf || !o || !tmp) {
        free(buf); free(o); free(tmp);
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory for %zu floats", path, total);
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        float *x = buf + e[i].off;
        rc = gguf_tensor_to_f32(g, e[i].t, x);
        if (rc) break;
        for (size_t k = 0; k < e[i].t->nelem; k++)
            if (!isfinite(x[k])) {
                rc = RS_ERROR(RS_ENUMERIC, "%s: tensor '%s': element %zu of %llu is %s (a corrupt or diverged model)",
                              path, e[i].t->name, k, (unsigned long long)e[i].t->nelem, isnan(x[k]) ? "NaN" : "infinite");
                break;
            }
        if (rc) break;
        size_t cols = e[i].ndim == 2 ? (size_t)e[i].shape[1] : 1;
        if (e[i].perm == P_Q) unpermute(x, c.n_head, c.head_dim, cols, tmp);
        if (e[i].perm == P_K) unpermute(x, c.n_kv_head, c.head_dim, cols, tmp);
        o[i].name = e[i].hname;
        o[i].data = x;
        o[i].ndim = e[i].ndim;
        o[i].shape[0] = e[i].shape[0];
        o[i].shape[1] = e[i].shape[1];
    }
    if (!rc) rc = rs_mkdir_p(dir);
    if (!rc) {
        char p[4200];
        snprintf(p, sizeof p, "%s/config.json", dir);
        rc = llm_config_save(&c, p);
        if (!rc) {
            static const char *const meta[] = {"format", "pt"};
            snprintf(p, sizeof p, "%s/model.safetensors", dir);
            rc = st_write(p, o, n, meta, 1);
        }
    }
    free(buf);
    free(o);
    free(tmp);
done:
    free(e);
    return rc;
}

/* ------------------------------------------------------------------ tokenizer */

/* llama.cpp's tokenizer.ggml.pre names (llama-vocab.cpp) and the regexes it uses for them.
 * STARCODER-like names split every digit first (\p{N} isolated), then apply the GPT-2
 * byte-level regex: written as Split(\p{N}) + ByteLevel(use_regex), which is also what the
 * HF tokenizers of these models do (Digits(individual_digits) + ByteLevel). */
typedef enum { PRE_GPT2, PRE_LLAMA3, PRE_QWEN2, PRE_DIGITS_GPT2 } pre_kind;

static const struct {
    const char *name;
    pre_kind kind;
} pre_table[] = {
    {"llama3", PRE_LLAMA3},     {"llama-v3", PRE_LLAMA3},  {"llama-bpe", PRE_LLAMA3},   {"falcon3", PRE_LLAMA3},
    {"pixtral", PRE_LLAMA3},    {"qwen2", PRE_QWEN2},      {"deepseek-r1-qwen", PRE_QWEN2}, {"megrez", PRE_QWEN2},
    {"gpt-2", PRE_GPT2},        {"phi-2", PRE_GPT2},       {"jina-es", PRE_GPT2},       {"jina-de", PRE_GPT2},
    {"gigachat", PRE_GPT2},     {"jina-v2-es", PRE_GPT2},  {"jina-v2-de", PRE_GPT2},    {"exaone4", PRE_GPT2},
    {"olmo", PRE_GPT2},         {"smollm", PRE_DIGITS_GPT2}, {"starcoder", PRE_DIGITS_GPT2},
    {"refact", PRE_DIGITS_GPT2}, {"command-r", PRE_DIGITS_GPT2}, {"codeshell", PRE_DIGITS_GPT2},
    {"exaone", PRE_DIGITS_GPT2}, {"minerva-7b", PRE_DIGITS_GPT2},
};

const char *gguf_pre_names(void)
{
    static char buf[512];
    if (!buf[0]) {
        size_t o = 0;
        for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? ", " : "", pre_table[i].name);
    }
    return buf;
}

/* Replace the written pre_tokenizer (a ByteLevel with the GPT-2 regex) by
 * Sequence[Split(\p{N}, Isolated), that ByteLevel]. */
static int wrap_digits(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    int rc = llm_read_file(path, (size_t)1 << 30, &text, &len);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *bl = j ? cJSON_DetachItemFromObjectCaseSensitive(j, "pre_tokenizer") : NULL;
    const cJSON *type = bl ? cJSON_GetObjectItemCaseSensitive(bl, "type") : NULL;
    if (!bl || !cJSON_IsString(type) || strcmp(type->valuestring, "ByteLevel")) {
        cJSON_Delete(bl);
        cJSON_Delete(j);
        return RS_ERROR(RS_EINVAL, "%s: expected a ByteLevel pre_tokenizer to wrap", path);
    }
    cJSON *seq = cJSON_CreateObject(), *list = cJSON_CreateArray(), *split = cJSON_CreateObject(),
          *pat = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(pat, "Regex", "\\p{N}");
    cJSON_AddItemToObject(split, "pattern", pat);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(list, split);
    cJSON_AddItemToArray(list, bl);
    cJSON_AddItemToObject(seq, "pretokenizers", list);
    cJSON_AddItemToObject(j, "pre_tokenizer", seq);
    return llm_json_write(path, j, 0);
}

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

int gguf_import_tokenizer(const gguf_file *g, const char *dir)
{
    const char *path = gguf_path(g);
    char *model = NULL, *pre = NULL;
    int rc = gguf_get_str(g, "tokenizer.ggml.model", 1, &model, NULL);
    if (rc) return rc;
    if (strcmp(model, "gpt2")) {
        rc = RS_ERROR(RS_ENOTSUP, "%s: tokenizer.ggml.model is '%s'; only 'gpt2' (byte-level BPE) is imported", path, model);
        free(model);
        return rc;
    }
    free(model);
    if ((rc = gguf_get_str(g, "tokenizer.ggml.pre", 1, &pre, NULL))) return rc;
    int kind = -1;
    for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++)
        if (!strcmp(pre, pre_table[i].name)) kind = (int)pre_table[i].kind;
    if (kind < 0) {
        rc = RS_ERROR(RS_ENOTSUP, "%s: tokenizer.ggml.pre '%s' is not a known pre-tokenizer (known: %s)", path, pre,
                      gguf_pre_names());
        free(pre);
        return rc;
    }
    free(pre);
    const gguf_kv *tokens = NULL, *merges = NULL, *types = NULL;
    if ((rc = gguf_get_arr(g, "tokenizer.ggml.tokens", 1, &tokens)) ||
        (rc = gguf_get_arr(g, "tokenizer.ggml.merges", 1, &merges)) ||
        (rc = gguf_get_arr(g, "tokenizer.ggml.token_type", 0, &types)))
        return rc;
    if (tokens->arr_type != GGUF_STRING || merges->arr_type != GGUF_STRING)
        return RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.tokens and .merges must be string arrays", path);
    size_t nv = (size_t)tokens->arr_n, nm = (size_t)merges->arr_n;
    if (nv == 0 || nv > (1u << 24)) return RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.tokens has %zu entries", path, nv);
    if (types && (types->arr_type == GGUF_STRING || types->arr_type == GGUF_F32 || types->arr_type == GGUF_F64 ||
                  types->arr_n != nv))
        return RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.token_type must be an integer array of %zu entries", path, nv);
    int bos, eos, pad, add_bos = kind == PRE_LLAMA3, found = 0;
    if ((rc = tok_id(g, "tokenizer.ggml.bos_token_id", &bos)) || (rc = tok_id(g, "tokenizer.ggml.eos_token_id", &eos)) ||
        (rc = tok_id(g, "tokenizer.ggml.padding_token_id", &pad)) ||
        (rc = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", 0, &add_bos, &found)))
        return rc;
    if (bos >= (int)nv || eos >= (int)nv || pad >= (int)nv)
        return RS_ERROR(RS_EINVAL, "%s: a bos/eos/padding token id (%d/%d/%d) is not below the %zu tokens", path, bos, eos,
                        pad, nv);
    if (add_bos && bos < 0) add_bos = 0;

    /* NUL-terminated copies of every string (one block) */
    size_t bytes = 0;
    for (size_t i = 0; i < nv; i++) { const char *s; size_t l; gguf_arr_str(g, tokens, i, &s, &l); bytes += l + 1; }
    for (size_t i = 0; i < nm; i++) { const char *s; size_t l; gguf_arr_str(g, merges, i, &s, &l); bytes += l + 1; }
    char *pool = malloc(bytes ? bytes : 1);
    char **vocab = malloc(nv * sizeof *vocab), **ma = malloc((nm ? nm : 1) * sizeof *ma),
         **mb = malloc((nm ? nm : 1) * sizeof *mb), **added = malloc(nv * sizeof *added);
    int *added_id = malloc(nv * sizeof *added_id), *added_special = malloc(nv * sizeof *added_special);
    if (!pool || !vocab || !ma || !mb || !added || !added_id || !added_special) {
        rc = RS_ERROR(RS_ENOMEM, "%s: out of memory for the vocabulary", path);
        goto out;
    }
    size_t o = 0, nadded = 0;
    for (size_t i = 0; i < nv; i++) {
        const char *s;
        size_t l;
        gguf_arr_str(g, tokens, i, &s, &l);
        if (l == 0 || memchr(s, 0, l)) {
            rc = RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.tokens[%zu] is empty or contains a NUL byte", path, i);
            goto out;
        }
        memcpy(pool + o, s, l);
        pool[o + l] = 0;
        vocab[i] = pool + o;
        o += l + 1;
        int64_t tt = types ? gguf_arr_int(types, i) : TT_NORMAL;
        if (tt == TT_CONTROL || tt == TT_USER_DEFINED) {
            added[nadded] = vocab[i];
            added_id[nadded] = (int)i;
            added_special[nadded] = tt == TT_CONTROL;
            nadded++;
        } else if (tt < TT_NORMAL || tt > TT_BYTE) {
            rc = RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.token_type[%zu] = %lld is not a token type (1..6)", path, i,
                          (long long)tt);
            goto out;
        }
    }
    for (size_t i = 0; i < nm; i++) {
        const char *s;
        size_t l;
        gguf_arr_str(g, merges, i, &s, &l);
        const char *sp = memchr(s, ' ', l);
        if (!sp || sp == s || sp == s + l - 1 || memchr(s, 0, l)) {
            rc = RS_ERROR(RS_EINVAL, "%s: tokenizer.ggml.merges[%zu] is not \"a b\"", path, i);
            goto out;
        }
        memcpy(pool + o, s, l);
        pool[o + l] = 0;
        pool[o + (size_t)(sp - s)] = 0;
        ma[i] = pool + o;
        mb[i] = pool + o + (size_t)(sp - s) + 1;
        o += l + 1;
    }
    tok_spec spec = {0};
    spec.pre = kind == PRE_LLAMA3 ? TOK_PRE_LLAMA3 : kind == PRE_QWEN2 ? TOK_PRE_QWEN2 : TOK_PRE_GPT2;
    spec.nfc = kind == PRE_QWEN2; /* Qwen2's HF tokenizer normalises to NFC */
    spec.nvocab = nv;
    spec.vocab = (const char *const *)vocab;
    spec.nmerges = nm;
    spec.merge_a = (const char *const *)ma;
    spec.merge_b = (const char *const *)mb;
    spec.nadded = nadded;
    spec.added = (const char *const *)added;
    spec.added_id = added_id;
    spec.added_special = added_special;
    spec.bos_prepend = add_bos ? vocab[bos] : NULL;
    char p[4200];
    if ((rc = rs_mkdir_p(dir))) goto out;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if ((rc = tok_write_json(p, &spec))) goto out;
    if (kind == PRE_DIGITS_GPT2 && (rc = wrap_digits(p))) goto out;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    rc = tok_write_config(p, bos >= 0 ? vocab[bos] : NULL, eos >= 0 ? vocab[eos] : NULL, pad >= 0 ? vocab[pad] : NULL);
out:
    free(pool);
    free(vocab);
    free(ma);
    free(mb);
    free(added);
    free(added_id);
    free(added_special);
    return rc;
}

/* ------------------------------------------------------------------ all of it */

int gguf_import(const char *path, const char *dir, gguf_import_stats *st)
{
    gguf_file *g = NULL;
    int rc = gguf_open(&g, path);
    if (rc) return rc;
    gguf_import_stats s;
    memset(&s, 0, sizeof s);
    /* tensor types with counts */
    size_t o = 0;
    for (uint32_t ty = 0; ty < 64; ty++) {
        size_t cnt = 0;
        for (size_t i = 0; i < gguf_ntensors(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            if (t->type == ty) { cnt++; s.nparams += (size_t)t->nelem; }
        }
        const gguf_type_traits *tr = gguf_type_info(ty);
        if (cnt && tr && o < sizeof s.types)
            o += (size_t)snprintf(s.types + o, sizeof s.types - o, "%s%s x%zu", o ? ", " : "", tr->name, cnt);
    }
    double t0 = omp_get_wtime();
    rc = gguf_import_weights(g, dir);
    double t1 = omp_get_wtime();
    if (!rc) rc = gguf_import_tokenizer(g, dir);
    double t2 = omp_get_wtime();
    s.t_weights = t1 - t0;
    s.t_tokenizer = t2 - t1;
    if (st) *st = s;
    gguf_close(g);
    return rc;
}
