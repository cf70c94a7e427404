/* tracec elementwise kernel: $title
 *
 * One loop computes the whole group for each output element; intermediates
 * stay in registers. args: the inputs, then $n_outputs output(s), each of
 * the broadcast shape `shape`. The operation is written once, in ${fn}_run,
 * over a run of elements: a loop the compiler vectorizes when every operand
 * moves one element per step, and a strided loop otherwise. The kernel hands
 * it the whole array when all operands are contiguous, else one row of the
 * last (coalesced) dimension at a time; threads (OpenMP) split the work above
 * ctx->parallel_threshold elements.
 */
$comments
#include "tc_kernel.h"
#include <omp.h>

#undef TC_NARGS
#define TC_NARGS $nargs

const char ${fn}_signature[] = "$signature";

/* n elements from the pointers p, operand k moving es[k] elements per element */
static __attribute__((noinline)) int32_t ${fn}_run(const tc_array *args, char *const *p, const int64_t *es,
                                                   int64_t n)
{
    int32_t tc_st = 0;
    /* 0-d inputs: read once */
$scalars
$row_pointers
$strides
    if ($unit_test) {
        for (int64_t i = 0; i < n; i++) {
$unit_body
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
$strided_body
        }
    }
    return tc_st;
}

int $fn(const tc_array *args, int nargs, const int64_t *shape, int ndim, tc_ctx *ctx)
{
    if (nargs != TC_NARGS)
        return tc_fail(ctx, TC_ERR_ABI, "kernel expects %d arrays, got %d", TC_NARGS, nargs);
    int64_t n = tc_size(shape, ndim);
    if (n == 0)
        return 0;
    int64_t st[TC_NARGS][TC_MAX_NDIM], cshape[TC_MAX_NDIM], es[TC_NARGS];
    static const int64_t item[TC_NARGS] = {$itemsizes};
    int cnd = tc_prepare(args, TC_NARGS, shape, ndim, st, cshape);
    int nthreads = (n >= ctx->parallel_threshold && ctx->nthreads > 1) ? ctx->nthreads : 1;
    int32_t status = 0;
    if (cnd == 1 && $contiguous_test) {  /* every operand contiguous (or 0-d): one run */
        for (int k = 0; k < TC_NARGS; k++)
            es[k] = 1;
        if (nthreads > 1) {
            #pragma omp parallel num_threads(nthreads) reduction(| : status)
            {
                int id = omp_get_thread_num(), nt = omp_get_num_threads();
                int64_t lo = n * id / nt, hi = n * (id + 1) / nt;
                char *p[TC_NARGS];
                for (int k = 0; k < TC_NARGS; k++)
                    p[k] = args[k].data + lo * item[k];
                feclearexcept(FE_ALL_EXCEPT);
                status |= ${fn}_run(args, p, es, hi - lo) | tc_fp_status();
            }
        } else {  /* no parallel region: entering one costs more than a small array's loop */
            char *p[TC_NARGS];
            for (int k = 0; k < TC_NARGS; k++)
                p[k] = args[k].data;
            feclearexcept(FE_ALL_EXCEPT);
            status = ${fn}_run(args, p, es, n) | tc_fp_status();
        }
    } else {  /* strided and broadcast operands: one row of the last dimension at a time */
        const int64_t inner = cshape[cnd - 1], rows = n / inner;
        for (int k = 0; k < TC_NARGS; k++)
            es[k] = st[k][cnd - 1] / item[k];
        if (nthreads > 1) {
            #pragma omp parallel num_threads(nthreads) reduction(| : status)
            {
                int32_t run_st = 0;
                feclearexcept(FE_ALL_EXCEPT);
                #pragma omp for schedule(static)
                for (int64_t row = 0; row < rows; row++) {
                    char *p[TC_NARGS];
                    tc_row_pointers(args, TC_NARGS, st, cshape, cnd, row, p);
                    run_st |= ${fn}_run(args, p, es, inner);
                }
                status |= run_st | tc_fp_status();
            }
        } else {
            feclearexcept(FE_ALL_EXCEPT);
            for (int64_t row = 0; row < rows; row++) {
                char *p[TC_NARGS];
                tc_row_pointers(args, TC_NARGS, st, cshape, cnd, row, p);
                status |= ${fn}_run(args, p, es, inner);
            }
            status |= tc_fp_status();
        }
    }
    ctx->status |= status;
    return 0;
}
