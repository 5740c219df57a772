/* rostesim: dense least squares and Gram spectra (LAPACKE + OpenBLAS, double).
 * Matrices are row-major. A is N x d with rows a_t (the samples / features). */
#ifndef RS_LINALG_H
#define RS_LINALG_H

#include <stddef.h>

/* Minimum-norm least-squares solution of A w = y (SVD-based, LAPACKE dgelsd).
 * rcond: singular values below rcond * s_max count as zero (< 0: machine epsilon).
 * Outputs: w (d), rank (numerical rank, may be NULL), sv (min(N,d) singular values in
 * decreasing order, may be NULL). A and y are not modified. */
int ls_minnorm(size_t N, size_t d, const double *A, const double *y, double rcond,
               double *w, size_t *rank, double *sv);

/* Spectrum of G = A^T A / N through the N x N matrix A A^T / N (same non-zero
 * eigenvalues). eig (N values, decreasing, may be NULL). rank: eigenvalues above
 * tol * eig_max (tol < 0: N * machine epsilon). lambda_min: smallest eigenvalue counted
 * in the rank (the smallest non-zero eigenvalue of G); lambda_max: the largest. */
int ls_gram_spectrum(size_t N, size_t d, const double *A, double tol, double *eig,
                     size_t *rank, double *lambda_min, double *lambda_max);

/* rho = max_t ||a_t||_G^2 = max_t a_t^T G a_t over the rows of A. */
int ls_gram_rho(size_t N, size_t d, const double *A, double *rho);

/* ||v||_G^2 = ||A v||^2 / N. work: N doubles. */
double ls_gnorm2(size_t N, size_t d, const double *A, const double *v, double *work);

#endif
