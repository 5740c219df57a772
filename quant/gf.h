/* rostesim: small finite fields GF(q), q = p^k, for the Paley constructions
 * (quant/hadamard.c). Elements are the integers 0..q-1: the base-p digits of an
 * element are the coefficients of its polynomial representative modulo a monic
 * irreducible polynomial of degree k found by search. Internal to quant/. */
#ifndef RS_GF_H
#define RS_GF_H

#include <stddef.h>
#include <stdint.h>

#define GF_MAXK 16

typedef struct {
    unsigned p, k, q;
    unsigned f[GF_MAXK + 1]; /* monic irreducible modulus, f[k] = 1 (k > 1) */
} gf_field;

/* 1 if q is a prime power (writes p and k when non-NULL), else 0. */
int gf_prime_power(size_t q, unsigned *p, unsigned *k);

/* Set up GF(q). RS_ENOTSUP if q is not a prime power or too large (q > 2^20). */
int gf_init(gf_field *F, size_t q);

unsigned gf_add(const gf_field *F, unsigned a, unsigned b);
unsigned gf_sub(const gf_field *F, unsigned a, unsigned b);
unsigned gf_mul(const gf_field *F, unsigned a, unsigned b);

/* Quadratic character: chi[x] = 0 for x = 0, +1 for nonzero squares, -1 otherwise
 * (chi has q entries). */
void gf_quadratic_character(const gf_field *F, int8_t *chi);

#endif
