/* rostesim: the one seeded random number generator of the project.
 *
 * Every random draw (data, rotation signs, Haar matrices, sampling order,
 * initialisation) comes from an rs_rng. A generator is identified by
 * (seed, stream): independent parts of a run use different stream numbers so
 * that their draws do not depend on the order in which parts consume numbers.
 * Backed by GSL's MT19937 (seeded from a SplitMix64 hash of seed and stream). */
#ifndef RS_RNG_H
#define RS_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_rng rs_rng;

/* Well-known stream numbers (any other value is allowed too). */
enum {
    RS_STREAM_DATA = 1,
    RS_STREAM_ROTATION = 2,
    RS_STREAM_ORDER = 3,
    RS_STREAM_INIT = 4,
    RS_STREAM_TEACHER = 5
};

rs_rng *rs_rng_alloc(uint64_t seed, uint64_t stream); /* NULL if out of memory */
void rs_rng_free(rs_rng *r);                           /* NULL is a no-op */

double rs_rng_uniform(rs_rng *r);                  /* [0, 1) */
unsigned long rs_rng_uint(rs_rng *r, unsigned long n); /* uniform in 0..n-1, n >= 1 */
double rs_rng_gaussian(rs_rng *r, double sigma);   /* N(0, sigma^2) */
double rs_rng_tdist(rs_rng *r, double nu);         /* Student t, nu degrees of freedom */
int rs_rng_sign(rs_rng *r);                        /* +1 or -1 with probability 1/2 */
void rs_rng_shuffle(rs_rng *r, size_t *idx, size_t n); /* uniform permutation in place */

/* The underlying gsl_rng* (as void* to keep GSL out of this header). */
void *rs_rng_gsl(rs_rng *r);

#endif
