/* rostesim: Hadamard matrices and fast orthonormal Hadamard transforms
 * (quant/hadamard.h, ROSTE.md §3).
 *
 * Dimension letters: n = K * M the order, K the core order (a +-1 Hadamard matrix
 * from a construction), M = 2^m the Sylvester factor, B rows in a batch.
 * A row x (length n) is viewed as the K x M matrix X with x[i*M + j] = X[i][j];
 * then x * (H_K (x) H_M) = vec(H_K^T X H_M) and x * (H_K (x) H_M)^T = vec(H_K X H_M). */
#include "quant/hadamard.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/gf.h"
#include "quant/omp_for.h"
#include "quant/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAD_X86 1
#else
#define HAD_X86 0
#endif

/* The largest non-power-of-two core we build (int8, float and double copies). */
#define HAD_MAX_CORE 2048
/* The largest order had_plan_alloc accepts. */
#define HAD_MAX_ORDER ((size_t)1 << 26)

struct had_plan {
    size_t n, K, M;
    int8_t *core; /* K x K, +-1 */
    float *Hf;    /* core as float (K > 1) */
    double *Hd;   /* core as double (K > 1) */
    char desc[160];
};

static int is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* ---------------------------------------------------------------- FWHT */

/* Unnormalised in-place butterflies of one row, scaled by s at the end. */
static void fwht_row_f32_ref(float *x, size_t n, float s)
{
    for (size_t h = 1; h < n; h <<= 1)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

static void fwht_row_f64_ref(double *x, size_t n, double s)
{
    for (size_t h = 1; h < n; h <<= 1)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                double a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

#if HAD_X86
/* n >= 8: the three in-register stages (h = 1, 2, 4) with permutes and blends,
 * then the wide stages with whole vectors, the scale folded into the last stage. */
__attribute__((target("avx2"))) static void fwht_row_f32_avx2(float *x, size_t n, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int last_in_reg = (n == 8);
    for (size_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), p;
        p = _mm256_permute_ps(v, 0xB1);
        v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xAA);
        p = _mm256_permute_ps(v, 0x4E);
        v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xCC);
        p = _mm256_permute2f128_ps(v, v, 0x01);
        v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xF0);
        if (last_in_reg) v = _mm256_mul_ps(v, vs);
        _mm256_storeu_ps(x + i, v);
    }
    for (size_t h = 8; h < n; h <<= 1) {
        int last = (2 * h == n);
        /* Two stages at once (radix 4) when possible: fewer passes over memory. */
        if (4 * h <= n) {
            int last4 = (4 * h == n);
            for (size_t i = 0; i < n; i += 4 * h)
                for (size_t j = i; j < i + h; j += 8) {
                    __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
                    __m256 c = _mm256_loadu_ps(x + j + 2 * h), d = _mm256_loadu_ps(x + j + 3 * h);
                    __m256 ab0 = _mm256_add_ps(a, b), ab1 = _mm256_sub_ps(a, b);
                    __m256 cd0 = _mm256_add_ps(c, d), cd1 = _mm256_sub_ps(c, d);
                    __m256 r0 = _mm256_add_ps(ab0, cd0), r2 = _mm256_sub_ps(ab0, cd0);
                    __m256 r1 = _mm256_add_ps(ab1, cd1), r3 = _mm256_sub_ps(ab1, cd1);
                    if (last4) {
                        r0 = _mm256_mul_ps(r0, vs); r1 = _mm256_mul_ps(r1, vs);
                        r2 = _mm256_mul_ps(r2, vs); r3 = _mm256_mul_ps(r3, vs);
                    }
                    _mm256_storeu_ps(x + j, r0);
                    _mm256_storeu_ps(x + j + h, r1);
                    _mm256_storeu_ps(x + j + 2 * h, r2);
                    _mm256_storeu_ps(x + j + 3 * h, r3);
                }
            h <<= 1;
            continue;
        }
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j += 8) {
                __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
                __m256 u = _mm256_add_ps(a, b), w = _mm256_sub_ps(a, b);
                if (last) { u = _mm256_mul_ps(u, vs); w = _mm256_mul_ps(w, vs); }
                _mm256_storeu_ps(x + j, u);
                _mm256_storeu_ps(x + j + h, w);
            }
    }
}

__attribute__((target("avx2"))) static void fwht_row_f64_avx2(double *x, size_t n, double s)
{
    const __m256d vs = _mm256_set1_pd(s);
    int last_in_reg = (n == 4);
    for (size_t i = 0; i < n; i += 4) {
        __m256d v = _mm256_loadu_pd(x + i), p;
        p = _mm256_permute_pd(v, 0x5);
        v = _mm256_blend_pd(_mm256_add_pd(v, p), _mm256_sub_pd(p, v), 0xA);
        p = _mm256_permute2f128_pd(v, v, 0x01);
        v = _mm256_blend_pd(_mm256_add_pd(v, p), _mm256_sub_pd(p, v), 0xC);
        if (last_in_reg) v = _mm256_mul_pd(v, vs);
        _mm256_storeu_pd(x + i, v);
    }
    for (size_t h = 4; h < n; h <<= 1) {
        int last = (2 * h == n);
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j += 4) {
                __m256d a = _mm256_loadu_pd(x + j), b = _mm256_loadu_pd(x + j + h);
                __m256d u = _mm256_add_pd(a, b), w = _mm256_sub_pd(a, b);
                if (last) { u = _mm256_mul_pd(u, vs); w = _mm256_mul_pd(w, vs); }
                _mm256_storeu_pd(x + j, u);
                _mm256_storeu_pd(x + j + h, w);
            }
    }
}

static int have_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached;
}
#endif

/* Parallelise over rows only when there is enough work to pay for the threads. */
#define HAD_OMP_MIN_WORK ((size_t)1 << 15)

int had_fwht_f32_ref(float *x, size_t rows, size_t n)
{
    if (!is_pow2(n)) return RS_ERROR(RS_EINVAL, "had_fwht: length %zu is not a power of two", n);
    if (!x && rows) return RS_ERROR(RS_EINVAL, "had_fwht: NULL data");
    float s = (float)(1.0 / sqrt((double)n));
    for (size_t r = 0; r < rows; r++) fwht_row_f32_ref(x + r * n, n, s);
    return RS_OK;
}

int had_fwht_f32(float *x, size_t rows, size_t n)
{
    if (!is_pow2(n)) return RS_ERROR(RS_EINVAL, "had_fwht: length %zu is not a power of two", n);
    if (!x && rows) return RS_ERROR(RS_EINVAL, "had_fwht: NULL data");
    float s = (float)(1.0 / sqrt((double)n));
    long R = (long)rows;
#if HAD_X86
    if (n >= 8 && have_avx2()) {
        OMP_FOR_IF(rows * n >= HAD_OMP_MIN_WORK && rows > 1,
            for (long r = 0; r < R; r++) { fwht_row_f32_avx2(x + (size_t)r * n, n, s); });
        return RS_OK;
    }
#endif
    OMP_FOR_IF(rows * n >= HAD_OMP_MIN_WORK && rows > 1,
        for (long r = 0; r < R; r++) { fwht_row_f32_ref(x + (size_t)r * n, n, s); });
    return RS_OK;
}

int had_fwht_f64(double *x, size_t rows, size_t n)
{
    if (!is_pow2(n)) return RS_ERROR(RS_EINVAL, "had_fwht: length %zu is not a power of two", n);
    if (!x && rows) return RS_ERROR(RS_EINVAL, "had_fwht: NULL data");
    double s = 1.0 / sqrt((double)n);
    long R = (long)rows;
#if HAD_X86
    if (n >= 4 && have_avx2()) {
        OMP_FOR_IF(rows * n >= HAD_OMP_MIN_WORK && rows > 1,
            for (long r = 0; r < R; r++) { fwht_row_f64_avx2(x + (size_t)r * n, n, s); });
        return RS_OK;
    }
#endif
    OMP_FOR_IF(rows * n >= HAD_OMP_MIN_WORK && rows > 1,
        for (long r = 0; r < R; r++) { fwht_row_f64_ref(x + (size_t)r * n, n, s); });
    return RS_OK;
}

/* ------------------------------------------------------- constructions */

/* Williamson-type quadruples: first rows of four symmetric circulant +-1 matrices
 * A, B, C, D of order w with A^2 + B^2 + C^2 + D^2 = 4w I, plugged into the
 * Williamson array (order 4w). Published data, '+' = 1, '-' = -1:
 *   w = 39: S. London, "Constructing new Turyn type sequences, T-sequences and
 *           Hadamard matrices", PhD thesis, University of Illinois at Chicago, 2013
 *           (as tabulated in SageMath, src/sage/combinat/matrices/hadamard_matrix.py,
 *           williamson_type_quadruples_smallcases);
 *   w = 43: M. Hall, "Combinatorial Theory", 2nd ed., Wiley 1986 [Ha83 in SageMath],
 *           same SageMath table.
 * Both are checked at construction (H H^T = 4w I exactly) and in tests. */
static const struct {
    unsigned w;
    const char *row[4];
    const char *source;
} williamson_db[] = {
    {39,
     {"+++--+-+-----+--++----++--+-----+-+--++", "+++--++-+---+-+--+----+--+-+---+-++--++",
      "++++---+--++----+-+--+-+----++--+---+++", "+---++-+-+-----+++-++-+++-----+-+-++---"},
     "London 2013"},
    {43,
     {"++---++++-+--+--++--------++--+--+-++++---+", "+++-+-++--+-+-++++-+----+-++++-+-+--++-+-++",
      "++-++++++----+-+--++-++-++--+-+----++++++-+", "+---++--++++-+-+++-++--++-+++-+-++++--++---"},
     "Hall 1986"},
};
#define N_WILLIAMSON (sizeof williamson_db / sizeof williamson_db[0])

/* Kinds of direct constructions (no Kronecker product). */
enum { C_NONE = 0, C_SYLVESTER, C_PALEY1, C_PALEY2, C_WILLIAMSON };

/* Which direct construction gives order K (prefer Sylvester, Paley I, Paley II,
 * Williamson); *param receives q or w. */
static int direct_kind(size_t K, size_t *param)
{
    if (is_pow2(K)) { *param = K; return C_SYLVESTER; }
    if (K % 4 || K > HAD_MAX_CORE) return C_NONE;
    if (gf_prime_power(K - 1, NULL, NULL) && (K - 1) % 4 == 3) { *param = K - 1; return C_PALEY1; }
    if (gf_prime_power(K / 2 - 1, NULL, NULL) && (K / 2 - 1) % 4 == 1) { *param = K / 2 - 1; return C_PALEY2; }
    for (size_t i = 0; i < N_WILLIAMSON; i++)
        if (4 * williamson_db[i].w == K) { *param = williamson_db[i].w; return C_WILLIAMSON; }
    return C_NONE;
}

static void direct_desc(int kind, size_t K, size_t param, char *d, size_t len)
{
    switch (kind) {
    case C_SYLVESTER: snprintf(d, len, "Sylvester %zu", K); break;
    case C_PALEY1: snprintf(d, len, "Paley I q=%zu (%zu)", param, K); break;
    case C_PALEY2: snprintf(d, len, "Paley II q=%zu (%zu)", param, K); break;
    case C_WILLIAMSON: snprintf(d, len, "Williamson n=%zu (%zu)", param, K); break;
    default: snprintf(d, len, "none"); break;
    }
}

/* A core of order K: direct, or a Kronecker product a (x) b of two direct
 * non-power-of-two constructions (a <= b). Returns 1 and fills a, b (b = 1 when
 * direct). */
static int core_split(size_t K, size_t *a, size_t *b)
{
    size_t prm;
    if (K == 0) return 0;
    if (direct_kind(K, &prm)) { *a = K; *b = 1; return 1; }
    if (K % 16 || K > HAD_MAX_CORE) return 0;
    for (size_t x = 12; x * x <= K; x += 4) {
        size_t y = K / x, p1, p2;
        if (K % x || is_pow2(x) || is_pow2(y)) continue;
        if (direct_kind(x, &p1) && direct_kind(y, &p2)) { *a = x; *b = y; return 1; }
    }
    return 0;
}

static void core_desc(size_t K, char *d, size_t len)
{
    size_t a, b, pa, pb;
    if (!core_split(K, &a, &b)) { snprintf(d, len, "none"); return; }
    int ka = direct_kind(a, &pa);
    if (b == 1) { direct_desc(ka, a, pa, d, len); return; }
    char da[64], db[64];
    int kb = direct_kind(b, &pb);
    direct_desc(ka, a, pa, da, sizeof da);
    direct_desc(kb, b, pb, db, sizeof db);
    snprintf(d, len, "%s \u2297 %s", da, db);
}

static void build_sylvester(size_t K, int8_t *H)
{
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < K; j++) H[i * K + j] = (__builtin_popcountll(i & j) & 1) ? -1 : 1;
}

/* Paley I (q = 3 mod 4): H = I + S, S = [[0, 1^T], [-1, Q]], Q the Jacobsthal
 * matrix Q[i][j] = chi(x_j - x_i) (antisymmetric). H is skew, not symmetric. */
static int build_paley1(size_t q, int8_t *H)
{
    gf_field F;
    int st = gf_init(&F, q);
    if (st) return st;
    int8_t *chi = malloc(q);
    if (!chi) return RS_ERROR(RS_ENOMEM, "Paley I q=%zu: out of memory", q);
    gf_quadratic_character(&F, chi);
    size_t K = q + 1;
    for (size_t j = 0; j < K; j++) H[j] = 1;
    for (size_t i = 1; i < K; i++) {
        H[i * K] = -1;
        for (size_t j = 1; j < K; j++)
            H[i * K + j] = (i == j) ? 1 : chi[gf_sub(&F, (unsigned)(j - 1), (unsigned)(i - 1))];
    }
    free(chi);
    return RS_OK;
}

/* Paley II (q = 1 mod 4): the symmetric conference matrix C = [[0, 1^T], [1, Q]]
 * of order q+1, each 0 replaced by [[1,-1],[-1,-1]] and each +-1 by +-[[1,1],[1,-1]]. */
static int build_paley2(size_t q, int8_t *H)
{
    gf_field F;
    int st = gf_init(&F, q);
    if (st) return st;
    int8_t *chi = malloc(q);
    if (!chi) return RS_ERROR(RS_ENOMEM, "Paley II q=%zu: out of memory", q);
    gf_quadratic_character(&F, chi);
    size_t c = q + 1, K = 2 * c;
    for (size_t i = 0; i < c; i++)
        for (size_t j = 0; j < c; j++) {
            int v;
            if (i == j) v = 0;
            else if (i == 0 || j == 0) v = 1;
            else v = chi[gf_sub(&F, (unsigned)(j - 1), (unsigned)(i - 1))];
            int8_t b00, b01, b10, b11;
            if (v == 0) { b00 = 1; b01 = -1; b10 = -1; b11 = -1; }
            else { b00 = (int8_t)v; b01 = (int8_t)v; b10 = (int8_t)v; b11 = (int8_t)-v; }
            H[(2 * i) * K + 2 * j] = b00;
            H[(2 * i) * K + 2 * j + 1] = b01;
            H[(2 * i + 1) * K + 2 * j] = b10;
            H[(2 * i + 1) * K + 2 * j + 1] = b11;
        }
    free(chi);
    return RS_OK;
}

/* Williamson array [[A, B, C, D], [-B, A, -D, C], [-C, D, A, -B], [-D, -C, B, A]]. */
static int build_williamson(size_t w, int8_t *H)
{
    size_t idx = N_WILLIAMSON;
    for (size_t i = 0; i < N_WILLIAMSON; i++)
        if (williamson_db[i].w == w) idx = i;
    if (idx == N_WILLIAMSON) return RS_ERROR(RS_ENOTSUP, "no Williamson quadruple of order %zu", w);
    static const int blk[4][4] = {{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}};
    static const int sgn[4][4] = {{1, 1, 1, 1}, {-1, 1, -1, 1}, {-1, 1, 1, -1}, {-1, -1, 1, 1}};
    size_t K = 4 * w;
    for (int m = 0; m < 4; m++)
        if (strlen(williamson_db[idx].row[m]) != w)
            return RS_ERROR(RS_ENUMERIC, "Williamson data w=%zu: row %d has the wrong length", w, m);
    for (int bi = 0; bi < 4; bi++)
        for (int bj = 0; bj < 4; bj++) {
            const char *r = williamson_db[idx].row[blk[bi][bj]];
            int s = sgn[bi][bj];
            for (size_t i = 0; i < w; i++)
                for (size_t j = 0; j < w; j++) {
                    int v = r[(j + w - i) % w] == '+' ? 1 : -1; /* circulant */
                    H[(bi * w + i) * K + bj * w + j] = (int8_t)(s * v);
                }
        }
    return RS_OK;
}

/* Check H H^T = K I exactly in integers. */
static int verify_core(const int8_t *H, size_t K)
{
    for (size_t i = 0; i < K; i++)
        for (size_t j = i; j < K; j++) {
            long s = 0;
            for (size_t t = 0; t < K; t++) s += H[i * K + t] * H[j * K + t];
            if (s != (i == j ? (long)K : 0)) return 0;
        }
    return 1;
}

static int build_direct(size_t K, int8_t *H)
{
    size_t prm;
    switch (direct_kind(K, &prm)) {
    case C_SYLVESTER: build_sylvester(K, H); return RS_OK;
    case C_PALEY1: return build_paley1(prm, H);
    case C_PALEY2: return build_paley2(prm, H);
    case C_WILLIAMSON: return build_williamson(prm, H);
    default: return RS_ERROR(RS_ENOTSUP, "no direct Hadamard construction of order %zu", K);
    }
}

int had_core_matrix(size_t K, int8_t *H, char *desc, size_t desclen)
{
    size_t a, b;
    if (!H) return RS_ERROR(RS_EINVAL, "had_core_matrix: NULL output");
    if (!core_split(K, &a, &b))
        return RS_ERROR(RS_ENOTSUP, "no Hadamard construction of core order %zu", K);
    int st;
    if (b == 1) {
        st = build_direct(K, H);
    } else {
        int8_t *A = malloc(a * a), *Bm = malloc(b * b);
        if (!A || !Bm) { free(A); free(Bm); return RS_ERROR(RS_ENOMEM, "had_core_matrix: out of memory"); }
        st = build_direct(a, A);
        if (!st) st = build_direct(b, Bm);
        if (!st)
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < a; j++)
                    for (size_t k = 0; k < b; k++)
                        for (size_t l = 0; l < b; l++) H[(i * b + k) * K + j * b + l] = (int8_t)(A[i * a + j] * Bm[k * b + l]);
        free(A);
        free(Bm);
    }
    if (st) return st;
    if (K <= 256 && !is_pow2(K) && !verify_core(H, K))
        return RS_ERROR(RS_ENUMERIC, "Hadamard core of order %zu failed its orthogonality check", K);
    if (desc && desclen) core_desc(K, desc, desclen);
    return RS_OK;
}

/* ----------------------------------------------------- order selection */

/* Choose n = K * M: n = o * 2^e (o odd); the smallest core K = o * 2^j that has a
 * construction. Returns 1 on success. */
static int choose(size_t n, size_t *K, size_t *M)
{
    if (n == 0 || n > HAD_MAX_ORDER) return 0;
    size_t o = n, e = 0;
    while (!(o & 1)) { o >>= 1; e++; }
    if (o == 1) { *K = 1; *M = n; return 1; }
    for (size_t j = 0; j <= e; j++) {
        size_t k = o << j, a, b;
        if (k > HAD_MAX_CORE) break;
        if (core_split(k, &a, &b)) { *K = k; *M = n / k; return 1; }
    }
    return 0;
}

static void order_desc(size_t K, size_t M, char *d, size_t len)
{
    if (K == 1) { snprintf(d, len, "Sylvester %zu", M); return; }
    char cd[128];
    core_desc(K, cd, sizeof cd);
    if (M == 1) snprintf(d, len, "%s", cd);
    else snprintf(d, len, "%s \u2297 Sylvester %zu", cd, M);
}

int had_supported(size_t n, char *desc, size_t desclen)
{
    size_t K, M;
    if (!choose(n, &K, &M)) {
        if (desc && desclen) snprintf(desc, desclen, "none");
        return 0;
    }
    if (desc && desclen) order_desc(K, M, desc, desclen);
    return 1;
}

void had_nearest(size_t n, size_t *below, size_t *above)
{
    size_t b = 0, a = 0, K, M;
    size_t start = n > HAD_MAX_ORDER ? HAD_MAX_ORDER + 1 : n; /* nothing is supported above the cap */
    for (size_t m = start; m-- > 1;)
        if (choose(m, &K, &M)) { b = m; break; }
    if (n < HAD_MAX_ORDER)
        for (size_t m = n + 1; m <= HAD_MAX_ORDER; m++)
            if (choose(m, &K, &M)) { a = m; break; }
    if (below) *below = b;
    if (above) *above = a;
}

/* ----------------------------------------------------------------- plan */

int had_plan_alloc(size_t n, had_plan **out)
{
    size_t K, M;
    if (!out) return RS_ERROR(RS_EINVAL, "had_plan_alloc: NULL output");
    *out = NULL;
    if (n == 0) return RS_ERROR(RS_EINVAL, "had_plan_alloc: order 0");
    if (!choose(n, &K, &M)) {
        size_t b, a;
        had_nearest(n, &b, &a);
        return RS_ERROR(RS_ENOTSUP, "no Hadamard construction for order %zu; nearest supported orders: %zu below, %zu above",
                        n, b, a);
    }
    had_plan *p = calloc(1, sizeof *p);
    if (!p) return RS_ERROR(RS_ENOMEM, "had_plan_alloc: out of memory");
    p->n = n;
    p->K = K;
    p->M = M;
    p->core = malloc(K * K);
    if (!p->core) { had_plan_free(p); return RS_ERROR(RS_ENOMEM, "had_plan_alloc: out of memory"); }
    int st = had_core_matrix(K, p->core, NULL, 0);
    if (st) { had_plan_free(p); return st; }
    if (K > 1) {
        p->Hf = malloc(K * K * sizeof *p->Hf);
        p->Hd = malloc(K * K * sizeof *p->Hd);
        if (!p->Hf || !p->Hd) { had_plan_free(p); return RS_ERROR(RS_ENOMEM, "had_plan_alloc: out of memory"); }
        for (size_t i = 0; i < K * K; i++) { p->Hf[i] = p->core[i]; p->Hd[i] = p->core[i]; }
    }
    order_desc(K, M, p->desc, sizeof p->desc);
    *out = p;
    return RS_OK;
}

void had_plan_free(had_plan *p)
{
    if (!p) return;
    free(p->core);
    free(p->Hf);
    free(p->Hd);
    free(p);
}

size_t had_order(const had_plan *p) { return p ? p->n : 0; }
size_t had_core_order(const had_plan *p) { return p ? p->K : 0; }
const char *had_describe(const had_plan *p) { return p ? p->desc : ""; }
const int8_t *had_core(const had_plan *p) { return p ? p->core : NULL; }

/* Rows per chunk of the core product: enough columns (B*M) for an efficient gemm,
 * bounded temporary memory (two buffers of B*n elements). */
static size_t chunk_rows(const had_plan *p, size_t rows)
{
    size_t B = ((size_t)1 << 18) / p->n;
    if (B < 1) B = 1;
    if (B > rows) B = rows;
    return B;
}

/* The K x K core product on FWHT'd rows: X_b <- alpha * op(H_K) X_b for every row,
 * through one gemm per chunk on the gathered K x (B*M) matrix. ws: had_apply_ws_len
 * floats, or NULL to allocate them here. */
size_t had_apply_ws_len(const had_plan *p, size_t rows)
{
    if (!p || !rows || p->K == 1) return 0;
    return 2 * chunk_rows(p, rows) * p->n;
}

int had_apply_f32_ws(const had_plan *p, float *x, size_t rows, int transpose, float *ws)
{
    if (!p) return RS_ERROR(RS_EINVAL, "had_apply: NULL plan");
    if (!rows) return RS_OK;
    if (!x) return RS_ERROR(RS_EINVAL, "had_apply: NULL data");
    size_t n = p->n, K = p->K, M = p->M;
    if (M > 1) had_fwht_f32(x, rows * K, M);
    if (K == 1) return RS_OK;
    size_t B = chunk_rows(p, rows);
    float *T = ws ? ws : malloc(2 * B * n * sizeof *T);
    if (!T) return RS_ERROR(RS_ENOMEM, "had_apply: out of memory");
    float *U = T + B * n;
    float alpha = (float)(1.0 / sqrt((double)K));
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t nb = rows - r0 < B ? rows - r0 : B, W = nb * M;
        float *xb = x + r0 * n;
        long NK = (long)K;
        OMP_FOR_IF(nb * n >= HAD_OMP_MIN_WORK,
            for (long k = 0; k < NK; k++) {
                for (size_t b = 0; b < nb; b++) memcpy(T + (size_t)k * W + b * M, xb + b * n + (size_t)k * M, M * sizeof *T);
        });
        cblas_sgemm(CblasRowMajor, transpose ? CblasNoTrans : CblasTrans, CblasNoTrans, (int)K, (int)W, (int)K, alpha,
                    p->Hf, (int)K, T, (int)W, 0.0f, U, (int)W);
        OMP_FOR_IF(nb * n >= HAD_OMP_MIN_WORK,
            for (long k = 0; k < NK; k++) {
                for (size_t b = 0; b < nb; b++) memcpy(xb + b * n + (size_t)k * M, U + (size_t)k * W + b * M, M * sizeof *U);
        });
    }
    if (!ws) free(T);
    return RS_OK;
}

int had_apply_f32(const had_plan *p, float *x, size_t rows, int transpose)
{
    return had_apply_f32_ws(p, x, rows, transpose, NULL);
}

int had_apply_f64(const had_plan *p, double *x, size_t rows, int transpose)
{
    if (!p) return RS_ERROR(RS_EINVAL, "had_apply: NULL plan");
    if (!rows) return RS_OK;
    if (!x) return RS_ERROR(RS_EINVAL, "had_apply: NULL data");
    size_t n = p->n, K = p->K, M = p->M;
    if (M > 1) had_fwht_f64(x, rows * K, M);
    if (K == 1) return RS_OK;
    size_t B = chunk_rows(p, rows);
    double *T = malloc(2 * B * n * sizeof *T);
    if (!T) return RS_ERROR(RS_ENOMEM, "had_apply: out of memory");
    double *U = T + B * n;
    double alpha = 1.0 / sqrt((double)K);
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t nb = rows - r0 < B ? rows - r0 : B, W = nb * M;
        double *xb = x + r0 * n;
        long NK = (long)K;
        OMP_FOR_IF(nb * n >= HAD_OMP_MIN_WORK,
            for (long k = 0; k < NK; k++) {
                for (size_t b = 0; b < nb; b++) memcpy(T + (size_t)k * W + b * M, xb + b * n + (size_t)k * M, M * sizeof *T);
        });
        cblas_dgemm(CblasRowMajor, transpose ? CblasNoTrans : CblasTrans, CblasNoTrans, (int)K, (int)W, (int)K, alpha,
                    p->Hd, (int)K, T, (int)W, 0.0, U, (int)W);
        OMP_FOR_IF(nb * n >= HAD_OMP_MIN_WORK,
            for (long k = 0; k < NK; k++) {
                for (size_t b = 0; b < nb; b++) memcpy(xb + b * n + (size_t)k * M, U + (size_t)k * W + b * M, M * sizeof *U);
        });
    }
    free(T);
    return RS_OK;
}

int had_dense_f64(const had_plan *p, double *H)
{
    if (!p || !H) return RS_ERROR(RS_EINVAL, "had_dense_f64: NULL argument");
    size_t n = p->n, K = p->K, M = p->M;
    double s = 1.0 / sqrt((double)n);
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < n; c++) {
            int v = p->core[(r / M) * K + c / M];
            if (__builtin_popcountll((r % M) & (c % M)) & 1) v = -v;
            H[r * n + c] = v * s;
        }
    return RS_OK;
}
