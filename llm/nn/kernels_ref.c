/* rostesim LLM: naive reference twins of the layer kernels (kernels.h).
 *
 * Plain loops that follow the textbook formulas one element at a time: no BLAS, no
 * OpenMP, double accumulators for every sum. They are the ground truth the fast kernels
 * (kernels.c) are tested against, and are themselves checked by finite differences in
 * tests/test_kernels.c. Dimension letters as in kernels.h. */
#include <math.h>
#include <stddef.h>

#include "llm/nn/kernels.h"

/* --- embedding -------------------------------------------------------------------------- */

/* out (N,C), tokens (N), wte (V,C) */
void lk_embedding_forward_ref(float *out, const int32_t *tokens, const float *wte, int N, int C)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = wte[(size_t)tokens[n] * C + c];
}

/* dwte (V,C) += scatter of dout (N,C) by tokens */
void lk_embedding_backward_ref(float *dwte, const float *dout, const int32_t *tokens, int N, int C, int V)
{
    (void)V;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dwte[(size_t)tokens[n] * C + c] += dout[(size_t)n * C + c];
}

/* --- linear ----------------------------------------------------------------------------- */

/* out (N,OC) = inp (N,C) · w (OC,C)^T + bias (OC) */
void lk_matmul_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)s;
        }
}

void lk_matmul_backward_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                            const float *w, int N, int C, int OC)
{
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0.0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                dinp[(size_t)n * C + c] += (float)s;
            }
    if (dw)
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                double s = 0.0;
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                dw[(size_t)o * C + c] += (float)s;
            }
    if (dbias)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += (float)s;
        }
}

/* --- LayerNorm -------------------------------------------------------------------------- */

/* out, inp (N,C); w, b (C) (b may be NULL); mean, rstd (N) */
void lk_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        double s = 1.0 / sqrt(v + eps);
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = (float)((x[c] - m) * s * w[c] + (b ? b[c] : 0.0));
        mean[n] = (float)m;
        rstd[n] = (float)s;
    }
}

/* y = xhat * w + b, xhat = (x - mean) * rstd:
 * dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w. */
void lk_layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                               const float *w, const float *mean, const float *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m1 = 0.0, m2 = 0.0;
        for (int c = 0; c < C; c++) {
            double xh = ((double)x[c] - mean[n]) * rstd[n], dxh = (double)dy[c] * w[c];
            m1 += dxh;
            m2 += dxh * xh;
        }
        m1 /= C;
        m2 /= C;
        for (int c = 0; c < C; c++) {
            double xh = ((double)x[c] - mean[n]) * rstd[n], dxh = (double)dy[c] * w[c];
            if (dinp) dinp[(size_t)n * C + c] += (float)(rstd[n] * (dxh - m1 - xh * m2));
        }
    }
    for (int c = 0; c < C; c++) {
        double sw = 0.0, sb = 0.0;
        for (int n = 0; n < N; n++) {
            double xh = ((double)inp[(size_t)n * C + c] - mean[n]) * rstd[n];
            sw += (double)dout[(size_t)n * C + c] * xh;
            sb += dout[(size_t)n * C + c];
        }
        if (dw) dw[c] += (float)sw;
        if (db) db[c] += (float)sb;
    }
}

/* --- RMSNorm ---------------------------------------------------------------------------- */

void lk_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double ms = 0.0;
        for (int c = 0; c < C; c++) ms += (double)x[c] * x[c];
        ms /= C;
        double s = 1.0 / sqrt(ms + eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (float)(x[c] * s * w[c]);
        rstd[n] = (float)s;
    }
}

/* y = xhat * w, xhat = x * rstd: dx = rstd * (dxhat - xhat * mean(dxhat * xhat)). */
void lk_rmsnorm_backward_ref(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                             const float *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m2 = 0.0;
        for (int c = 0; c < C; c++) m2 += (double)dy[c] * w[c] * ((double)x[c] * rstd[n]);
        m2 /= C;
        for (int c = 0; c < C; c++) {
            double xh = (double)x[c] * rstd[n], dxh = (double)dy[c] * w[c];
            if (dinp) dinp[(size_t)n * C + c] += (float)(rstd[n] * (dxh - xh * m2));
        }
    }
    if (dw)
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
            dw[c] += (float)s;
        }
}

/* --- RoPE ------------------------------------------------------------------------------- */

/* HF rotate_half: for i < half, (x_i, x_{i+half}) -> (x_i cos - x_{i+half} sin, x_{i+half} cos + x_i sin).
 * sign = +1 rotates by +angle (forward), -1 by -angle (the transpose, backward). */
static void rope_ref(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H, int HS,
                     int rot_dim, int pos0, double sign)
{
    int half = rot_dim / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float *v = x + ((size_t)b * T + t) * stride + (size_t)h * HS;
                const float *ct = cos_t + (size_t)(pos0 + t) * half, *st = sin_t + (size_t)(pos0 + t) * half;
                for (int i = 0; i < half; i++) {
                    double c = ct[i], s = sign * st[i], x1 = v[i], x2 = v[i + half];
                    v[i] = (float)(x1 * c - x2 * s);
                    v[i + half] = (float)(x2 * c + x1 * s);
                }
            }
}

void lk_rope_forward_ref(float *x, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                         int HS, int rot_dim, int pos0)
{
    rope_ref(x, stride, cos_t, sin_t, B, T, H, HS, rot_dim, pos0, 1.0);
}

void lk_rope_backward_ref(float *dx, int stride, const float *cos_t, const float *sin_t, int B, int T, int H,
                          int HS, int rot_dim, int pos0)
{
    rope_ref(dx, stride, cos_t, sin_t, B, T, H, HS, rot_dim, pos0, -1.0);
}

/* --- causal self-attention (GQA) -------------------------------------------------------- */

/* qkv (B,T,QKV), out (B,T,NH*HS), att (B,NH,T,T) */
void lk_attention_forward_ref(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS)
{
    int QKV = (NH + 2 * NKV) * HS, OC = NH * HS, grp = NH / NKV;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / grp;
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * QKV + (size_t)h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                double mx = -INFINITY, sum = 0.0;
                double s[t + 1];
                for (int u = 0; u <= t; u++) {
                    const float *k = qkv + ((size_t)b * T + u) * QKV + (size_t)(NH + kh) * HS;
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    s[u] = d * scale;
                    if (s[u] > mx) mx = s[u];
                }
                for (int u = 0; u <= t; u++) {
                    s[u] = exp(s[u] - mx);
                    sum += s[u];
                }
                for (int u = 0; u < T; u++) a[u] = u <= t ? (float)(s[u] / sum) : 0.0f;
                float *o = out + ((size_t)b * T + t) * OC + (size_t)h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0.0;
                    for (int u = 0; u <= t; u++)
                        acc += (double)a[u] * qkv[((size_t)b * T + u) * QKV + (size_t)(NH + NKV + kh) * HS + i];
                    o[i] = (float)acc;
                }
            }
        }
}

/* out_t = sum_u a_tu v_u, a_t = softmax(s_t), s_tu = scale q_t.k_u:
 * da_tu = dout_t.v_u; ds_tu = a_tu (da_tu - sum_w a_tw da_tw);
 * dq_t += scale sum_u ds_tu k_u; dk_u += scale sum_t ds_tu q_t; dv_u += sum_t a_tu dout_t. */
void lk_attention_backward_ref(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                               int B, int T, int NH, int NKV, int HS)
{
    int QKV = (NH + 2 * NKV) * HS, OC = NH * HS, grp = NH / NKV;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / grp;
            size_t qo = (size_t)h * HS, ko = (size_t)(NH + kh) * HS, vo = (size_t)(NH + NKV + kh) * HS;
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float *ds = datt + (((size_t)b * NH + h) * T + t) * T;
                const float *dy = dout + ((size_t)b * T + t) * OC + qo;
                double dot = 0.0;
                for (int u = 0; u <= t; u++) {
                    const float *v = qkv + ((size_t)b * T + u) * QKV + vo;
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)dy[i] * v[i];
                    ds[u] = (float)d;
                    dot += d * a[u];
                }
                for (int u = 0; u < T; u++) ds[u] = u <= t ? (float)(a[u] * ((double)ds[u] - dot)) : 0.0f;
                for (int u = 0; u <= t; u++) {
                    float *dq = dqkv + ((size_t)b * T + t) * QKV + qo;
                    float *dk = dqkv + ((size_t)b * T + u) * QKV + ko;
                    float *dv = dqkv + ((size_t)b * T + u) * QKV + vo;
                    const float *q = qkv + ((size_t)b * T + t) * QKV + qo;
                    const float *k = qkv + ((size_t)b * T + u) * QKV + ko;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += (float)(scale * ds[u] * k[i]);
                        dk[i] += (float)(scale * ds[u] * q[i]);
                        dv[i] += (float)((double)a[u] * dy[i]);
                    }
                }
            }
        }
}

/* --- activations ------------------------------------------------------------------------ */

void lk_gelu_forward_ref(float *out, const float *inp, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * erfc(-x / sqrt(2.0))); /* 1 + erf(z) = erfc(-z), exact in the tail */
    }
}

/* d/dx [x Phi(x)] = Phi(x) + x phi(x) */
void lk_gelu_backward_ref(float *dinp, const float *inp, const float *dout, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        double d = 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
        dinp[i] += (float)(d * dout[i]);
    }
}

/* torch approximate="tanh": x/2 (1 + tanh(y)), y = sqrt(2/pi) (x + 0.044715 x^3);
 * 1 + tanh(y) = 2 / (1 + e^-2y), without the cancellation for y << 0 */
void lk_gelu_tanh_forward_ref(float *out, const float *inp, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(x / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))));
    }
}

void lk_gelu_tanh_backward_ref(float *dinp, const float *inp, const float *dout, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i], k = sqrt(2.0 / M_PI);
        double th = tanh(k * (x + 0.044715 * x * x * x));
        double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3.0 * 0.044715 * x * x);
        dinp[i] += (float)(d * dout[i]);
    }
}

/* inp (N,2F) rows [gate | up], out (N,F) = silu(gate) * up */
void lk_swiglu_forward_ref(float *out, const float *inp, int N, int F)
{
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            double g = inp[(size_t)n * 2 * F + f], u = inp[(size_t)n * 2 * F + F + f];
            out[(size_t)n * F + f] = (float)(g / (1.0 + exp(-g)) * u);
        }
}

/* silu'(g) = s (1 + g (1 - s)), s = sigmoid(g) */
void lk_swiglu_backward_ref(float *dinp, const float *inp, const float *dout, int N, int F)
{
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            double g = inp[(size_t)n * 2 * F + f], u = inp[(size_t)n * 2 * F + F + f];
            double s = 1.0 / (1.0 + exp(-g)), dy = dout[(size_t)n * F + f];
            dinp[(size_t)n * 2 * F + f] += (float)(dy * u * s * (1.0 + g * (1.0 - s)));
            dinp[(size_t)n * 2 * F + F + f] += (float)(dy * g * s);
        }
}

/* --- cross-entropy ---------------------------------------------------------------------- */

int lk_xent_forward_ref(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V)
{
    int count = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        double mx = -INFINITY, s = 0.0;
        for (int v = 0; v < V; v++)
            if (z[v] > mx) mx = z[v];
        for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
        double l = mx + log(s);
        lse[n] = (float)l;
        if (targets[n] < 0) {
            losses[n] = 0.0f;
        } else {
            losses[n] = (float)(l - z[targets[n]]);
            count++;
        }
    }
    return count;
}

void lk_xent_backward_ref(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                          float scale, int N, int V)
{
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        int t = targets[n];
        for (int v = 0; v < V; v++) {
            /* read z[v] before writing d[v]: they may be the same element */
            double p = t < 0 ? 0.0 : exp((double)z[v] - lse[n]) - (v == t ? 1.0 : 0.0);
            d[v] = (float)(scale * p);
        }
    }
}
