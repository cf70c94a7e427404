/* Helpers of the reduction kernels (templates/reduce.c): the checks of their
 * arguments, the split of the iteration space into kept and reduced
 * dimensions, and the pointer arithmetic over each part. Static inline: each
 * module keeps only what it uses.
 */
#ifndef TC_REDUCE_H
#define TC_REDUCE_H
#include <stdlib.h>
#include "tc_kernel.h"

/* neighbouring outputs accumulated together when the kept dimension is the
 * faster one in memory (reductions over leading axes): a whole row of 8 KiB */
#define TC_TILE 1024
/* elements of a row reduced as one block: NumPy's pairwise-sum block */
#define TC_BLOCK 128
/* rows summed in order before the pairwise steps, when outputs are tiles of columns */
#define TC_COL_LEAF 32

/* The iteration space with length-1 dimensions dropped and neighbours merged
 * where every input's strides allow it, kept and reduced dimensions apart. */
typedef struct {
    int nk, nr;                         /* kept / reduced dimensions (each at least 1) */
    int64_t kshape[TC_MAX_NDIM], rshape[TC_MAX_NDIM];
    int64_t M, N;                       /* output elements; reduced elements per output */
    int rows;                           /* 1: reduce along rows; 0: accumulate tiles of outputs */
} tc_rplan;

/* Checks what the kernel relies on: dtypes and ranks of every argument, inputs
 * broadcasting to `shape`, and a C-contiguous output of the reduced shape. */
static int tc_reduce_check(const tc_array *args, int nin, const int64_t *shape, int ndim,
                           const unsigned char *reduced, int keepdims, const int32_t *dtypes,
                           const int32_t *ndims, tc_ctx *ctx)
{
    for (int k = 0; k <= nin; k++) {
        if (args[k].dtype != dtypes[k] || args[k].ndim != ndims[k])
            return tc_fail(ctx, TC_ERR_ABI, "reduction kernel: argument %d has dtype code %d and rank %d, "
                           "expected %d and %d", k, args[k].dtype, args[k].ndim, dtypes[k], ndims[k]);
    }
    for (int k = 0; k < nin; k++) {
        int off = ndim - args[k].ndim;
        for (int d = 0; d < args[k].ndim; d++) {
            int64_t n = args[k].shape[d];
            if (n != 1 && n != shape[d + off])
                return tc_fail(ctx, TC_ERR_ABI, "reduction kernel: input %d of length %lld in dimension %d "
                               "does not broadcast to %lld", k, (long long)n, d, (long long)shape[d + off]);
        }
    }
    const tc_array *out = &args[nin];
    int64_t stride = dtypes[nin] & 0xff;  /* the itemsize */
    int od = out->ndim, empty = tc_size(out->shape, out->ndim) == 0;  /* no strides to check */
    for (int d = ndim - 1; d >= 0; d--) {
        if (reduced[d] && !keepdims)
            continue;
        int64_t n = reduced[d] ? 1 : shape[d];
        od--;
        if (od < 0 || out->shape[od] != n || (n > 1 && !empty && out->strides[od] != stride))
            return tc_fail(ctx, TC_ERR_ABI, "reduction kernel: the output is not a C-contiguous array of "
                           "the reduced shape (dimension %d)", od);
        stride *= n;
    }
    if (od != 0)
        return tc_fail(ctx, TC_ERR_ABI, "reduction kernel: output of rank %d, expected %d", out->ndim,
                       out->ndim - od);
    return 0;
}

/* Output elements (*M) and reduced elements per output (*N) of `shape`. */
static inline void tc_reduce_sizes(const int64_t *shape, int ndim, const unsigned char *reduced,
                                   int64_t *M, int64_t *N)
{
    *M = *N = 1;
    for (int d = 0; d < ndim; d++) {
        if (reduced[d])
            *N *= shape[d];
        else
            *M *= shape[d];
    }
}

/* Fills `pl`, kst (kept) and rst (reduced): byte strides of each input, 0
 * where it broadcasts. A dimension merges into the previous one of its part
 * when every input steps through both as through one. */
static void tc_reduce_plan(const tc_array *args, int nin, const int64_t *shape, int ndim,
                           const unsigned char *reduced, int64_t (*kst)[TC_MAX_NDIM],
                           int64_t (*rst)[TC_MAX_NDIM], tc_rplan *pl)
{
    pl->nk = pl->nr = 0;
    pl->rows = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue;
        int part = reduced[d];
        int64_t (*st)[TC_MAX_NDIM] = part ? rst : kst;
        int64_t *pshape = part ? pl->rshape : pl->kshape;
        int *count = part ? &pl->nr : &pl->nk;
        int c = *count, merge = c > 0;
        for (int k = 0; k < nin; k++) {
            int off = ndim - args[k].ndim;
            int64_t s = (d < off || args[k].shape[d - off] == 1) ? 0 : args[k].strides[d - off];
            st[k][c] = s;  /* tentative slot */
            if (merge && st[k][c - 1] != s * shape[d])
                merge = 0;
        }
        if (merge) {
            pshape[c - 1] *= shape[d];
            for (int k = 0; k < nin; k++)
                st[k][c - 1] = st[k][c];
        } else {
            pshape[(*count)++] = shape[d];
        }
        pl->rows = part;
    }
    if (pl->nk == 0) {
        pl->kshape[0] = 1;
        for (int k = 0; k < nin; k++)
            kst[k][0] = 0;
        pl->nk = 1;
    }
    if (pl->nr == 0) {
        pl->rshape[0] = 1;
        for (int k = 0; k < nin; k++)
            rst[k][0] = 0;
        pl->nr = 1;
    }
    pl->N = tc_size(pl->rshape, pl->nr);
    pl->M = tc_size(pl->kshape, pl->nk);
    /* loop nest: rows when the reduced dimension is the faster one in memory of the
     * highest-rank input (so a transposed input reads contiguously too) */
    int ref = 0;
    for (int k = 1; k < nin; k++)
        if (args[k].ndim > args[ref].ndim)
            ref = k;
    int64_t a = llabs(rst[ref][pl->nr - 1]), b = llabs(kst[ref][pl->nk - 1]);
    if (pl->M == 1 || pl->N == 1)
        pl->rows = pl->M == 1;
    else if (a && b && a != b)
        pl->rows = a < b;
}

/* Pointers to element `idx` (C order) of the first `nd` dimensions of a part. */
static inline void tc_part_pointers(char *const *base, int nin, int64_t (*st)[TC_MAX_NDIM],
                                    const int64_t *pshape, int nd, int64_t idx, char **p)
{
    if (nd == 1) {
        for (int k = 0; k < nin; k++)
            p[k] = base[k] + idx * st[k][0];
        return;
    }
    for (int k = 0; k < nin; k++)
        p[k] = base[k];
    for (int d = nd - 1; d >= 0; d--) {
        int64_t i = idx % pshape[d];
        idx /= pshape[d];
        for (int k = 0; k < nin; k++)
            p[k] += i * st[k][d];
    }
}

/* Whether every array input steps by its itemsize along dimension `d` of a part
 * (itemsize 0 marks a 0-d input, read once). */
static inline int tc_part_contiguous(int64_t (*st)[TC_MAX_NDIM], int d, const int64_t *itemsize, int nin)
{
    for (int k = 0; k < nin; k++)
        if (itemsize[k] && st[k][d] != itemsize[k])
            return 0;
    return 1;
}

/* Start of chunk c of C near-equal chunks of [0, n). */
static inline int64_t tc_chunk_start(int64_t n, int64_t C, int64_t c)
{
    return c * (n / C) + (c < n % C ? c : n % C);
}

/* How many chunks to cut each output's reduction into so that `nthreads`
 * threads have work when there are fewer output blocks than threads. */
static inline int64_t tc_reduce_chunks(int64_t nblocks, int64_t N, int nthreads)
{
    if (nthreads <= 1 || nblocks >= nthreads)
        return 1;
    int64_t C = (nthreads + nblocks - 1) / nblocks;
    return C < N ? C : N;
}

#endif
