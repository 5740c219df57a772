/* rostesim LLM: norm folding, untying, R1/R2/R4 merging in double, online R3/R4. See rotate.h.
 * Conventions (HF weight W stored (out, in), activations are row vectors x):
 *   reader   y = x W^T, x' = x R     ->  W' = W R          (rows of W, length in)
 *   writer   y = a W^T + b, y' = y R  ->  W' = R^T W, b' = b R (cols of W, length out) */
#include "llm/quantize/rotate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "llm/io/fileio.h"
#include "llm/io/jsonutil.h"
#include "llm/quantize/qat.h"
#include "quant/rng.h"
#include "quant/rotation.h"
#include "quant/status.h"

const char *llm_signs_name(llm_signs s)
{
    return s == LLM_SIGNS_ALL ? "all" : s == LLM_SIGNS_R1 ? "r1" : s == LLM_SIGNS_NONE ? "none" : "?";
}

int llm_signs_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "all")) return LLM_SIGNS_ALL;
    if (!strcmp(s, "r1")) return LLM_SIGNS_R1;
    if (!strcmp(s, "none")) return LLM_SIGNS_NONE;
    return -1;
}

int llm_rot_config_init(llm_rot_config *rc, int n_layer, int r1, int r2, int r3, int r4, llm_signs signs,
                        uint64_t seed)
{
    memset(rc, 0, sizeof *rc);
    rc->n_layer = n_layer;
    rc->r1 = r1;
    rc->signs = signs;
    rc->seed = seed;
    rc->r2 = malloc((size_t)n_layer);
    rc->r3 = malloc((size_t)n_layer);
    rc->r4 = malloc((size_t)n_layer);
    if (!rc->r2 || !rc->r3 || !rc->r4) {
        llm_rot_config_free(rc);
        return RS_ERROR(RS_ENOMEM, "llm_rot_config: out of memory");
    }
    memset(rc->r2, r2 != 0, (size_t)n_layer);
    memset(rc->r3, r3 != 0, (size_t)n_layer);
    memset(rc->r4, r4 != 0, (size_t)n_layer);
    return RS_OK;
}

void llm_rot_config_free(llm_rot_config *rc)
{
    if (!rc) return;
    free(rc->r2);
    free(rc->r3);
    free(rc->r4);
    rc->r2 = rc->r3 = rc->r4 = NULL;
}

int llm_rot_config_copy(llm_rot_config *dst, const llm_rot_config *src)
{
    int st = llm_rot_config_init(dst, src->n_layer, src->r1, 0, 0, 0, src->signs, src->seed);
    if (st) return st;
    memcpy(dst->r2, src->r2, (size_t)src->n_layer);
    memcpy(dst->r3, src->r3, (size_t)src->n_layer);
    memcpy(dst->r4, src->r4, (size_t)src->n_layer);
    dst->r2_online = src->r2_online;
    return RS_OK;
}

int llm_rot_config_any(const llm_rot_config *rc)
{
    int any = rc->r1;
    for (int l = 0; l < rc->n_layer; l++) any |= rc->r2[l] | rc->r3[l] | rc->r4[l];
    return any;
}

/* Rk of order n: random signs when the configuration says so. */
static int make_rot(const llm_rot_config *rc, int k, size_t n, rot **out)
{
    int random = rc->signs == LLM_SIGNS_ALL || (rc->signs == LLM_SIGNS_R1 && k == 1);
    rs_rng *rng = random ? rs_rng_alloc(rc->seed, 16 + (uint64_t)k) : NULL;
    if (random && !rng) return RS_ERROR(RS_ENOMEM, "llm_rotate: out of memory");
    int st = rot_alloc(random ? ROT_RANDOM_HADAMARD : ROT_HADAMARD, n, 1, rng, out);
    rs_rng_free(rng);
    if (st) return RS_ERROR(st, "llm_rotate: R%d of order %zu: %s", k, n, rs_last_error());
    return RS_OK;
}

/* In double: W (rows x n) <- W R (or W R^T), rows of length n = rot order. */
static int merge_rows(const rot *r, float *w, size_t numel, int transpose)
{
    double *d = malloc(numel * sizeof *d);
    if (!d) return RS_ERROR(RS_ENOMEM, "llm_rotate: out of memory");
    for (size_t i = 0; i < numel; i++) d[i] = w[i];
    int st = rot_apply_rows_f64(r, d, numel / rot_dim(r), transpose);
    for (size_t i = 0; i < numel && !st; i++) w[i] = (float)d[i];
    free(d);
    return st;
}

/* In double: W (n x cols) <- R W (or R^T W). */
static int merge_cols(const rot *r, float *w, size_t cols, int transpose)
{
    size_t numel = rot_dim(r) * cols;
    double *d = malloc(numel * sizeof *d);
    if (!d) return RS_ERROR(RS_ENOMEM, "llm_rotate: out of memory");
    for (size_t i = 0; i < numel; i++) d[i] = w[i];
    int st = rot_apply_cols_f64(r, d, cols, transpose);
    for (size_t i = 0; i < numel && !st; i++) w[i] = (float)d[i];
    free(d);
    return st;
}

/* A copy of a tied model with its own LM head. */
static int untie(llm_model **pm)
{
    llm_model *m = *pm, *u = NULL;
    llm_config c = m->cfg;
    c.tied = 0;
    rs_rng *rng = rs_rng_alloc(0, 0);
    int st = rng ? llm_model_init_random(&u, &c, rng) : RS_ERROR(RS_ENOMEM, "llm_rotate: out of memory");
    rs_rng_free(rng);
    if (st) return st;
    /* same table order, plus the head at the end */
    for (size_t i = 0; i < m->ntab; i++)
        memcpy(u->params + u->tab[i].offset, m->params + m->tab[i].offset, m->tab[i].numel * sizeof(float));
    memcpy(u->w.lm_head, m->w.wte, (size_t)c.vocab * c.d * sizeof(float));
    u->qat = m->qat, u->hooks = m->hooks;
    m->qat = NULL, m->hooks = NULL;
    llm_model_free(m);
    *pm = u;
    return RS_OK;
}

/* scale the columns of W (rows x n) by s (n) */
static void scale_cols(float *w, const float *s, size_t rows, size_t n)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n; j++) w[i * n + j] *= s[j];
}

/* b (rows) += W (rows x n) · v (n), in double */
static void add_matvec(float *b, const float *w, const float *v, size_t rows, size_t n)
{
    for (size_t i = 0; i < rows; i++) {
        double s = b[i];
        for (size_t j = 0; j < n; j++) s += (double)w[i * n + j] * v[j];
        b[i] = (float)s;
    }
}

/* zero-mean columns of W (n x cols) (over the n outputs), and zero-mean b (n) */
static void center_out(float *w, float *b, size_t n, size_t cols)
{
    for (size_t j = 0; j < cols; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += w[i * cols + j];
        float mu = (float)(s / (double)n);
        for (size_t i = 0; i < n; i++) w[i * cols + j] -= mu;
    }
    if (b) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += b[i];
        float mu = (float)(s / (double)n);
        for (size_t i = 0; i < n; i++) b[i] -= mu;
    }
}

static void fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* Fold the norms (and for GPT-NeoX the mean) into the linear layers. */
static int fold_norms(llm_model *m)
{
    const llm_config *c = &m->cfg;
    const size_t C = (size_t)c->d, V = (size_t)c->vocab, F = (size_t)c->d_ff;
    const size_t QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim, HD = (size_t)c->n_head * c->head_dim;
    const size_t F1 = c->arch == LLM_GPT_NEOX ? F : 2 * F;
    const int neox = c->arch == LLM_GPT_NEOX;
    for (int l = 0; l < c->n_layer; l++) {
        llm_layer *L = &m->w.layers[l];
        if (neox) {
            /* the embedding rows: handled below; the writers' outputs made zero-mean */
            center_out(L->o_w, L->o_b, C, HD);
            center_out(L->down_w, L->down_b, C, F);
            if (!L->qkv_b || !L->up_b)
                return RS_ERROR(RS_ENOTSUP, "llm_rotate: layer %d: a LayerNorm shift needs q/k/v and MLP biases to "
                                "fold into", l);
            add_matvec(L->qkv_b, L->qkv_w, L->ln1_b, QKV, C);
            add_matvec(L->up_b, L->up_w, L->ln2_b, F1, C);
            fill(L->ln1_b, C, 0.0f);
            fill(L->ln2_b, C, 0.0f);
        }
        scale_cols(L->qkv_w, L->ln1_w, QKV, C);
        scale_cols(L->up_w, L->ln2_w, F1, C);
        fill(L->ln1_w, C, 1.0f);
        fill(L->ln2_w, C, 1.0f);
    }
    if (!neox) {
        scale_cols(m->w.lm_head, m->w.lnf_w, V, C);
        fill(m->w.lnf_w, C, 1.0f);
    }
    return RS_OK;
}

/* The embedding's rows are residual vectors: x - mean(x) for each token's vector. */
static void center_rows(float *w, size_t rows, size_t n)
{
    for (size_t i = 0; i < rows; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++) s += w[i * n + j];
        float mu = (float)(s / (double)n);
        for (size_t j = 0; j < n; j++) w[i * n + j] -= mu;
    }
}

static int set_r2(llm_model *m, const rot *r2, int l, int on)
{
    const llm_config *c = &m->cfg;
    const size_t C = (size_t)c->d, HS = (size_t)c->head_dim, QD = (size_t)c->n_head * HS;
    llm_layer *L = &m->w.layers[l];
    int st = RS_OK;
    for (int kh = 0; kh < c->n_kv_head && !st; kh++) {
        size_t row = QD + (size_t)c->n_kv_head * HS + (size_t)kh * HS;
        st = merge_cols(r2, L->qkv_w + row * C, C, on ? 1 : 0);
        if (!st && L->qkv_b) st = merge_rows(r2, L->qkv_b + row, HS, on ? 0 : 1);
    }
    if (!st) st = merge_rows(r2, L->o_w, C * (size_t)c->n_head * HS, on ? 0 : 1);
    return st;
}

static int set_r4(llm_model *m, const rot *r4, int l, int on)
{
    const llm_config *c = &m->cfg;
    return merge_rows(r4, m->w.layers[l].down_w, (size_t)c->d * c->d_ff, on ? 0 : 1);
}

int llm_rotate_attach(llm_model *m, const llm_rot_config *rc)
{
    const llm_config *c = &m->cfg;
    if (rc->n_layer != c->n_layer)
        return RS_ERROR(RS_EINVAL, "llm_rotate: the rotation configuration has %d layers, the model %d", rc->n_layer,
                        c->n_layer);
    int st;
    if (!m->qat) {
        llm_qat_opts o;
        llm_qat_opts_default(&o);
        o.wbits = o.abits = o.kvbits = 16;
        if ((st = llm_qat_attach(m, &o))) return st;
    }
    llm_qat *q = m->qat;
    rot_free(q->r1), rot_free(q->r2), rot_free(q->r3), rot_free(q->r4);
    q->r1 = q->r2 = q->r3 = q->r4 = NULL;
    if (rc->r1 && c->arch == LLM_GPT_NEOX && (st = make_rot(rc, 1, (size_t)c->d, &q->r1))) return st;
    if ((st = make_rot(rc, 2, (size_t)c->head_dim, &q->r2))) return st;
    if ((st = make_rot(rc, 3, (size_t)c->head_dim, &q->r3))) return st;
    if ((st = make_rot(rc, 4, (size_t)c->d_ff, &q->r4))) return st;
    q->rms_norm = rc->r1 && c->arch == LLM_GPT_NEOX;
    memcpy(q->r3_on, rc->r3, (size_t)c->n_layer);
    memcpy(q->r4_on, rc->r4, (size_t)c->n_layer);
    if (rc->r2_online) {
        if ((st = llm_qat_r2_reserve(q))) return st;
        memcpy(q->r2_on, rc->r2, (size_t)c->n_layer);
        q->r2_trained_online = 1;
    } else {
        memset(q->r2_on, 0, (size_t)c->n_layer);
    }
    return RS_OK;
}

int llm_rotate(llm_model **pm, const llm_rot_config *rc)
{
    llm_model *m = *pm;
    int st = llm_rotate_attach(m, rc);
    if (st) return st;
    if (rc->r1) {
        if (m->cfg.tied && (st = untie(pm))) return st;
        m = *pm;
        const llm_config *c = &m->cfg;
        const size_t C = (size_t)c->d, V = (size_t)c->vocab, F = (size_t)c->d_ff;
        const size_t QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim, HD = (size_t)c->n_head * c->head_dim;
        const size_t F1 = c->arch == LLM_GPT_NEOX ? F : 2 * F;
        if (c->arch == LLM_GPT_NEOX) center_rows(m->w.wte, V, C);
        if ((st = fold_norms(m))) return st;
        rot *r1 = NULL;
        if ((st = make_rot(rc, 1, C, &r1))) return st;
        st = merge_rows(r1, m->w.wte, V * C, 0);
        for (int l = 0; l < c->n_layer && !st; l++) {
            llm_layer *L = &m->w.layers[l];
            st = merge_rows(r1, L->qkv_w, QKV * C, 0);
            if (!st) st = merge_rows(r1, L->up_w, F1 * C, 0);
            if (!st) st = merge_cols(r1, L->o_w, HD, 1);
            if (!st && L->o_b) st = merge_rows(r1, L->o_b, C, 0);
            if (!st) st = merge_cols(r1, L->down_w, F, 1);
            if (!st && L->down_b) st = merge_rows(r1, L->down_b, C, 0);
        }
        if (!st && c->arch != LLM_GPT_NEOX) st = merge_rows(r1, m->w.lm_head, V * C, 0);
        rot_free(r1);
        if (st) return st;
    }
    const llm_qat *q = m->qat;
    for (int l = 0; l < rc->n_layer && !st; l++) {
        if (rc->r2[l] && !rc->r2_online) st = set_r2(m, q->r2, l, 1);
        if (!st && rc->r4[l]) st = set_r4(m, q->r4, l, 1);
    }
    return st;
}

int llm_rotate_set(llm_model *m, llm_rot_config *rc, int layer, int which, int on)
{
    llm_qat *q = m->qat;
    if (!q || !q->r2 || !q->r3 || !q->r4 || layer < 0 || layer >= rc->n_layer)
        return RS_ERROR(RS_EINVAL, "llm_rotate_set: the model has no rotation objects or layer %d is out of range",
                        layer);
    on = on != 0;
    int st = RS_OK;
    if (which == 2 && rc->r2_online) {
        rc->r2[layer] = q->r2_on[layer] = (unsigned char)on; /* weights untouched */
    } else if (which == 2) {
        if (rc->r2[layer] != on) st = set_r2(m, q->r2, layer, on);
        if (!st) rc->r2[layer] = (unsigned char)on;
    } else if (which == 3) {
        rc->r3[layer] = (unsigned char)on;
        q->r3_on[layer] = (unsigned char)on;
    } else if (which == 4) {
        if (rc->r4[layer] != on) st = set_r4(m, q->r4, layer, on);
        if (!st) rc->r4[layer] = q->r4_on[layer] = (unsigned char)on;
    } else {
        return RS_ERROR(RS_EINVAL, "llm_rotate_set: which must be 2, 3 or 4 (got %d)", which);
    }
    return st;
}

int llm_rotate_merge_r2(llm_model *m, llm_rot_config *rc)
{
    llm_qat *q = m->qat;
    if (!q) return RS_OK;
    int st = RS_OK;
    for (int l = 0; l < q->n_layer && !st; l++)
        if (q->r2_on[l]) {
            if (!q->r2) return RS_ERROR(RS_EINVAL, "llm_rotate_merge_r2: no R2 rotation object");
            if (!(st = set_r2(m, q->r2, l, 1))) q->r2_on[l] = 0;
        }
    /* the forward->backward caches hold the weights of before */
    for (int k = 0; k < q->n_layer * LLM_NSITES; k++) q->wc_src[k] = NULL;
    if (!st && rc) rc->r2_online = 0;
    return st;
}

/* ---- JSON ------------------------------------------------------------------------------- */

cJSON *llm_rot_config_to_json(const llm_rot_config *rc)
{
    cJSON *j = cJSON_CreateObject(), *blk = cJSON_CreateObject();
    if (!j || !blk) {
        cJSON_Delete(j);
        cJSON_Delete(blk);
        return NULL;
    }
    cJSON_AddBoolToObject(j, "is_rotate_R1", rc->r1);
    for (int l = 0; l < rc->n_layer; l++) {
        char k[16];
        snprintf(k, sizeof k, "%d", l);
        cJSON *o = cJSON_AddObjectToObject(blk, k);
        cJSON_AddBoolToObject(o, "is_rotate_R2", rc->r2[l]);
        cJSON_AddBoolToObject(o, "is_rotate_R3", rc->r3[l]);
        cJSON_AddBoolToObject(o, "is_rotate_R4", rc->r4[l]);
    }
    cJSON_AddItemToObject(j, "in_block_rotation", blk);
    cJSON_AddStringToObject(j, "signs", llm_signs_name(rc->signs));
    cJSON_AddNumberToObject(j, "seed", (double)rc->seed);
    return j;
}

static int get_bool(const cJSON *o, const char *k, int *v, const char *what, const char *where)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsBool(b)) return RS_ERROR(RS_EINVAL, "%s: %s%s must be true or false", what, where, k);
    *v = cJSON_IsTrue(b);
    return RS_OK;
}

int llm_rot_config_from_json(llm_rot_config *rc, const cJSON *j, int n_layer, const char *what)
{
    int r1 = 0, st;
    if (!cJSON_IsObject(j)) return RS_ERROR(RS_EINVAL, "%s: not a JSON object", what);
    if ((st = get_bool(j, "is_rotate_R1", &r1, what, ""))) return st;
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(j, "signs"), *sd = cJSON_GetObjectItemCaseSensitive(j, "seed");
    int signs = LLM_SIGNS_R1;
    if (sg && (!cJSON_IsString(sg) || (signs = llm_signs_parse(sg->valuestring)) < 0))
        return RS_ERROR(RS_EINVAL, "%s: \"signs\" must be \"all\", \"r1\" or \"none\"", what);
    if (sd && (!cJSON_IsNumber(sd) || sd->valuedouble < 0 || sd->valuedouble > 9007199254740992.0))
        return RS_ERROR(RS_EINVAL, "%s: \"seed\" must be a non-negative integer", what);
    if ((st = llm_rot_config_init(rc, n_layer, r1, 0, 0, 0, (llm_signs)signs, sd ? (uint64_t)sd->valuedouble : 0)))
        return st;
    const cJSON *blk = cJSON_GetObjectItemCaseSensitive(j, "in_block_rotation");
    if (!cJSON_IsObject(blk) || cJSON_GetArraySize(blk) != n_layer) {
        llm_rot_config_free(rc);
        return RS_ERROR(RS_EINVAL, "%s: \"in_block_rotation\" must have one entry per layer (%d)", what, n_layer);
    }
    for (int l = 0; l < n_layer; l++) {
        char k[16], where[48];
        snprintf(k, sizeof k, "%d", l);
        snprintf(where, sizeof where, "in_block_rotation.%d.", l);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(blk, k);
        int a = 0, b = 0, c = 0;
        if (!o) st = RS_ERROR(RS_EINVAL, "%s: in_block_rotation has no layer \"%d\"", what, l);
        if (!st) st = get_bool(o, "is_rotate_R2", &a, what, where);
        if (!st) st = get_bool(o, "is_rotate_R3", &b, what, where);
        if (!st) st = get_bool(o, "is_rotate_R4", &c, what, where);
        if (st) {
            llm_rot_config_free(rc);
            return st;
        }
        rc->r2[l] = (unsigned char)a, rc->r3[l] = (unsigned char)b, rc->r4[l] = (unsigned char)c;
    }
    return RS_OK;
}

int llm_rot_config_save(const llm_rot_config *rc, const char *path)
{
    return llm_json_write(path, llm_rot_config_to_json(rc), 1);
}

int llm_rot_config_load(llm_rot_config *rc, const char *path, int n_layer)
{
    size_t n;
    char *txt;
    if (llm_read_file(path, LLM_READ_ANY_SIZE, &txt, &n)) return RS_ERROR(RS_EIO, "cannot read %s: %s", path, strerror(errno));
    cJSON *j = cJSON_ParseWithLength(txt, n);
    free(txt);
    if (!j) return RS_ERROR(RS_EINVAL, "%s: not valid JSON", path);
    int st = llm_rot_config_from_json(rc, j, n_layer, path);
    cJSON_Delete(j);
    return st;
}
