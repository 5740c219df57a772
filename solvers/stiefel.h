/* rostesim: Cayley SGD on the orthogonal group (the square Stiefel manifold), as in
 * Li, Fuxin, Todorovic 2020, "Efficient Riemannian optimization on the Stiefel manifold via
 * the Cayley transform", and SpinQuant's Cayley SGD (its SGDG optimizer).
 *
 * R is n x n orthogonal, row-major, double. G is the Euclidean gradient dL/dR at R.
 * One step (momentum beta in [0, 1); beta = 0 is plain Cayley SGD):
 *   M     <- beta M - G                           (M = -G when M is NULL or beta = 0)
 *   W^    =  M R^T - 1/2 R (R^T M R^T)
 *   W     =  W^ - W^T                             (skew; for square R: (M R^T - R M^T) / 2)
 *   alpha =  min(lr, 1 / ||W||_1)                 (SpinQuant's cap, when cap != 0)
 *   R     <- (I - alpha/2 W)^{-1} (I + alpha/2 W) R   (exact Cayley transform, LAPACKE dgesv)
 *   M     <- W R_old                              (momentum kept in the tangent space)
 * The Cayley transform of a skew matrix is orthogonal, so R stays orthogonal to rounding
 * (the exact solve, not the authors' fixed-point iteration). With M = -G the step is a
 * descent direction: <G, W R> = -||W||_F^2 <= 0. */
#ifndef RS_STIEFEL_H
#define RS_STIEFEL_H

#include <stddef.h>

/* One Cayley step. M: n x n momentum (may be NULL: no momentum; zero it before the first
 * step). *alpha_used (may be NULL) receives the step length taken. */
int stiefel_cayley_step(double *R, const double *G, double *M, size_t n, double lr, double beta, int cap,
                        double *alpha_used);

/* The Riemannian gradient's skew generator W of the step above for M = -G (n x n, out). */
int stiefel_skew(const double *R, const double *G, size_t n, double *W);

/* max_ij |R^T R - I|_ij. */
double stiefel_orth_err(const double *R, size_t n);

#endif
