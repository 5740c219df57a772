/* tests/test_ptq.c: the post-training baselines (llm/quantize/ptq.h) on the tiny checkpoints of
 * tests/fixtures/llm, calibration data = random token rows:
 *   - GPTQ lowers the layer-output error ||X W^T - X Q(W)^T||^2 against RTN (same grid spec)
 *     on the calibration inputs, for every linear site of every layer (per channel, with
 *     act-order, with groups of 8; QuaRot + GPTQ too); the ratios are printed;
 *   - the QuaRot-rotated model at 16 bits reproduces the unrotated logits (rel err <= 1e-4);
 *   - so does the SpinQuant model (rotations learned at W4A4KV4 for a few steps, merged)
 *     with its quantizers then turned off;
 *   - RTN is the QAT forward with the same quantizers, bit for bit;
 *   - a saved PTQ folder reloads (llm_qat_load_model attaches its rostesim_qat.json) and gives
 *     the in-memory quantized model's logits, bit for bit, for rtn, gptq, quarot and spinquant;
 *   - re-quantizing GPTQ's output per row is not the identity (why it is stored with the
 *     weight quantizer off);
 *   - same options, same weights (determinism); errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/io/fileio.h"
#include "llm/nn/model.h"
#include "llm/quantize/ptq.h"
#include "llm/quantize/qat.h"
#include "quant/status.h"
#include "tests/check.h"
#include "tests/fixture.h"

static const char *const FIX[] = {"llama_gqa", "neox_parallel"};
#define NFIX 2
#define NROW 6
#define TROW 16

static float *logits_of(llm_model *m, const fx_calib *c)
{
    size_t n = (size_t)2 * TROW * m->cfg.vocab;
    float *l = malloc(n * sizeof *l);
    if (!l || llm_model_forward(m, c->eval, NULL, 2, TROW, NULL, NULL)) {
        free(l);
        return NULL;
    }
    memcpy(l, m->logits, n * sizeof *l);
    return l;
}

static void test_gptq_vs_rtn(const char *name, llm_ptq_method method, int act_order, int group)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load (%s)", name, rs_last_error());
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 7);
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, method);
    o.gptq_weights = 1;
    o.act_order = act_order;
    o.group = group;
    llm_rot_config rc;
    int L = m->cfg.n_layer;
    llm_ptq_layer_err *e = calloc((size_t)L, sizeof *e);
    int st = llm_ptq_apply(&m, &o, &c.ds, &rc, e);
    CHECK(!st, "%s %s%s g%d: apply (%s)", name, llm_ptq_method_name(method), act_order ? " act-order" : "", group,
          st ? rs_last_error() : "ok");
    if (!st) {
        int all = 1;
        printf("  %s %s%s group %d, GPTQ/RTN layer-output error:", name, llm_ptq_method_name(method),
               act_order ? " act-order" : "", group);
        for (int l = 0; l < L; l++)
            for (int s = 0; s < LLM_NSITES; s++) {
                double r = e[l].gptq[s] / e[l].rtn[s];
                printf(" L%d.%s %.3f", l, llm_site_name(s), r);
                if (!(e[l].gptq[s] < e[l].rtn[s]) || !(e[l].rtn[s] > 0)) all = 0;
            }
        printf("\n");
        CHECK(all && e[0].ntok == NROW * TROW, "%s %s%s g%d: GPTQ < RTN at every site of every layer (%d sites)", name,
              llm_ptq_method_name(method), act_order ? " act-order" : "", group, L * LLM_NSITES);
        if (method == LLM_PTQ_GPTQ && !act_order && !group) {
            /* why the weight quantizer is off after GPTQ: re-quantizing GPTQ's output per row
             * (the grid of its own min/max) is not the identity */
            size_t changed = 0, total = 0;
            qz_spec s = qz_spec_make(4, QZ_ASYM, QZ_ROW, 0);
            for (int l = 0; l < L; l++)
                for (int site = 0; site < LLM_NSITES; site++) {
                    const llm_layer *Ly = &m->w.layers[l];
                    const float *W = site == 0 ? Ly->qkv_w : site == 1 ? Ly->o_w : site == 2 ? Ly->up_w : Ly->down_w;
                    size_t oc = (size_t)m->cfg.d, ic = (size_t)m->cfg.d;
                    if (site == 0) oc = (size_t)(m->cfg.n_head + 2 * m->cfg.n_kv_head) * m->cfg.head_dim;
                    if (site == 1) ic = (size_t)m->cfg.n_head * m->cfg.head_dim;
                    if (site == 2) oc = (size_t)m->cfg.d_ff * (m->cfg.arch == LLM_GPT_NEOX ? 1 : 2);
                    if (site == 3) ic = (size_t)m->cfg.d_ff;
                    float *y = malloc(oc * ic * sizeof *y);
                    if (y && !qz_fake_f32(&s, W, y, oc, ic))
                        for (size_t i = 0; i < oc * ic; i++) changed += y[i] != W[i];
                    total += oc * ic;
                    free(y);
                }
            CHECK(changed > 0, "%s: re-quantizing GPTQ's 4-bit output per row changes %.2f%% of the weights "
                  "(so they are stored with the weight quantizer off)", name, 100.0 * (double)changed / (double)total);
        }
        CHECK(m->qat && m->qat->w.bits == 16 && m->qat->o.wbits == 16 && m->qat->a.bits == 4 && m->qat->kv.bits == 4,
              "%s: after GPTQ the weight quantizer is off, activations and K/V stay 4-bit", name);
    }
    llm_rot_config_free(&rc);
    free(e);
    llm_model_free(m);
}

static void test_quarot_invariance(const char *name)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load", name);
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 11);
    float *l0 = logits_of(m, &c);
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, LLM_PTQ_QUAROT);
    o.q.wbits = o.q.abits = o.q.kvbits = 16;
    o.rot_seed = 5;
    llm_rot_config rc;
    int st = llm_ptq_apply(&m, &o, NULL, &rc, NULL);
    float *l1 = st ? NULL : logits_of(m, &c);
    int allrot = !st && rc.r1 && m->qat && m->qat->r3 && m->qat->r4 && m->qat->r2;
    double e = l0 && l1 ? fx_rel_err(l1, l0, (size_t)2 * TROW * m->cfg.vocab) : INFINITY;
    CHECK(allrot && e <= 1e-4, "%s: QuaRot (R1-R4 on) at W16A16KV16 reproduces the logits: rel err %.3g (tol 1e-4)",
          name, e);
    free(l0), free(l1);
    llm_rot_config_free(&rc);
    llm_model_free(m);
}

static void test_spinquant_invariance(const char *name)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load", name);
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 11);
    float *l0 = logits_of(m, &c);
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, LLM_PTQ_SPINQUANT);
    o.spin.steps = 5, o.spin.rows = 2;
    o.rot_seed = 5;
    llm_spin_report rep;
    o.spin_report = &rep;
    llm_rot_config rc;
    int st = llm_ptq_apply(&m, &o, &c.ds, &rc, NULL);
    if (!st) { /* quantizers off: the learned rotations alone */
        llm_qat *q = m->qat;
        q->w.bits = q->a.bits = q->kv.bits = 16;
        q->o.wbits = q->o.abits = q->o.kvbits = 16;
    }
    float *l1 = st ? NULL : logits_of(m, &c);
    double e = l0 && l1 ? fx_rel_err(l1, l0, (size_t)2 * TROW * m->cfg.vocab) : INFINITY;
    CHECK(!st && rc.r1 && rc.r2[0] && e <= 1e-4 && rep.orth_f32 <= 1e-5,
          "%s: SpinQuant (%d steps at W4A4KV4, loss %.5f -> %.5f, max|R^T R - I| %.2g) with the quantizers off "
          "reproduces the logits: rel err %.3g (tol 1e-4)%s", name, o.spin.steps, rep.loss0, rep.loss1, rep.orth_f64,
          e, st ? rs_last_error() : "");
    free(l0), free(l1);
    if (!st) llm_rot_config_free(&rc);
    llm_model_free(m);
}

static void test_rtn_is_qat(const char *name)
{
    llm_model *a = fx_load_model(name), *b = fx_load_model(name);
    fx_calib c;
    fx_calib_init(&c, NROW, a ? a->cfg.vocab : 2, 13);
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    o.q.abits = 8;
    o.q.aclip = 0.9;
    int st = !a || !b || llm_ptq_apply(&a, &o, NULL, NULL, NULL) || llm_qat_attach(b, &o.q);
    float *la = st ? NULL : logits_of(a, &c), *lb = st ? NULL : logits_of(b, &c);
    CHECK(la && lb && !memcmp(la, lb, (size_t)2 * TROW * a->cfg.vocab * sizeof(float)),
          "%s: RTN W4A8KV4 logits bit-identical to the QAT forward with the same quantizers", name);
    free(la), free(lb);
    llm_model_free(a), llm_model_free(b);
}

static void test_reload(const char *name, llm_ptq_method method, int gptq_weights)
{
    llm_model *m = fx_load_model(name);
    if (!m) {
        CHECK(0, "%s: load", name);
        return;
    }
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 17);
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, method);
    o.gptq_weights = gptq_weights || method == LLM_PTQ_GPTQ;
    o.spin.steps = 4, o.spin.rows = 2;
    llm_rot_config rc;
    int st = llm_ptq_apply(&m, &o, &c.ds, &rc, NULL);
    float *l0 = st ? NULL : logits_of(m, &c), *l1 = NULL;
    char dir[] = "/tmp/rs_ptq_XXXXXX";
    llm_model *r = NULL;
    if (!st && mkdtemp(dir)) {
        st = llm_ptq_save(m, &rc, &o, dir);
        if (!st) st = llm_qat_load_model(&r, dir);
        if (!st) l1 = logits_of(r, &c);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, LLM_QAT_FILE);
        size_t n;
        char *txt = NULL;
        llm_read_file(path, LLM_READ_ANY_SIZE, &txt, &n);
        char want[64];
        snprintf(want, sizeof want, "\"method\":\t\"%s\"", llm_ptq_method_name(method));
        CHECK(txt && strstr(txt, want) && strstr(txt, "\"ptq\""), "%s %s: %s records the method and a \"ptq\" object",
              name, llm_ptq_method_name(method), LLM_QAT_FILE);
        free(txt);
        const char *files[] = {LLM_QAT_FILE, "config.json", "model.safetensors"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            remove(path);
        }
        rmdir(dir);
    }
    size_t NV = (size_t)2 * TROW * m->cfg.vocab;
    CHECK(l0 && l1 && !memcmp(l0, l1, NV * sizeof(float)),
          "%s %s%s: the saved folder reloads with the same logits (bit-identical)%s%s", name,
          llm_ptq_method_name(method), method >= LLM_PTQ_QUAROT ? (gptq_weights ? "+gptq" : "+rtn") : "",
          st ? ": " : "", st ? rs_last_error() : "");
    /* determinism: the same options give the same weights */
    llm_model *m2 = fx_load_model(name);
    llm_rot_config rc2;
    int st2 = !m2 || llm_ptq_apply(&m2, &o, &c.ds, &rc2, NULL);
    CHECK(!st && !st2 && m2->nparams == m->nparams && !memcmp(m2->params, m->params, m->nparams * sizeof(float)),
          "%s %s: same options, same weights", name, llm_ptq_method_name(method));
    if (!st2) llm_rot_config_free(&rc2);
    free(l0), free(l1);
    llm_model_free(r), llm_model_free(m2);
    llm_rot_config_free(&rc);
    llm_model_free(m);
}

static void test_errors(void)
{
    CHECK(llm_ptq_method_parse("rtn") == LLM_PTQ_RTN && llm_ptq_method_parse("gptq") == LLM_PTQ_GPTQ &&
          llm_ptq_method_parse("quarot") == LLM_PTQ_QUAROT &&
          llm_ptq_method_parse("spinquant") == LLM_PTQ_SPINQUANT && llm_ptq_method_parse("awq") == -1 &&
          llm_ptq_method_parse(NULL) == -1, "method names parse; unknown ones are -1");
    llm_model *m = fx_load_model("llama_gqa");
    llm_ptq_opts o;
    llm_ptq_opts_default(&o, LLM_PTQ_GPTQ);
    int st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "calibration data") && m && !m->qat,
          "gptq without data: RS_EINVAL (%s)", rs_last_error());
    llm_ptq_opts_default(&o, LLM_PTQ_SPINQUANT);
    st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "calibration data") && m && !m->qat,
          "spinquant without data: RS_EINVAL (%s)", rs_last_error());
    o.spin.momentum = 1;
    CHECK(llm_ptq_opts_check(&o) == RS_EINVAL && strstr(rs_last_error(), "momentum"),
          "spinquant momentum 1: RS_EINVAL (%s)", rs_last_error());
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    o.q.wbits = 0;
    st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "wbits"), "wbits 0: RS_EINVAL (%s)", rs_last_error());
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    o.q.abits = 17;
    o.q.scheme = QZ_SYM;
    o.q.kvbits = 1;
    st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "kvbits"), "sym kvbits 1: RS_EINVAL (%s)", rs_last_error());
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    o.group = 8;
    st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "group"), "groups with RTN weights: RS_EINVAL (%s)",
          rs_last_error());
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    o.method = (llm_ptq_method)7;
    CHECK(llm_ptq_apply(&m, &o, NULL, NULL, NULL) == RS_EINVAL, "method 7: RS_EINVAL (%s)", rs_last_error());
    fx_calib c;
    fx_calib_init(&c, NROW, m->cfg.vocab, 3);
    llm_ptq_opts_default(&o, LLM_PTQ_GPTQ);
    o.group = 7;
    st = llm_ptq_apply(&m, &o, &c.ds, NULL, NULL);
    CHECK(st == RS_EINVAL && strstr(rs_last_error(), "group"), "group 7 does not divide 72: RS_EINVAL (%s)",
          rs_last_error());
    llm_model_free(m);
    m = fx_load_model("llama_gqa");
    llm_ptq_opts_default(&o, LLM_PTQ_RTN);
    st = llm_ptq_apply(&m, &o, NULL, NULL, NULL);
    st |= llm_ptq_apply(&m, &o, NULL, NULL, NULL) != RS_EINVAL;
    CHECK(!st && strstr(rs_last_error(), "already quantized"), "a quantized model is refused (%s)", rs_last_error());
    llm_model_free(m);
}

int main(void)
{
    for (int f = 0; f < NFIX; f++) {
        test_gptq_vs_rtn(FIX[f], LLM_PTQ_GPTQ, 0, 0);
        test_gptq_vs_rtn(FIX[f], LLM_PTQ_GPTQ, 1, 0);
        test_gptq_vs_rtn(FIX[f], LLM_PTQ_GPTQ, 0, 8);
        test_gptq_vs_rtn(FIX[f], LLM_PTQ_QUAROT, 0, 0);
        test_quarot_invariance(FIX[f]);
        test_rtn_is_qat(FIX[f]);
        test_reload(FIX[f], LLM_PTQ_RTN, 0);
        test_reload(FIX[f], LLM_PTQ_GPTQ, 0);
        test_reload(FIX[f], LLM_PTQ_QUAROT, 1);
        test_reload(FIX[f], LLM_PTQ_SPINQUANT, 0);
        test_reload(FIX[f], LLM_PTQ_SPINQUANT, 1);
        test_spinquant_invariance(FIX[f]);
    }
    test_quarot_invariance("qwen2_gqa");
    test_spinquant_invariance("qwen2_gqa");
    test_errors();
    return check_summary("test_ptq");
}
