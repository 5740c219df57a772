/* rostesim LLM: Hugging Face config.json for GPT-NeoX, Llama and Qwen2 (llm/io/config.h).
 *
 * Field names and defaults follow transformers' own config classes (GPTNeoXConfig,
 * LlamaConfig, Qwen2Config, version 5.23). RoPE settings are accepted in both
 * spellings: the older top-level ones (rope_theta, rope_scaling, and for GPT-NeoX
 * rotary_pct / rotary_emb_base) and the newer "rope_parameters" dict; where both are
 * present the dict's keys win, as in transformers ("rope_scaling" replaces
 * "rope_parameters" when it is a non-empty object). */
#include "llm/io/config.h"
#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cJSON.h"
#include "quant/status.h"

#define CONFIG_MAX_BYTES ((size_t)16 << 20)

const char *llm_arch_name(llm_arch a)
{
    switch (a) {
    case LLM_GPT_NEOX: return "gpt_neox";
    case LLM_LLAMA: return "llama";
    case LLM_QWEN2: return "qwen2";
    }
    return "unknown";
}

static const char *arch_class(llm_arch a)
{
    switch (a) {
    case LLM_GPT_NEOX: return "GPTNeoXForCausalLM";
    case LLM_LLAMA: return "LlamaForCausalLM";
    case LLM_QWEN2: return "Qwen2ForCausalLM";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ JSON helpers */

typedef struct {
    const char *file; /* prefix of every message */
} ctx;

/* Printable excerpt of an untrusted string. */
static const char *excerpt(char *buf, size_t cap, const char *s) { return llm_quoted(buf, cap, s, strlen(s)); }

/* "a string \"512\"", "a boolean true", "-3", ... for messages. */
static const char *describe(char *buf, size_t cap, const cJSON *v)
{
    char ex[64];
    if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, cap, "a string \"%s\"", excerpt(ex, sizeof ex, v->valuestring));
    else if (cJSON_IsBool(v)) snprintf(buf, cap, "a boolean %s", cJSON_IsTrue(v) ? "true" : "false");
    else snprintf(buf, cap, "%s", llm_json_type(v));
    return buf;
}

/* The member `key` of obj; a JSON null counts as absent. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNull(v) ? NULL : v;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Duplicate keys: cJSON keeps the first, Python's json the last; refuse them. */
static int check_unique_keys(const ctx *c, const cJSON *obj, const char *where)
{
    size_t n = 0, k = 0;
    for (const cJSON *a = obj->child; a; a = a->next) n++;
    if (n < 2) return RS_OK;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) return RS_ERROR(RS_ENOMEM, "%s: out of memory", c->file);
    for (const cJSON *a = obj->child; a; a = a->next) keys[k++] = a->string ? a->string : "";
    qsort(keys, n, sizeof *keys, cmp_str);
    int rc = RS_OK;
    char ex[64];
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            rc = RS_ERROR(RS_EINVAL, "%s: duplicate key '%s'%s%s", c->file, excerpt(ex, sizeof ex, keys[i]),
                          where ? " in " : "", where ? where : "");
    free(keys);
    return rc;
}

/* An integer JSON value >= minv. */
static int int_value(const ctx *c, const cJSON *v, const char *label, int minv, int *out)
{
    char d[96];
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be an integer, not %s", c->file, label,
                        describe(d, sizeof d, v));
    if (v->valuedouble < minv)
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be >= %d, not %s", c->file, label, minv,
                        describe(d, sizeof d, v));
    if (v->valuedouble > INT_MAX)
        return RS_ERROR(RS_EINVAL, "%s: field '%s' = %s is too large", c->file, label, describe(d, sizeof d, v));
    *out = (int)v->valuedouble;
    return RS_OK;
}

/* Integer field `key` (named `label` in messages); `def` when absent unless required. */
static int get_int(const ctx *c, const cJSON *obj, const char *key, const char *label, int required, int def,
                   int minv, int *out)
{
    const cJSON *v = member(obj, key);
    if (!v) {
        if (required) return RS_ERROR(RS_EINVAL, "%s: missing field '%s'", c->file, label);
        *out = def;
        return RS_OK;
    }
    return int_value(c, v, label, minv, out);
}

/* Positive finite number. */
static int pos_value(const ctx *c, const cJSON *v, const char *label, double *out)
{
    char d[96];
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be a number, not %s", c->file, label, describe(d, sizeof d, v));
    if (!(v->valuedouble > 0))
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be positive, not %s", c->file, label,
                        describe(d, sizeof d, v));
    *out = v->valuedouble;
    return RS_OK;
}

static int get_bool(const ctx *c, const cJSON *obj, const char *key, int def, int *out)
{
    char d[96];
    const cJSON *v = member(obj, key);
    if (!v) {
        *out = def;
        return RS_OK;
    }
    if (!cJSON_IsBool(v))
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be true or false, not %s", c->file, key,
                        describe(d, sizeof d, v));
    *out = cJSON_IsTrue(v);
    return RS_OK;
}

/* bos/eos/pad: an integer >= -1 (-1 = none), null, or (Llama-3.1) a list: the first. */
static int get_token_id(const ctx *c, const cJSON *obj, const char *key, int def, int *out)
{
    char label[64];
    const cJSON *v = member(obj, key);
    if (!v) {
        *out = def;
        return RS_OK;
    }
    if (!cJSON_IsArray(v)) return int_value(c, v, key, -1, out);
    int k = 0, first = -1;
    for (const cJSON *e = v->child; e; e = e->next, k++) {
        snprintf(label, sizeof label, "%s[%d]", key, k);
        int id = -1, rc = int_value(c, e, label, 0, &id);
        if (rc) return rc;
        if (k == 0) first = id;
    }
    *out = first;
    return RS_OK;
}

static int get_string(const ctx *c, const cJSON *obj, const char *key, const char *def, const char **out)
{
    char d[96];
    const cJSON *v = member(obj, key);
    if (!v) {
        *out = def;
        return RS_OK;
    }
    if (!cJSON_IsString(v))
        return RS_ERROR(RS_EINVAL, "%s: field '%s' must be a string, not %s", c->file, key, describe(d, sizeof d, v));
    *out = v->valuestring;
    return RS_OK;
}

/* ------------------------------------------------------------------ checks */

static int check_named(const llm_config *k, const char *file)
{
    if (!k) return RS_ERROR(RS_EINVAL, "%s: NULL config", file);
    if (k->arch != LLM_GPT_NEOX && k->arch != LLM_LLAMA && k->arch != LLM_QWEN2)
        return RS_ERROR(RS_EINVAL, "%s: unknown architecture %d", file, (int)k->arch);
    const struct { const char *name; int v; } pos[] = {
        {"vocab_size", k->vocab},           {"hidden_size", k->d},
        {"num_hidden_layers", k->n_layer},  {"num_attention_heads", k->n_head},
        {"num_key_value_heads", k->n_kv_head}, {"head_dim", k->head_dim},
        {"intermediate_size", k->d_ff},     {"max_position_embeddings", k->max_pos},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) return RS_ERROR(RS_EINVAL, "%s: %s must be positive, not %d", file, pos[i].name, pos[i].v);
    if (k->n_head % k->n_kv_head)
        return RS_ERROR(RS_EINVAL, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", file,
                        k->n_head, k->n_kv_head);
    if ((long long)k->n_head * k->head_dim > INT_MAX)
        return RS_ERROR(RS_EINVAL, "%s: num_attention_heads * head_dim overflows", file);
    if (k->arch != LLM_QWEN2 && k->d % k->n_head) /* the validate_architecture of both configs */
        return RS_ERROR(RS_EINVAL, "%s: hidden_size %d is not a multiple of num_attention_heads %d", file, k->d,
                        k->n_head);
    if (k->arch == LLM_GPT_NEOX) {
        if (k->n_kv_head != k->n_head)
            return RS_ERROR(RS_EINVAL, "%s: gpt_neox has num_key_value_heads = num_attention_heads (%d), not %d", file,
                            k->n_head, k->n_kv_head);
        if (k->head_dim * k->n_head != k->d)
            return RS_ERROR(RS_EINVAL, "%s: gpt_neox head_dim must be hidden_size / num_attention_heads = %d, not %d",
                            file, k->d / k->n_head, k->head_dim);
    }
    if (!(isfinite(k->norm_eps) && k->norm_eps > 0))
        return RS_ERROR(RS_EINVAL, "%s: %s must be positive and finite, not %g", file,
                        k->arch == LLM_GPT_NEOX ? "layer_norm_eps" : "rms_norm_eps", k->norm_eps);
    if (k->act != LLM_ACT_GELU && k->act != LLM_ACT_GELU_TANH && k->act != LLM_ACT_SILU)
        return RS_ERROR(RS_EINVAL, "%s: unknown activation %d", file, (int)k->act);
    if (!(isfinite(k->rope_theta) && k->rope_theta > 0))
        return RS_ERROR(RS_EINVAL, "%s: rope_theta must be positive and finite, not %g", file, k->rope_theta);
    if (k->rot_dim < 2 || k->rot_dim % 2 || k->rot_dim > k->head_dim)
        return RS_ERROR(RS_EINVAL, "%s: rotary dims per head %d must be even, >= 2 and <= head_dim %d", file,
                        k->rot_dim, k->head_dim);
    if (k->arch != LLM_GPT_NEOX && k->rot_dim != k->head_dim)
        return RS_ERROR(RS_EINVAL, "%s: %s rotates whole heads: rotary dims %d must equal head_dim %d", file,
                        llm_arch_name(k->arch), k->rot_dim, k->head_dim);
    if (k->rope_type == LLM_ROPE_LLAMA3) {
        if (!(isfinite(k->rope_factor) && k->rope_factor > 0))
            return RS_ERROR(RS_EINVAL, "%s: llama3 rope factor must be positive, not %g", file, k->rope_factor);
        if (!(isfinite(k->rope_low_freq_factor) && k->rope_low_freq_factor > 0))
            return RS_ERROR(RS_EINVAL, "%s: llama3 rope low_freq_factor must be positive, not %g", file,
                            k->rope_low_freq_factor);
        if (!(isfinite(k->rope_high_freq_factor) && k->rope_high_freq_factor > k->rope_low_freq_factor))
            return RS_ERROR(RS_EINVAL, "%s: llama3 rope high_freq_factor %g must exceed low_freq_factor %g", file,
                            k->rope_high_freq_factor, k->rope_low_freq_factor);
        if (k->rope_orig_max_pos <= 0)
            return RS_ERROR(RS_EINVAL, "%s: llama3 rope original_max_position_embeddings must be positive, not %d",
                            file, k->rope_orig_max_pos);
    } else if (k->rope_type != LLM_ROPE_DEFAULT) {
        return RS_ERROR(RS_EINVAL, "%s: unknown rope type %d", file, (int)k->rope_type);
    }
    const struct { const char *name; int v; } flags[] = {
        {"use_parallel_residual", k->parallel_residual}, {"tie_word_embeddings", k->tied},
        {"qkv_bias", k->qkv_bias}, {"o_bias", k->o_bias}, {"mlp_bias", k->mlp_bias},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].v != 0 && flags[i].v != 1)
            return RS_ERROR(RS_EINVAL, "%s: %s must be 0 or 1, not %d", file, flags[i].name, flags[i].v);
    switch (k->arch) {
    case LLM_GPT_NEOX:
        if (k->qkv_bias != k->o_bias || !k->mlp_bias)
            return RS_ERROR(RS_EINVAL,
                            "%s: gpt_neox biases: qkv and output share attention_bias and the MLP always has "
                            "biases (got qkv %d, o %d, mlp %d)",
                            file, k->qkv_bias, k->o_bias, k->mlp_bias);
        break;
    case LLM_LLAMA:
        if (k->qkv_bias != k->o_bias)
            return RS_ERROR(RS_EINVAL, "%s: llama biases: q/k/v and o_proj share attention_bias (got qkv %d, o %d)",
                            file, k->qkv_bias, k->o_bias);
        break;
    case LLM_QWEN2:
        if (k->qkv_bias != 1 || k->o_bias != 0 || k->mlp_bias != 0)
            return RS_ERROR(RS_EINVAL,
                            "%s: qwen2 biases are fixed: q/k/v yes, o_proj and MLP no (got qkv %d, o %d, mlp %d)",
                            file, k->qkv_bias, k->o_bias, k->mlp_bias);
        break;
    }
    if (k->arch != LLM_GPT_NEOX && k->parallel_residual)
        return RS_ERROR(RS_EINVAL, "%s: %s has no parallel residual", file, llm_arch_name(k->arch));
    if (k->bos_id < -1 || k->eos_id < -1 || k->pad_id < -1)
        return RS_ERROR(RS_EINVAL, "%s: token ids must be >= 0 or -1 (none): bos %d, eos %d, pad %d", file, k->bos_id,
                        k->eos_id, k->pad_id);
    return RS_OK;
}

int llm_config_check(const llm_config *c) { return check_named(c, "config"); }

/* ------------------------------------------------------------------ parsing */

static int parse_act(const ctx *c, const char *s, llm_act *out)
{
    char ex[64];
    if (strcmp(s, "gelu") == 0) *out = LLM_ACT_GELU;
    else if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0 || strcmp(s, "gelu_fast") == 0)
        *out = LLM_ACT_GELU_TANH;
    else if (strcmp(s, "silu") == 0 || strcmp(s, "swish") == 0) *out = LLM_ACT_SILU;
    else
        return RS_ERROR(RS_ENOTSUP,
                        "%s: hidden_act '%s' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu)",
                        c->file, excerpt(ex, sizeof ex, s));
    return RS_OK;
}

/* RoPE: the dict ("rope_scaling" when it is a non-empty object, else "rope_parameters")
 * first, then the older top-level keys, then the class defaults. */
static int parse_rope(const ctx *c, const cJSON *root, llm_config *k)
{
    char d[96], label[96], ex[64];
    int rc;
    const cJSON *rs = member(root, "rope_scaling"), *rp = member(root, "rope_parameters");
    if (rs && !cJSON_IsObject(rs))
        return RS_ERROR(RS_EINVAL, "%s: field 'rope_scaling' must be an object or null, not %s", c->file,
                        describe(d, sizeof d, rs));
    if (rp && !cJSON_IsObject(rp))
        return RS_ERROR(RS_EINVAL, "%s: field 'rope_parameters' must be an object or null, not %s", c->file,
                        describe(d, sizeof d, rp));
    const cJSON *dict = rs && rs->child ? rs : rp;
    const char *dn = dict == rs ? "rope_scaling" : "rope_parameters";
    if (dict) {
        if ((rc = check_unique_keys(c, dict, dn))) return rc;
        for (const cJSON *e = dict->child; e; e = e->next)
            if (cJSON_IsObject(e))
                return RS_ERROR(RS_ENOTSUP, "%s: field '%s' holds per-layer RoPE settings ('%s'); not supported",
                                c->file, dn, excerpt(ex, sizeof ex, e->string ? e->string : ""));
    }
    /* theta */
    const cJSON *v = member(dict, "rope_theta");
    if (v) snprintf(label, sizeof label, "%s.rope_theta", dn);
    /* GPTNeoXConfig reads only rotary_emb_base here; a top-level rope_theta or
     * partial_rotary_factor does not reach its rope (transformers 4 and 5 alike) */
    if (!v && k->arch == LLM_GPT_NEOX && (v = member(root, "rotary_emb_base"))) snprintf(label, sizeof label, "rotary_emb_base");
    if (!v && k->arch != LLM_GPT_NEOX && (v = member(root, "rope_theta"))) snprintf(label, sizeof label, "rope_theta");
    k->rope_theta = 10000.0;
    if (v && (rc = pos_value(c, v, label, &k->rope_theta))) return rc;
    /* partial rotary factor */
    double pf = k->arch == LLM_GPT_NEOX ? 0.25 : 1.0;
    v = member(dict, "partial_rotary_factor");
    if (v) snprintf(label, sizeof label, "%s.partial_rotary_factor", dn);
    if (!v && k->arch == LLM_GPT_NEOX && (v = member(root, "rotary_pct"))) snprintf(label, sizeof label, "rotary_pct");
    if (!v && k->arch != LLM_GPT_NEOX && (v = member(root, "partial_rotary_factor")))
        snprintf(label, sizeof label, "partial_rotary_factor");
    if (v) {
        if ((rc = pos_value(c, v, label, &pf))) return rc;
        if (pf > 1)
            return RS_ERROR(RS_EINVAL, "%s: field '%s' must be in (0, 1], not %s", c->file, label,
                            describe(d, sizeof d, v));
        if (k->arch != LLM_GPT_NEOX && pf != 1)
            return RS_ERROR(RS_ENOTSUP, "%s: field '%s' = %s is not supported for %s (it rotates whole heads)",
                            c->file, label, describe(d, sizeof d, v), llm_arch_name(k->arch));
    }
    k->rot_dim = (int)(k->head_dim * pf); /* int(head_dim * partial_rotary_factor), as transformers */
    if (k->rot_dim % 2 || k->rot_dim < 2)
        return RS_ERROR(RS_EINVAL, "%s: head_dim %d * %s %.17g gives %d rotary dims; it must be even and >= 2",
                        c->file, k->head_dim, v ? label : "partial_rotary_factor", pf, k->rot_dim);
    /* type */
    const char *type = "default";
    const char *tl = "rope_type";
    v = member(dict, "rope_type");
    if (!v && (v = member(dict, "type"))) tl = "type";
    snprintf(label, sizeof label, "%s.%s", dn, tl);
    if (v) {
        if (!cJSON_IsString(v))
            return RS_ERROR(RS_EINVAL, "%s: field '%s' must be a string, not %s", c->file, label,
                            describe(d, sizeof d, v));
        type = v->valuestring;
    }
    k->rope_type = LLM_ROPE_DEFAULT;
    k->rope_factor = k->rope_low_freq_factor = k->rope_high_freq_factor = 0;
    k->rope_orig_max_pos = 0;
    if (strcmp(type, "default") == 0) return RS_OK;
    if (strcmp(type, "llama3") != 0)
        return RS_ERROR(RS_ENOTSUP, "%s: %s '%s' is not supported (default, llama3)", c->file, label,
                        excerpt(ex, sizeof ex, type));
    k->rope_type = LLM_ROPE_LLAMA3;
    const struct { const char *key; double *dst; } need[] = {
        {"factor", &k->rope_factor},
        {"low_freq_factor", &k->rope_low_freq_factor},
        {"high_freq_factor", &k->rope_high_freq_factor},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        snprintf(label, sizeof label, "%s.%s", dn, need[i].key);
        v = member(dict, need[i].key);
        if (!v) return RS_ERROR(RS_EINVAL, "%s: missing field '%s' (required by rope_type llama3)", c->file, label);
        if ((rc = pos_value(c, v, label, need[i].dst))) return rc;
    }
    /* a top-level original_max_position_embeddings wins (transformers' standardize_rope_params) */
    if (member(root, "original_max_position_embeddings"))
        return get_int(c, root, "original_max_position_embeddings", "original_max_position_embeddings", 1, 0, 1,
                       &k->rope_orig_max_pos);
    snprintf(label, sizeof label, "%s.original_max_position_embeddings", dn);
    return get_int(c, dict, "original_max_position_embeddings", label, 0, k->max_pos, 1, &k->rope_orig_max_pos);
}

int llm_config_parse(llm_config *cfg, const char *json, size_t len, const char *name)
{
    ctx cx = {name && name[0] ? name : "config.json"};
    const ctx *c = &cx;
    if (!cfg || (!json && len)) return RS_ERROR(RS_EINVAL, "%s: NULL argument", c->file);
    memset(cfg, 0, sizeof *cfg);
    const char *end = NULL;
    cJSON *root = json ? cJSON_ParseWithLengthOpts(json, len, &end, 0) : NULL;
    size_t pos = end && end >= json ? (size_t)(end - json) : 0;
    int trailing = 0;
    if (root) { /* only whitespace may follow */
        while (pos < len && json[pos] && strchr(" \t\r\n", json[pos])) pos++;
        if (pos < len) {
            cJSON_Delete(root);
            root = NULL;
            trailing = 1;
        }
    }
    if (!root) {
        if (pos > len) pos = len;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos; i++) {
            if (json[i] == '\n') line++, col = 1;
            else col++;
        }
        return RS_ERROR(RS_EINVAL, "%s: %s at byte %zu (line %zu, column %zu)", c->file,
                        trailing ? "unexpected characters after the JSON object" : "invalid JSON", pos, line, col);
    }
    llm_config k;
    memset(&k, 0, sizeof k);
    int rc = RS_OK;
    char d[96], ex[64];
    const char *s;
    if (!cJSON_IsObject(root)) {
        rc = RS_ERROR(RS_EINVAL, "%s: top level is %s, not an object", c->file, llm_json_type(root));
        goto done;
    }
    if ((rc = check_unique_keys(c, root, NULL))) goto done;
    const cJSON *mt = member(root, "model_type");
    if (!mt) {
        rc = RS_ERROR(RS_EINVAL, "%s: missing field 'model_type'", c->file);
        goto done;
    }
    if (!cJSON_IsString(mt)) {
        rc = RS_ERROR(RS_EINVAL, "%s: field 'model_type' must be a string, not %s", c->file, describe(d, sizeof d, mt));
        goto done;
    }
    if (strcmp(mt->valuestring, "gpt_neox") == 0) k.arch = LLM_GPT_NEOX;
    else if (strcmp(mt->valuestring, "llama") == 0) k.arch = LLM_LLAMA;
    else if (strcmp(mt->valuestring, "qwen2") == 0) k.arch = LLM_QWEN2;
    else {
        rc = RS_ERROR(RS_ENOTSUP, "%s: model_type '%s' is not supported (gpt_neox, llama, qwen2)", c->file,
                      excerpt(ex, sizeof ex, mt->valuestring));
        goto done;
    }
    const int neox = k.arch == LLM_GPT_NEOX;
    if (member(root, "quantization_config")) {
        rc = RS_ERROR(RS_ENOTSUP, "%s: field 'quantization_config': pre-quantized checkpoints are not supported",
                      c->file);
        goto done;
    }
    if ((rc = get_int(c, root, "vocab_size", "vocab_size", 1, 0, 1, &k.vocab)) ||
        (rc = get_int(c, root, "hidden_size", "hidden_size", 1, 0, 1, &k.d)) ||
        (rc = get_int(c, root, "num_hidden_layers", "num_hidden_layers", 1, 0, 1, &k.n_layer)) ||
        (rc = get_int(c, root, "num_attention_heads", "num_attention_heads", 1, 0, 1, &k.n_head)) ||
        (rc = get_int(c, root, "intermediate_size", "intermediate_size", 1, 0, 1, &k.d_ff)) ||
        (rc = get_int(c, root, "max_position_embeddings", "max_position_embeddings", 0,
                      k.arch == LLM_QWEN2 ? 32768 : 2048, 1, &k.max_pos)))
        goto done;
    /* heads: Qwen2Config's num_key_value_heads default is 32 (not num_attention_heads) */
    if ((rc = get_int(c, root, "num_key_value_heads", "num_key_value_heads", 0,
                      k.arch == LLM_QWEN2 ? 32 : k.n_head, 1, &k.n_kv_head)) ||
        (rc = get_int(c, root, "head_dim", "head_dim", 0, k.d / k.n_head, 1, &k.head_dim)))
        goto done;
    if (k.arch != LLM_QWEN2 && k.d % k.n_head) { /* validate_architecture of both classes */
        rc = RS_ERROR(RS_EINVAL, "%s: hidden_size %d is not a multiple of num_attention_heads %d", c->file, k.d,
                      k.n_head);
        goto done;
    }
    if (neox) {
        /* GPTNeoXConfig has no num_key_value_heads; its heads are hidden_size / heads wide */
        if (k.head_dim != k.d / k.n_head) {
            rc = RS_ERROR(RS_ENOTSUP, "%s: field 'head_dim' = %d: gpt_neox heads are hidden_size / "
                          "num_attention_heads = %d wide", c->file, k.head_dim, k.d / k.n_head);
            goto done;
        }
        k.n_kv_head = k.n_head;
    }
    if ((rc = get_string(c, root, "hidden_act", neox ? "gelu" : "silu", &s)) || (rc = parse_act(c, s, &k.act)))
        goto done;
    const char *epsk = neox ? "layer_norm_eps" : "rms_norm_eps";
    const cJSON *ev = member(root, epsk);
    k.norm_eps = neox ? 1e-5 : 1e-6;
    if (ev && (rc = pos_value(c, ev, epsk, &k.norm_eps))) goto done;
    if ((rc = get_bool(c, root, "tie_word_embeddings", 0, &k.tied))) goto done;
    switch (k.arch) {
    case LLM_GPT_NEOX:
        if ((rc = get_bool(c, root, "use_parallel_residual", 1, &k.parallel_residual)) ||
            (rc = get_bool(c, root, "attention_bias", 1, &k.qkv_bias)))
            goto done;
        k.o_bias = k.qkv_bias;
        k.mlp_bias = 1;
        break;
    case LLM_LLAMA:
        if ((rc = get_bool(c, root, "attention_bias", 0, &k.qkv_bias)) ||
            (rc = get_bool(c, root, "mlp_bias", 0, &k.mlp_bias)))
            goto done;
        k.o_bias = k.qkv_bias;
        break;
    case LLM_QWEN2: {
        /* as Qwen2Config.__post_init__: without layer_types, layers i >= max_window_layers
         * slide when use_sliding_window is true and sliding_window is not null */
        int sw, mwl = 28;
        if ((rc = get_bool(c, root, "use_sliding_window", 0, &sw)) ||
            (rc = get_int(c, root, "max_window_layers", "max_window_layers", 0, 28, 0, &mwl)))
            goto done;
        if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "sliding_window"))) sw = 0; /* absent: 4096 */
        if (sw && !member(root, "layer_types") && mwl < k.n_layer) {
            rc = RS_ERROR(RS_ENOTSUP, "%s: field 'use_sliding_window' is true (layers %d..%d would use "
                          "sliding-window attention): not supported", c->file, mwl, k.n_layer - 1);
            goto done;
        }
        k.qkv_bias = 1;
        k.o_bias = 0;
        k.mlp_bias = 0;
        break;
    }
    }
    const cJSON *lt = member(root, "layer_types");
    if (lt) {
        if (!cJSON_IsArray(lt)) {
            rc = RS_ERROR(RS_EINVAL, "%s: field 'layer_types' must be a list, not %s", c->file, describe(d, sizeof d, lt));
            goto done;
        }
        if (cJSON_GetArraySize(lt) != k.n_layer) {
            rc = RS_ERROR(RS_EINVAL, "%s: field 'layer_types' has %d entries for %d layers", c->file,
                          cJSON_GetArraySize(lt), k.n_layer);
            goto done;
        }
        int i = 0;
        for (const cJSON *e = lt->child; e; e = e->next, i++)
            if (!cJSON_IsString(e) || strcmp(e->valuestring, "full_attention") != 0) {
                rc = RS_ERROR(RS_ENOTSUP, "%s: field 'layer_types[%d]' is %s; only \"full_attention\" is supported",
                              c->file, i, describe(d, sizeof d, e));
                goto done;
            }
    }
    if ((rc = get_token_id(c, root, "bos_token_id", neox ? 0 : k.arch == LLM_LLAMA ? 1 : -1, &k.bos_id)) ||
        (rc = get_token_id(c, root, "eos_token_id", neox ? 2 : k.arch == LLM_LLAMA ? 2 : -1, &k.eos_id)) ||
        (rc = get_token_id(c, root, "pad_token_id", -1, &k.pad_id)))
        goto done;
    const char *dt = NULL;
    if ((rc = get_string(c, root, "dtype", NULL, &dt))) goto done;
    if (!dt && (rc = get_string(c, root, "torch_dtype", NULL, &dt))) goto done;
    if (dt) snprintf(k.torch_dtype, sizeof k.torch_dtype, "%s", dt);
    if ((rc = parse_rope(c, root, &k))) goto done;
    if ((rc = check_named(&k, c->file))) goto done;
    *cfg = k;
done:
    cJSON_Delete(root);
    return rc;
}

int llm_config_load(llm_config *c, const char *path)
{
    if (!c || !path) return RS_ERROR(RS_EINVAL, "llm_config_load: NULL argument");
    char *b = NULL;
    size_t n = 0;
    int rc = llm_read_file(path, CONFIG_MAX_BYTES, &b, &n);
    if (rc) return rc;
    rc = llm_config_parse(c, b, n, path);
    free(b);
    return rc;
}

/* ------------------------------------------------------------------ saving */

/* Shortest decimal that reads back as exactly x, always with a '.' or an exponent so
 * that Python reads a float. */
static void fmt_double(char *buf, size_t cap, double x)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void sb_double(llm_buf *b, const char *key, double x)
{
    char num[40];
    fmt_double(num, sizeof num, x);
    llm_buf_printf(b, "  \"%s\": %s,\n", key, num);
}

static void sb_id(llm_buf *b, const char *key, int id)
{
    if (id < 0) llm_buf_printf(b, "  \"%s\": null,\n", key);
    else llm_buf_printf(b, "  \"%s\": %d,\n", key, id);
}

/* partial_rotary_factor p with int(head_dim * p) == rot_dim exactly. */
static double rotary_fraction(int rot_dim, int head_dim)
{
    double p = (double)rot_dim / head_dim;
    while ((int)(head_dim * p) < rot_dim) p = nextafter(p, 2.0);
    return p;
}

static const char *act_name(llm_act a)
{
    switch (a) {
    case LLM_ACT_GELU: return "gelu";
    case LLM_ACT_GELU_TANH: return "gelu_new";
    case LLM_ACT_SILU: return "silu";
    }
    return "silu";
}

/* The RoPE dict: {"rope_type", "rope_theta", ...} in transformers 5's spelling. */
static void sb_rope_dict(llm_buf *b, const llm_config *c, int with_theta, int with_partial)
{
    char num[40];
    llm_buf_printf(b, "{");
    llm_buf_printf(b, "\"rope_type\": \"%s\"", c->rope_type == LLM_ROPE_LLAMA3 ? "llama3" : "default");
    if (with_theta) {
        fmt_double(num, sizeof num, c->rope_theta);
        llm_buf_printf(b, ", \"rope_theta\": %s", num);
    }
    if (with_partial) {
        fmt_double(num, sizeof num, rotary_fraction(c->rot_dim, c->head_dim));
        llm_buf_printf(b, ", \"partial_rotary_factor\": %s", num);
    }
    if (c->rope_type == LLM_ROPE_LLAMA3) {
        fmt_double(num, sizeof num, c->rope_factor);
        llm_buf_printf(b, ", \"factor\": %s", num);
        fmt_double(num, sizeof num, c->rope_low_freq_factor);
        llm_buf_printf(b, ", \"low_freq_factor\": %s", num);
        fmt_double(num, sizeof num, c->rope_high_freq_factor);
        llm_buf_printf(b, ", \"high_freq_factor\": %s", num);
        llm_buf_printf(b, ", \"original_max_position_embeddings\": %d", c->rope_orig_max_pos);
    }
    llm_buf_printf(b, "}");
}

int llm_config_save(const llm_config *c, const char *path)
{
    if (!path || !path[0]) return RS_ERROR(RS_EINVAL, "llm_config_save: empty path");
    int rc = check_named(c, path);
    if (rc) return rc;
    const int neox = c->arch == LLM_GPT_NEOX;
    llm_buf b = {0};
    llm_buf_printf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", arch_class(c->arch),
              llm_arch_name(c->arch));
    llm_buf_printf(&b, "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n", c->vocab, c->d,
              c->d_ff);
    llm_buf_printf(&b, "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n", c->n_layer, c->n_head);
    if (!neox) llm_buf_printf(&b, "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->n_kv_head, c->head_dim);
    llm_buf_printf(&b, "  \"hidden_act\": \"%s\",\n  \"max_position_embeddings\": %d,\n", act_name(c->act), c->max_pos);
    sb_double(&b, neox ? "layer_norm_eps" : "rms_norm_eps", c->norm_eps);
    if (neox) {
        llm_buf_printf(&b, "  \"use_parallel_residual\": %s,\n", c->parallel_residual ? "true" : "false");
        llm_buf_printf(&b, "  \"attention_bias\": %s,\n", c->qkv_bias ? "true" : "false");
        /* the older spelling, read by transformers 4 (5 reads rope_parameters first) */
        sb_double(&b, "rotary_pct", rotary_fraction(c->rot_dim, c->head_dim));
        sb_double(&b, "rotary_emb_base", c->rope_theta);
    } else {
        if (c->arch == LLM_LLAMA) {
            llm_buf_printf(&b, "  \"attention_bias\": %s,\n", c->qkv_bias ? "true" : "false");
            llm_buf_printf(&b, "  \"mlp_bias\": %s,\n", c->mlp_bias ? "true" : "false");
        } else {
            llm_buf_printf(&b, "  \"use_sliding_window\": false,\n");
        }
        sb_double(&b, "rope_theta", c->rope_theta);
        if (c->rope_type == LLM_ROPE_LLAMA3) {
            llm_buf_printf(&b, "  \"rope_scaling\": ");
            sb_rope_dict(&b, c, 0, 0);
            llm_buf_printf(&b, ",\n");
        } else {
            llm_buf_printf(&b, "  \"rope_scaling\": null,\n");
        }
    }
    llm_buf_printf(&b, "  \"rope_parameters\": ");
    sb_rope_dict(&b, c, 1, neox);
    llm_buf_printf(&b, ",\n  \"tie_word_embeddings\": %s,\n", c->tied ? "true" : "false");
    sb_id(&b, "bos_token_id", c->bos_id);
    sb_id(&b, "eos_token_id", c->eos_id);
    sb_id(&b, "pad_token_id", c->pad_id);
    llm_buf_printf(&b, "  \"dtype\": \"float32\",\n  \"torch_dtype\": \"float32\"\n}\n");
    if (b.oom) {
        free(b.v);
        return RS_ERROR(RS_ENOMEM, "%s: out of memory", path);
    }

    llm_atomic a;
    if (llm_atomic_write(&a, path, b.v, b.n, LLM_ATOMIC_SYNC)) rc = llm_atomic_error(&a);
    free(b.v);
    return rc;
}

size_t llm_config_nparams(const llm_config *c)
{
    if (!c) return 0;
    size_t C = (size_t)c->d, V = (size_t)c->vocab, F = (size_t)c->d_ff, hd = (size_t)c->head_dim;
    size_t H = (size_t)c->n_head, KV = (size_t)c->n_kv_head;
    size_t norm = c->arch == LLM_GPT_NEOX ? 2 * C : C; /* LayerNorm weight + bias, RMSNorm weight */
    size_t qkv_out = (H + 2 * KV) * hd;
    size_t layer = 2 * norm;
    layer += C * qkv_out + (c->qkv_bias ? qkv_out : 0); /* q, k, v */
    layer += H * hd * C + (c->o_bias ? C : 0);           /* output projection */
    if (c->arch == LLM_GPT_NEOX) layer += 2 * C * F + (c->mlp_bias ? F + C : 0); /* up, down */
    else layer += 3 * C * F + (c->mlp_bias ? 2 * F + C : 0);                   /* gate, up, down */
    return V * C + (c->tied ? 0 : V * C) + (size_t)c->n_layer * layer + norm;
}
