/* rostesim LLM: the transformer (GPT-NeoX, Llama, Qwen2) in fp32, forward and backward.
 *
 * Follows HF transformers (modeling_gpt_neox.py, modeling_llama.py, modeling_qwen2.py):
 *   GPT-NeoX  x' = x + attn(ln1(x)) + mlp(ln2(x))        (use_parallel_residual)
 *             m = x + attn(ln1(x)); x' = m + mlp(ln2(m))  (sequential)
 *             LayerNorm, GeLU MLP with biases, partial rotary, untied embed_out
 *   Llama     sequential, RMSNorm, SwiGLU MLP, grouped-query attention, Llama-3 rope scaling
 *   Qwen2     Llama with q/k/v biases
 * Dimension letters as in kernels.h; N = B*T, F1 = F (GeLU MLP) or 2F (SwiGLU), HD = NH*HS.
 *
 * Every linear layer of the model (q/k/v, o, up, down, LM head) is one call of
 * linear_forward / linear_backward, with the site it is: the place where fake quantization
 * of weights and activations and online rotations attach. */
#include "llm/nn/model.h"
#include "llm/io/fileio.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/nn/kernels.h"
#include "llm/io/safetensors.h"
#include "quant/rng.h"
#include "quant/status.h"

/* ---------------------------------------------------------------------------------------- */
/* activation views                                                                          */

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* (N,C), (N) (LayerNorm only), (N) */
    float *qkv;                       /* (N,QKV) after RoPE */
    float *att;                       /* (B,NH,T,T) softmax probabilities */
    float *atty;                      /* (N,HD) attention output before o_proj */
    float *mid;                       /* (N,C) x + attn (sequential residual only) */
    float *ln2, *ln2_mean, *ln2_rstd; /* (N,C), (N), (N) */
    float *fch;                       /* (N,F1) MLP pre-activation */
    float *fch_act;                   /* (N,F) MLP activation output */
} layer_acts;

typedef struct {
    layer_acts *L;                    /* n_layer */
    float *resid;                     /* (n_layer+1, N, C): input of layer l at l*N*C, last = output */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N,C), (N), (N) */
    float *logits;                    /* (N,V) */
    float *losses, *lse;              /* (N), (N) */
    float *scratch;                   /* (N,C) output of o_proj / down before the residual add */
    int32_t *tokens, *targets;        /* (N) copies for backward */
    /* backward, in m->dacts (shared by all layers) */
    float *dres, *dln, *dqkv, *datt, *datty, *dfch, *dfch_act;
} model_priv;

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                             */

static int qkv_dim(const llm_config *c) { return (c->n_head + 2 * c->n_kv_head) * c->head_dim; }
static int hd_dim(const llm_config *c) { return c->n_head * c->head_dim; }
static int f1_dim(const llm_config *c) { return c->arch == LLM_GPT_NEOX ? c->d_ff : 2 * c->d_ff; }
static int is_neox(const llm_config *c) { return c->arch == LLM_GPT_NEOX; }

static int check_supported(const llm_config *c, const char *name)
{
    int st = llm_config_check(c);
    if (st) return st;
    if (is_neox(c)) {
        if (c->act == LLM_ACT_SILU)
            return RS_ERROR(RS_ENOTSUP, "%s: hidden_act silu in a GPT-NeoX MLP is not implemented", name);
        if (c->n_kv_head != c->n_head || c->head_dim * c->n_head != c->d)
            return RS_ERROR(RS_EINVAL, "%s: GPT-NeoX needs num_key_value_heads == num_attention_heads and "
                            "head_dim == hidden_size / num_attention_heads", name);
        if (c->qkv_bias != c->o_bias)
            return RS_ERROR(RS_ENOTSUP, "%s: GPT-NeoX with different q/k/v and dense biases", name);
    } else if (c->act != LLM_ACT_SILU) {
        return RS_ERROR(RS_ENOTSUP, "%s: %s with a gated MLP needs hidden_act silu", name, llm_arch_name(c->arch));
    }
    return RS_OK;
}

/* Lay the parameters out in their fixed order. With base != NULL sets the views of w, with
 * m->tab != NULL fills the table. Returns the number of floats. */
static void put(llm_model *m, float *base, float **view, size_t *off, const char *name, int rows, int cols)
{
    size_t numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    if (view) *view = base ? base + *off : NULL;
    if (m->tab) {
        llm_param *p = &m->tab[m->ntab];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = cols > 0 ? 2 : 1;
        p->shape[0] = rows;
        p->shape[1] = cols > 0 ? cols : 0;
        p->offset = *off;
        p->numel = numel;
    }
    m->ntab++;
    *off += numel;
}

static size_t layout(llm_model *m, float *base, llm_weights *w)
{
    const llm_config *c = &m->cfg;
    const int C = c->d, V = c->vocab, F = c->d_ff, QKV = qkv_dim(c), HD = hd_dim(c), F1 = f1_dim(c);
    const int ln_bias = is_neox(c);
    size_t off = 0;
    char nm[64];
    m->ntab = 0;
    put(m, base, w ? &w->wte : NULL, &off, "wte", V, C);
    for (int l = 0; l < c->n_layer; l++) {
        llm_layer *L = w ? &w->layers[l] : NULL;
#define PUT(field, r, cc, cond)                                                                 \
    do {                                                                                        \
        if (cond) {                                                                             \
            snprintf(nm, sizeof nm, "layers.%d." #field, l);                                    \
            put(m, base, L ? &L->field : NULL, &off, nm, r, cc);                                \
        } else if (L) {                                                                         \
            L->field = NULL;                                                                    \
        }                                                                                       \
    } while (0)
        PUT(ln1_w, C, 0, 1);
        PUT(ln1_b, C, 0, ln_bias);
        PUT(qkv_w, QKV, C, 1);
        PUT(qkv_b, QKV, 0, c->qkv_bias);
        PUT(o_w, C, HD, 1);
        PUT(o_b, C, 0, c->o_bias);
        PUT(ln2_w, C, 0, 1);
        PUT(ln2_b, C, 0, ln_bias);
        PUT(up_w, F1, C, 1);
        PUT(up_b, F1, 0, c->mlp_bias);
        PUT(down_w, C, F, 1);
        PUT(down_b, C, 0, c->mlp_bias);
#undef PUT
    }
    put(m, base, w ? &w->lnf_w : NULL, &off, "lnf_w", C, 0);
    if (ln_bias) put(m, base, w ? &w->lnf_b : NULL, &off, "lnf_b", C, 0);
    else if (w) w->lnf_b = NULL;
    if (!c->tied) put(m, base, w ? &w->lm_head : NULL, &off, "lm_head", V, C);
    else if (w) w->lm_head = w->wte;
    return off;
}

static int model_create(llm_model **out, const llm_config *c, const char *name)
{
    *out = NULL;
    int st = check_supported(c, name);
    if (st) return st;
    llm_model *m = calloc(1, sizeof *m);
    if (!m) return RS_ERROR(RS_ENOMEM, "llm_model: out of memory");
    m->cfg = *c;
    m->nparams = layout(m, NULL, NULL);
    size_t ntab = m->ntab;
    m->tab = calloc(ntab, sizeof *m->tab);
    m->w.layers = calloc((size_t)c->n_layer, sizeof(llm_layer));
    m->g.layers = calloc((size_t)c->n_layer, sizeof(llm_layer));
    m->params = malloc(m->nparams * sizeof(float));
    model_priv *p = calloc(1, sizeof *p);
    m->priv = p;
    if (p) p->L = calloc((size_t)c->n_layer, sizeof(layer_acts));
    int half = c->rot_dim / 2;
    size_t nrope = (size_t)c->max_pos * (size_t)(half > 0 ? half : 1);
    m->rope_cos = malloc(2 * nrope * sizeof(float));
    double *inv = malloc((size_t)(half > 0 ? half : 1) * sizeof(double));
    if (!m->tab || !m->w.layers || !m->g.layers || !m->params || !p || !p->L || !m->rope_cos || !inv) {
        free(inv);
        llm_model_free(m);
        return RS_ERROR(RS_ENOMEM, "llm_model: out of memory for %zu parameters", m->nparams);
    }
    layout(m, m->params, &m->w);
    m->rope_sin = m->rope_cos + nrope;
    if (half > 0) {
        lk_rope_inv_freq(inv, c->rot_dim, c->rope_theta, (int)c->rope_type, c->rope_factor,
                         c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_orig_max_pos);
        lk_rope_table(m->rope_cos, m->rope_sin, inv, c->max_pos, c->rot_dim);
    }
    free(inv);
    *out = m;
    return RS_OK;
}

void llm_model_free(llm_model *m)
{
    if (!m) return;
    model_priv *p = m->priv;
    if (p) {
        free(p->L);
        free(p->tokens);
        free(p->targets);
        free(p);
    }
    free(m->params);
    free(m->grads);
    free(m->w.layers);
    free(m->g.layers);
    free(m->tab);
    free(m->rope_cos);
    free(m->acts);
    free(m->dacts);
    if (m->qat) m->hooks->free(m->qat);
    free(m);
}

int llm_model_alloc_grads(llm_model *m)
{
    if (m->grads) return RS_OK;
    m->grads = calloc(m->nparams, sizeof(float));
    if (!m->grads) return RS_ERROR(RS_ENOMEM, "llm_model: out of memory for %zu gradients", m->nparams);
    llm_param *tab = m->tab;
    m->tab = NULL; /* only the views */
    layout(m, m->grads, &m->g);
    m->tab = tab;
    return RS_OK;
}

void llm_model_zero_grad(llm_model *m)
{
    if (m->grads) memset(m->grads, 0, m->nparams * sizeof(float));
}

int llm_model_init_random(llm_model **out, const llm_config *c, rs_rng *rng)
{
    llm_model *m;
    int st = model_create(&m, c, "llm_model_init_random");
    if (st) return st;
    /* HF _init_weights: normal(0, initializer_range = 0.02) for Linear and Embedding weights,
     * zeros for biases, ones for norm weights. Norm weights are the 1-D "_w" tensors. */
    for (size_t i = 0; i < m->ntab; i++) {
        const llm_param *p = &m->tab[i];
        float *x = m->params + p->offset;
        size_t len = strlen(p->name);
        if (p->ndim == 2) {
            for (size_t k = 0; k < p->numel; k++) x[k] = (float)rs_rng_gaussian(rng, 0.02);
        } else if (len >= 2 && p->name[len - 1] == 'w') {
            for (size_t k = 0; k < p->numel; k++) x[k] = 1.0f;
        } else {
            memset(x, 0, p->numel * sizeof(float));
        }
    }
    *out = m;
    return RS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* HF names <-> internal layout                                                              */

typedef struct {
    char name[128], alt[128]; /* HF name (alt: another accepted spelling, or "") */
    int ndim;
    int64_t shape[2];         /* HF shape */
    size_t dst;               /* offset in floats into a params-layout buffer, rows included */
    int neox_qkv;             /* rows are per head [q_h; k_h; v_h]: permute */
    int optional;             /* tied head: may be present (ignored) or absent */
} hf_entry;

typedef struct {
    hf_entry *e;
    size_t n;
} hf_list;

static void hf_add(hf_list *h, const llm_model *m, const float *view, size_t row_off, int ncols,
                   int ndim, int64_t r, int64_t cc, const char *name, const char *alt)
{
    hf_entry *e = &h->e[h->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->alt, sizeof e->alt, "%s", alt ? alt : "");
    e->ndim = ndim;
    e->shape[0] = r;
    e->shape[1] = cc;
    e->dst = (size_t)(view - m->params) + row_off * (size_t)(ncols > 0 ? ncols : 1);
}

/* The list of HF tensors of this model, in the order HF names them per layer. */
static int hf_entries(const llm_model *m, hf_list *h)
{
    const llm_config *c = &m->cfg;
    const int C = c->d, V = c->vocab, F = c->d_ff, HS = c->head_dim, HD = hd_dim(c);
    const int QD = c->n_head * HS, KD = c->n_kv_head * HS;
    h->n = 0;
    h->e = calloc((size_t)c->n_layer * 20 + 8, sizeof(hf_entry));
    if (!h->e) return RS_ERROR(RS_ENOMEM, "llm_model: out of memory");
    char a[128];
#define ADD2(view, row_off, ncols, r, cc, ...) \
    (snprintf(a, sizeof a, __VA_ARGS__), hf_add(h, m, view, row_off, ncols, 2, r, cc, a, NULL))
#define ADD1(view, row_off, r, ...) (snprintf(a, sizeof a, __VA_ARGS__), hf_add(h, m, view, row_off, 0, 1, r, 0, a, NULL))
    if (is_neox(c)) {
        ADD2(m->w.wte, 0, C, V, C, "gpt_neox.embed_in.weight");
        for (int l = 0; l < c->n_layer; l++) {
            const llm_layer *L = &m->w.layers[l];
            const char *pre = "gpt_neox.layers";
            ADD1(L->ln1_w, 0, C, "%s.%d.input_layernorm.weight", pre, l);
            ADD1(L->ln1_b, 0, C, "%s.%d.input_layernorm.bias", pre, l);
            ADD2(L->qkv_w, 0, C, 3 * C, C, "%s.%d.attention.query_key_value.weight", pre, l);
            h->e[h->n - 1].neox_qkv = 1;
            if (c->qkv_bias) {
                ADD1(L->qkv_b, 0, 3 * C, "%s.%d.attention.query_key_value.bias", pre, l);
                h->e[h->n - 1].neox_qkv = 1;
            }
            ADD2(L->o_w, 0, C, C, C, "%s.%d.attention.dense.weight", pre, l);
            if (c->o_bias) ADD1(L->o_b, 0, C, "%s.%d.attention.dense.bias", pre, l);
            ADD1(L->ln2_w, 0, C, "%s.%d.post_attention_layernorm.weight", pre, l);
            ADD1(L->ln2_b, 0, C, "%s.%d.post_attention_layernorm.bias", pre, l);
            ADD2(L->up_w, 0, C, F, C, "%s.%d.mlp.dense_h_to_4h.weight", pre, l);
            if (c->mlp_bias) ADD1(L->up_b, 0, F, "%s.%d.mlp.dense_h_to_4h.bias", pre, l);
            ADD2(L->down_w, 0, F, C, F, "%s.%d.mlp.dense_4h_to_h.weight", pre, l);
            if (c->mlp_bias) ADD1(L->down_b, 0, C, "%s.%d.mlp.dense_4h_to_h.bias", pre, l);
        }
        ADD1(m->w.lnf_w, 0, C, "gpt_neox.final_layer_norm.weight");
        ADD1(m->w.lnf_b, 0, C, "gpt_neox.final_layer_norm.bias");
        hf_add(h, m, m->w.lm_head, 0, C, 2, V, C, "embed_out.weight", "lm_head.weight");
    } else {
        ADD2(m->w.wte, 0, C, V, C, "model.embed_tokens.weight");
        for (int l = 0; l < c->n_layer; l++) {
            const llm_layer *L = &m->w.layers[l];
            const char *pre = "model.layers";
            ADD1(L->ln1_w, 0, C, "%s.%d.input_layernorm.weight", pre, l);
            ADD2(L->qkv_w, 0, C, QD, C, "%s.%d.self_attn.q_proj.weight", pre, l);
            ADD2(L->qkv_w, (size_t)QD, C, KD, C, "%s.%d.self_attn.k_proj.weight", pre, l);
            ADD2(L->qkv_w, (size_t)(QD + KD), C, KD, C, "%s.%d.self_attn.v_proj.weight", pre, l);
            if (c->qkv_bias) {
                ADD1(L->qkv_b, 0, QD, "%s.%d.self_attn.q_proj.bias", pre, l);
                ADD1(L->qkv_b, (size_t)QD, KD, "%s.%d.self_attn.k_proj.bias", pre, l);
                ADD1(L->qkv_b, (size_t)(QD + KD), KD, "%s.%d.self_attn.v_proj.bias", pre, l);
            }
            ADD2(L->o_w, 0, HD, C, HD, "%s.%d.self_attn.o_proj.weight", pre, l);
            if (c->o_bias) ADD1(L->o_b, 0, C, "%s.%d.self_attn.o_proj.bias", pre, l);
            ADD1(L->ln2_w, 0, C, "%s.%d.post_attention_layernorm.weight", pre, l);
            ADD2(L->up_w, 0, C, F, C, "%s.%d.mlp.gate_proj.weight", pre, l);
            ADD2(L->up_w, (size_t)F, C, F, C, "%s.%d.mlp.up_proj.weight", pre, l);
            if (c->mlp_bias) {
                ADD1(L->up_b, 0, F, "%s.%d.mlp.gate_proj.bias", pre, l);
                ADD1(L->up_b, (size_t)F, F, "%s.%d.mlp.up_proj.bias", pre, l);
            }
            ADD2(L->down_w, 0, F, C, F, "%s.%d.mlp.down_proj.weight", pre, l);
            if (c->mlp_bias) ADD1(L->down_b, 0, C, "%s.%d.mlp.down_proj.bias", pre, l);
        }
        ADD1(m->w.lnf_w, 0, C, "model.norm.weight");
        hf_add(h, m, m->w.lm_head, 0, C, 2, V, C, "lm_head.weight", NULL);
    }
#undef ADD1
#undef ADD2
    if (c->tied) h->e[h->n - 1].optional = 1;
    return RS_OK;
}

/* NeoX fused rows: HF row r = h*3*HS + part*HS + d  <->  internal row part*C + h*HS + d. */
static size_t neox_row(int r, int NH, int HS)
{
    int h = r / (3 * HS), within = r % (3 * HS), part = within / HS, d = within % HS;
    return (size_t)part * (size_t)NH * (size_t)HS + (size_t)h * (size_t)HS + (size_t)d;
}

static const st_tensor *hf_find(const st_set *s, const char *prefix, const char *name)
{
    char full[320];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return st_find(s, full);
}

/* Index of the first NaN or infinity of x[0..n-1]; n if there is none. */
static size_t first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

int llm_model_read_hf(const llm_model *m, const st_set *s, const char *prefix, float *dst)
{
    hf_list h;
    int st = hf_entries(m, &h);
    if (st) return st;
    const llm_config *c = &m->cfg;
    float *tmp = NULL;
    if (is_neox(c)) {
        tmp = malloc((size_t)qkv_dim(c) * (size_t)c->d * sizeof(float));
        if (!tmp) {
            free(h.e);
            return RS_ERROR(RS_ENOMEM, "llm_model: out of memory");
        }
    }
    for (size_t i = 0; i < h.n && !st; i++) {
        const hf_entry *e = &h.e[i];
        if (e->optional) continue;
        const st_tensor *t = hf_find(s, prefix, e->name);
        if (!t && e->alt[0]) t = hf_find(s, prefix, e->alt);
        if (!t) {
            st = RS_ERROR(RS_EINVAL, "%s: missing tensor %s%s (needed by this %s config)", st_file_name(s, 0),
                          prefix, e->name, llm_arch_name(c->arch));
            break;
        }
        if ((st = st_expect_shape(s, t, e->ndim, e->shape))) break;
        float *out = e->neox_qkv ? tmp : dst + e->dst;
        if ((st = st_read_f32(t, out))) {
            st = RS_ERROR(st, "%s: %s", st_file_name(s, t->file), rs_last_error()); /* names the tensor */
            break;
        }
        size_t bad = first_nonfinite(out, t->nelem);
        if (bad < t->nelem) {
            st = RS_ERROR(RS_ENUMERIC, "%s: tensor %s: element %zu of %zu is %s (a diverged or corrupt checkpoint)",
                          st_file_name(s, t->file), t->name, bad, t->nelem, isnan(out[bad]) ? "NaN" : "infinite");
            break;
        }
        if (e->neox_qkv) {
            int rows = (int)e->shape[0];
            size_t cols = e->ndim == 2 ? (size_t)e->shape[1] : 1;
            for (int r = 0; r < rows; r++)
                memcpy(dst + e->dst + neox_row(r, c->n_head, c->head_dim) * cols, tmp + (size_t)r * cols,
                       cols * sizeof(float));
        }
    }
    free(tmp);
    free(h.e);
    return st;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Every tensor of s must be one of the entries, a tied head, or a derived buffer. */
static int check_unused(const llm_model *m, const st_set *s)
{
    hf_list h;
    int st = hf_entries(m, &h);
    if (st) return st;
    for (size_t i = 0; i < st_count(s) && !st; i++) {
        const st_tensor *t = st_get(s, i);
        if (ends_with(t->name, ".rotary_emb.inv_freq") || ends_with(t->name, ".attention.bias") ||
            ends_with(t->name, ".attention.masked_bias"))
            continue;
        int known = 0;
        for (size_t k = 0; k < h.n && !known; k++)
            known = !strcmp(t->name, h.e[k].name) || (h.e[k].alt[0] && !strcmp(t->name, h.e[k].alt));
        if (!known)
            st = RS_ERROR(RS_EINVAL, "%s: unexpected tensor %s (not part of a %s model with this config)",
                          st_file_name(s, t->file), t->name, llm_arch_name(m->cfg.arch));
    }
    /* both spellings of the NeoX head present: ambiguous */
    for (size_t k = 0; k < h.n && !st; k++)
        if (h.e[k].alt[0] && st_find(s, h.e[k].name) && st_find(s, h.e[k].alt))
            st = RS_ERROR(RS_EINVAL, "%s: both %s and %s are present", st_file_name(s, 0), h.e[k].name,
                          h.e[k].alt);
    free(h.e);
    return st;
}

int llm_model_load(llm_model **out, const char *dir)
{
    *out = NULL;
    char path[4096];
    llm_config c;
    snprintf(path, sizeof path, "%s/config.json", dir);
    int st = llm_config_load(&c, path);
    if (st) return st;
    llm_model *m;
    if ((st = model_create(&m, &c, path))) return st;
    st_set *s = NULL;
    if ((st = st_open(&s, dir))) {
        llm_model_free(m);
        return st;
    }
    st = llm_model_read_hf(m, s, "", m->params);
    if (!st) st = check_unused(m, s);
    st_close(s);
    if (st) {
        llm_model_free(m);
        return st;
    }
    *out = m;
    return RS_OK;
}

int llm_model_save(const llm_model *m, const char *dir)
{
    int st = rs_mkdir_p(dir);
    if (st) return st;
    const llm_config *c = &m->cfg;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((st = llm_config_save(c, path))) return st;

    hf_list h;
    if ((st = hf_entries(m, &h))) return st;
    st_out *o = calloc(h.n, sizeof *o);
    /* the NeoX fused tensors go back to per-head order through one buffer */
    size_t ntmp = 0;
    for (size_t i = 0; i < h.n; i++)
        if (h.e[i].neox_qkv) ntmp += (size_t)h.e[i].shape[0] * (size_t)(h.e[i].ndim == 2 ? h.e[i].shape[1] : 1);
    float *tmp = malloc((ntmp ? ntmp : 1) * sizeof(float));
    if (!o || !tmp) {
        free(o);
        free(tmp);
        free(h.e);
        return RS_ERROR(RS_ENOMEM, "llm_model_save: out of memory");
    }
    size_t no = 0, toff = 0;
    for (size_t i = 0; i < h.n; i++) {
        const hf_entry *e = &h.e[i];
        if (e->optional) continue; /* tied head: not stored, as transformers does */
        st_out *t = &o[no++];
        t->name = e->name;
        t->ndim = e->ndim;
        t->shape[0] = e->shape[0];
        t->shape[1] = e->shape[1];
        if (e->neox_qkv) {
            int rows = (int)e->shape[0];
            size_t cols = e->ndim == 2 ? (size_t)e->shape[1] : 1;
            float *d = tmp + toff;
            for (int r = 0; r < rows; r++)
                memcpy(d + (size_t)r * cols, m->params + e->dst + neox_row(r, c->n_head, c->head_dim) * cols,
                       cols * sizeof(float));
            toff += (size_t)rows * cols;
            t->data = d;
        } else {
            t->data = m->params + e->dst;
        }
    }
    static const char *const meta[] = {"format", "pt"};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = st_write(path, o, no, meta, 1);
    free(o);
    free(tmp);
    free(h.e);
    return st;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (!in) return -1; /* absent: skipped */
    llm_atomic a;
    if (llm_atomic_open(&a, dst, 0)) {
        fclose(in);
        return RS_ERROR(RS_EIO, "cannot write %s: %s", a.tmp, strerror(a.err));
    }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, a.f) != n) ok = 0;
    if (ferror(in)) ok = 0;
    fclose(in);
    return llm_atomic_commit(&a, ok) ? RS_ERROR(RS_EIO, "cannot copy %s to %s", src, dst) : RS_OK;
}

int llm_copy_tokenizer_files(const char *src_dir, const char *dst_dir)
{
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "generation_config.json"};
    int st = rs_mkdir_p(dst_dir);
    if (st) return st;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src_dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst_dir, files[i]);
        st = copy_file(a, b);
        if (st > 0) return st;
    }
    return RS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* activations                                                                               */

/* Floats of the forward activations (and of the backward's) for (B,T). */
static size_t acts_size(const llm_config *c, int B, int T, size_t *nd)
{
    size_t N = (size_t)B * T, C = (size_t)c->d, QKV = (size_t)qkv_dim(c), HD = (size_t)hd_dim(c);
    size_t F = (size_t)c->d_ff, F1 = (size_t)f1_dim(c), NHTT = (size_t)B * c->n_head * T * T;
    size_t per = N * C + N * (is_neox(c) ? 1 : 0) + N + N * QKV + NHTT + N * HD + (c->parallel_residual ? 0 : N * C) +
                 N * C + N * (is_neox(c) ? 1 : 0) + N + N * F1 + N * F;
    size_t n = per * (size_t)c->n_layer + (size_t)(c->n_layer + 1) * N * C + N * C + 2 * N + N * (size_t)c->vocab +
               2 * N + N * C;
    if (nd) *nd = 2 * N * C + N * QKV + NHTT + N * HD + N * F1 + N * F;
    return n;
}

static float *take(float **p, size_t n)
{
    float *r = *p;
    *p += n;
    return r;
}

static void set_views(llm_model *m, int B, int T)
{
    const llm_config *c = &m->cfg;
    model_priv *p = m->priv;
    size_t N = (size_t)B * T, C = (size_t)c->d, QKV = (size_t)qkv_dim(c), HD = (size_t)hd_dim(c);
    size_t F = (size_t)c->d_ff, F1 = (size_t)f1_dim(c), NHTT = (size_t)B * c->n_head * T * T;
    float *a = m->acts;
    for (int l = 0; l < c->n_layer; l++) {
        layer_acts *L = &p->L[l];
        L->ln1 = take(&a, N * C);
        L->ln1_mean = is_neox(c) ? take(&a, N) : NULL;
        L->ln1_rstd = take(&a, N);
        L->qkv = take(&a, N * QKV);
        L->att = take(&a, NHTT);
        L->atty = take(&a, N * HD);
        L->mid = c->parallel_residual ? NULL : take(&a, N * C);
        L->ln2 = take(&a, N * C);
        L->ln2_mean = is_neox(c) ? take(&a, N) : NULL;
        L->ln2_rstd = take(&a, N);
        L->fch = take(&a, N * F1);
        L->fch_act = take(&a, N * F);
    }
    p->resid = take(&a, (size_t)(c->n_layer + 1) * N * C);
    p->lnf = take(&a, N * C);
    p->lnf_mean = take(&a, N);
    p->lnf_rstd = take(&a, N);
    p->logits = take(&a, N * (size_t)c->vocab);
    p->losses = take(&a, N);
    p->lse = take(&a, N);
    p->scratch = take(&a, N * C);
    m->logits = p->logits;
    if (m->dacts) {
        float *d = m->dacts;
        p->dres = take(&d, N * C);
        p->dln = take(&d, N * C);
        p->dqkv = take(&d, N * QKV);
        p->datt = take(&d, NHTT);
        p->datty = take(&d, N * HD);
        p->dfch = take(&d, N * F1);
        p->dfch_act = take(&d, N * F);
    }
}

int llm_model_reserve(llm_model *m, int B, int T)
{
    if (B < 1 || T < 1 || T > m->cfg.max_pos)
        return RS_ERROR(RS_EINVAL, "llm_model_reserve: batch (%d, %d) out of range (T <= max_position_embeddings %d)",
                        B, T, m->cfg.max_pos);
    if (m->acts && B <= m->cap_B && T <= m->cap_T) return RS_OK;
    int nb = B > m->cap_B ? B : m->cap_B, nt = T > m->cap_T ? T : m->cap_T;
    size_t nd, n = acts_size(&m->cfg, nb, nt, &nd);
    model_priv *p = m->priv;
    free(m->acts);
    free(m->dacts);
    free(p->tokens);
    free(p->targets);
    m->dacts = NULL;
    m->ndacts = 0;
    m->have_targets = 0;
    m->logits = NULL;
    m->acts = malloc(n * sizeof(float));
    p->tokens = malloc((size_t)nb * nt * sizeof(int32_t));
    p->targets = malloc((size_t)nb * nt * sizeof(int32_t));
    if (!m->acts || !p->tokens || !p->targets) {
        free(m->acts);
        free(p->tokens);
        free(p->targets);
        m->acts = NULL;
        p->tokens = p->targets = NULL;
        m->nacts = 0;
        m->cap_B = m->cap_T = 0;
        return RS_ERROR(RS_ENOMEM, "llm_model_reserve: out of memory for (%d, %d) activations (%zu floats)", nb, nt, n);
    }
    m->nacts = n;
    m->cap_B = nb;
    m->cap_T = nt;
    return RS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* layers                                                                                    */

const char *llm_site_name(int site)
{
    static const char *const n[] = {"qkv", "o", "up", "down", "head"};
    return site >= 0 && site <= LLM_SITE_HEAD ? n[site] : "?";
}

/* Which linear layer a call is (where the hooks apply). */
typedef enum { SITE_QKV = LLM_SITE_QKV, SITE_O = LLM_SITE_O, SITE_UP = LLM_SITE_UP, SITE_DOWN = LLM_SITE_DOWN,
               SITE_HEAD = LLM_SITE_HEAD } linear_site;

/* out (N,OC) = inp (N,IC) · w (OC,IC)^T + b; through the fake quantizers when m->qat */
static int linear_forward(llm_model *m, linear_site site, int layer, float *out, const float *inp, const float *w,
                          const float *b, int N, int IC, int OC)
{
    if (m->tap && site != SITE_HEAD) {
        int st = m->tap(m->tap_ctx, (int)site, layer, inp, N, IC);
        if (st) return st;
    }
    if (m->qat && site != SITE_HEAD) return m->hooks->linear_forward(m->qat, (int)site, layer, out, inp, w, b, N, IC, OC);
    lk_matmul_forward(out, inp, w, b, N, IC, OC);
    return RS_OK;
}

/* dinp (N,IC) +=, dw (OC,IC) +=, db (OC) += */
static int linear_backward(llm_model *m, linear_site site, int layer, float *dinp, float *dw, float *db,
                           const float *dout, const float *inp, const float *w, int N, int IC, int OC)
{
    if (m->qat && site != SITE_HEAD)
        return m->hooks->linear_backward(m->qat, (int)site, layer, dinp, dw, db, dout, inp, w, N, IC, OC);
    lk_matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC);
    return RS_OK;
}

/* ln1/ln2 are LayerNorms (GPT-NeoX) unless folding made them RMSNorms. */
static int block_ln(const llm_model *m) { return is_neox(&m->cfg) && !(m->qat && m->hooks->rms_norm(m->qat)); }

static void norm_forward(const llm_config *c, int ln, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N)
{
    if (ln) lk_layernorm_forward(out, mean, rstd, inp, w, b, N, c->d, (float)c->norm_eps);
    else lk_rmsnorm_forward(out, rstd, inp, w, N, c->d, (float)c->norm_eps);
}

static void norm_backward(const llm_config *c, int ln, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd, int N)
{
    if (ln) lk_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, c->d);
    else lk_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, c->d);
}

static void act_forward(const llm_config *c, float *out, const float *inp, int N)
{
    long n = (long)N * c->d_ff;
    if (!is_neox(c)) lk_swiglu_forward(out, inp, N, c->d_ff);
    else if (c->act == LLM_ACT_GELU) lk_gelu_forward(out, inp, n);
    else lk_gelu_tanh_forward(out, inp, n);
}

static void act_backward(const llm_config *c, float *dinp, const float *inp, const float *dout, int N)
{
    long n = (long)N * c->d_ff;
    if (!is_neox(c)) lk_swiglu_backward(dinp, inp, dout, N, c->d_ff);
    else if (c->act == LLM_ACT_GELU) lk_gelu_backward(dinp, inp, dout, n);
    else lk_gelu_tanh_backward(dinp, inp, dout, n);
}

static void rope_forward(const llm_model *m, float *qkv, int B, int T, int pos0)
{
    const llm_config *c = &m->cfg;
    if (c->rot_dim == 0) return;
    int QKV = qkv_dim(c), HS = c->head_dim;
    lk_rope_forward(qkv, QKV, m->rope_cos, m->rope_sin, B, T, c->n_head, HS, c->rot_dim, pos0);
    lk_rope_forward(qkv + (size_t)c->n_head * HS, QKV, m->rope_cos, m->rope_sin, B, T, c->n_kv_head, HS, c->rot_dim,
                    pos0);
}

static void rope_backward(const llm_model *m, float *dqkv, int B, int T)
{
    const llm_config *c = &m->cfg;
    if (c->rot_dim == 0) return;
    int QKV = qkv_dim(c), HS = c->head_dim;
    lk_rope_backward(dqkv, QKV, m->rope_cos, m->rope_sin, B, T, c->n_head, HS, c->rot_dim, 0);
    lk_rope_backward(dqkv + (size_t)c->n_head * HS, QKV, m->rope_cos, m->rope_sin, B, T, c->n_kv_head, HS, c->rot_dim,
                     0);
}

/* ---------------------------------------------------------------------------------------- */
/* forward / backward                                                                        */

/* The activations' views and the quantizers' workspace for a (B, T) batch (the forward's and
 * llm_model_block_forward's set-up). */
static int forward_setup(llm_model *m, int B, int T)
{
    int st = llm_model_reserve(m, B, T);
    if (st) return st;
    if (m->qat && (st = m->hooks->reserve(m->qat, m, B * T))) return st;
    m->B = B;
    m->T = T;
    m->have_targets = 0;
    set_views(m, B, T);
    return RS_OK;
}

/* Block l of the forward over the batch forward_setup prepared: its input in resid[l], its
 * output into resid[l + 1]. */
static int block_forward(llm_model *m, int l, int B, int T)
{
    const llm_config *c = &m->cfg;
    model_priv *p = m->priv;
    const int N = B * T, C = c->d, F = c->d_ff, QKV = qkv_dim(c), HD = hd_dim(c), F1 = f1_dim(c);
    const size_t NC = (size_t)N * C;
    const llm_layer *w = &m->w.layers[l];
    layer_acts *a = &p->L[l];
    float *x = p->resid + (size_t)l * NC, *xn = x + NC;
    int st;
    norm_forward(c, block_ln(m), a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w, w->ln1_b, N);
    if ((st = linear_forward(m, SITE_QKV, l, a->qkv, a->ln1, w->qkv_w, w->qkv_b, N, C, QKV))) return st;
    rope_forward(m, a->qkv, B, T, 0);
    if (m->qat && (st = m->hooks->qkv_forward(m->qat, m, l, a->qkv, N))) return st;
    lk_attention_forward(a->atty, a->att, a->qkv, B, T, c->n_head, c->n_kv_head, c->head_dim);
    if ((st = linear_forward(m, SITE_O, l, p->scratch, a->atty, w->o_w, w->o_b, N, HD, C))) return st;
    const float *ln2_in;
    if (c->parallel_residual) {
        lk_add(xn, x, p->scratch, (long)NC);
        ln2_in = x;
    } else {
        lk_add(a->mid, x, p->scratch, (long)NC);
        ln2_in = a->mid;
    }
    norm_forward(c, block_ln(m), a->ln2, a->ln2_mean, a->ln2_rstd, ln2_in, w->ln2_w, w->ln2_b, N);
    if ((st = linear_forward(m, SITE_UP, l, a->fch, a->ln2, w->up_w, w->up_b, N, C, F1))) return st;
    act_forward(c, a->fch_act, a->fch, N);
    if ((st = linear_forward(m, SITE_DOWN, l, p->scratch, a->fch_act, w->down_w, w->down_b, N, F, C))) return st;
    if (c->parallel_residual) lk_accumulate(xn, p->scratch, (long)NC);
    else lk_add(xn, a->mid, p->scratch, (long)NC);
    return RS_OK;
}

int llm_model_forward(llm_model *m, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss,
                      int *ntok)
{
    const llm_config *c = &m->cfg;
    const int N = B * T, C = c->d, V = c->vocab;
    for (int i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return RS_ERROR(RS_EINVAL, "llm_model_forward: token %d at position %d outside the vocabulary (%d)",
                            tokens[i], i, V);
        if (targets && targets[i] >= V)
            return RS_ERROR(RS_EINVAL, "llm_model_forward: target %d at position %d outside the vocabulary (%d)",
                            targets[i], i, V);
    }
    int st = forward_setup(m, B, T);
    if (st) return st;
    model_priv *p = m->priv;
    memcpy(p->tokens, tokens, (size_t)N * sizeof(int32_t));
    const size_t NC = (size_t)N * C;

    lk_embedding_forward(p->resid, tokens, m->w.wte, N, C);
    for (int l = 0; l < c->n_layer; l++)
        if ((st = block_forward(m, l, B, T))) return st;
    const float *xf = p->resid + (size_t)c->n_layer * NC;
    if (m->qat && !(xf = m->hooks->final_in(m->qat, xf, N, C))) return RS_ERROR(RS_ENOMEM, "llm_model_forward: out of memory");
    norm_forward(c, is_neox(c), p->lnf, p->lnf_mean, p->lnf_rstd, xf, m->w.lnf_w, m->w.lnf_b, N);
    linear_forward(m, SITE_HEAD, -1, p->logits, p->lnf, m->w.lm_head, NULL, N, C, V);

    if (targets) {
        memcpy(p->targets, targets, (size_t)N * sizeof(int32_t));
        int cnt = lk_xent_forward(p->losses, p->lse, p->logits, targets, N, V);
        double sum = 0;
        for (int i = 0; i < N; i++) sum += p->losses[i];
        if (loss) *loss = cnt > 0 ? (float)(sum / cnt) : 0.0f;
        if (ntok) *ntok = cnt;
        m->have_targets = 1;
    } else {
        if (loss) *loss = 0.0f;
        if (ntok) *ntok = 0;
    }
    return RS_OK;
}

int llm_model_embed(const llm_model *m, const int32_t *tokens, int N, float *x)
{
    for (int i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab)
            return RS_ERROR(RS_EINVAL, "llm_model_embed: token %d at position %d outside the vocabulary (%d)", tokens[i],
                            i, m->cfg.vocab);
    lk_embedding_forward(x, tokens, m->w.wte, N, m->cfg.d);
    return RS_OK;
}

int llm_model_block_forward(llm_model *m, int l, const float *x, float *y, int B, int T)
{
    if (l < 0 || l >= m->cfg.n_layer)
        return RS_ERROR(RS_EINVAL, "llm_model_block_forward: layer %d outside 0..%d", l, m->cfg.n_layer - 1);
    int st = forward_setup(m, B, T);
    if (st) return st;
    model_priv *p = m->priv;
    const size_t NC = (size_t)B * T * m->cfg.d;
    memcpy(p->resid + (size_t)l * NC, x, NC * sizeof(float));
    if ((st = block_forward(m, l, B, T))) return st;
    if (y) memcpy(y, p->resid + (size_t)(l + 1) * NC, NC * sizeof(float));
    return RS_OK;
}

int llm_model_backward(llm_model *m, float scale)
{
    if (!m->have_targets)
        return RS_ERROR(RS_EINVAL, "llm_model_backward: the last forward had no targets (or backward already ran)");
    int st = llm_model_alloc_grads(m);
    if (st) return st;
    const llm_config *c = &m->cfg;
    if (!m->dacts) {
        size_t nd;
        acts_size(c, m->cap_B, m->cap_T, &nd);
        m->dacts = malloc(nd * sizeof(float));
        if (!m->dacts) return RS_ERROR(RS_ENOMEM, "llm_model_backward: out of memory (%zu floats)", nd);
        m->ndacts = nd;
    }
    const int B = m->B, T = m->T, N = B * T, C = c->d, V = c->vocab, F = c->d_ff, QKV = qkv_dim(c), HD = hd_dim(c),
              F1 = f1_dim(c);
    set_views(m, B, T);
    model_priv *p = m->priv;
    const size_t NC = (size_t)N * C;
    m->have_targets = 0;

    /* the logits buffer becomes dlogits */
    lk_xent_backward(p->logits, p->logits, p->lse, p->targets, scale, N, V);
    memset(p->dln, 0, NC * sizeof(float));
    linear_backward(m, SITE_HEAD, -1, p->dln, m->g.lm_head, NULL, p->logits, p->lnf, m->w.lm_head, N, C, V);
    memset(p->dres, 0, NC * sizeof(float));
    const float *xf = p->resid + (size_t)c->n_layer * NC;
    if (m->qat && !(xf = m->hooks->final_in(m->qat, xf, N, C))) return RS_ERROR(RS_ENOMEM, "llm_model_backward: out of memory");
    norm_backward(c, is_neox(c), p->dres, m->g.lnf_w, m->g.lnf_b, p->dln, xf, m->w.lnf_w,
                  p->lnf_mean, p->lnf_rstd, N);
    if (m->qat && (st = m->hooks->final_backward(m->qat, p->dres, N, C))) return st;

    /* dres holds d(output of layer l); each branch's first backward reads it before the
     * norm backwards add the branch gradients into it, leaving d(input of layer l). */
    for (int l = c->n_layer - 1; l >= 0; l--) {
        const llm_layer *w = &m->w.layers[l];
        llm_layer *g = &m->g.layers[l];
        layer_acts *a = &p->L[l];
        const float *x = p->resid + (size_t)l * NC;
        const size_t NHD = (size_t)N * HD;
        if (c->parallel_residual) {
            memset(p->datty, 0, NHD * sizeof(float));
            if ((st = linear_backward(m, SITE_O, l, p->datty, g->o_w, g->o_b, p->dres, a->atty, w->o_w, N, HD, C))) return st;
        }
        memset(p->dfch_act, 0, (size_t)N * F * sizeof(float));
        if ((st = linear_backward(m, SITE_DOWN, l, p->dfch_act, g->down_w, g->down_b, p->dres, a->fch_act, w->down_w, N, F, C))) return st;
        memset(p->dfch, 0, (size_t)N * F1 * sizeof(float));
        act_backward(c, p->dfch, a->fch, p->dfch_act, N);
        memset(p->dln, 0, NC * sizeof(float));
        if ((st = linear_backward(m, SITE_UP, l, p->dln, g->up_w, g->up_b, p->dfch, a->ln2, w->up_w, N, C, F1))) return st;
        norm_backward(c, block_ln(m), p->dres, g->ln2_w, g->ln2_b, p->dln, c->parallel_residual ? x : a->mid, w->ln2_w,
                      a->ln2_mean, a->ln2_rstd, N);
        if (!c->parallel_residual) {
            memset(p->datty, 0, NHD * sizeof(float));
            if ((st = linear_backward(m, SITE_O, l, p->datty, g->o_w, g->o_b, p->dres, a->atty, w->o_w, N, HD, C))) return st;
        }
        memset(p->dqkv, 0, (size_t)N * QKV * sizeof(float));
        lk_attention_backward(p->dqkv, p->datt, p->datty, a->qkv, a->att, B, T, c->n_head, c->n_kv_head, c->head_dim);
        if (m->qat && (st = m->hooks->qkv_backward(m->qat, m, l, p->dqkv, N))) return st;
        rope_backward(m, p->dqkv, B, T);
        memset(p->dln, 0, NC * sizeof(float));
        if ((st = linear_backward(m, SITE_QKV, l, p->dln, g->qkv_w, g->qkv_b, p->dqkv, a->ln1, w->qkv_w, N, C, QKV))) return st;
        norm_backward(c, block_ln(m), p->dres, g->ln1_w, g->ln1_b, p->dln, x, w->ln1_w, a->ln1_mean, a->ln1_rstd, N);
    }
    lk_embedding_backward(m->g.wte, p->dres, p->tokens, N, C, V);
    return RS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* KV-cache decoding                                                                         */

struct llm_kv {
    int max_T, len, n_layer, kvd;
    float *k, *v;       /* (n_layer, max_T, NKV*HS) each, RoPE applied to k */
    /* scratch for up to max_T new tokens */
    float *x, *ln, *mean, *rstd, *qkv, *atty, *tmp, *fch, *fch_act, *scores;
    float *buf;         /* the one allocation */
};

int llm_kv_alloc(llm_kv **out, const llm_model *m, int max_T)
{
    *out = NULL;
    const llm_config *c = &m->cfg;
    if (max_T < 1 || max_T > c->max_pos)
        return RS_ERROR(RS_EINVAL, "llm_kv_alloc: max_T %d outside 1..max_position_embeddings (%d)", max_T, c->max_pos);
    llm_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return RS_ERROR(RS_ENOMEM, "llm_kv_alloc: out of memory");
    size_t T = (size_t)max_T, C = (size_t)c->d, KVD = (size_t)c->n_kv_head * c->head_dim;
    size_t cache = (size_t)c->n_layer * T * KVD;
    size_t n = 2 * cache + T * C * 2 + 2 * T + T * (size_t)qkv_dim(c) + T * (size_t)hd_dim(c) + T * C +
               T * (size_t)f1_dim(c) + T * (size_t)c->d_ff + (size_t)c->n_head * T;
    kv->buf = malloc(n * sizeof(float));
    if (!kv->buf) {
        free(kv);
        return RS_ERROR(RS_ENOMEM, "llm_kv_alloc: out of memory (%zu floats)", n);
    }
    float *a = kv->buf;
    kv->k = take(&a, cache);
    kv->v = take(&a, cache);
    kv->x = take(&a, T * C);
    kv->ln = take(&a, T * C);
    kv->mean = take(&a, T);
    kv->rstd = take(&a, T);
    kv->qkv = take(&a, T * (size_t)qkv_dim(c));
    kv->atty = take(&a, T * (size_t)hd_dim(c));
    kv->tmp = take(&a, T * C);
    kv->fch = take(&a, T * (size_t)f1_dim(c));
    kv->fch_act = take(&a, T * (size_t)c->d_ff);
    kv->scores = take(&a, (size_t)c->n_head * T);
    kv->max_T = max_T;
    kv->n_layer = c->n_layer;
    kv->kvd = (int)KVD;
    kv->len = 0;
    *out = kv;
    return RS_OK;
}

void llm_kv_free(llm_kv *kv)
{
    if (!kv) return;
    free(kv->buf);
    free(kv);
}

void llm_kv_reset(llm_kv *kv) { kv->len = 0; }
int llm_kv_len(const llm_kv *kv) { return kv->len; }

/* q . k in eight interleaved partial sums (lanes e mod 8), added in a fixed tree: the compiler
 * vectorizes it (one running sum is a chain of dependent adds), and the result does not depend
 * on the build's vector width or the thread count. */
static inline float dot8(const float *q, const float *k, int n)
{
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int e = 0;
    for (; e + 8 <= n; e += 8)
        for (int u = 0; u < 8; u++) a[u] += q[e + u] * k[e + u];
    for (int u = 0; e < n; e++, u++) a[u] += q[e] * k[e];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* Causal attention of n new queries (positions len..len+n-1) over the cached keys/values
 * 0..len+n-1 of one layer. qkv (n,QKV); K, V (len+n, KVD); out (n,HD). */
void llm_decode_attention(float *out, float *scores, const float *qkv, const float *K, const float *Vc, int len,
                             int n, int NH, int NKV, int HS)
{
    const int QKV = (NH + 2 * NKV) * HS, KVD = NKV * HS, group = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static)
    for (int h = 0; h < NH; h++) {
        float *s = scores + (size_t)h * (size_t)(len + n);
        const int kh = h / group;
        for (int i = 0; i < n; i++) {
            const float *q = qkv + (size_t)i * QKV + (size_t)h * HS;
            const int nk = len + i + 1;
            float mx = -INFINITY;
            for (int j = 0; j < nk; j++) {
                s[j] = dot8(q, K + (size_t)j * KVD + (size_t)kh * HS, HS) * scale;
                if (s[j] > mx) mx = s[j];
            }
            float sum = 0.0f;
            for (int j = 0; j < nk; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            const float inv = 1.0f / sum;
            float *o = out + (size_t)i * NH * HS + (size_t)h * HS;
            for (int e = 0; e < HS; e++) o[e] = 0.0f;
            for (int j = 0; j < nk; j++) {
                const float *v = Vc + (size_t)j * KVD + (size_t)kh * HS;
                const float pj = s[j] * inv;
                for (int e = 0; e < HS; e++) o[e] += pj * v[e];
            }
        }
    }
}

void llm_block_attention(float *out, float *S, const float *qkv, const float *K, const float *Vc, int len, int n, int NH,
                         int NKV, int HS)
{
    const int QKV = (NH + 2 * NKV) * HS, KVD = NKV * HS, group = NH / NKV, nk = len + n;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int h = 0; h < NH; h++) {
        const int kh = h / group;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, HS, scale, qkv + (size_t)h * HS, QKV,
                    K + (size_t)kh * HS, KVD, 0.0f, S, nk);
#pragma omp parallel for schedule(static) if ((long)n * nk >= (1L << 14))
        for (int i = 0; i < n; i++) {
            float *s = S + (size_t)i * nk;
            const int nv = len + i + 1;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < nv; j++) mx = s[j] > mx ? s[j] : mx;
            for (int j = 0; j < nv; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            const float inv = 1.0f / sum;
            for (int j = 0; j < nv; j++) s[j] *= inv;
            for (int j = nv; j < nk; j++) s[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, HS, nk, 1.0f, S, nk, Vc + (size_t)kh * HS, KVD, 0.0f,
                    out + (size_t)h * HS, NH * HS);
    }
}

/* The rest of decoder block l after attention, on the n rows of a cache's scratch: the output
 * projection (from kv->atty), the residuals, ln2 and the MLP, into kv->x. */
static int decode_block_tail(llm_model *m, llm_kv *kv, int l, int n)
{
    const llm_config *c = &m->cfg;
    const llm_layer *w = &m->w.layers[l];
    const int C = c->d, F = c->d_ff, HD = hd_dim(c), F1 = f1_dim(c);
    const long NC = (long)n * C;
    int st;
    if ((st = linear_forward(m, SITE_O, l, kv->tmp, kv->atty, w->o_w, w->o_b, n, HD, C))) return st;
    if (c->parallel_residual) {
        /* x' = x + attn + mlp(ln2(x)): ln2 reads x before x changes */
        norm_forward(c, block_ln(m), kv->ln, kv->mean, kv->rstd, kv->x, w->ln2_w, w->ln2_b, n);
        lk_accumulate(kv->x, kv->tmp, NC);
    } else {
        lk_accumulate(kv->x, kv->tmp, NC);
        norm_forward(c, block_ln(m), kv->ln, kv->mean, kv->rstd, kv->x, w->ln2_w, w->ln2_b, n);
    }
    if ((st = linear_forward(m, SITE_UP, l, kv->fch, kv->ln, w->up_w, w->up_b, n, C, F1))) return st;
    act_forward(c, kv->fch_act, kv->fch, n);
    if ((st = linear_forward(m, SITE_DOWN, l, kv->tmp, kv->fch_act, w->down_w, w->down_b, n, F, C))) return st;
    lk_accumulate(kv->x, kv->tmp, NC);
    return RS_OK;
}

int llm_model_decode(llm_model *m, llm_kv *kv, const int32_t *tokens, int n, float *logits)
{
    const llm_config *c = &m->cfg;
    if (n < 1 || kv->len + n > kv->max_T)
        return RS_ERROR(RS_EINVAL, "llm_model_decode: %d tokens after %d cached exceed the cache (%d)", n, kv->len,
                        kv->max_T);
    if (kv->n_layer != c->n_layer || kv->kvd != c->n_kv_head * c->head_dim)
        return RS_ERROR(RS_EINVAL, "llm_model_decode: the cache was made for another model");
    const int C = c->d, V = c->vocab, QKV = qkv_dim(c);
    const int KVD = kv->kvd, QD = c->n_head * c->head_dim, len = kv->len;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return RS_ERROR(RS_EINVAL, "llm_model_decode: token %d outside the vocabulary (%d)", tokens[i], V);
    int st;
    if (m->qat && (st = m->hooks->reserve(m->qat, m, n))) return st;
    lk_embedding_forward(kv->x, tokens, m->w.wte, n, C);
    for (int l = 0; l < c->n_layer; l++) {
        const llm_layer *w = &m->w.layers[l];
        float *K = kv->k + (size_t)l * kv->max_T * KVD, *Vc = kv->v + (size_t)l * kv->max_T * KVD;
        norm_forward(c, block_ln(m), kv->ln, kv->mean, kv->rstd, kv->x, w->ln1_w, w->ln1_b, n);
        if ((st = linear_forward(m, SITE_QKV, l, kv->qkv, kv->ln, w->qkv_w, w->qkv_b, n, C, QKV))) return st;
        rope_forward(m, kv->qkv, 1, n, len);
        if (m->qat && (st = m->hooks->qkv_forward(m->qat, m, l, kv->qkv, n))) return st;
        for (int i = 0; i < n; i++) {
            memcpy(K + (size_t)(len + i) * KVD, kv->qkv + (size_t)i * QKV + QD, (size_t)KVD * sizeof(float));
            memcpy(Vc + (size_t)(len + i) * KVD, kv->qkv + (size_t)i * QKV + QD + KVD, (size_t)KVD * sizeof(float));
        }
        llm_decode_attention(kv->atty, kv->scores, kv->qkv, K, Vc, len, n, c->n_head, c->n_kv_head, c->head_dim);
        if ((st = decode_block_tail(m, kv, l, n))) return st;
    }
    /* only the last token's logits */
    const float *xl = kv->x + (size_t)(n - 1) * C;
    if (m->qat && !(xl = m->hooks->final_in(m->qat, xl, 1, C))) return RS_ERROR(RS_ENOMEM, "llm_model_decode: out of memory");
    norm_forward(c, is_neox(c), kv->ln, kv->mean, kv->rstd, xl, m->w.lnf_w, m->w.lnf_b, 1);
    linear_forward(m, SITE_HEAD, -1, logits, kv->ln, m->w.lm_head, NULL, 1, C, V);
    kv->len = len + n;
    return RS_OK;
}

int llm_model_decode_batch(llm_model *m, llm_kv *work, llm_kv *const *kv, int nb, const int32_t *tokens,
                           float *logits)
{
    const llm_config *c = &m->cfg;
    if (nb < 1 || nb > work->max_T)
        return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: %d sequences for a work cache of %d rows", nb, work->max_T);
    const int C = c->d, V = c->vocab, QKV = qkv_dim(c), HD = hd_dim(c);
    const int KVD = c->n_kv_head * c->head_dim, QD = c->n_head * c->head_dim;
    if (work->n_layer != c->n_layer || work->kvd != KVD)
        return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: the work cache was made for another model");
    for (int b = 0; b < nb; b++) {
        if (kv[b]->n_layer != c->n_layer || kv[b]->kvd != KVD)
            return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: cache %d was made for another model", b);
        if (kv[b]->len + 1 > kv[b]->max_T)
            return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: sequence %d is full (%d tokens)", b, kv[b]->max_T);
        if (kv[b] == work) return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: the work cache is also sequence %d", b);
        for (int e = 0; e < b; e++)
            if (kv[e] == kv[b]) return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: sequences %d and %d share a cache", e, b);
        if (tokens[b] < 0 || tokens[b] >= V)
            return RS_ERROR(RS_EINVAL, "llm_model_decode_batch: token %d outside the vocabulary (%d)", tokens[b], V);
    }
    llm_kv *w0 = work;
    int st;
    if (m->qat && (st = m->hooks->reserve(m->qat, m, nb))) return st;
    lk_embedding_forward(w0->x, tokens, m->w.wte, nb, C);
    for (int l = 0; l < c->n_layer; l++) {
        const llm_layer *w = &m->w.layers[l];
        norm_forward(c, block_ln(m), w0->ln, w0->mean, w0->rstd, w0->x, w->ln1_w, w->ln1_b, nb);
        if ((st = linear_forward(m, SITE_QKV, l, w0->qkv, w0->ln, w->qkv_w, w->qkv_b, nb, C, QKV))) return st;
        for (int b = 0; b < nb; b++) rope_forward(m, w0->qkv + (size_t)b * QKV, 1, 1, kv[b]->len);
        if (m->qat && (st = m->hooks->qkv_forward(m->qat, m, l, w0->qkv, nb))) return st;
        for (int b = 0; b < nb; b++) {
            const size_t at = ((size_t)l * kv[b]->max_T + (size_t)kv[b]->len) * KVD;
            const float *row = w0->qkv + (size_t)b * QKV;
            memcpy(kv[b]->k + at, row + QD, (size_t)KVD * sizeof(float));
            memcpy(kv[b]->v + at, row + QD + KVD, (size_t)KVD * sizeof(float));
            /* each sequence's own scores scratch holds NH x max_T */
            llm_decode_attention(w0->atty + (size_t)b * HD, kv[b]->scores, row, kv[b]->k + (size_t)l * kv[b]->max_T * KVD,
                                 kv[b]->v + (size_t)l * kv[b]->max_T * KVD, kv[b]->len, 1, c->n_head, c->n_kv_head,
                                 c->head_dim);
        }
        if ((st = decode_block_tail(m, w0, l, nb))) return st;
    }
    const float *xl = w0->x;
    if (m->qat && !(xl = m->hooks->final_in(m->qat, xl, nb, C)))
        return RS_ERROR(RS_ENOMEM, "llm_model_decode_batch: out of memory");
    norm_forward(c, is_neox(c), w0->ln, w0->mean, w0->rstd, xl, m->w.lnf_w, m->w.lnf_b, nb);
    linear_forward(m, SITE_HEAD, -1, logits, w0->ln, m->w.lm_head, NULL, nb, C, V);
    for (int b = 0; b < nb; b++) kv[b]->len++;
    return RS_OK;
}
