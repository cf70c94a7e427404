/* tracec reduction kernel: $title
 *
 * Computes, for each element of the iteration space, the value the reduction
 * consumes (the fused elementwise producers, kept in registers) and combines
 * it straight into the accumulator: the intermediate array is never stored.
 * Accumulators have the output dtype, as NumPy's reductions do; float sums
 * are pairwise (NumPy's blocking: 8 accumulators over blocks of 128) so the
 * rounding error grows with log(n), not n.
 *
 * Two loop nests: when the innermost dimension is reduced, each output
 * element reduces rows of it (contiguous rows vectorize); when it is kept,
 * tiles of TC_TILE neighbouring outputs accumulate together as the reduced
 * index moves (reductions over leading axes). Threads (OpenMP) above
 * ctx->parallel_threshold elements split the outputs, and also cut each
 * reduction into chunks, combined at the end, when outputs are fewer than
 * threads.
 */
$comments
#include "tc_reduce.h"

#undef TC_NIN
#undef TC_NARGS
#undef TC_NDIM
#undef TC_PAIRWISE
#undef TC_VECTOR
#undef TC_LANES
#undef TC_DIRECT
#undef TC_QUIET_COMBINE
#define TC_NIN $nin
#define TC_NARGS $nargs
#define TC_NDIM $ndim
#define TC_PAIRWISE $pairwise  /* float sums: pairwise */
#define TC_VECTOR $vector      /* floats: explicit vector lanes (integer loops the compiler vectorizes) */
#define TC_LANES $lanes        /* float accumulators: 8 for sums (NumPy's), 32 where order does not matter */
#define TC_DIRECT $direct      /* the value reduced is the input itself, of the accumulator's dtype */
#define TC_QUIET_COMBINE $quiet  /* max/min: combining partial results raises nothing */

const char ${fn}_signature[] = "$signature";

static const unsigned char ${fn}_reduced[] = {$reduced};  /* per dimension of the iteration space */
static const int32_t ${fn}_dtypes[TC_NARGS] = {$dtypes};
static const int32_t ${fn}_ndims[TC_NARGS] = {$ndims};
static const int64_t ${fn}_itemsize[TC_NIN] = {$itemsizes};  /* 0: a 0-d input, read once */

static inline $acc ${fn}_combine($acc a, $acc b)
{
    return $combine;
}

/* 8 accumulators side by side (GCC vector extension): float accumulators may not be
 * reordered by the compiler, so these are what vectorizes the float reductions; 8 lanes
 * are NumPy's 8 pairwise-sum accumulators */
typedef $acc ${fn}_vec __attribute__((vector_size(8 * sizeof($acc))));
typedef $lane ${fn}_mask __attribute__((vector_size(8 * sizeof($acc))));

/* r combined with v, lane by lane; max/min keep r NaN-free and note NaN lanes in *m */
static inline ${fn}_vec ${fn}_vcombine(${fn}_vec r, ${fn}_vec v, ${fn}_mask *m)
{
$vcombine
}

/* acc[0..8) = combine(acc[0..8), buf[0..8)), NaNs noted in seen[0..8). __builtin_memcpy: an
 * unaligned vector load/store (plain memcpy becomes a call under _FORTIFY_SOURCE) */
static inline void ${fn}_vstep($acc *restrict acc, $lane *restrict seen, const $acc *restrict buf)
{
    ${fn}_vec r, v;
    ${fn}_mask m;
    __builtin_memcpy(&r, acc, sizeof r);
    __builtin_memcpy(&v, buf, sizeof v);
    __builtin_memcpy(&m, seen, sizeof m);
    r = ${fn}_vcombine(r, v, &m);
    __builtin_memcpy(acc, &r, sizeof r);
    __builtin_memcpy(seen, &m, sizeof m);
}

/* the total of `lanes` accumulators: in registers (reading lanes back from memory right after
 * a vector store stalls), then NumPy's tree ((0+1)+(2+3))+((4+5)+(6+7)); NaN if any was seen */
static inline $acc ${fn}_vtotal(const $acc *acc, const $lane *seen, int lanes)
{
    ${fn}_vec r, v;
    ${fn}_mask m, s;
    __builtin_memcpy(&r, acc, sizeof r);
    __builtin_memcpy(&m, seen, sizeof m);
    for (int c = 8; c < lanes; c += 8) {
        __builtin_memcpy(&v, acc + c, sizeof v);
        __builtin_memcpy(&s, seen + c, sizeof s);
        r = ${fn}_vcombine(r, v, &m);
        m |= s;
    }
    $lane nan = m[0] | m[1] | m[2] | m[3] | m[4] | m[5] | m[6] | m[7];
    $acc total = ${fn}_combine(${fn}_combine(${fn}_combine(r[0], r[1]), ${fn}_combine(r[2], r[3])),
                               ${fn}_combine(${fn}_combine(r[4], r[5]), ${fn}_combine(r[6], r[7])));
    return nan ? ($acc)NAN : total;
}

/* the value the reduction consumes at one element */
static inline $acc ${fn}_value($value_params, int32_t *restrict tc_stp)
{
    int32_t tc_st = 0;
$value_body
    *tc_stp |= tc_st;
    return $value_result;
}

/* n elements of a row starting at p, s[k] bytes apart (itemsize when contig) */
static inline __attribute__((always_inline)) $acc
${fn}_leaf(char *const *p, const int64_t *s, int64_t n, const int contig, int32_t *restrict stp)
{
    int32_t tc_st = 0;
    char *const *q = p;
$scalar_loads
$array_setup
    $acc res = $identity;
    if (!TC_VECTOR || (n < 8 && !TC_QUIET_COMBINE)) {
        /* integers: a plain loop the compiler vectorizes; short float sums and products */
        for (int64_t e = 0; e < n; e++)
            res = ${fn}_combine(res, $value_call);
    } else {
        /* floats: values through a small buffer first (a plain loop, vector math included),
         * then TC_LANES accumulators, 8 lanes at a time. Max/min combine no data in scalar
         * loops (their last values are padded with the identity instead): GCC 12 vectorizes
         * isgreater/isless into signaling compares, which raise 'invalid' on NaN where
         * NumPy raises nothing. */
        $acc r[TC_LANES], buf[TC_BLOCK];
        $lane seen[TC_LANES];
        for (int j = 0; j < TC_LANES; j++) {
            r[j] = $identity;
            seen[j] = 0;
        }
        const $acc *vals = buf;
        int64_t m = 0, m8 = 0;
        for (int64_t i0 = 0; i0 < n; i0 += TC_BLOCK) {
            m = n - i0 < TC_BLOCK ? n - i0 : TC_BLOCK;
            m8 = m - m % 8;
            vals = buf;
            if (TC_DIRECT && contig) {
                vals = (const $acc *)q[0] + i0;  /* the input itself is the value */
            } else {
                for (int64_t i = 0; i < m; i++) {
                    const int64_t e = i0 + i;
                    buf[i] = $value_call;
                }
            }
            int64_t i = 0;
            for (; i + TC_LANES <= m8; i += TC_LANES)
                for (int c = 0; c < TC_LANES; c += 8)
                    ${fn}_vstep(r + c, seen + c, vals + i + c);
            for (; i < m8; i += 8)
                ${fn}_vstep(r, seen, vals + i);
            if (TC_QUIET_COMBINE && m8 < m) {  /* max/min: the last values padded with the identity */
                $acc pad[8];
                for (int j = 0; j < 8; j++)
                    pad[j] = m8 + j < m ? vals[m8 + j] : $identity;
                ${fn}_vstep(r, seen, pad);
            }
        }
        res = ${fn}_vtotal(r, seen, TC_LANES);  /* lanes are NaN-free: the tree compares no NaN */
        for (int64_t i = m8; !TC_QUIET_COMBINE && i < m; i++)
            res = ${fn}_combine(res, vals[i]);  /* sums and products: the tail last, as NumPy */
    }
    *stp |= tc_st;
    return res;
}

static $acc ${fn}_leaf_c(char *const *p, const int64_t *s, int64_t n, int32_t *stp)
{
    return ${fn}_leaf(p, s, n, 1, stp);
}

static $acc ${fn}_leaf_s(char *const *p, const int64_t *s, int64_t n, int32_t *stp)
{
    return ${fn}_leaf(p, s, n, 0, stp);
}

/* one row segment: pairwise halves (multiples of 8) down to blocks of TC_BLOCK */
static $acc ${fn}_row(char *const *p, const int64_t *s, int64_t n, int contig, int32_t *stp)
{
    if (!TC_PAIRWISE || n <= TC_BLOCK)
        return contig ? ${fn}_leaf_c(p, s, n, stp) : ${fn}_leaf_s(p, s, n, stp);
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    char *h[TC_NIN];
    for (int k = 0; k < TC_NIN; k++)
        h[k] = p[k] + n2 * (contig ? ${fn}_itemsize[k] : s[k]);
    $acc first = ${fn}_row(p, s, n2, contig, stp);
    return ${fn}_combine(first, ${fn}_row(h, s, n - n2, contig, stp));
}

/* reduced elements [r0, r1) of the output whose inputs start at p, row by row;
 * row results are summed pairwise too (a binary counter of partial sums) */
static $acc ${fn}_rows(char *const *p, const int64_t *s, int64_t (*rst)[TC_MAX_NDIM], const tc_rplan *pl,
                       int64_t r0, int64_t r1, int contig, int32_t *stp)
{
    if (pl->nr == 1) {  /* one row */
        char *q[TC_NIN];
        for (int k = 0; k < TC_NIN; k++)
            q[k] = p[k] + r0 * s[k];
        return ${fn}_row(q, s, r1 - r0, contig, stp);
    }
    const int64_t len = pl->rshape[pl->nr - 1];
    $acc total = $identity, level[64];
    int64_t count = 0;
    for (int64_t r = r0; r < r1;) {
        int64_t n = len - r % len;
        if (n > r1 - r)
            n = r1 - r;
        char *q[TC_NIN];
        tc_part_pointers(p, TC_NIN, rst, pl->rshape, pl->nr, r, q);
        $acc seg = ${fn}_row(q, s, n, contig, stp);
        if (TC_PAIRWISE) {
            int k = 0;
            for (int64_t c = count++; c & 1; c >>= 1)
                seg = ${fn}_combine(level[k++], seg);
            level[k] = seg;
        } else {
            total = ${fn}_combine(total, seg);
        }
        r += n;
    }
    for (int k = 0; TC_PAIRWISE && k < 64; k++)
        if ((count >> k) & 1)
            total = ${fn}_combine(level[k], total);
    return total;
}

/* w neighbouring outputs (inputs at p, s[k] bytes apart): reduced elements [r0, r1) into acc */
static inline __attribute__((always_inline)) void
${fn}_colleaf(char *const *p, const int64_t *s, int64_t (*rst)[TC_MAX_NDIM], const tc_rplan *pl,
              int64_t r0, int64_t r1, int64_t w, const int contig, $acc *restrict acc, int32_t *restrict stp)
{
    int32_t tc_st = 0;
$scalar_loads
    if (!TC_VECTOR) {
        /* integers: plain loops the compiler vectorizes */
        for (int64_t e = 0; e < w; e++)
            acc[e] = $identity;
        for (int64_t r = r0; r < r1; r++) {
            char *q[TC_NIN];
            tc_part_pointers(p, TC_NIN, rst, pl->rshape, pl->nr, r, q);
$array_setup
            for (int64_t e = 0; e < w; e++)
                acc[e] = ${fn}_combine(acc[e], $value_call);
        }
    } else {
        /* floats: 8 lanes at a time over w rounded up to 8 (see the leaf) */
        $acc lanes[TC_TILE], buf[TC_TILE];
        $lane seen[TC_TILE];
        const int64_t w8 = (w + 7) / 8 * 8;
        for (int64_t e = 0; e < w8; e++) {
            lanes[e] = buf[e] = $identity;
            seen[e] = 0;
        }
        for (int64_t r = r0; r < r1; r++) {
            char *q[TC_NIN];
            tc_part_pointers(p, TC_NIN, rst, pl->rshape, pl->nr, r, q);
$array_setup
            const $acc *vals = buf;
            if (TC_DIRECT && contig && w == w8)
                vals = (const $acc *)q[0];  /* the input itself is the value */
            else
                for (int64_t e = 0; e < w; e++)
                    buf[e] = $value_call;
            for (int64_t e = 0; e < w8; e += 8)
                ${fn}_vstep(lanes + e, seen + e, vals + e);
        }
        for (int64_t e = 0; e < w; e++)
            acc[e] = seen[e] ? ($acc)NAN : lanes[e];
    }
    *stp |= tc_st;
}

/* a tile of outputs, pairwise over the reduced index for float sums (leaves of TC_COL_LEAF rows) */
static void ${fn}_cols(char *const *p, const int64_t *s, int64_t (*rst)[TC_MAX_NDIM], const tc_rplan *pl,
                       int64_t r0, int64_t r1, int64_t w, int contig, $acc *restrict acc, int32_t *stp)
{
    if (TC_PAIRWISE && r1 - r0 > TC_COL_LEAF) {
        $acc tmp[TC_TILE];
        int64_t mid = r0 + (r1 - r0) / 2;
        ${fn}_cols(p, s, rst, pl, r0, mid, w, contig, acc, stp);
        ${fn}_cols(p, s, rst, pl, mid, r1, w, contig, tmp, stp);
        for (int64_t e = 0; e < w; e++)
            acc[e] = ${fn}_combine(acc[e], tmp[e]);
    } else if (contig) {
        ${fn}_colleaf(p, s, rst, pl, r0, r1, w, 1, acc, stp);
    } else {
        ${fn}_colleaf(p, s, rst, pl, r0, r1, w, 0, acc, stp);
    }
}

int $fn(const tc_array *args, int nargs, const int64_t *shape, int ndim, tc_ctx *ctx)
{
    if (nargs != TC_NARGS)
        return tc_fail(ctx, TC_ERR_ABI, "kernel expects %d arrays, got %d", TC_NARGS, nargs);
    if (ndim != TC_NDIM)
        return tc_fail(ctx, TC_ERR_ABI, "reduction kernel expects a %d-d iteration shape, got %d", TC_NDIM, ndim);
    int err = tc_reduce_check(args, TC_NIN, shape, ndim, ${fn}_reduced, $keepdims, ${fn}_dtypes, ${fn}_ndims, ctx);
    if (err)
        return err;
    $acc *out = ($acc *)args[TC_NIN].data;
    int64_t M, N;
    tc_reduce_sizes(shape, ndim, ${fn}_reduced, &M, &N);
    if (N == 0) {
$empty
    }
    if (M == 0)
        return 0;

    int64_t kst[TC_NIN][TC_MAX_NDIM], rst[TC_NIN][TC_MAX_NDIM], s[TC_NIN];
    tc_rplan pl;
    tc_reduce_plan(args, TC_NIN, shape, ndim, ${fn}_reduced, kst, rst, &pl);
    int64_t (*inner)[TC_MAX_NDIM] = pl.rows ? rst : kst;
    int inner_dim = pl.rows ? pl.nr - 1 : pl.nk - 1;
    for (int k = 0; k < TC_NIN; k++)
        s[k] = inner[k][inner_dim];
    const int contig = tc_part_contiguous(inner, inner_dim, ${fn}_itemsize, TC_NIN);
    /* work blocks: one output element (rows), or a tile of outputs (columns) */
    const int64_t width = pl.rows ? 1 : pl.kshape[pl.nk - 1];
    const int64_t ntiles = (width + TC_TILE - 1) / TC_TILE, bw = pl.rows ? 1 : TC_TILE;
    const int64_t nblocks = pl.rows ? M : (M / width) * ntiles;
    int nthreads = (M * N >= ctx->parallel_threshold && ctx->nthreads > 1) ? ctx->nthreads : 1;
    int64_t C = tc_reduce_chunks(nblocks, N, nthreads);
    $acc *partial = NULL;
    if (C > 1 && !(partial = malloc((size_t)(nblocks * C * bw) * sizeof($acc))))
        C = 1;
    char *base[TC_NIN];
    for (int k = 0; k < TC_NIN; k++)
        base[k] = args[k].data;
    int32_t status = 0;
    #pragma omp parallel num_threads(nthreads) if (nthreads > 1) reduction(| : status)
    {
        int32_t tc_st = 0;
        feclearexcept(FE_ALL_EXCEPT);
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < nblocks * C; t++) {
            const int64_t b = t / C, c = t % C;
            const int64_t r0 = tc_chunk_start(N, C, c), r1 = tc_chunk_start(N, C, c + 1);
            char *p[TC_NIN];
            if (pl.rows) {
                tc_part_pointers(base, TC_NIN, kst, pl.kshape, pl.nk, b, p);
                $acc res = ${fn}_rows(p, s, rst, &pl, r0, r1, contig, &tc_st);
                if (C == 1)
                    out[b] = res;
                else
                    partial[t] = res;
            } else {
                const int64_t ko = b / ntiles, j0 = (b % ntiles) * TC_TILE;
                const int64_t w = width - j0 < TC_TILE ? width - j0 : TC_TILE;
                tc_part_pointers(base, TC_NIN, kst, pl.kshape, pl.nk - 1, ko, p);
                for (int k = 0; k < TC_NIN; k++)
                    p[k] += j0 * s[k];
                $acc *dst = C == 1 ? out + ko * width + j0 : partial + t * bw;
                ${fn}_cols(p, s, rst, &pl, r0, r1, w, contig, dst, &tc_st);
            }
        }
        status |= tc_st | tc_fp_status();
    }
    if (C > 1) {
        /* each block's chunks, in order (comparisons of max/min raise nothing in NumPy:
         * flags a vectorized compare raises on NaN here are not reported) */
        feclearexcept(FE_ALL_EXCEPT);
        for (int64_t b = 0; b < nblocks; b++) {
            const int64_t ko = b / ntiles, j0 = (b % ntiles) * TC_TILE;
            const int64_t w = pl.rows ? 1 : (width - j0 < TC_TILE ? width - j0 : TC_TILE);
            $acc *dst = pl.rows ? out + b : out + ko * width + j0;
            for (int64_t e = 0; e < w; e++) {
                $acc res = partial[b * C * bw + e];
                for (int64_t c = 1; c < C; c++)
                    res = ${fn}_combine(res, partial[(b * C + c) * bw + e]);
                dst[e] = res;
            }
        }
        if (!TC_QUIET_COMBINE)
            status |= tc_fp_status();
        free(partial);
    }
    ctx->status |= status;
    return 0;
}
