#include "quant/rng.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>

struct rs_rng {
    gsl_rng *g;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

rs_rng *rs_rng_alloc(uint64_t seed, uint64_t stream)
{
    rs_rng *r = malloc(sizeof *r);
    if (!r) return NULL;
    r->g = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r->g) {
        free(r);
        return NULL;
    }
    uint64_t h = splitmix64(splitmix64(seed) ^ (stream * 0xD1B54A32D192ED03ull));
    unsigned long s = (unsigned long)(h & 0xffffffffu);
    if (s == 0) s = 4357; /* MT19937's own default; 0 is mapped to it by GSL too */
    gsl_rng_set(r->g, s);
    return r;
}

void rs_rng_free(rs_rng *r)
{
    if (!r) return;
    gsl_rng_free(r->g);
    free(r);
}

double rs_rng_uniform(rs_rng *r) { return gsl_rng_uniform(r->g); }
unsigned long rs_rng_uint(rs_rng *r, unsigned long n) { return gsl_rng_uniform_int(r->g, n); }
double rs_rng_gaussian(rs_rng *r, double sigma) { return gsl_ran_gaussian_ziggurat(r->g, sigma); }
double rs_rng_tdist(rs_rng *r, double nu) { return gsl_ran_tdist(r->g, nu); }
int rs_rng_sign(rs_rng *r) { return (gsl_rng_get(r->g) & 1u) ? 1 : -1; }

void rs_rng_shuffle(rs_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = gsl_rng_uniform_int(r->g, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

void *rs_rng_gsl(rs_rng *r) { return r->g; }
