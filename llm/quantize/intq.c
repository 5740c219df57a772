/* rostesim LLM: integer inference of a quantized model. See intq.h; kernels in intq_kernels.c.
 * Dimension letters as in kernels.h; ICp = iq_padded(IC). */
#include "llm/quantize/intq.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/io/fileio.h"
#include "llm/io/safetensors.h"
#include "llm/quantize/intq_kernels.h"
#include "llm/nn/kernels.h"
#include "llm/quantize/qat.h"
#include "quant/quant.h"
#include "quant/rotation.h"
#include "quant/status.h"

typedef struct {
    int OC, IC, ICp;
    uint8_t *w;     /* OC packed rows of ICp/2 bytes */
    uint8_t *wil;   /* the same codes in the VNNI kernel's IL16 layout (NULL: none) */
    float *scale;   /* OC: s_w */
    int32_t *zero;  /* OC: z_w' = z_w - qmin */
    int32_t *sum;   /* OC: sum of the row's unsigned codes */
} iq_lin;

typedef struct {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *qkv_b, *o_b, *up_b, *down_b;
    iq_lin lin[LLM_NSITES];
} iq_layer;

struct llm_intq {
    llm_config cfg;
    qz_spec w, a, kv;      /* the QAT state's quantizers */
    int block_ln;          /* blocks use LayerNorm (GPT-NeoX without a folded R1) */
    float *f;              /* fp32 tensors, one allocation (nf floats) */
    uint8_t *pk;           /* packed rows, one allocation (npk bytes) */
    uint8_t *pkil;         /* on a CPU with AVX-512 VNNI: every site in the IL16 layout (NULL: none) */
    size_t npkil;          /* its bytes (0: none) */
    float *rs;             /* per-row scales (nrow) */
    int32_t *ri;           /* per-row zero points then code sums (2 nrow) */
    size_t nf, npk, nrow;
    float *wte, *head, *lnf_w, *lnf_b; /* wte and head NULL with the q8 head */
    llm_intq_head head_kind;
    int Cp;                /* iq_padded_s8(d): bytes of an int8 row */
    int8_t *q8;            /* q8 head: nq8 int8 rows of Cp bytes: the embedding, then the LM head if untied */
    float *q8s;            /* their scales */
    size_t nq8;
    const int8_t *wte8, *head8; /* views into q8 (the same when tied) */
    const float *wte8s, *head8s;
    iq_layer *L;
    rot *r1, *r3, *r4;     /* NULL = none */
    unsigned char *r3_on, *r4_on;
    float *rope_cos, *rope_sin;
    llm_intq_tap_fn tap;   /* observer of every quantizer's input (NULL = none) */
    void *tap_ctx;
};

void llm_intq_set_tap(llm_intq *iq, llm_intq_tap_fn fn, void *ctx)
{
    iq->tap = fn;
    iq->tap_ctx = ctx;
}

static int qkv_dim(const llm_config *c) { return (c->n_head + 2 * c->n_kv_head) * c->head_dim; }
static int is_neox(const llm_config *c) { return c->arch == LLM_GPT_NEOX; }
static int f1_dim(const llm_config *c) { return is_neox(c) ? c->d_ff : 2 * c->d_ff; }

static void site_dims(const llm_config *c, int site, int *OC, int *IC)
{
    const int C = c->d, HD = c->n_head * c->head_dim;
    switch (site) {
    case LLM_SITE_QKV: *OC = qkv_dim(c), *IC = C; break;
    case LLM_SITE_O: *OC = C, *IC = HD; break;
    case LLM_SITE_UP: *OC = f1_dim(c), *IC = C; break;
    default: *OC = C, *IC = c->d_ff; break;
    }
}

/* Lay out the tensors; with the bases set (iq->f etc.) also the views. */
static void layout(llm_intq *iq)
{
    const llm_config *c = &iq->cfg;
    const size_t C = (size_t)c->d, V = (size_t)c->vocab;
    size_t f = 0, p = 0, r = 0;
#define TAKE(view, n, cond)                                   \
    do {                                                      \
        if (cond) {                                           \
            (view) = iq->f ? iq->f + f : NULL;                \
            f += (n);                                         \
        } else {                                              \
            (view) = NULL;                                    \
        }                                                     \
    } while (0)
    const int q8 = iq->head_kind == LLM_INTQ_HEAD_Q8;
    TAKE(iq->wte, V * C, !q8);
    TAKE(iq->head, V * C, !c->tied && !q8);
    if (c->tied) iq->head = iq->wte;
    iq->Cp = (int)iq_padded_s8(C);
    iq->nq8 = q8 ? (c->tied ? V : 2 * V) : 0;
    iq->wte8 = iq->q8, iq->wte8s = iq->q8s;
    iq->head8 = iq->q8 && !c->tied ? iq->q8 + V * (size_t)iq->Cp : iq->q8;
    iq->head8s = iq->q8s && !c->tied ? iq->q8s + V : iq->q8s;
    TAKE(iq->lnf_w, C, 1);
    TAKE(iq->lnf_b, C, is_neox(c));
    for (int l = 0; l < c->n_layer; l++) {
        iq_layer *L = &iq->L[l];
        TAKE(L->ln1_w, C, 1);
        TAKE(L->ln1_b, C, is_neox(c));
        TAKE(L->qkv_b, (size_t)qkv_dim(c), c->qkv_bias);
        TAKE(L->o_b, C, c->o_bias);
        TAKE(L->ln2_w, C, 1);
        TAKE(L->ln2_b, C, is_neox(c));
        TAKE(L->up_b, (size_t)f1_dim(c), c->mlp_bias);
        TAKE(L->down_b, C, c->mlp_bias);
        for (int s = 0; s < LLM_NSITES; s++) {
            iq_lin *li = &L->lin[s];
            site_dims(c, s, &li->OC, &li->IC);
            li->ICp = (int)iq_padded((size_t)li->IC);
            li->w = iq->pk ? iq->pk + p : NULL;
            li->scale = iq->rs ? iq->rs + r : NULL;
            li->zero = iq->ri ? iq->ri + r : NULL;
            p += (size_t)li->OC * (size_t)li->ICp / 2;
            r += (size_t)li->OC;
        }
    }
#undef TAKE
    iq->nf = f, iq->npk = p, iq->nrow = r;
    for (int l = 0; l < c->n_layer && iq->ri; l++)
        for (int s = 0; s < LLM_NSITES; s++) iq->L[l].lin[s].sum = iq->L[l].lin[s].zero + r;
}

void llm_intq_free(llm_intq *iq)
{
    if (!iq) return;
    free(iq->f), free(iq->pk), free(iq->pkil), free(iq->rs), free(iq->ri), free(iq->L), free(iq->q8), free(iq->q8s);
    rot_free(iq->r1), rot_free(iq->r3), rot_free(iq->r4);
    free(iq->r3_on), free(iq->r4_on), free(iq->rope_cos);
    free(iq);
}

/* A shell with the config: views laid out, the big buffers allocated, rope tables built. */
static int shell_alloc(llm_intq **out, const llm_config *c, llm_intq_head head, size_t avail, const char *path)
{
    *out = NULL;
    llm_intq *iq = calloc(1, sizeof *iq);
    if (!iq) return RS_ERROR(RS_ENOMEM, "llm_intq: out of memory");
    iq->cfg = *c;
    iq->head_kind = head;
    size_t L = (size_t)c->n_layer;
    iq->L = calloc(L, sizeof *iq->L);
    iq->r3_on = calloc(L, 1);
    iq->r4_on = calloc(L, 1);
    int half = c->rot_dim / 2;
    size_t nrope = (size_t)c->max_pos * (size_t)(half > 0 ? half : 1);
    double *inv = malloc((size_t)(half > 0 ? half : 1) * sizeof(double));
    if (iq->L) layout(iq);
    /* A header read from a file must not make us allocate more than the file can hold (a hostile size field
     * would otherwise ask for gigabytes before the short read is noticed). */
    size_t need = iq->L ? iq->nf * sizeof(float) + iq->npk + 3 * iq->nrow * sizeof(float) +
                              iq->nq8 * ((size_t)iq->Cp + sizeof(float))
                        : 0;
    if (iq->L && path && need > avail) {
        free(inv);
        llm_intq_free(iq);
        return RS_ERROR(RS_EINVAL, "%s: the header describes %zu bytes of tensors, the file has %zu (corrupt or truncated "
                        "file)", path, need, avail);
    }
    if (iq->L && path && 2 * nrope * sizeof(float) > ((size_t)1 << 30)) {
        free(inv);
        llm_intq_free(iq);
        return RS_ERROR(RS_EINVAL, "%s: max_position_embeddings %d x %d rotary dimensions: a rope table over 1 GiB "
                        "(corrupt file?)", path, c->max_pos, c->rot_dim);
    }
    if (iq->L) {
        iq->rope_cos = malloc(2 * nrope * sizeof(float));
        iq->f = malloc(iq->nf * sizeof(float));
        iq->pk = malloc(iq->npk ? iq->npk : 1);
        iq->rs = malloc(iq->nrow * sizeof(float));
        iq->ri = malloc(2 * iq->nrow * sizeof(int32_t));
        iq->q8 = malloc(iq->nq8 * (size_t)iq->Cp + 1);
        iq->q8s = malloc(iq->nq8 * sizeof(float) + 1);
    }
    if (!iq->L || !iq->r3_on || !iq->r4_on || !iq->rope_cos || !inv || !iq->f || !iq->pk || !iq->rs || !iq->ri ||
        !iq->q8 || !iq->q8s) {
        free(inv);
        llm_intq_free(iq);
        return RS_ERROR(RS_ENOMEM, "llm_intq: out of memory");
    }
    layout(iq);
    iq->rope_sin = iq->rope_cos + nrope;
    if (half > 0) {
        lk_rope_inv_freq(inv, c->rot_dim, c->rope_theta, (int)c->rope_type, c->rope_factor, c->rope_low_freq_factor,
                         c->rope_high_freq_factor, c->rope_orig_max_pos);
        lk_rope_table(iq->rope_cos, iq->rope_sin, inv, c->max_pos, c->rot_dim);
    }
    free(inv);
    *out = iq;
    return RS_OK;
}

const llm_config *llm_intq_config(const llm_intq *iq) { return &iq->cfg; }

llm_intq_head llm_intq_head_kind(const llm_intq *iq) { return iq->head_kind; }

const char *llm_intq_head_name(llm_intq_head h) { return h == LLM_INTQ_HEAD_Q8 ? "q8" : "f32"; }

int llm_intq_head_parse(const char *s, llm_intq_head *h)
{
    if (s && !strcmp(s, "f32")) *h = LLM_INTQ_HEAD_F32;
    else if (s && !strcmp(s, "q8")) *h = LLM_INTQ_HEAD_Q8;
    else return RS_EINVAL;
    return RS_OK;
}

size_t llm_intq_bytes(const llm_intq *iq, size_t *packed, size_t *fp32)
{
    size_t p = iq->npk + iq->nrow * (sizeof(float) + 2 * sizeof(int32_t)) + iq->nq8 * ((size_t)iq->Cp + sizeof(float));
    size_t f = iq->nf * sizeof(float);
    if (packed) *packed = p;
    if (fp32) *fp32 = f;
    return p + f;
}

size_t llm_intq_il16_bytes(const llm_intq *iq) { return iq->npkil; }

/* ---- what the int path supports ------------------------------------------------------------ */

static int rot_ok(const rot *r, const char *name)
{
    if (!r) return RS_OK;
    rot_kind k = rot_get_kind(r);
    if ((k != ROT_HADAMARD && k != ROT_RANDOM_HADAMARD) || rot_dim(r) != rot_block(r))
        return RS_ERROR(RS_ENOTSUP, "the int backend applies Hadamard online rotations only; %s is %s", name,
                        rot_kind_name(k));
    return RS_OK;
}

int llm_intq_supported(const llm_model *m)
{
    const llm_qat *q = m->qat;
    if (!q)
        return RS_ERROR(RS_ENOTSUP, "the model has no quantization state (no %s): the int backend runs QAT or PTQ "
                        "models (llm qat, llm ptq)", LLM_QAT_FILE);
    if (qz_is_identity(&q->w) || q->w.bits > 4)
        return RS_ERROR(RS_ENOTSUP, "weights are %s: the int backend packs 1- to 4-bit weights (a GPTQ model keeps "
                        "wbits 16 in %s; its weights are not on the per-row grid)",
                        qz_is_identity(&q->w) ? "not quantized (wbits >= 16)" : "more than 4-bit", LLM_QAT_FILE);
    if (qz_is_identity(&q->a) || q->a.bits > 8)
        return RS_ERROR(RS_ENOTSUP, "activations are %d-bit: the int backend needs 1- to 8-bit activations (--abits)",
                        q->a.bits);
    if (!qz_is_identity(&q->kv) && q->kv.bits > 4)
        return RS_ERROR(RS_ENOTSUP, "the KV cache is %d-bit: the int backend stores 1- to 4-bit (packed) or 16-bit "
                        "(unquantized) K/V", q->kv.bits);
    for (int l = 0; l < q->n_layer; l++)
        if (q->r2_on[l]) return RS_ERROR(RS_ENOTSUP, "R2 of layer %d is online: merge it first (llm_rotate_merge_r2)", l);
    int st;
    if ((st = rot_ok(q->r1, "R1")) || (st = rot_ok(q->r3, "R3")) || (st = rot_ok(q->r4, "R4"))) return st;
    const llm_config *c = &m->cfg;
    for (int s = 0; s < LLM_NSITES; s++) {
        int OC, IC;
        site_dims(c, s, &OC, &IC);
        if ((size_t)IC > IQ_MAX_IC)
            return RS_ERROR(RS_ENOTSUP, "the %s input width %d exceeds the int kernels' %zu", llm_site_name(s), IC,
                            IQ_MAX_IC);
    }
    return RS_OK;
}

/* ---- packing --------------------------------------------------------------------------------- */

/* Quantize w (OC, IC) per row with spec q and pack it; c16 holds OC*IC codes, u IC bytes. */
static int pack_site(iq_lin *li, const qz_spec *q, const float *w, int16_t *c16, float *zf, uint8_t *u)
{
    const int OC = li->OC, IC = li->IC, qmin = qz_qmin(q);
    int st = qz_quantize_f32(q, w, (size_t)OC, (size_t)IC, c16, li->scale, zf);
    if (st) return st;
    for (int o = 0; o < OC; o++) {
        if (!(fabsf(zf[o]) < 8388608.0f)) /* 2^23: (c - z) exact in float, see intq.h */
            return RS_ERROR(RS_ENOTSUP, "weight row %d: zero point %g is too large for the int backend", o, (double)zf[o]);
        int32_t sum = 0;
        for (int i = 0; i < IC; i++) sum += (u[i] = (uint8_t)(c16[(size_t)o * IC + i] - qmin));
        iq_pack4(li->w + (size_t)o * li->ICp / 2, u, (size_t)IC);
        li->zero[o] = (int32_t)zf[o] - qmin;
        li->sum[o] = sum;
    }
    return RS_OK;
}

static int copy_rot(rot **dst, const rot *src)
{
    *dst = NULL;
    if (!src) return RS_OK;
    size_t b = rot_block(src);
    float *s = malloc(b * sizeof *s);
    if (!s) return RS_ERROR(RS_ENOMEM, "llm_intq: out of memory");
    int st = rot_hadamard_signs(src, s);
    if (!st) st = rot_alloc_signed_hadamard(b, 1, s, dst);
    free(s);
    return st;
}

static void copy_opt(float *dst, const float *src, size_t n)
{
    if (dst && src) memcpy(dst, src, n * sizeof *dst);
    else if (dst) memset(dst, 0, n * sizeof *dst);
}

/* The int8 rows of table w (V, d) into codes / scales; refused if w has a non-finite value. */
static int quantize_table(int8_t *codes, float *scales, const float *w, const llm_config *c, int Cp, const char *what)
{
    iq_quantize_s8(codes, scales, w, c->vocab, c->d, Cp);
    for (int r = 0; r < c->vocab; r++)
        if (!(scales[r] > 0))
            return RS_ERROR(RS_EINVAL, "the %s's row %d has a non-finite value: cannot store it as int8", what, r);
    return RS_OK;
}

int llm_intq_build(llm_intq **out, const llm_model *m) { return llm_intq_build_head(out, m, LLM_INTQ_HEAD_F32); }

/* On a CPU with AVX-512 VNNI, a copy of every site's packed weights in the IL16 layout
 * (intq_kernels.h) for its VNNI kernel: as many bytes again as the packed rows (plus the
 * padding of OC to a multiple of 16). The rows stay: they are what the file holds and what
 * the other kernels read. */
static int make_il16(llm_intq *iq)
{
    if (!iq_have_vnni()) return RS_OK;
    size_t n = 0;
    for (int l = 0; l < iq->cfg.n_layer; l++)
        for (int s = 0; s < LLM_NSITES; s++) n += iq_il16_bytes(iq->L[l].lin[s].OC, iq->L[l].lin[s].ICp);
    iq->pkil = malloc(n ? n : 1);
    if (!iq->pkil) return RS_ERROR(RS_ENOMEM, "llm_intq: out of memory (the VNNI weight layout, %zu bytes)", n);
    size_t p = 0;
    for (int l = 0; l < iq->cfg.n_layer; l++)
        for (int s = 0; s < LLM_NSITES; s++) {
            iq_lin *li = &iq->L[l].lin[s];
            li->wil = iq->pkil + p;
            iq_repack_il16(li->wil, li->w, li->OC, li->ICp);
            p += iq_il16_bytes(li->OC, li->ICp);
        }
    iq->npkil = n;
    return RS_OK;
}

int llm_intq_build_head(llm_intq **out, const llm_model *m, llm_intq_head head)
{
    *out = NULL;
    int st = llm_intq_supported(m);
    if (st) return st;
    const llm_config *c = &m->cfg;
    const llm_qat *q = m->qat;
    if (head != LLM_INTQ_HEAD_F32 && head != LLM_INTQ_HEAD_Q8)
        return RS_ERROR(RS_EINVAL, "llm_intq_build_head: unknown head storage %d", (int)head);
    if (head == LLM_INTQ_HEAD_Q8 && (size_t)c->d > IQ_S8_MAX_IC)
        return RS_ERROR(RS_ENOTSUP, "the hidden size %d exceeds the int8 head kernel's %zu", c->d, IQ_S8_MAX_IC);
    llm_intq *iq;
    if ((st = shell_alloc(&iq, c, head, SIZE_MAX, NULL))) return st;
    iq->w = q->w, iq->a = q->a, iq->kv = q->kv;
    iq->block_ln = is_neox(c) && !q->rms_norm;
    const size_t C = (size_t)c->d, V = (size_t)c->vocab;
    if (head == LLM_INTQ_HEAD_Q8) {
        st = quantize_table(iq->q8, iq->q8s, m->w.wte, c, iq->Cp, "embedding");
        if (!st && !c->tied)
            st = quantize_table(iq->q8 + V * (size_t)iq->Cp, iq->q8s + V, m->w.lm_head, c, iq->Cp, "LM head");
        if (st) {
            llm_intq_free(iq);
            return st;
        }
    } else {
        memcpy(iq->wte, m->w.wte, V * C * sizeof(float));
        if (!c->tied) memcpy(iq->head, m->w.lm_head, V * C * sizeof(float));
    }
    copy_opt(iq->lnf_w, m->w.lnf_w, C);
    copy_opt(iq->lnf_b, m->w.lnf_b, C);
    size_t maxw = 0, maxic = 0, maxoc = 0;
    for (int s = 0; s < LLM_NSITES; s++) {
        iq_lin *li = &iq->L[0].lin[s];
        if ((size_t)li->OC * li->IC > maxw) maxw = (size_t)li->OC * li->IC;
        if ((size_t)li->IC > maxic) maxic = (size_t)li->IC;
        if ((size_t)li->OC > maxoc) maxoc = (size_t)li->OC;
    }
    int16_t *c16 = malloc(maxw * sizeof *c16);
    float *zf = malloc(maxoc * sizeof *zf);
    uint8_t *u = malloc(maxic);
    if (!c16 || !zf || !u) st = RS_ERROR(RS_ENOMEM, "llm_intq: out of memory");
    for (int l = 0; l < c->n_layer && !st; l++) {
        const llm_layer *w = &m->w.layers[l];
        iq_layer *L = &iq->L[l];
        copy_opt(L->ln1_w, w->ln1_w, C);
        copy_opt(L->ln1_b, w->ln1_b, C);
        copy_opt(L->ln2_w, w->ln2_w, C);
        copy_opt(L->ln2_b, w->ln2_b, C);
        copy_opt(L->qkv_b, w->qkv_b, (size_t)qkv_dim(c));
        copy_opt(L->o_b, w->o_b, C);
        copy_opt(L->up_b, w->up_b, (size_t)f1_dim(c));
        copy_opt(L->down_b, w->down_b, C);
        const float *W[LLM_NSITES] = {w->qkv_w, w->o_w, w->up_w, w->down_w};
        for (int s = 0; s < LLM_NSITES && !st; s++) {
            st = pack_site(&L->lin[s], &iq->w, W[s], c16, zf, u);
            if (st) st = RS_ERROR(st, "layer %d, %s: %s", l, llm_site_name(s), rs_last_error());
        }
    }
    free(c16), free(zf), free(u);
    if (!st) st = copy_rot(&iq->r1, q->r1);
    if (!st) st = copy_rot(&iq->r3, q->r3);
    if (!st) st = copy_rot(&iq->r4, q->r4);
    if (!st) {
        memcpy(iq->r3_on, q->r3_on, (size_t)c->n_layer);
        memcpy(iq->r4_on, q->r4_on, (size_t)c->n_layer);
    }
    if (!st) st = make_il16(iq);
    if (st) {
        llm_intq_free(iq);
        return st;
    }
    *out = iq;
    return RS_OK;
}

/* ---- the integer linear layer ----------------------------------------------------------------- */

/* Scratch of a linear site on up to N tokens. */
typedef struct {
    int16_t *c16;   /* N * maxIC */
    uint8_t *u8;    /* N * maxICp */
    float *sa, *za; /* N */
    int64_t *zap;   /* N */
    int32_t *suma;  /* N */
    int32_t *acc;   /* N * maxOC */
    double *zd, *gd;/* maxOC: z_w' and IC z_w' - sum u_w of each row, as doubles */
    double *prof;   /* NULL, or LLM_INTQ_NPHASE seconds accumulated by phase */
} iq_scr;

static void scr_free(iq_scr *s)
{
    free(s->c16), free(s->u8), free(s->sa), free(s->za), free(s->zap), free(s->suma), free(s->acc), free(s->zd), free(s->gd);
}

static int scr_alloc(iq_scr *s, const llm_intq *iq, int N)
{
    memset(s, 0, sizeof *s);
    size_t mic = 0, micp = 0, moc = 0;
    for (int k = 0; k < LLM_NSITES; k++) {
        const iq_lin *li = &iq->L[0].lin[k];
        if ((size_t)li->IC > mic) mic = (size_t)li->IC;
        if ((size_t)li->ICp > micp) micp = (size_t)li->ICp;
        if ((size_t)li->OC > moc) moc = (size_t)li->OC;
    }
    size_t n = (size_t)N;
    s->c16 = malloc(n * mic * sizeof *s->c16);
    s->u8 = malloc(n * micp);
    s->sa = malloc(n * sizeof *s->sa), s->za = malloc(n * sizeof *s->za);
    s->zap = malloc(n * sizeof *s->zap), s->suma = malloc(n * sizeof *s->suma);
    s->acc = malloc(n * moc * sizeof *s->acc);
    s->zd = malloc(moc * sizeof *s->zd), s->gd = malloc(moc * sizeof *s->gd);
    if (!s->c16 || !s->u8 || !s->sa || !s->za || !s->zap || !s->suma || !s->acc || !s->zd || !s->gd) {
        scr_free(s);
        return RS_ERROR(RS_ENOMEM, "llm_intq: out of memory for %d tokens", N);
    }
    return RS_OK;
}

/* out (N, OC) = s_a s_w S + b for input x (N, IC), already rotated. */
static int lin_forward(const llm_intq *iq, const iq_lin *li, const float *bias, const float *x, int N, float *out,
                       iq_scr *s)
{
    const int IC = li->IC, ICp = li->ICp, OC = li->OC, qmin = qz_qmin(&iq->a);
    double t0 = s->prof ? omp_get_wtime() : 0;
    int st = qz_quantize_f32(&iq->a, x, (size_t)N, (size_t)IC, s->c16, s->sa, s->za);
    if (st) return st;
    for (int n = 0; n < N; n++)
        if (!(fabsf(s->za[n]) < 8388608.0f))
            return RS_ERROR(RS_ENOTSUP, "llm_intq: an activation zero point (%g) too large for the int backend",
                            (double)s->za[n]);
#pragma omp parallel for schedule(static) if ((long)N * IC >= (1L << 15))
    for (int n = 0; n < N; n++) {
        const int16_t *c = s->c16 + (size_t)n * IC;
        uint8_t *u = s->u8 + (size_t)n * ICp;
        int32_t sum = 0;
        for (int i = 0; i < IC; i++) sum += (u[i] = (uint8_t)(c[i] - qmin));
        memset(u + IC, 0, (size_t)(ICp - IC));
        s->suma[n] = sum;
        s->zap[n] = (int64_t)s->za[n] - qmin;
    }
    double t1 = s->prof ? omp_get_wtime() : 0;
    if (!(li->wil && iq_kernel_is_vnni() && iq_gemm_u8u4_il16_vnni(s->acc, s->u8, li->wil, N, ICp, OC)))
        iq_gemm_u8u4(s->acc, s->u8, li->w, N, ICp, OC, qz_qmax(&iq->a) - qmin);
    double t2 = s->prof ? omp_get_wtime() : 0;
    /* S = acc - z_w' sum u_a + z_a' (IC z_w' - sum u_w). In double every term and partial sum
     * is an integer below 2^53 when |z_a'| gmax and zmax |sum u_a| are below 2^51 (checked per
     * token), so S is exact there and (float)S rounds once, as the int64 fallback does. */
    double zmax = 0, gmax = 0;
    for (int j = 0; j < OC; j++) {
        s->zd[j] = (double)li->zero[j];
        s->gd[j] = (double)IC * (double)li->zero[j] - (double)li->sum[j];
        if (fabs(s->zd[j]) > zmax) zmax = fabs(s->zd[j]);
        if (fabs(s->gd[j]) > gmax) gmax = fabs(s->gd[j]);
    }
#pragma omp parallel for schedule(static) if ((long)N * OC >= (1L << 14))
    for (int n = 0; n < N; n++) {
        const int64_t za = s->zap[n], sa_ = s->suma[n];
        const float sa = s->sa[n];
        const int32_t *acc = s->acc + (size_t)n * OC;
        float *o = out + (size_t)n * OC;
        const double zad = (double)za, sad = (double)sa_;
        if (fabs(zad) * gmax < 0x1p51 && zmax * fabs(sad) < 0x1p51) {
            const double *zd = s->zd, *gd = s->gd;
            const float *sw = li->scale;
            for (int j = 0; j < OC; j++) {
                const double S = (double)acc[j] - zd[j] * sad + zad * gd[j];
                o[j] = (float)S * (sa * sw[j]);
            }
            if (bias)
                for (int j = 0; j < OC; j++) o[j] += bias[j];
            continue;
        }
        for (int j = 0; j < OC; j++) {
            const int64_t zw = li->zero[j];
            const int64_t S = (int64_t)acc[j] - za * li->sum[j] - zw * sa_ + (int64_t)IC * za * zw;
            const float v = (float)S * (sa * li->scale[j]);
            o[j] = bias ? v + bias[j] : v;
        }
    }
    if (s->prof) {
        double t3 = omp_get_wtime();
        s->prof[LLM_INTQ_PH_ACTQ] += t1 - t0, s->prof[LLM_INTQ_PH_GEMM] += t2 - t1, s->prof[LLM_INTQ_PH_EPI] += t3 - t2;
    }
    return RS_OK;
}

/* lin_forward on a site of a layer, the observer told first */
static int site_forward(const llm_intq *iq, int site, int layer, const float *x, int N, float *out, iq_scr *s);

static const float *site_bias(const iq_layer *L, int site)
{
    const float *b[LLM_NSITES] = {L->qkv_b, L->o_b, L->up_b, L->down_b};
    return b[site];
}

static int site_forward(const llm_intq *iq, int site, int layer, const float *x, int N, float *out, iq_scr *s)
{
    const iq_lin *li = &iq->L[layer].lin[site];
    if (iq->tap) {
        int st = iq->tap(iq->tap_ctx, site, layer, x, N, li->IC);
        if (st) return st;
    }
    return lin_forward(iq, li, site_bias(&iq->L[layer], site), x, N, out, s);
}

int llm_intq_linear(const llm_intq *iq, int site, int layer, const float *x, int N, float *out)
{
    if (site < 0 || site >= LLM_NSITES || layer < 0 || layer >= iq->cfg.n_layer || N < 1)
        return RS_ERROR(RS_EINVAL, "llm_intq_linear: site %d, layer %d, %d tokens", site, layer, N);
    const iq_lin *li = &iq->L[layer].lin[site];
    iq_scr s;
    int st = scr_alloc(&s, iq, N);
    if (st) return st;
    float *xr = malloc((size_t)N * li->IC * sizeof *xr);
    if (!xr) st = RS_ERROR(RS_ENOMEM, "llm_intq_linear: out of memory");
    if (!st) {
        memcpy(xr, x, (size_t)N * li->IC * sizeof *xr);
        if (site == LLM_SITE_DOWN && iq->r4 && iq->r4_on[layer]) st = rot_apply_rows_f32(iq->r4, xr, (size_t)N, 0);
    }
    if (!st) st = lin_forward(iq, li, site_bias(&iq->L[layer], site), xr, N, out, &s);
    free(xr);
    scr_free(&s);
    return st;
}

/* ---- KV cache and decoding ---------------------------------------------------------------------- */

struct llm_intq_kv {
    int max_T, len, n_layer, NKV, HS, HB; /* HB: bytes of a head's packed codes */
    int quant;                            /* K/V quantized (packed) or fp32 */
    uint8_t *kc, *vc;                     /* (n_layer, max_T, NKV, HB) packed codes */
    float *ks, *kz, *vs, *vz;             /* (n_layer, max_T, NKV) scales, zero points */
    float *kf, *vf;                       /* fp32 cache (n_layer, max_T, NKV*HS) when not quantized */
    /* scratch for max_T tokens */
    float *x, *ln, *mean, *rstd, *qkv, *atty, *tmp, *fch, *fch_act, *scores, *g, *K, *Vv, *fin, *gs, *gz, *rws;
    float *blk;  /* block attention's scores (IQ_BLOCK_ATTN_MIN or more new tokens), grown on demand */
    size_t nblk; /* its capacity in floats */
    int16_t *gc;
    int8_t *hq;       /* q8 head: codes of up to hrows final hidden states (hrows, Cp) */
    float *hsa;       /* their scales */
    int32_t *hacc;    /* their int32 logits (hrows, V) */
    int hrows;        /* 0 without the q8 head */
    iq_scr s;
    size_t rws_len;
    double prof[LLM_INTQ_NPHASE];
};

void llm_intq_kv_free(llm_intq_kv *kv)
{
    if (!kv) return;
    free(kv->kc), free(kv->vc), free(kv->ks), free(kv->kz), free(kv->vs), free(kv->vz), free(kv->kf), free(kv->vf);
    free(kv->x), free(kv->ln), free(kv->mean), free(kv->rstd), free(kv->qkv), free(kv->atty), free(kv->tmp);
    free(kv->fch), free(kv->fch_act), free(kv->scores), free(kv->blk), free(kv->g), free(kv->K), free(kv->Vv), free(kv->fin);
    free(kv->gs), free(kv->gz), free(kv->rws), free(kv->gc), free(kv->hq), free(kv->hsa), free(kv->hacc);
    scr_free(&kv->s);
    free(kv);
}

/* The q8 head works on up to HEAD_ROWS tokens at a time (bounds its int32 scratch). */
#define HEAD_ROWS 32

int llm_intq_kv_alloc(llm_intq_kv **out, const llm_intq *iq, int max_T)
{
    *out = NULL;
    const llm_config *c = &iq->cfg;
    if (max_T < 1 || max_T > c->max_pos)
        return RS_ERROR(RS_EINVAL, "llm_intq_kv_alloc: max_T %d outside 1..max_position_embeddings (%d)", max_T,
                        c->max_pos);
    llm_intq_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return RS_ERROR(RS_ENOMEM, "llm_intq_kv_alloc: out of memory");
    kv->max_T = max_T, kv->n_layer = c->n_layer, kv->NKV = c->n_kv_head, kv->HS = c->head_dim;
    kv->HB = (c->head_dim + 1) / 2;
    kv->quant = !qz_is_identity(&iq->kv);
    const size_t T = (size_t)max_T, C = (size_t)c->d, NKV = (size_t)c->n_kv_head, HS = (size_t)c->head_dim;
    const size_t KVD = NKV * HS, Lr = (size_t)c->n_layer * T * NKV, F = (size_t)c->d_ff;
    const size_t NH = (size_t)c->n_head, HD = NH * HS, QKV = (size_t)qkv_dim(c), F1 = (size_t)f1_dim(c);
    int bad = 0;
    if (kv->quant) {
        bad |= !(kv->kc = malloc(Lr * (size_t)kv->HB));
        bad |= !(kv->vc = malloc(Lr * (size_t)kv->HB));
        bad |= !(kv->ks = malloc(Lr * sizeof(float)));
        bad |= !(kv->kz = malloc(Lr * sizeof(float)));
        bad |= !(kv->vs = malloc(Lr * sizeof(float)));
        bad |= !(kv->vz = malloc(Lr * sizeof(float)));
    } else {
        bad |= !(kv->kf = malloc(Lr * HS * sizeof(float)));
        bad |= !(kv->vf = malloc(Lr * HS * sizeof(float)));
    }
    size_t gq = (NH + NKV) * HS > 2 * KVD ? (NH + NKV) * HS : 2 * KVD;
#define FA(p, n) bad |= !((p) = malloc((n) * sizeof(float)))
    FA(kv->x, T * C);
    FA(kv->ln, T * C);
    FA(kv->mean, T);
    FA(kv->rstd, T);
    FA(kv->qkv, T * QKV);
    FA(kv->atty, T * HD);
    FA(kv->tmp, T * C);
    FA(kv->fch, T * F1);
    FA(kv->fch_act, T * F);
    FA(kv->scores, NH * T);
    FA(kv->g, T * gq);
    FA(kv->K, T * KVD);
    FA(kv->Vv, T * KVD);
    FA(kv->fin, T * C);
    FA(kv->gs, T * 2 * NKV);
    FA(kv->gz, T * 2 * NKV);
#undef FA
    bad |= !(kv->gc = malloc(T * 2 * KVD * sizeof *kv->gc));
    if (iq->head_kind == LLM_INTQ_HEAD_Q8) {
        kv->hrows = max_T < HEAD_ROWS ? max_T : HEAD_ROWS;
        bad |= !(kv->hq = malloc((size_t)kv->hrows * (size_t)iq->Cp));
        bad |= !(kv->hsa = malloc((size_t)kv->hrows * sizeof *kv->hsa));
        bad |= !(kv->hacc = malloc((size_t)kv->hrows * (size_t)c->vocab * sizeof *kv->hacc));
    }
    if (!bad && scr_alloc(&kv->s, iq, max_T)) bad = 1;
    if (bad) {
        llm_intq_kv_free(kv);
        return RS_ERROR(RS_ENOMEM, "llm_intq_kv_alloc: out of memory for %d positions", max_T);
    }
    *out = kv;
    return RS_OK;
}

void llm_intq_kv_reset(llm_intq_kv *kv) { kv->len = 0; }

void llm_intq_kv_profile(llm_intq_kv *kv, int on)
{
    memset(kv->prof, 0, sizeof kv->prof);
    kv->s.prof = on ? kv->prof : NULL;
}

const double *llm_intq_kv_phases(const llm_intq_kv *kv) { return kv->prof; }

const char *llm_intq_phase_name(int ph)
{
    static const char *const n[LLM_INTQ_NPHASE] = {"act-quant", "int-gemm", "epilogue", "kv-cache", "attention",
                                                   "rotations", "lm-head", "other"};
    return ph >= 0 && ph < LLM_INTQ_NPHASE ? n[ph] : "?";
}
int llm_intq_kv_len(const llm_intq_kv *kv) { return kv->len; }

size_t llm_intq_kv_bytes(const llm_intq_kv *kv)
{
    size_t Lr = (size_t)kv->n_layer * (size_t)kv->max_T * (size_t)kv->NKV;
    return kv->quant ? 2 * Lr * ((size_t)kv->HB + 2 * sizeof(float)) : 2 * Lr * (size_t)kv->HS * sizeof(float);
}

static int rot_rows(llm_intq_kv *kv, const rot *r, float *x, size_t rows, int transpose)
{
    return rot_apply_rows_f32_grow(r, x, rows, transpose, &kv->rws, &kv->rws_len);
}

static void norm(const llm_config *c, int ln, float *out, float *mean, float *rstd, const float *x, const float *w,
                 const float *b, int N)
{
    if (ln) lk_layernorm_forward(out, mean, rstd, x, w, b, N, c->d, (float)c->norm_eps);
    else lk_rmsnorm_forward(out, rstd, x, w, N, c->d, (float)c->norm_eps);
}

/* K/V of the n new tokens (after RoPE and R3, in qkv) into layer l's cache: quantized per
 * token per head and packed, or copied. Then the layer's whole cache (len + n positions)
 * into kv->K / kv->Vv in fp32: the codes dequantized, ((float)c - z) * s as qz_fake. */
static int cache_layer(const llm_intq *iq, llm_intq_kv *kv, int l, int n)
{
    const llm_config *c = &iq->cfg;
    const int NKV = kv->NKV, HS = kv->HS, HB = kv->HB, KVD = NKV * HS, QD = c->n_head * HS, QKV = qkv_dim(c);
    const int len = kv->len, T = len + n;
    const size_t base = (size_t)l * kv->max_T;
    if (!kv->quant) {
        float *Kf = kv->kf + base * KVD, *Vf = kv->vf + base * KVD;
        for (int i = 0; i < n; i++) {
            memcpy(Kf + (size_t)(len + i) * KVD, kv->qkv + (size_t)i * QKV + QD, (size_t)KVD * sizeof(float));
            memcpy(Vf + (size_t)(len + i) * KVD, kv->qkv + (size_t)i * QKV + QD + KVD, (size_t)KVD * sizeof(float));
        }
        memcpy(kv->K, Kf, (size_t)T * KVD * sizeof(float));
        memcpy(kv->Vv, Vf, (size_t)T * KVD * sizeof(float));
        return RS_OK;
    }
    for (int i = 0; i < n; i++)
        memcpy(kv->g + (size_t)i * 2 * KVD, kv->qkv + (size_t)i * QKV + QD, (size_t)2 * KVD * sizeof(float));
    size_t rows = (size_t)n * 2 * NKV;
    int st = iq->tap ? iq->tap(iq->tap_ctx, LLM_INTQ_TAP_KV, l, kv->g, (int)rows, HS) : RS_OK;
    if (st) return st;
    st = qz_quantize_f32(&iq->kv, kv->g, rows, (size_t)HS, kv->gc, kv->gs, kv->gz);
    if (st) return st;
    const int qmin = qz_qmin(&iq->kv);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < 2 * NKV; r++) {
            const int16_t *cd = kv->gc + ((size_t)i * 2 * NKV + r) * HS;
            const int h = r % NKV;
            const size_t at = (base + (size_t)(len + i)) * NKV + (size_t)h;
            uint8_t *dst = (r < NKV ? kv->kc : kv->vc) + at * HB;
            memset(dst, 0, (size_t)HB);
            for (int e = 0; e < HS; e++) dst[e / 2] |= (uint8_t)((unsigned)(cd[e] - qmin) << (4 * (e & 1)));
            (r < NKV ? kv->ks : kv->vs)[at] = kv->gs[(size_t)i * 2 * NKV + r];
            (r < NKV ? kv->kz : kv->vz)[at] = kv->gz[(size_t)i * 2 * NKV + r];
        }
    const float fq = (float)qmin;
#pragma omp parallel for schedule(static) if ((long)T * KVD >= (1L << 14))
    for (int j = 0; j < T; j++)
        for (int h = 0; h < NKV; h++) {
            const size_t at = (base + (size_t)j) * NKV + (size_t)h;
            const uint8_t *kc = kv->kc + at * HB, *vc = kv->vc + at * HB;
            float *ko = kv->K + (size_t)j * KVD + (size_t)h * HS, *vo = kv->Vv + (size_t)j * KVD + (size_t)h * HS;
            const float ks = kv->ks[at], kz = kv->kz[at], vs = kv->vs[at], vz = kv->vz[at];
            /* byte b holds elements 2b (low nibble) and 2b+1 (high): one byte at a time vectorizes */
            for (int b = 0; b < HS / 2; b++) {
                const unsigned kb = kc[b], vb = vc[b];
                ko[2 * b] = ((float)(kb & 15u) + fq - kz) * ks;
                ko[2 * b + 1] = ((float)(kb >> 4) + fq - kz) * ks;
                vo[2 * b] = ((float)(vb & 15u) + fq - vz) * vs;
                vo[2 * b + 1] = ((float)(vb >> 4) + fq - vz) * vs;
            }
            if (HS & 1) {
                ko[HS - 1] = ((float)(kc[HS / 2] & 15u) + fq - kz) * ks;
                vo[HS - 1] = ((float)(vc[HS / 2] & 15u) + fq - vz) * vs;
            }
        }
    return RS_OK;
}

/* x (n, d): the embedding rows of n tokens (checked by the caller): fp32, or the int8 codes
 * times their row's scale. */
static void embed(const llm_intq *iq, const int32_t *tokens, int n, float *x)
{
    const int C = iq->cfg.d;
    if (iq->head_kind != LLM_INTQ_HEAD_Q8) {
        lk_embedding_forward(x, tokens, iq->wte, n, C);
        return;
    }
    for (int i = 0; i < n; i++) {
        const int8_t *row = iq->wte8 + (size_t)tokens[i] * iq->Cp;
        const float s = iq->wte8s[tokens[i]];
        float *xi = x + (size_t)i * C;
        for (int k = 0; k < C; k++) xi[k] = (float)row[k] * s;
    }
}

/* logits (N, V) of the final hidden states h (N, d): the fp32 sgemm, or (q8) per chunk of
 * up to hrows tokens: h's int8 codes and scales s_a, the int8 GEMM, then
 * logit = (float)S * (s_a s_w). Scratch hq (hrows, Cp), hsa (hrows), hacc (hrows, V). */
static void head_forward(const llm_intq *iq, const float *h, int N, float *logits, int8_t *hq, float *hsa, int32_t *hacc,
                         int hrows)
{
    const int C = iq->cfg.d, V = iq->cfg.vocab;
    if (iq->head_kind != LLM_INTQ_HEAD_Q8) {
        lk_matmul_forward(logits, h, iq->head, NULL, N, C, V);
        return;
    }
    for (int r0 = 0; r0 < N; r0 += hrows) {
        const int nr = N - r0 < hrows ? N - r0 : hrows;
        iq_quantize_s8(hq, hsa, h + (size_t)r0 * C, nr, C, iq->Cp);
        iq_gemm_s8s8(hacc, hq, iq->head8, nr, iq->Cp, V);
        for (int t = 0; t < nr; t++) {
            const float sa = hsa[t], *sw = iq->head8s;
            const int32_t *a = hacc + (size_t)t * V;
            float *lo = logits + (size_t)(r0 + t) * V;
            for (int o = 0; o < V; o++) lo[o] = (float)a[o] * (sa * sw[o]);
        }
    }
}

static int check_tokens(const llm_intq *iq, const int32_t *tokens, int n, const char *fn)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= iq->cfg.vocab)
            return RS_ERROR(RS_EINVAL, "%s: token %d outside the vocabulary (%d)", fn, tokens[i], iq->cfg.vocab);
    return RS_OK;
}

int llm_intq_embed(const llm_intq *iq, const int32_t *tokens, int n, float *x)
{
    if (n < 1) return RS_ERROR(RS_EINVAL, "llm_intq_embed: %d tokens", n);
    int st = check_tokens(iq, tokens, n, "llm_intq_embed");
    if (!st) embed(iq, tokens, n, x);
    return st;
}

int llm_intq_head_forward(const llm_intq *iq, const float *h, int N, float *logits)
{
    if (N < 1) return RS_ERROR(RS_EINVAL, "llm_intq_head_forward: %d tokens", N);
    const int hrows = N < HEAD_ROWS ? N : HEAD_ROWS;
    int8_t *hq = NULL;
    float *hsa = NULL;
    int32_t *hacc = NULL;
    if (iq->head_kind == LLM_INTQ_HEAD_Q8) {
        hq = malloc((size_t)hrows * (size_t)iq->Cp), hsa = malloc((size_t)hrows * sizeof *hsa);
        hacc = malloc((size_t)hrows * (size_t)iq->cfg.vocab * sizeof *hacc);
        if (!hq || !hsa || !hacc) {
            free(hq), free(hsa), free(hacc);
            return RS_ERROR(RS_ENOMEM, "llm_intq_head_forward: out of memory");
        }
    }
    head_forward(iq, h, N, logits, hq, hsa, hacc, hrows);
    free(hq), free(hsa), free(hacc);
    return RS_OK;
}

/* From this many new tokens on, attention runs as two sgemm per head (llm_block_attention)
 * instead of the loops of llm_decode_attention: the same numbers up to the order of the sums. */
#define IQ_BLOCK_ATTN_MIN 16

int llm_intq_decode(llm_intq *iq, llm_intq_kv *kv, const int32_t *tokens, int n, float *logits, int all)
{
    const llm_config *c = &iq->cfg;
    if (n < 1 || kv->len + n > kv->max_T)
        return RS_ERROR(RS_EINVAL, "llm_intq_decode: %d tokens after %d cached exceed the cache (%d)", n, kv->len,
                        kv->max_T);
    if (kv->n_layer != c->n_layer || kv->NKV != c->n_kv_head || kv->HS != c->head_dim ||
        (iq->head_kind == LLM_INTQ_HEAD_Q8 && !kv->hacc))
        return RS_ERROR(RS_EINVAL, "llm_intq_decode: the cache was made for another model");
    const int C = c->d, F = c->d_ff, QKV = qkv_dim(c), HS = c->head_dim, NH = c->n_head;
    const int NKV = c->n_kv_head, QK = (NH + NKV) * HS, len = kv->len;
    int st = check_tokens(iq, tokens, n, "llm_intq_decode");
    if (st) return st;
    const size_t NC = (size_t)n * C;
    double *pf = kv->s.prof, tc = pf ? omp_get_wtime() : 0, lin0 = 0;
    if (pf) lin0 = pf[LLM_INTQ_PH_ACTQ] + pf[LLM_INTQ_PH_GEMM] + pf[LLM_INTQ_PH_EPI];
#define PHASE(ph)                                   \
    do {                                            \
        if (pf) {                                   \
            double t_ = omp_get_wtime();            \
            pf[ph] += t_ - tc;                      \
            tc = t_;                                \
        }                                           \
    } while (0)
    embed(iq, tokens, n, kv->x);
    for (int l = 0; l < c->n_layer; l++) {
        const iq_layer *L = &iq->L[l];
        norm(c, iq->block_ln, kv->ln, kv->mean, kv->rstd, kv->x, L->ln1_w, L->ln1_b, n);
        if ((st = site_forward(iq, LLM_SITE_QKV, l, kv->ln, n, kv->qkv, &kv->s))) return st;
        if (c->rot_dim > 0) {
            lk_rope_forward(kv->qkv, QKV, iq->rope_cos, iq->rope_sin, 1, n, NH, HS, c->rot_dim, len);
            lk_rope_forward(kv->qkv + (size_t)NH * HS, QKV, iq->rope_cos, iq->rope_sin, 1, n, NKV, HS, c->rot_dim, len);
        }
        PHASE(LLM_INTQ_PH_OTHER);
        if (iq->r3 && iq->r3_on[l]) { /* R3 on every q and k head (rows of HS) */
            for (int i = 0; i < n; i++)
                memcpy(kv->g + (size_t)i * QK, kv->qkv + (size_t)i * QKV, (size_t)QK * sizeof(float));
            if ((st = rot_rows(kv, iq->r3, kv->g, (size_t)n * (size_t)(NH + NKV), 0))) return st;
            for (int i = 0; i < n; i++)
                memcpy(kv->qkv + (size_t)i * QKV, kv->g + (size_t)i * QK, (size_t)QK * sizeof(float));
        }
        PHASE(LLM_INTQ_PH_ROT);
        if ((st = cache_layer(iq, kv, l, n))) return st;
        PHASE(LLM_INTQ_PH_KV);
        if (n >= IQ_BLOCK_ATTN_MIN) { /* a prompt: the products as sgemm (llm_block_attention) */
            const size_t need = (size_t)n * (size_t)(len + n);
            if (need > kv->nblk) {
                float *b = realloc(kv->blk, need * sizeof(float));
                if (!b) return RS_ERROR(RS_ENOMEM, "llm_intq_decode: out of memory (attention scores of %d tokens)", n);
                kv->blk = b, kv->nblk = need;
            }
            llm_block_attention(kv->atty, kv->blk, kv->qkv, kv->K, kv->Vv, len, n, NH, NKV, HS);
        } else
            llm_decode_attention(kv->atty, kv->scores, kv->qkv, kv->K, kv->Vv, len, n, NH, NKV, HS);
        PHASE(LLM_INTQ_PH_ATTN);
        if ((st = site_forward(iq, LLM_SITE_O, l, kv->atty, n, kv->tmp, &kv->s))) return st;
        if (c->parallel_residual) {
            norm(c, iq->block_ln, kv->ln, kv->mean, kv->rstd, kv->x, L->ln2_w, L->ln2_b, n);
            lk_accumulate(kv->x, kv->tmp, (long)NC);
        } else {
            lk_accumulate(kv->x, kv->tmp, (long)NC);
            norm(c, iq->block_ln, kv->ln, kv->mean, kv->rstd, kv->x, L->ln2_w, L->ln2_b, n);
        }
        if ((st = site_forward(iq, LLM_SITE_UP, l, kv->ln, n, kv->fch, &kv->s))) return st;
        if (!is_neox(c)) lk_swiglu_forward(kv->fch_act, kv->fch, n, F);
        else if (c->act == LLM_ACT_GELU) lk_gelu_forward(kv->fch_act, kv->fch, (long)n * F);
        else lk_gelu_tanh_forward(kv->fch_act, kv->fch, (long)n * F);
        PHASE(LLM_INTQ_PH_OTHER);
        if (iq->r4 && iq->r4_on[l] && (st = rot_rows(kv, iq->r4, kv->fch_act, (size_t)n, 0))) return st;
        PHASE(LLM_INTQ_PH_ROT);
        if ((st = site_forward(iq, LLM_SITE_DOWN, l, kv->fch_act, n, kv->tmp, &kv->s))) return st;
        lk_accumulate(kv->x, kv->tmp, (long)NC);
    }
    PHASE(LLM_INTQ_PH_OTHER);
    const int rows = all ? n : 1;
    const float *xl = kv->x + (size_t)(n - rows) * C;
    if (iq->r1) {
        memcpy(kv->fin, xl, (size_t)rows * C * sizeof(float));
        if ((st = rot_rows(kv, iq->r1, kv->fin, (size_t)rows, 1))) return st;
        xl = kv->fin;
    }
    norm(c, is_neox(c), kv->ln, kv->mean, kv->rstd, xl, iq->lnf_w, iq->lnf_b, rows);
    PHASE(LLM_INTQ_PH_OTHER);
    /* NaN and Inf stay in the residual stream: one look at the final hidden states catches a
     * model whose weights overflow fp32 (the integer codes of such values would be noise) */
    for (size_t i = 0; i < (size_t)rows * (size_t)C; i++)
        if (!isfinite(kv->ln[i]))
            return RS_ERROR(RS_ENUMERIC, "llm_intq_decode: a non-finite hidden state after the last layer (the "
                            "model's values overflow fp32)");
    if (iq->tap && (st = iq->tap(iq->tap_ctx, LLM_INTQ_TAP_HEAD, c->n_layer, kv->ln, rows, C))) return st;
    head_forward(iq, kv->ln, rows, logits, kv->hq, kv->hsa, kv->hacc, kv->hrows);
    PHASE(LLM_INTQ_PH_HEAD);
    if (pf) /* "other" got the linear sites' time too (they ran between its marks): take it out */
        pf[LLM_INTQ_PH_OTHER] -= pf[LLM_INTQ_PH_ACTQ] + pf[LLM_INTQ_PH_GEMM] + pf[LLM_INTQ_PH_EPI] - lin0;
#undef PHASE
    kv->len = len + n;
    return RS_OK;
}

/* ---- generation and evaluation ------------------------------------------------------------------- */

int llm_intq_generate(llm_intq *iq, const int32_t *prompt, int n, int max_new, int eos_id, const llm_sample_opts *o,
                      rs_rng *rng, int32_t *out, int *nout, llm_token_cb cb, void *ctx)
{
    const llm_config *c = &iq->cfg;
    *nout = 0;
    if (n < 1) return RS_ERROR(RS_EINVAL, "generation needs a prompt of at least one token");
    if (max_new < 0) return RS_ERROR(RS_EINVAL, "max_new %d < 0", max_new);
    if ((long)n + max_new > c->max_pos)
        return RS_ERROR(RS_EINVAL, "prompt (%d tokens) + %d new tokens exceed the model's max_position_embeddings %d", n,
                        max_new, c->max_pos);
    if (o->temperature > 0 && !rng) return RS_ERROR(RS_EINVAL, "sampling needs an rng");
    if (max_new == 0) return RS_OK;
    llm_intq_kv *kv = NULL;
    llm_sampler *s = NULL;
    float *logits = malloc((size_t)c->vocab * sizeof *logits);
    int st = logits ? RS_OK : RS_ERROR(RS_ENOMEM, "out of memory (logits)");
    if (st == RS_OK) st = llm_intq_kv_alloc(&kv, iq, n + max_new);
    if (st == RS_OK) st = llm_sampler_alloc(&s, c->vocab);
    if (st == RS_OK) st = llm_intq_decode(iq, kv, prompt, n, logits, 0);
    for (int k = 0; st == RS_OK && k < max_new; k++) {
        int32_t t = llm_sample(s, logits, o, rng);
        if (t == eos_id) break;
        out[(*nout)++] = t;
        if (cb && cb(ctx, t)) break;
        if (k + 1 < max_new) st = llm_intq_decode(iq, kv, &t, 1, logits, 0);
    }
    llm_sampler_free(s);
    llm_intq_kv_free(kv);
    free(logits);
    return st;
}

#define EVAL_CHUNK 64 /* tokens per decode call in evaluation: bounds the (chunk, V) logits */

int llm_intq_eval_loss(llm_intq *iq, const llm_dataset *ds, double *loss, size_t *ntok)
{
    const llm_config *c = &iq->cfg;
    if (ds->max_row > c->max_pos)
        return RS_ERROR(RS_EINVAL, "%s: rows of up to %d tokens exceed the model's max_position_embeddings %d (lower --max-len)",
                        ds->path, ds->max_row, c->max_pos);
    const size_t R = (size_t)ds->max_row, V = (size_t)c->vocab;
    int32_t *tok = malloc(R * sizeof *tok), *tgt = malloc(R * sizeof *tgt);
    float *logits = malloc((size_t)EVAL_CHUNK * V * sizeof *logits), *losses = malloc(EVAL_CHUNK * sizeof(float));
    float *lse = malloc(EVAL_CHUNK * sizeof(float));
    llm_intq_kv *kv = NULL;
    int st = tok && tgt && logits && losses && lse ? RS_OK : RS_ERROR(RS_ENOMEM, "out of memory (evaluation)");
    if (!st && R > 0) st = llm_intq_kv_alloc(&kv, iq, ds->max_row);
    double sum = 0;
    size_t cnt = 0;
    for (size_t r = 0; r < ds->n && !st; r++) {
        int T = 0, nt = 0;
        llm_data_batch(ds, &r, 1, 0, tok, tgt, &T, &nt);
        if (nt == 0 || T == 0) continue;
        llm_intq_kv_reset(kv);
        for (int p = 0; p < T && !st; p += EVAL_CHUNK) {
            int k = T - p < EVAL_CHUNK ? T - p : EVAL_CHUNK;
            st = llm_intq_decode(iq, kv, tok + p, k, logits, 1);
            if (st) break;
            int m = lk_xent_forward(losses, lse, logits, tgt + p, k, (int)V);
            if (m == 0) continue;
            for (int i = 0; i < k; i++)
                if (tgt[p + i] >= 0) sum += (double)losses[i];
            cnt += (size_t)m;
        }
    }
    free(tok), free(tgt), free(logits), free(losses), free(lse);
    llm_intq_kv_free(kv);
    if (st) return st;
    if (cnt == 0) return RS_ERROR(RS_EINVAL, "%s: no target tokens to evaluate", ds->path);
    *loss = sum / (double)cnt;
    if (ntok) *ntok = cnt;
    return RS_OK;
}

/* ---- file format (docs/int-format.md) ------------------------------------------------------------ */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the int model file is little-endian; this writer assumes a little-endian host"
#endif

#define HDR_I32 21
#define HDR_F64 5
#define HDR_BYTES_V1 (HDR_I32 * 4 + HDR_F64 * 8 + 3 * 5 * 4 + 4 * 4) /* 200 */
#define HDR_BYTES (HDR_BYTES_V1 + 4)                                /* version 2: + the head's storage */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->n + n <= b->cap) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_i32(wbuf *b, int32_t v) { put(b, &v, 4); }
static void put_f64(wbuf *b, double v) { put(b, &v, 8); }
static void put_f32(wbuf *b, float v) { put(b, &v, 4); }

/* The header section: config, quantizers, flags. */
static void header(wbuf *b, const llm_intq *iq)
{
    const llm_config *c = &iq->cfg;
    const int32_t I[HDR_I32] = {(int32_t)c->arch, c->vocab, c->d, c->n_layer, c->n_head, c->n_kv_head, c->head_dim,
                                c->d_ff, c->max_pos, (int32_t)c->act, c->rot_dim, (int32_t)c->rope_type,
                                c->rope_orig_max_pos, c->parallel_residual, c->tied, c->qkv_bias, c->o_bias,
                                c->mlp_bias, c->bos_id, c->eos_id, c->pad_id};
    for (int i = 0; i < HDR_I32; i++) put_i32(b, I[i]);
    const double D[HDR_F64] = {c->norm_eps, c->rope_theta, c->rope_factor, c->rope_low_freq_factor,
                               c->rope_high_freq_factor};
    for (int i = 0; i < HDR_F64; i++) put_f64(b, D[i]);
    const qz_spec *q[3] = {&iq->w, &iq->a, &iq->kv};
    for (int k = 0; k < 3; k++) {
        put_i32(b, q[k]->bits), put_i32(b, (int32_t)q[k]->scheme), put_i32(b, (int32_t)q[k]->clipmode);
        put_i32(b, (int32_t)q[k]->round), put_f32(b, q[k]->clip);
    }
    put_i32(b, iq->block_ln), put_i32(b, iq->r1 != NULL), put_i32(b, iq->r3 != NULL), put_i32(b, iq->r4 != NULL);
    put_i32(b, (int32_t)iq->head_kind);
}

static size_t signs_len(const llm_intq *iq, int r1, int r3, int r4)
{
    const llm_config *c = &iq->cfg;
    return ((r1 ? (size_t)c->d : 0) + (r3 ? (size_t)c->head_dim : 0) + (r4 ? (size_t)c->d_ff : 0)) * sizeof(float);
}

static int write_sec(FILE *f, const void *p, size_t n)
{
    uint64_t len = n;
    return fwrite(&len, 8, 1, f) == 1 && (n == 0 || fwrite(p, 1, n, f) == n);
}

int llm_intq_save(const llm_intq *iq, const char *path)
{
    const llm_config *c = &iq->cfg;
    uint8_t hb[HDR_BYTES];
    wbuf b = {hb, 0, sizeof hb};
    header(&b, iq);
    size_t L = (size_t)c->n_layer, ns = signs_len(iq, iq->r1 != NULL, iq->r3 != NULL, iq->r4 != NULL);
    uint8_t *flags = malloc(2 * L);
    float *sg = malloc(ns ? ns : 1);
    if (!flags || !sg) {
        free(flags), free(sg);
        return RS_ERROR(RS_ENOMEM, "llm_intq_save: out of memory");
    }
    memcpy(flags, iq->r3_on, L), memcpy(flags + L, iq->r4_on, L);
    float *at = sg;
    int st = RS_OK;
    const rot *R[3] = {iq->r1, iq->r3, iq->r4};
    for (int k = 0; k < 3 && !st; k++)
        if (R[k]) {
            st = rot_hadamard_signs(R[k], at);
            at += rot_block(R[k]);
        }
    if (st) {
        free(flags), free(sg);
        return st;
    }
    llm_atomic a;
    FILE *f = llm_atomic_open(&a, path, 0) ? NULL : a.f;
    uint32_t ver = LLM_INTQ_VERSION;
    int ok = f && fwrite(LLM_INTQ_MAGIC, 1, 4, f) == 4 && fwrite(&ver, 4, 1, f) == 1 && write_sec(f, hb, b.n) &&
             write_sec(f, flags, 2 * L) && write_sec(f, sg, ns) && write_sec(f, iq->f, iq->nf * sizeof(float)) &&
             write_sec(f, iq->pk, iq->npk) && write_sec(f, iq->rs, iq->nrow * sizeof(float)) &&
             write_sec(f, iq->ri, 2 * iq->nrow * sizeof(int32_t)) && write_sec(f, iq->q8, iq->nq8 * (size_t)iq->Cp) &&
             write_sec(f, iq->q8s, iq->nq8 * sizeof(float));
    if (f && llm_atomic_commit(&a, ok)) f = NULL;
    free(flags), free(sg);
    if (!f) return RS_ERROR(RS_EIO, "cannot write %s: %s", path, strerror(a.err));
    return RS_OK;
}

/* Reads one section of exactly `want` bytes into dst. */
static int read_sec(FILE *f, void *dst, size_t want, const char *path, const char *what)
{
    uint64_t len;
    if (fread(&len, 8, 1, f) != 1) return RS_ERROR(RS_EINVAL, "%s: truncated before the %s section", path, what);
    if (len != want)
        return RS_ERROR(RS_EINVAL, "%s: the %s section has %llu bytes, the header implies %zu (corrupt file)", path, what,
                        (unsigned long long)len, want);
    if (want && fread(dst, 1, want, f) != want) return RS_ERROR(RS_EINVAL, "%s: truncated inside the %s section", path, what);
    return RS_OK;
}

static int32_t get_i32(const uint8_t **p)
{
    int32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}
static double get_f64(const uint8_t **p)
{
    double v;
    memcpy(&v, *p, 8);
    *p += 8;
    return v;
}
static float get_f32(const uint8_t **p)
{
    float v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

/* The config and quantizers of a header (of file version ver); every field range-checked.
 * fl: block LayerNorm, R1, R3, R4, head storage (version 1: always fp32). */
static int parse_header(const uint8_t *hb, uint32_t ver, llm_config *c, qz_spec q[3], int fl[5], const char *path)
{
    const uint8_t *p = hb;
    int32_t I[HDR_I32];
    for (int i = 0; i < HDR_I32; i++) I[i] = get_i32(&p);
    memset(c, 0, sizeof *c);
    if (I[0] < LLM_GPT_NEOX || I[0] > LLM_QWEN2 || I[9] < LLM_ACT_GELU || I[9] > LLM_ACT_SILU || I[11] < 0 || I[11] > 1)
        return RS_ERROR(RS_EINVAL, "%s: unknown architecture, activation or rope type in the header", path);
    c->arch = (llm_arch)I[0], c->vocab = I[1], c->d = I[2], c->n_layer = I[3], c->n_head = I[4];
    c->n_kv_head = I[5], c->head_dim = I[6], c->d_ff = I[7], c->max_pos = I[8], c->act = (llm_act)I[9];
    c->rot_dim = I[10], c->rope_type = (llm_rope_type)I[11], c->rope_orig_max_pos = I[12];
    c->parallel_residual = I[13], c->tied = I[14], c->qkv_bias = I[15], c->o_bias = I[16], c->mlp_bias = I[17];
    c->bos_id = I[18], c->eos_id = I[19], c->pad_id = I[20];
    c->norm_eps = get_f64(&p), c->rope_theta = get_f64(&p), c->rope_factor = get_f64(&p);
    c->rope_low_freq_factor = get_f64(&p), c->rope_high_freq_factor = get_f64(&p);
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
    for (int i = 13; i <= 17; i++)
        if (I[i] != 0 && I[i] != 1) return RS_ERROR(RS_EINVAL, "%s: a header flag is neither 0 nor 1", path);
    /* sizes: positive and small enough that the tensor sizes below cannot overflow */
    const int32_t lim[8] = {1 << 24, 1 << 16, 1 << 12, 1 << 12, 1 << 12, 1 << 14, 1 << 19, 1 << 24};
    for (int i = 1; i <= 8; i++)
        if (I[i] < 1 || I[i] > lim[i - 1]) return RS_ERROR(RS_EINVAL, "%s: header size field %d is %d (corrupt file)", path, i, I[i]);
    int st = llm_config_check(c);
    if (st) return RS_ERROR(st, "%s: %s", path, rs_last_error());
    const char *nm[3] = {"weight", "activation", "KV"};
    const int maxb[3] = {4, 8, 4};
    for (int k = 0; k < 3; k++) {
        int32_t bits = get_i32(&p), sc = get_i32(&p), cm = get_i32(&p), rd = get_i32(&p);
        float clip = get_f32(&p);
        if (sc < 0 || sc > 1 || cm < 0 || cm > 1 || rd < 0 || rd > 1 || bits < 1 || bits > 64)
            return RS_ERROR(RS_EINVAL, "%s: the %s quantizer's fields are out of range (corrupt file)", path, nm[k]);
        q[k] = qz_spec_make(bits, (qz_scheme)sc, QZ_ROW, 0);
        q[k].clipmode = (qz_clipmode)cm, q[k].round = (qz_round)rd, q[k].clip = clip;
        if ((st = qz_spec_check(&q[k], 0))) return RS_ERROR(st, "%s: %s quantizer: %s", path, nm[k], rs_last_error());
        if ((qz_is_identity(&q[k]) && k < 2) || (!qz_is_identity(&q[k]) && bits > maxb[k]))
            return RS_ERROR(RS_EINVAL, "%s: %d-bit %s quantizer: not an int-backend model", path, bits, nm[k]);
    }
    fl[4] = LLM_INTQ_HEAD_F32;
    for (int i = 0; i < (ver >= 2 ? 5 : 4); i++) {
        fl[i] = get_i32(&p);
        if (fl[i] != 0 && fl[i] != 1) return RS_ERROR(RS_EINVAL, "%s: a header flag is neither 0 nor 1", path);
    }
    if (fl[4] == LLM_INTQ_HEAD_Q8 && (size_t)c->d > IQ_S8_MAX_IC)
        return RS_ERROR(RS_EINVAL, "%s: an int8 head of width %d exceeds the kernel's %zu", path, c->d, IQ_S8_MAX_IC);
    if (fl[1] && c->arch != LLM_GPT_NEOX) return RS_ERROR(RS_EINVAL, "%s: R1 before the final norm is GPT-NeoX only", path);
    return RS_OK;
}

/* What every reader does once the sections are in place: rotation flags and signs into
 * the online rotations, then the per-row and int8-row consistency checks. */
static int load_finish(llm_intq *iq, const uint8_t *flags, const float *sg, const int fl[5], const char *path)
{
    const llm_config *cp = &iq->cfg;
    const size_t L = (size_t)cp->n_layer;
    int st = RS_OK;
    for (size_t i = 0; !st && i < 2 * L; i++)
        if (flags[i] > 1) st = RS_ERROR(RS_EINVAL, "%s: a rotation flag is neither 0 nor 1", path);
    if (!st) {
        memcpy(iq->r3_on, flags, L), memcpy(iq->r4_on, flags + L, L);
        const float *at = sg;
        size_t ord[3] = {(size_t)cp->d, (size_t)cp->head_dim, (size_t)cp->d_ff};
        rot **R[3] = {&iq->r1, &iq->r3, &iq->r4};
        for (int k = 0; k < 3 && !st; k++)
            if (fl[k + 1]) {
                st = rot_alloc_signed_hadamard(ord[k], 1, at, R[k]);
                if (st) st = RS_ERROR(st, "%s: rotation R%d: %s", path, k == 0 ? 1 : k + 2, rs_last_error());
                at += ord[k];
            }
    }
    for (size_t i = 0; !st && i < iq->nf; i++)
        if (!isfinite(iq->f[i])) st = RS_ERROR(RS_EINVAL, "%s: a non-finite value in the fp32 tensors (corrupt file)", path);
    /* the per-row code sums must be those of the packed rows; scales finite and positive */
    for (int l = 0; l < cp->n_layer && !st; l++)
        for (int s = 0; s < LLM_NSITES && !st; s++) {
            const iq_lin *li = &iq->L[l].lin[s];
            for (int o = 0; o < li->OC && !st; o++) {
                const uint8_t *row = li->w + (size_t)o * li->ICp / 2;
                int32_t sum = 0, pad = 0;
                for (int i = 0; i < li->ICp; i++) {
                    int32_t v = (int32_t)iq_get4(row, (size_t)i);
                    if (i < li->IC) sum += v;
                    else pad += v;
                }
                if (sum != li->sum[o] || pad || !(li->scale[o] > 0) || !isfinite(li->scale[o]) ||
                    li->zero[o] < -(1 << 23) || li->zero[o] > (1 << 23))
                    st = RS_ERROR(RS_EINVAL, "%s: layer %d, %s, row %d: code sum, padding, scale or zero point "
                                  "inconsistent (corrupt file)", path, l, llm_site_name(s), o);
            }
        }
    /* int8 rows: codes -127..127 (-128 would break the AVX2 kernel), zero padding, scales finite and positive */
    for (size_t r = 0; !st && r < iq->nq8; r++) {
        const int8_t *row = iq->q8 + r * (size_t)iq->Cp;
        int ok = iq->q8s[r] > 0 && isfinite(iq->q8s[r]);
        for (int i = 0; i < iq->Cp; i++) ok &= row[i] != -128 && (i < cp->d || row[i] == 0);
        if (!ok)
            st = RS_ERROR(RS_EINVAL, "%s: int8 %s row %zu: a code of -128, non-zero padding or a bad scale (corrupt file)",
                          path, r < (size_t)cp->vocab ? "embedding" : "LM head", r % (size_t)cp->vocab);
    }
    return st;
}

/* The safetensors form of the file (below): its header tensor and format tag. */
#define ST_HEADER_NAME "rostesim.header"
#define ST_FORMAT "rostesim-int"
static int load_safetensors(llm_intq **out, st_set *s, const char *path, size_t fsize);

int llm_intq_load(llm_intq **out, const char *path)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return RS_ERROR(RS_EIO, "cannot read %s: %s", path, strerror(errno));
    char magic[4];
    uint32_t ver = 0;
    uint8_t hb[HDR_BYTES];
    int st = RS_OK;
    struct stat sb;
    const size_t fsize = fstat(fileno(f), &sb) == 0 && sb.st_size > 0 ? (size_t)sb.st_size : 0;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, LLM_INTQ_MAGIC, 4) || fread(&ver, 4, 1, f) != 1) {
        fclose(f);
        st_set *s = NULL;
        const char *fmt = NULL;
        if (st_open(&s, path) == RS_OK && (fmt = st_metadata(s, 0, "format")) && !strcmp(fmt, ST_FORMAT)) {
            st = load_safetensors(out, s, path, fsize);
            st_close(s);
            return st;
        }
        st_close(s);
        return RS_ERROR(RS_EINVAL, "%s: not a rostesim int model (neither the \"%s\" magic nor a safetensors file of "
                        "format %s): export one with 'rostesim llm export-int'", path, LLM_INTQ_MAGIC, ST_FORMAT);
    }
    else if (ver < 1 || ver > LLM_INTQ_VERSION)
        st = RS_ERROR(RS_EINVAL, "%s: int model version %u, this rostesim reads versions 1 to %d: re-export it with this "
                      "rostesim's 'llm export-int'", path, ver, LLM_INTQ_VERSION);
    if (!st) st = read_sec(f, hb, ver >= 2 ? HDR_BYTES : HDR_BYTES_V1, path, "header");
    llm_config c;
    qz_spec q[3];
    int fl[5];
    if (!st) st = parse_header(hb, ver, &c, q, fl, path);
    llm_intq *iq = NULL;
    if (!st) st = shell_alloc(&iq, &c, (llm_intq_head)fl[4], fsize, path);
    uint8_t *flags = NULL;
    float *sg = NULL;
    size_t L = (size_t)c.n_layer, ns = 0;
    if (!st) {
        iq->w = q[0], iq->a = q[1], iq->kv = q[2], iq->block_ln = fl[0];
        ns = signs_len(iq, fl[1], fl[2], fl[3]);
        flags = malloc(2 * L), sg = malloc(ns ? ns : 1);
        if (!flags || !sg) st = RS_ERROR(RS_ENOMEM, "llm_intq_load: out of memory");
    }
    if (!st) st = read_sec(f, flags, 2 * L, path, "rotation flags");
    if (!st) st = read_sec(f, sg, ns, path, "rotation signs");
    if (!st) st = read_sec(f, iq->f, iq->nf * sizeof(float), path, "fp32 tensor");
    if (!st) st = read_sec(f, iq->pk, iq->npk, path, "packed weight");
    if (!st) st = read_sec(f, iq->rs, iq->nrow * sizeof(float), path, "scale");
    if (!st) st = read_sec(f, iq->ri, 2 * iq->nrow * sizeof(int32_t), path, "zero point");
    if (!st && ver >= 2) st = read_sec(f, iq->q8, iq->nq8 * (size_t)iq->Cp, path, "int8 head");
    if (!st && ver >= 2) st = read_sec(f, iq->q8s, iq->nq8 * sizeof(float), path, "int8 head scale");
    if (!st && fgetc(f) != EOF) st = RS_ERROR(RS_EINVAL, "%s: bytes after the last section (corrupt file)", path);
    if (!st) st = load_finish(iq, flags, sg, fl, path);
    if (!st) st = make_il16(iq);
    free(flags), free(sg);
    fclose(f);
    if (st) {
        llm_intq_free(iq);
        return st;
    }
    *out = iq;
    return RS_OK;
}

/* ---- the safetensors layout (docs/int-format.md, "safetensors") ------------------------------ */

typedef struct {
    char name[48];
    void *p;
    st_dtype dt;
    int ndim;
    int64_t shape[2];
} st_ent;

static size_t st_esize(st_dtype d) { return d == ST_U8 || d == ST_I8 ? 1 : 4; }

/* Every tensor of the layout, in file-independent order, pointing into iq's sections (and
 * into hdr, flags and sg for the header and rotations). e has room for st_nent(iq). */
static size_t st_nent(const llm_intq *iq) { return 12 + (size_t)iq->cfg.n_layer * (8 + 4 * LLM_NSITES); }

static size_t st_entries(llm_intq *iq, uint8_t *hdr, uint8_t *flags, float *sg, const int fl[5], st_ent *e)
{
    const llm_config *c = &iq->cfg;
    const int64_t V = c->vocab, C = c->d, L = c->n_layer;
    size_t n = 0;
#define ENT(ptr, dtype, nd, s0, s1, ...)                                                                      \
    do {                                                                                                      \
        st_ent *x_ = &e[n++];                                                                                 \
        snprintf(x_->name, sizeof x_->name, __VA_ARGS__);                                                     \
        x_->p = (void *)(ptr), x_->dt = (dtype), x_->ndim = (nd), x_->shape[0] = (s0), x_->shape[1] = (s1); \
    } while (0)
    ENT(hdr, ST_U8, 1, HDR_BYTES, 0, ST_HEADER_NAME);
    ENT(flags, ST_U8, 1, L, 0, "rotation.r3_on");
    ENT(flags + L, ST_U8, 1, L, 0, "rotation.r4_on");
    float *at = sg;
    const int64_t ord[3] = {C, c->head_dim, c->d_ff};
    for (int k = 0; k < 3; k++)
        if (fl[k + 1]) {
            ENT(at, ST_F32, 1, ord[k], 0, "rotation.r%d_signs", k == 0 ? 1 : k + 2);
            at += ord[k];
        }
    if (iq->head_kind == LLM_INTQ_HEAD_F32) {
        ENT(iq->wte, ST_F32, 2, V, C, "embed_tokens.weight");
        if (!c->tied) ENT(iq->head, ST_F32, 2, V, C, "lm_head.weight");
    } else {
        ENT(iq->q8, ST_I8, 2, V, iq->Cp, "embed_tokens.q8");
        ENT(iq->q8s, ST_F32, 1, V, 0, "embed_tokens.q8_scales");
        if (!c->tied) {
            ENT(iq->q8 + V * iq->Cp, ST_I8, 2, V, iq->Cp, "lm_head.q8");
            ENT(iq->q8s + V, ST_F32, 1, V, 0, "lm_head.q8_scales");
        }
    }
    ENT(iq->lnf_w, ST_F32, 1, C, 0, "norm.weight");
    if (iq->lnf_b) ENT(iq->lnf_b, ST_F32, 1, C, 0, "norm.bias");
    for (int l = 0; l < c->n_layer; l++) {
        iq_layer *Y = &iq->L[l];
        const struct {
            float *p;
            const char *nm;
            int64_t len;
        } f[8] = {{Y->ln1_w, "ln1.weight", C}, {Y->ln1_b, "ln1.bias", C},       {Y->qkv_b, "qkv.bias", qkv_dim(c)},
                  {Y->o_b, "o.bias", C},       {Y->ln2_w, "ln2.weight", C},     {Y->ln2_b, "ln2.bias", C},
                  {Y->up_b, "up.bias", f1_dim(c)}, {Y->down_b, "down.bias", C}};
        for (int k = 0; k < 8; k++)
            if (f[k].p) ENT(f[k].p, ST_F32, 1, f[k].len, 0, "layers.%d.%s", l, f[k].nm);
        for (int s = 0; s < LLM_NSITES; s++) {
            iq_lin *li = &Y->lin[s];
            const char *sn = llm_site_name(s);
            ENT(li->w, ST_U8, 2, li->OC, li->ICp / 2, "layers.%d.%s.qweight", l, sn);
            ENT(li->scale, ST_F32, 1, li->OC, 0, "layers.%d.%s.scales", l, sn);
            ENT(li->zero, ST_I32, 1, li->OC, 0, "layers.%d.%s.zeros", l, sn);
            ENT(li->sum, ST_I32, 1, li->OC, 0, "layers.%d.%s.code_sums", l, sn);
        }
    }
#undef ENT
    return n;
}

/* The quantizer in words, for the metadata (people read it; the loader reads the header). */
static void qz_words(char *b, size_t n, const qz_spec *q)
{
    if (qz_is_identity(q)) snprintf(b, n, "none (fp32)");
    else
        snprintf(b, n, "%d-bit %s, %s, clip %g (%s), rounding %s", q->bits, q->scheme == QZ_ASYM ? "asymmetric" : "symmetric",
                 "per row", (double)q->clip, q->clipmode == QZ_CLIP_PAPER ? "paper" : "code",
                 q->round == QZ_HALF_AWAY ? "half away from zero" : "half to even");
}

int llm_intq_save_safetensors(const llm_intq *iq_c, const char *path)
{
    llm_intq *iq = (llm_intq *)iq_c; /* entries point into it; nothing is written to it */
    const llm_config *c = &iq->cfg;
    uint8_t hb[HDR_BYTES];
    wbuf b = {hb, 0, sizeof hb};
    header(&b, iq);
    const size_t L = (size_t)c->n_layer;
    const int fl[5] = {iq->block_ln, iq->r1 != NULL, iq->r3 != NULL, iq->r4 != NULL, (int)iq->head_kind};
    size_t ns = signs_len(iq, fl[1], fl[2], fl[3]), ne = st_nent(iq);
    uint8_t *flags = malloc(2 * L);
    float *sg = malloc(ns ? ns : 1);
    st_ent *e = malloc(ne * sizeof *e);
    st_out *o = calloc(ne, sizeof *o);
    int st = !flags || !sg || !e || !o ? RS_ERROR(RS_ENOMEM, "llm_intq_save_safetensors: out of memory") : RS_OK;
    if (!st) {
        memcpy(flags, iq->r3_on, L), memcpy(flags + L, iq->r4_on, L);
        float *at = sg;
        const rot *R[3] = {iq->r1, iq->r3, iq->r4};
        for (int k = 0; k < 3 && !st; k++)
            if (R[k]) {
                st = rot_hadamard_signs(R[k], at);
                at += rot_block(R[k]);
            }
    }
    if (!st) {
        size_t n = st_entries(iq, hb, flags, sg, fl, e);
        for (size_t i = 0; i < n; i++)
            o[i] = (st_out){.name = e[i].name, .data = e[i].p, .ndim = e[i].ndim, .shape = {e[i].shape[0], e[i].shape[1]},
                            .dtype = e[i].dt};
        char arch[160], wq[160], aq[160], kq[160], ver[8];
        snprintf(arch, sizeof arch, "%s: vocab %d, hidden %d, %d layers, %d heads (%d KV) of %d, MLP %d",
                 llm_arch_name(c->arch), c->vocab, c->d, c->n_layer, c->n_head, c->n_kv_head, c->head_dim, c->d_ff);
        qz_words(wq, sizeof wq, &iq->w), qz_words(aq, sizeof aq, &iq->a), qz_words(kq, sizeof kq, &iq->kv);
        snprintf(ver, sizeof ver, "%d", LLM_INTQ_VERSION);
        const char *meta[] = {"format", ST_FORMAT, "version", ver, "layout", "docs/int-format.md of rostesim",
                              "model", arch, "weights", wq, "activations", aq, "kv_cache", kq,
                              "packing", "qweight row o: byte 32b+j holds input 64b+j (low nibble) and 64b+32+j (high "
                                         "nibble); value = (code - zeros[o]) * scales[o]"};
        st = st_write(path, o, n, meta, sizeof meta / sizeof *meta / 2);
    }
    free(flags), free(sg), free(e), free(o);
    return st;
}

/* A safetensors file written by llm_intq_save_safetensors: the header tensor first (it says
 * which tensors follow), then every tensor of the layout checked for dtype and shape and
 * copied into place; a missing or extra tensor is an error. */
static int load_safetensors(llm_intq **out, st_set *s, const char *path, size_t fsize)
{
    *out = NULL;
    const st_tensor *h = st_find(s, ST_HEADER_NAME);
    if (!h || h->dtype != ST_U8 || h->nbytes != HDR_BYTES)
        return RS_ERROR(RS_EINVAL, "%s: no %d-byte U8 tensor '%s' (corrupt int model)", path, HDR_BYTES, ST_HEADER_NAME);
    uint8_t hb[HDR_BYTES];
    memcpy(hb, h->data, HDR_BYTES);
    llm_config c;
    qz_spec q[3];
    int fl[5];
    int st = parse_header(hb, LLM_INTQ_VERSION, &c, q, fl, path);
    llm_intq *iq = NULL;
    if (!st) st = shell_alloc(&iq, &c, (llm_intq_head)fl[4], fsize, path);
    if (st) return st;
    iq->w = q[0], iq->a = q[1], iq->kv = q[2], iq->block_ln = fl[0];
    const size_t L = (size_t)c.n_layer, ns = signs_len(iq, fl[1], fl[2], fl[3]), ne = st_nent(iq);
    uint8_t *flags = malloc(2 * L);
    float *sg = malloc(ns ? ns : 1);
    st_ent *e = malloc(ne * sizeof *e);
    if (!flags || !sg || !e) st = RS_ERROR(RS_ENOMEM, "llm_intq_load: out of memory");
    size_t n = st ? 0 : st_entries(iq, hb, flags, sg, fl, e);
    if (!st && st_count(s) != n)
        st = RS_ERROR(RS_EINVAL, "%s: %zu tensors, the header implies %zu (corrupt int model)", path, st_count(s), n);
    for (size_t i = 1; i < n && !st; i++) {
        const st_tensor *t = st_find(s, e[i].name);
        size_t want = st_esize(e[i].dt) * (size_t)e[i].shape[0] * (size_t)(e[i].ndim == 2 ? e[i].shape[1] : 1);
        if (!t) st = RS_ERROR(RS_EINVAL, "%s: tensor '%s' is missing (corrupt int model)", path, e[i].name);
        else if (t->dtype != e[i].dt || t->ndim != e[i].ndim || t->shape[0] != e[i].shape[0] ||
                 (e[i].ndim == 2 && t->shape[1] != e[i].shape[1]) || t->nbytes != want)
            st = RS_ERROR(RS_EINVAL, "%s: tensor '%s' has the wrong dtype or shape (corrupt int model)", path, e[i].name);
        else if (want) memcpy(e[i].p, t->data, want);
    }
    if (!st) st = load_finish(iq, flags, sg, fl, path);
    if (!st) st = make_il16(iq);
    free(flags), free(sg), free(e);
    if (st) {
        llm_intq_free(iq);
        return st;
    }
    *out = iq;
    return RS_OK;
}
