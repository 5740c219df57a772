/* rostesim: OMP_FOR_IF, an OpenMP loop only where the work pays for a team. */
#ifndef RS_QUANT_OMP_FOR_H
#define RS_QUANT_OMP_FOR_H

/* Run the for statement in __VA_ARGS__ as an OpenMP parallel loop when par, else as a plain
 * loop. Not `#pragma omp parallel for if (par)`: with a false `if`, libgomp still builds a
 * team of one per call (malloc, and futexes when nested in an outer parallel region), which
 * cost the lsq simulator about a third of its time on d = 512 vectors quantized once per SGD
 * step. */
#define OMP_FOR_IF(par, ...)                                                              \
    do {                                                                                  \
        if (par) {                                                                        \
            _Pragma("omp parallel for schedule(static)") __VA_ARGS__                      \
        } else {                                                                          \
            __VA_ARGS__                                                                   \
        }                                                                                 \
    } while (0)

#endif
