/* The fixed C ABI between the tracec runtime (tracec/cgen/_native.pyx) and the
 * per-graph modules it loads with dlopen. Plain C: no Python or NumPy headers.
 *
 * A module exports, for each kernel NAME it holds (one per elementwise group),
 *     const char NAME_signature[];   e.g. "float64,float64->float64"
 *     int NAME(const tc_array *args, int nargs, const int64_t *shape, int ndim, tc_ctx *ctx);
 * args holds the inputs, then the outputs (C-contiguous, of `shape`). The runtime
 * has checked dtypes, ranks and broadcasting before the call; the kernel still
 * refuses a wrong argument count. It returns 0, or an error code with
 * ctx->message filled.
 * Reduction kernels (templates/reduce.c) take the same arguments: `shape` is the
 * shape the inputs broadcast to, and their one output has the reduced shape.
 */
#ifndef TC_ABI_H
#define TC_ABI_H
#include <stdint.h>

#define TC_MAX_NDIM 64

typedef struct {
    char *data;
    const int64_t *shape;
    const int64_t *strides;   /* in bytes; may be 0 or negative */
    int32_t ndim;
    int32_t dtype;            /* TC_DTYPE(kind, itemsize) */
} tc_array;

typedef struct {
    int32_t nthreads;              /* threads for large arrays */
    int32_t status;                /* bits: TC_FPE_* (floating-point flags) | TC_ERR_* */
    int64_t parallel_threshold;    /* elements above which threads are used */
    char message[256];
} tc_ctx;

#define TC_DTYPE(kind, itemsize) (((int32_t)(kind) << 8) | (int32_t)(itemsize))

/* floating-point conditions, reported like NumPy's np.errstate categories */
#define TC_FPE_DIVIDE    1
#define TC_FPE_OVERFLOW  2
#define TC_FPE_UNDERFLOW 4
#define TC_FPE_INVALID   8
/* errors NumPy raises from inside a loop */
#define TC_ERR_NEGATIVE_POWER (1 << 16)   /* integers to negative integer powers */
#define TC_ERR_ABI            (1 << 17)   /* called with the wrong arguments */
#define TC_ERR_EMPTY_REDUCTION (1 << 18)  /* max/min over no elements: NumPy raises ValueError */
#define TC_ERR_SHAPE          (1 << 19)   /* operand shapes that do not fit (matmul's inner dimensions) */
#define TC_ERR_NOMEM          (1 << 20)   /* a temporary buffer could not be allocated */
#define TC_ERR_UNSUPPORTED    (1 << 21)   /* a case the C code does not take (dtype, no BLAS): run NumPy's implementation */

typedef int (*tc_kernel_fn)(const tc_array *, int, const int64_t *, int, tc_ctx *);

#endif
