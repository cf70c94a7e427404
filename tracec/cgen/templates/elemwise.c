/* tracec elementwise kernel: $title
 *
 * One loop computes the whole group for each output element; intermediates
 * stay in registers. args: the inputs, then $n_outputs output(s), each of
 * the broadcast shape `shape`. Two paths: a flat contiguous loop the compiler
 * vectorizes, and a strided/broadcasting loop over rows of the last
 * (coalesced) dimension. Threads (OpenMP) above ctx->parallel_threshold.
 */
$comments
#include "tc_kernel.h"

#undef TC_NARGS
#define TC_NARGS $nargs

const char ${fn}_signature[] = "$signature";

int $fn(const tc_array *args, int nargs, const int64_t *shape, int ndim, tc_ctx *ctx)
{
    if (nargs != TC_NARGS)
        return tc_fail(ctx, TC_ERR_ABI, "kernel expects %d arrays, got %d", TC_NARGS, nargs);
    int64_t n = tc_size(shape, ndim);
    if (n == 0)
        return 0;
    /* 0-d inputs: read once */
$scalars
    int64_t st[TC_NARGS][TC_MAX_NDIM], cshape[TC_MAX_NDIM];
    int cnd = tc_prepare(args, TC_NARGS, shape, ndim, st, cshape);
    int nthreads = (n >= ctx->parallel_threshold && ctx->nthreads > 1) ? ctx->nthreads : 1;
    int32_t status = 0;
    if (cnd == 1 && $contiguous_test) {
        /* contiguous fast path */
$contiguous_pointers
        if (nthreads > 1) {
            #pragma omp parallel num_threads(nthreads) reduction(| : status)
            {
                int32_t tc_st = 0;
                feclearexcept(FE_ALL_EXCEPT);
                #pragma omp for schedule(static)
                for (int64_t i = 0; i < n; i++) {
$contiguous_body
                }
                status |= tc_st | tc_fp_status();
            }
        } else {  /* no parallel region: entering one costs more than a small array's loop */
            int32_t tc_st = 0;
            feclearexcept(FE_ALL_EXCEPT);
            for (int64_t i = 0; i < n; i++) {
$contiguous_body
            }
            status |= tc_st | tc_fp_status();
        }
    } else {
        /* general path: strided and broadcast operands, one row at a time */
        const int64_t inner = cshape[cnd - 1], rows = n / inner;
$strides
        if (nthreads > 1) {
            #pragma omp parallel num_threads(nthreads) reduction(| : status)
            {
                int32_t tc_st = 0;
                feclearexcept(FE_ALL_EXCEPT);
                #pragma omp for schedule(static)
                for (int64_t row = 0; row < rows; row++) {
                    char *p[TC_NARGS];
                    tc_row_pointers(args, TC_NARGS, st, cshape, cnd, row, p);
$row_pointers
                    if ($unit_test) {
                        for (int64_t i = 0; i < inner; i++) {
$unit_body
                        }
                    } else {
                        for (int64_t i = 0; i < inner; i++) {
$strided_body
                        }
                    }
                }
                status |= tc_st | tc_fp_status();
            }
        } else {
            int32_t tc_st = 0;
            feclearexcept(FE_ALL_EXCEPT);
            for (int64_t row = 0; row < rows; row++) {
                char *p[TC_NARGS];
                tc_row_pointers(args, TC_NARGS, st, cshape, cnd, row, p);
$row_pointers
                if ($unit_test) {  /* slices of contiguous rows: the loop the compiler vectorizes */
                    for (int64_t i = 0; i < inner; i++) {
$unit_body
                    }
                } else {
                    for (int64_t i = 0; i < inner; i++) {
$strided_body
                    }
                }
            }
            status |= tc_st | tc_fp_status();
        }
    }
    ctx->status |= status;
    return 0;
}
