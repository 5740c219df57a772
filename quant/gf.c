/* rostesim: small finite fields GF(p^k) (see quant/gf.h). */
#include "quant/gf.h"

#include <string.h>

#include "quant/status.h"

int gf_prime_power(size_t q, unsigned *p, unsigned *k)
{
    if (q < 2) return 0;
    size_t d = 2;
    while (d * d <= q && q % d) d++;
    if (q % d) d = q; /* q itself is prime */
    unsigned kk = 0;
    size_t r = q;
    while (r % d == 0) { r /= d; kk++; }
    if (r != 1) return 0;
    if (p) *p = (unsigned)d;
    if (k) *k = kk;
    return 1;
}

/* Coefficient vectors of length k (degree < k) <-> element index. */
static void to_digits(const gf_field *F, unsigned a, unsigned *d)
{
    for (unsigned i = 0; i < F->k; i++) { d[i] = a % F->p; a /= F->p; }
}

static unsigned from_digits(const gf_field *F, const unsigned *d)
{
    unsigned a = 0;
    for (unsigned i = F->k; i-- > 0;) a = a * F->p + d[i];
    return a;
}

/* Remainder of the polynomial a (degree < na) modulo the monic g of degree dg,
 * in place over GF(p); returns 1 if the remainder is zero. */
static int poly_mod_is_zero(unsigned *a, unsigned na, const unsigned *g, unsigned dg, unsigned p)
{
    for (unsigned i = na; i-- > dg;) {
        unsigned c = a[i] % p;
        if (!c) continue;
        for (unsigned j = 0; j <= dg; j++) a[i - dg + j] = (a[i - dg + j] + (p - c) * g[j]) % p;
    }
    for (unsigned i = 0; i < dg && i < na; i++)
        if (a[i] % p) return 0;
    return 1;
}

/* f (monic, degree k) is irreducible iff no monic g of degree 1..k/2 divides it. */
static int irreducible(const unsigned *f, unsigned k, unsigned p)
{
    unsigned g[GF_MAXK + 1], a[GF_MAXK + 1];
    for (unsigned dg = 1; dg <= k / 2; dg++) {
        unsigned long count = 1;
        for (unsigned i = 0; i < dg; i++) count *= p;
        for (unsigned long c = 0; c < count; c++) {
            unsigned long t = c;
            for (unsigned i = 0; i < dg; i++) { g[i] = (unsigned)(t % p); t /= p; }
            g[dg] = 1;
            memcpy(a, f, (k + 1) * sizeof *a);
            if (poly_mod_is_zero(a, k + 1, g, dg, p)) return 0;
        }
    }
    return 1;
}

int gf_init(gf_field *F, size_t q)
{
    unsigned p, k;
    if (!gf_prime_power(q, &p, &k)) return RS_ERROR(RS_ENOTSUP, "GF(%zu): %zu is not a prime power", q, q);
    if (q > (1u << 20) || k > GF_MAXK) return RS_ERROR(RS_ENOTSUP, "GF(%zu): field too large", q);
    memset(F, 0, sizeof *F);
    F->p = p;
    F->k = k;
    F->q = (unsigned)q;
    if (k == 1) { F->f[1] = 1; return RS_OK; }
    /* Search monic polynomials x^k + c_{k-1} x^{k-1} + ... + c_0 in increasing order. */
    for (unsigned c = 0; c < q; c++) {
        unsigned t = c;
        for (unsigned i = 0; i < k; i++) { F->f[i] = t % p; t /= p; }
        F->f[k] = 1;
        if (F->f[0] == 0) continue; /* divisible by x */
        if (irreducible(F->f, k, p)) return RS_OK;
    }
    return RS_ERROR(RS_ENUMERIC, "GF(%zu): no irreducible polynomial of degree %u found", q, k);
}

unsigned gf_add(const gf_field *F, unsigned a, unsigned b)
{
    if (F->k == 1) return (a + b) % F->p;
    unsigned da[GF_MAXK], db[GF_MAXK];
    to_digits(F, a, da);
    to_digits(F, b, db);
    for (unsigned i = 0; i < F->k; i++) da[i] = (da[i] + db[i]) % F->p;
    return from_digits(F, da);
}

unsigned gf_sub(const gf_field *F, unsigned a, unsigned b)
{
    if (F->k == 1) return (a + F->p - b) % F->p;
    unsigned da[GF_MAXK], db[GF_MAXK];
    to_digits(F, a, da);
    to_digits(F, b, db);
    for (unsigned i = 0; i < F->k; i++) da[i] = (da[i] + F->p - db[i]) % F->p;
    return from_digits(F, da);
}

unsigned gf_mul(const gf_field *F, unsigned a, unsigned b)
{
    if (F->k == 1) return (unsigned)(((unsigned long)a * b) % F->p);
    unsigned da[GF_MAXK], db[GF_MAXK], prod[2 * GF_MAXK] = {0};
    to_digits(F, a, da);
    to_digits(F, b, db);
    for (unsigned i = 0; i < F->k; i++)
        for (unsigned j = 0; j < F->k; j++) prod[i + j] = (prod[i + j] + da[i] * db[j]) % F->p;
    poly_mod_is_zero(prod, 2 * F->k - 1, F->f, F->k, F->p);
    return from_digits(F, prod);
}

void gf_quadratic_character(const gf_field *F, int8_t *chi)
{
    for (unsigned x = 0; x < F->q; x++) chi[x] = -1;
    chi[0] = 0;
    for (unsigned x = 1; x < F->q; x++) chi[gf_mul(F, x, x)] = 1;
}
