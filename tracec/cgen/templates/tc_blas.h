/* Matrix products through BLAS: the runtime's matmul, dot, gemm and gemv nodes.
 *
 *     out = alpha * (A @ B) + beta * C        (C optional, broadcast to out's shape)
 *
 * tc_gemm takes 2-d A and B. tc_gemv takes the products with a 1-d operand:
 * (m,k) @ (k,), (k,) @ (k,n) and (k,) @ (k,) (a 0-d out). Operands are all
 * float32 or all float64. out is C-contiguous and aligned, allocated by the
 * caller with the broadcast shape of the product and C, and may be C itself.
 *
 * The BLAS is the one NumPy (or SciPy) already loaded: tracec/cgen/blas.py
 * finds its sgemm/dgemm/sgemv/dgemv (CBLAS or Fortran interface, 32- or
 * 64-bit integers) and the caller fills a tc_blas with them. Operands go to
 * BLAS in place, with transpose flags and leading dimensions, when their
 * layout allows; otherwise (negative or zero strides, overlapping rows,
 * misalignment, memory shared with out) they are first copied into a
 * temporary. BLAS never gets beta = 0 for a C that must be read, and alpha = 0
 * still evaluates A @ B, so NaN and Inf propagate as in NumPy's
 * alpha * (A @ B) + beta * C.
 *
 * Both return 0, or an error code (TC_ERR_SHAPE, TC_ERR_ABI, TC_ERR_NOMEM,
 * TC_ERR_UNSUPPORTED: run NumPy's implementation) with ctx->message filled.
 */
#ifndef TC_BLAS_H
#define TC_BLAS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tc_abi.h"
#include "tc_kernel.h"   /* tc_fail, tc_size, tc_prepare, tc_row_pointers */

#define TC_BLAS_CBLAS   1   /* cblas_?gemm(layout, trans, ..., m, ...): integers by value */
#define TC_BLAS_FORTRAN 2   /* ?gemm_(&trans, ..., &m, ...): everything by pointer */

typedef void (*tc_blas_fn)(void);

typedef struct {
    tc_blas_fn sgemm, dgemm, sgemv, dgemv;
    int32_t interface;   /* TC_BLAS_CBLAS, TC_BLAS_FORTRAN, or 0: no BLAS */
    int32_t int_bytes;   /* 4: LP64 (32-bit integers), 8: ILP64 */
} tc_blas;

/* ---- calling BLAS, column-major; trans: 0 = as stored, 1 = transposed ------ */
enum { TC__COL_MAJOR = 102, TC__NO_TRANS = 111 };   /* CBLAS's enum values; CblasTrans = 112 */

#define TC__BLAS_CALLS(T, S, I, W)                                                                  \
typedef void (*tc__cblas_gemm_##S##W)(int, int, int, I, I, I, T, const T *, I, const T *, I, T,     \
                                      T *, I);                                                      \
typedef void (*tc__cblas_gemv_##S##W)(int, int, I, I, T, const T *, I, const T *, I, T, T *, I);    \
/* the trailing size_t: hidden lengths of the character arguments (gfortran's convention) */      \
typedef void (*tc__f77_gemm_##S##W)(const char *, const char *, const I *, const I *, const I *,    \
                                    const T *, const T *, const I *, const T *, const I *,          \
                                    const T *, T *, const I *, size_t, size_t);                     \
typedef void (*tc__f77_gemv_##S##W)(const char *, const I *, const I *, const T *, const T *,       \
                                    const I *, const T *, const I *, const T *, T *, const I *,     \
                                    size_t);                                                        \
static void tc__gemm_##S##W(const tc_blas *bl, int ta, int tb, I m, I n, I k, T alpha,              \
                            const T *a, I lda, const T *b, I ldb, T beta, T *c, I ldc)              \
{                                                                                                   \
    if (bl->interface == TC_BLAS_CBLAS)                                                             \
        ((tc__cblas_gemm_##S##W)bl->S##gemm)(TC__COL_MAJOR, TC__NO_TRANS + ta, TC__NO_TRANS + tb,   \
                                             m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);         \
    else                                                                                            \
        ((tc__f77_gemm_##S##W)bl->S##gemm)(ta ? "T" : "N", tb ? "T" : "N", &m, &n, &k, &alpha,      \
                                           a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);                 \
}                                                                                                   \
static void tc__gemv_##S##W(const tc_blas *bl, int ta, I m, I n, T alpha, const T *a, I lda,        \
                            const T *x, I incx, T beta, T *y)                                       \
{                                                                                                   \
    I one = 1;                                                                                      \
    if (bl->interface == TC_BLAS_CBLAS)                                                             \
        ((tc__cblas_gemv_##S##W)bl->S##gemv)(TC__COL_MAJOR, TC__NO_TRANS + ta, m, n, alpha, a, lda, \
                                             x, incx, beta, y, one);                                \
    else                                                                                            \
        ((tc__f77_gemv_##S##W)bl->S##gemv)(ta ? "T" : "N", &m, &n, &alpha, a, &lda, x, &incx,       \
                                           &beta, y, &one, 1);                                      \
}

TC__BLAS_CALLS(float, s, int32_t, 32)
TC__BLAS_CALLS(float, s, int64_t, 64)
TC__BLAS_CALLS(double, d, int32_t, 32)
TC__BLAS_CALLS(double, d, int64_t, 64)

/* ---- elementwise: out = s * P + beta * C, P and C (NULL: absent) broadcast to out ---- */
#define TC__COMBINE(T, S)                                                                           \
static inline T tc__load_##S(const char *p)                                                         \
{                                                                                                   \
    T v;                                                                                            \
    memcpy(&v, p, sizeof v);   /* operands being copied may be misaligned */                        \
    return v;                                                                                       \
}                                                                                                   \
static void tc__combine_##S(const tc_array *out, const tc_array *P, T s, const tc_array *C, T beta) \
{                                                                                                   \
    tc_array args[3];                                                                               \
    int nargs = 1, ip = 0, ic = 0;                                                                  \
    args[0] = *out;                                                                                 \
    if (P) { ip = nargs; args[nargs++] = *P; }                                                      \
    if (C) { ic = nargs; args[nargs++] = *C; }                                                      \
    int64_t n = tc_size(out->shape, out->ndim), st[3][TC_MAX_NDIM], cshape[TC_MAX_NDIM];            \
    if (n == 0)                                                                                     \
        return;                                                                                     \
    int cnd = tc_prepare(args, nargs, out->shape, out->ndim, st, cshape);                           \
    const int64_t inner = cshape[cnd - 1], rows = n / inner;                                        \
    const int64_t sp = st[ip][cnd - 1], sc = st[ic][cnd - 1];                                       \
    for (int64_t row = 0; row < rows; row++) {                                                      \
        char *p[3];                                                                                 \
        tc_row_pointers(args, nargs, st, cshape, cnd, row, p);                                      \
        T *o = (T *)p[0];                                                                           \
        if (P && C)                                                                                 \
            for (int64_t i = 0; i < inner; i++)                                                     \
                o[i] = s * tc__load_##S(p[ip] + i * sp) + beta * tc__load_##S(p[ic] + i * sc);      \
        else if (P)                                                                                 \
            for (int64_t i = 0; i < inner; i++)                                                     \
                o[i] = s * tc__load_##S(p[ip] + i * sp);                                            \
        else                                                                                        \
            for (int64_t i = 0; i < inner; i++)                                                     \
                o[i] = beta * tc__load_##S(p[ic] + i * sc);                                         \
    }                                                                                               \
}

TC__COMBINE(float, s)
TC__COMBINE(double, d)

static void tc__combine(int64_t e, const tc_array *out, const tc_array *P, double s,
                        const tc_array *C, double beta)
{
    if (e == 8)
        tc__combine_d(out, P, s, C, beta);
    else
        tc__combine_s(out, P, (float)s, C, (float)beta);
}

/* ---- operands: read in place by BLAS, or copied first ----------------------- */
typedef struct { char *data; int64_t rows, cols, rs, cs; } tc__mat;   /* strides in bytes */

typedef struct {
    const char *data;   /* what BLAS reads */
    int64_t ld;         /* leading dimension (matrices) or increment (vectors), in elements */
    int trans;          /* matrices: 0 = rows contiguous (row-major), 1 = columns contiguous */
    void *owned;        /* the temporary copy to free, or NULL */
} tc__operand;

/* Lowest and one-past-highest byte a strided view touches (lo == hi: none). */
static void tc__extent(const char *data, int ndim, const int64_t *shape, const int64_t *strides,
                       int64_t e, const char **lo, const char **hi)
{
    int64_t below = 0, above = e;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) {
            *lo = *hi = data;
            return;
        }
        int64_t span = (shape[d] - 1) * strides[d];
        if (span < 0)
            below += span;
        else
            above += span;
    }
    *lo = data + below;
    *hi = data + above;
}

static inline int tc__overlap(const char *lo1, const char *hi1, const char *lo2, const char *hi2)
{
    return lo1 < hi1 && lo2 < hi2 && lo1 < hi2 && lo2 < hi1;
}

static void tc__mat_extent(const tc__mat *x, int64_t e, const char **lo, const char **hi)
{
    int64_t shape[2] = {x->rows, x->cols}, strides[2] = {x->rs, x->cs};
    tc__extent(x->data, 2, shape, strides, e, lo, hi);
}

/* Can BLAS read x (rows, cols >= 1) where it is? It needs aligned elements, rows (or columns)
 * contiguous and a leading dimension no smaller than a row (column): no negative, zero or
 * overlapping strides. A stride over a length-1 dimension never moves, so it fits either way. */
static int tc__layout(const tc__mat *x, int64_t e, int64_t limit, int *trans, int64_t *ld)
{
    if ((uintptr_t)x->data % (uint64_t)e)
        return 0;
    int64_t rs = x->rows == 1 ? x->cols * e : x->rs, cs = x->cols == 1 ? e : x->cs;
    if (cs == e && rs % e == 0 && rs / e >= x->cols && rs / e <= limit) {
        *trans = 0;
        *ld = rs / e;
        return 1;
    }
    rs = x->rows == 1 ? e : x->rs;
    cs = x->cols == 1 ? x->rows * e : x->cs;
    if (rs == e && cs % e == 0 && cs / e >= x->rows && cs / e <= limit) {
        *trans = 1;
        *ld = cs / e;
        return 1;
    }
    return 0;
}

/* A C-contiguous copy of x in op->owned. */
static int tc__copy(tc__operand *op, const tc__mat *x, int64_t e, tc_ctx *ctx)
{
    int64_t shape[2] = {x->rows, x->cols}, src_st[2] = {x->rs, x->cs}, dst_st[2] = {x->cols * e, e};
    op->owned = malloc((size_t)(x->rows * x->cols * e));
    if (!op->owned)
        return tc_fail(ctx, TC_ERR_NOMEM, "matmul: out of memory copying a (%lld,%lld) operand",
                       (long long)x->rows, (long long)x->cols);
    tc_array src = {x->data, shape, src_st, 2, 0}, dst = {(char *)op->owned, shape, dst_st, 2, 0};
    tc__combine(e, &dst, &src, 1.0, NULL, 0.0);
    op->data = (const char *)op->owned;
    op->trans = 0;
    op->ld = x->cols;
    return 0;
}

/* A matrix operand; copied when BLAS cannot read it in place or it shares [lo, hi) with
 * the output BLAS writes. */
static int tc__matrix_operand(tc__operand *op, const tc__mat *x, int64_t e, int64_t limit,
                              const char *lo, const char *hi, tc_ctx *ctx)
{
    const char *xlo, *xhi;
    tc__mat_extent(x, e, &xlo, &xhi);
    if (!tc__overlap(xlo, xhi, lo, hi) && tc__layout(x, e, limit, &op->trans, &op->ld)) {
        op->data = x->data;
        return 0;
    }
    return tc__copy(op, x, e, ctx);
}

/* A vector operand of n >= 1 elements; BLAS takes negative increments (from the lowest address). */
static int tc__vector_operand(tc__operand *op, char *data, int64_t n, int64_t stride, int64_t e,
                              int64_t limit, const char *lo, const char *hi, tc_ctx *ctx)
{
    tc__mat x = {data, n, 1, n == 1 ? e : stride, e};
    const char *xlo, *xhi;
    tc__mat_extent(&x, e, &xlo, &xhi);
    int64_t inc = x.rs / e;
    if (!tc__overlap(xlo, xhi, lo, hi) && (uintptr_t)data % (uint64_t)e == 0 && x.rs % e == 0
        && inc != 0 && inc <= limit && -inc <= limit) {
        op->data = inc < 0 ? data + (n - 1) * x.rs : data;
        op->ld = inc;
        op->trans = 0;
        return 0;
    }
    return tc__copy(op, &x, e, ctx);   /* ld = cols = 1: the increment */
}

/* ---- the product D (m x n, C-contiguous) = a1 * A @ B + b1 * D, for m, n, k >= 1 ---- */
typedef struct {
    int gemv;              /* 1: one matrix times one vector */
    tc__operand a, b;      /* gemm: A and B; gemv: the matrix and the vector */
    int64_t m, n, k, rows; /* rows: gemv's matrix rows, the length of D */
} tc__plan;

/* Chooses the BLAS routine and readies the operands before anything is written: a product
 * with one row or one column is a matrix-vector product. */
static int tc__plan_product(tc__plan *pl, const tc__mat *A, const tc__mat *B, int64_t e,
                            int64_t limit, const char *lo, const char *hi, tc_ctx *ctx)
{
    pl->m = A->rows, pl->k = A->cols, pl->n = B->cols;
    pl->a.owned = pl->b.owned = NULL;
    pl->gemv = pl->n == 1 || pl->m == 1;
    if (!pl->gemv)
        return tc__matrix_operand(&pl->a, A, e, limit, lo, hi, ctx)
            || tc__matrix_operand(&pl->b, B, e, limit, lo, hi, ctx);
    if (pl->n == 1) {   /* D = A b */
        pl->rows = pl->m;
        return tc__matrix_operand(&pl->a, A, e, limit, lo, hi, ctx)
            || tc__vector_operand(&pl->b, B->data, pl->k, B->rs, e, limit, lo, hi, ctx);
    }
    tc__mat bt = {B->data, pl->n, pl->k, B->cs, B->rs};   /* D^T = B^T a */
    pl->rows = pl->n;
    return tc__matrix_operand(&pl->a, &bt, e, limit, lo, hi, ctx)
        || tc__vector_operand(&pl->b, A->data, pl->k, A->cs, e, limit, lo, hi, ctx);
}

static void tc__plan_free(tc__plan *pl)
{
    free(pl->a.owned);
    free(pl->b.owned);
}

/* Row-major D = A @ B is column-major D^T = B^T A^T: B goes first, and a matrix stored
 * row-major is, read column-major, its own transpose. */
#define TC__RUN(T, S)                                                                               \
static void tc__run_##S(const tc_blas *bl, const tc__plan *pl, T a1, T b1, T *D)                    \
{                                                                                                   \
    const T *a = (const T *)pl->a.data, *b = (const T *)pl->b.data;                                 \
    int wide = bl->int_bytes == 8;                                                                  \
    if (pl->gemv && !pl->a.trans) {                                                                 \
        if (wide) tc__gemv_##S##64(bl, 1, pl->k, pl->rows, a1, a, pl->a.ld, b, pl->b.ld, b1, D);    \
        else tc__gemv_##S##32(bl, 1, pl->k, pl->rows, a1, a, pl->a.ld, b, pl->b.ld, b1, D);         \
    } else if (pl->gemv) {                                                                          \
        if (wide) tc__gemv_##S##64(bl, 0, pl->rows, pl->k, a1, a, pl->a.ld, b, pl->b.ld, b1, D);    \
        else tc__gemv_##S##32(bl, 0, pl->rows, pl->k, a1, a, pl->a.ld, b, pl->b.ld, b1, D);         \
    } else if (wide) {                                                                              \
        tc__gemm_##S##64(bl, pl->b.trans, pl->a.trans, pl->n, pl->m, pl->k, a1, b, pl->b.ld,        \
                         a, pl->a.ld, b1, D, pl->n);                                                \
    } else {                                                                                        \
        tc__gemm_##S##32(bl, pl->b.trans, pl->a.trans, pl->n, pl->m, pl->k, a1, b, pl->b.ld,        \
                         a, pl->a.ld, b1, D, pl->n);                                                \
    }                                                                                               \
}

TC__RUN(float, s)
TC__RUN(double, d)

static void tc__run(int64_t e, const tc_blas *bl, const tc__plan *pl, double a1, double b1, char *D)
{
    if (e == 8)
        tc__run_d(bl, pl, a1, b1, (double *)D);
    else
        tc__run_s(bl, pl, (float)a1, (float)b1, (float *)D);
}

/* ---- checks -------------------------------------------------------------------- */
static const char *tc__shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (used < size)
        snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
    return buf;
}

static const char *tc__dtype_str(char *buf, size_t size, int32_t dtype)
{
    char kind = (char)(dtype >> 8);
    int bits = (dtype & 0xff) * 8;
    if (kind == 'b')
        snprintf(buf, size, "bool");
    else
        snprintf(buf, size, "%s%d", kind == 'f' ? "float" : kind == 'i' ? "int" : kind == 'u' ? "uint"
                 : kind == 'c' ? "complex" : "?", bits);
    return buf;
}

static void tc__c_strides(int ndim, const int64_t *shape, int64_t e, int64_t *strides)
{
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = e;
        e *= shape[d];
    }
}

static int tc__contiguous(const tc_array *x, int64_t e)
{
    int64_t expect = e;
    if (tc_size(x->shape, x->ndim) == 0)
        return 1;   /* nothing is read or written; NumPy may give such arrays any strides */
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (x->shape[d] != 1 && x->strides[d] != expect)
            return 0;
        expect *= x->shape[d];
    }
    return (uintptr_t)x->data % (uint64_t)e == 0;
}

/* Is C literally out (same memory, same layout)? Then BLAS may scale it in place. */
static int tc__same(const tc_array *C, const tc_array *out)
{
    if (C->data != out->data || C->ndim != out->ndim)
        return 0;
    for (int d = 0; d < out->ndim; d++)
        if (C->shape[d] != out->shape[d] || (out->shape[d] != 1 && C->strides[d] != out->strides[d]))
            return 0;
    return 1;
}

/* Dtypes, the BLAS, the broadcast of the product with C, and out; returns the element size
 * (> 0) or minus an error code. */
static int64_t tc__check(const char *name, const tc_blas *bl, const tc_array *A, const tc_array *B,
                         int pnd, const int64_t *pshape, const tc_array *C, const tc_array *out,
                         tc_ctx *ctx)
{
    char s1[96], s2[96], s3[96];
    int32_t dt = A->dtype;
    int64_t e = dt & 0xff;
    if (!(dt == TC_DTYPE('f', 4) || dt == TC_DTYPE('f', 8)) || B->dtype != dt || (C && C->dtype != dt))
        return -tc_fail(ctx, TC_ERR_UNSUPPORTED, "%s: BLAS takes float32 or float64 operands of one "
                        "dtype, got %s and %s%s%s", name, tc__dtype_str(s1, sizeof s1, dt),
                        tc__dtype_str(s2, sizeof s2, B->dtype), C ? " with C " : "",
                        C ? tc__dtype_str(s3, sizeof s3, C->dtype) : "");
    if (!bl || !(bl->interface == TC_BLAS_CBLAS || bl->interface == TC_BLAS_FORTRAN)
        || !(bl->int_bytes == 4 || bl->int_bytes == 8)
        || !(e == 8 ? bl->dgemm && bl->dgemv : bl->sgemm && bl->sgemv))
        return -tc_fail(ctx, TC_ERR_UNSUPPORTED, "%s: no BLAS was found", name);
    int64_t want[TC_MAX_NDIM];
    int nd = C && C->ndim > pnd ? C->ndim : pnd;
    for (int d = 0; d < nd; d++) {   /* right-aligned broadcasting */
        int64_t p = d >= nd - pnd ? pshape[d - (nd - pnd)] : 1;
        int64_t c = C && d >= nd - C->ndim ? C->shape[d - (nd - C->ndim)] : 1;
        if (p != c && p != 1 && c != 1)
            return -tc_fail(ctx, TC_ERR_SHAPE, "%s: the product of shape %s and C of shape %s could "
                            "not be broadcast together", name, tc__shape_str(s1, sizeof s1, pnd, pshape),
                            tc__shape_str(s2, sizeof s2, C->ndim, C->shape));
        want[d] = p == 1 ? c : p;
    }
    int fits = out->dtype == dt && out->ndim == nd && tc__contiguous(out, e);
    for (int d = 0; fits && d < nd; d++)
        fits = out->shape[d] == want[d];
    if (!fits)
        return -tc_fail(ctx, TC_ERR_ABI, "%s: out must be a C-contiguous aligned %s array of shape %s",
                        name, tc__dtype_str(s1, sizeof s1, dt), tc__shape_str(s2, sizeof s2, nd, want));
    return e;
}

static int tc__not_aligned(tc_ctx *ctx, const tc_array *A, const tc_array *B, int da, int db)
{
    char s1[96], s2[96];
    return tc_fail(ctx, TC_ERR_SHAPE, "matmul: shapes %s and %s not aligned: %lld (dim %d) != %lld (dim %d)",
                   tc__shape_str(s1, sizeof s1, A->ndim, A->shape),
                   tc__shape_str(s2, sizeof s2, B->ndim, B->shape),
                   (long long)A->shape[da], da, (long long)B->shape[db], db);
}

/* ---- the shared driver ---------------------------------------------------------- */
static int tc__matmul(const char *name, const tc_blas *bl, double alpha, const tc__mat *A,
                      const tc__mat *B, int pnd, const int64_t *pshape, double beta,
                      const tc_array *C, const tc_array *out, int64_t e, tc_ctx *ctx)
{
    int64_t m = A->rows, k = A->cols, n = B->cols, total = tc_size(out->shape, out->ndim);
    int64_t limit = bl->int_bytes == 8 ? INT64_MAX : INT32_MAX;
    if (total == 0)
        return 0;
    const char *olo, *ohi, *clo, *chi;
    tc__extent(out->data, out->ndim, out->shape, out->strides, e, &olo, &ohi);
    int same = C && tc__same(C, out), rc = 0;
    void *ccopy = NULL, *dtemp = NULL;
    tc_array cc;
    int64_t cc_strides[TC_MAX_NDIM];
    if (C && !same) {   /* a C sharing memory with out otherwise is read before out is written */
        tc__extent(C->data, C->ndim, C->shape, C->strides, e, &clo, &chi);
        if (tc__overlap(clo, chi, olo, ohi)) {
            int64_t size = tc_size(C->shape, C->ndim);
            if (!(ccopy = malloc((size_t)(size * e))))
                return tc_fail(ctx, TC_ERR_NOMEM, "%s: out of memory copying C", name);
            tc__c_strides(C->ndim, C->shape, e, cc_strides);
            cc = (tc_array){(char *)ccopy, C->shape, cc_strides, C->ndim, C->dtype};
            tc__combine(e, &cc, C, 1.0, NULL, 0.0);
            C = &cc;
        }
    }
    if (k == 0) {   /* an empty sum: alpha * 0 + beta * C */
        double zd = 0;
        float zf = 0;
        tc_array zero = {e == 8 ? (char *)&zd : (char *)&zf, NULL, NULL, 0, 0};
        tc__combine(e, out, &zero, alpha, C, beta);
        free(ccopy);
        return 0;
    }
    if (m > limit || n > limit || k > limit) {
        free(ccopy);
        return tc_fail(ctx, TC_ERR_UNSUPPORTED, "%s: a dimension of %lld exceeds the BLAS's 32-bit "
                       "integers", name, (long long)(m > n ? (m > k ? m : k) : (n > k ? n : k)));
    }
    int direct = total == m * n;   /* out is the product's own shape: BLAS writes it */
    tc__plan pl;
    if ((rc = tc__plan_product(&pl, A, B, e, limit, direct ? olo : NULL, direct ? ohi : NULL, ctx)))
        goto done;   /* the plan's copies are freed below */
    /* BLAS skips A @ B when alpha = 0 and may scale the terms by alpha before summing them */
    int fold = alpha != 0 && isfinite(alpha);
    if (direct && fold && !(same && beta == 0)) {
        if (!C) {
            tc__run(e, bl, &pl, alpha, 0.0, out->data);
        } else if (same) {
            tc__run(e, bl, &pl, alpha, beta, out->data);
        } else {
            tc__combine(e, out, NULL, 0.0, C, beta);   /* out = beta * C, then BLAS adds to it */
            tc__run(e, bl, &pl, alpha, 1.0, out->data);
        }
    } else {
        /* the product apart, then combined: it broadcasts, or alpha is 0 or not finite, or
         * out holds a C that beta = 0 still reads */
        char *D = out->data;
        if (!direct || same) {
            if (!(dtemp = malloc((size_t)(m * n * e)))) {
                rc = tc_fail(ctx, TC_ERR_NOMEM, "%s: out of memory for a (%lld,%lld) product", name,
                             (long long)m, (long long)n);
                goto done;
            }
            D = (char *)dtemp;
        }
        int64_t dst[2];
        tc__c_strides(pnd, pshape, e, dst);
        tc_array darr = {D, pshape, dst, pnd, 0};
        tc__run(e, bl, &pl, fold ? alpha : 1.0, 0.0, D);
        tc__combine(e, out, &darr, fold ? 1.0 : alpha, C, beta);
    }
done:
    tc__plan_free(&pl);
    free(dtemp);
    free(ccopy);
    return rc;
}

/* ---- the entry points -------------------------------------------------------------- */
/* out = alpha * A @ B + beta * C for 2-d A (m,k) and B (k,n). */
static int tc_gemm(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
                   const tc_array *C, const tc_array *out, tc_ctx *ctx)
{
    if (A->ndim != 2 || B->ndim != 2)
        return tc_fail(ctx, TC_ERR_ABI, "gemm: A and B must be 2-d, got %d-d and %d-d", A->ndim, B->ndim);
    if (A->shape[1] != B->shape[0])
        return tc__not_aligned(ctx, A, B, 1, 0);
    int64_t pshape[2] = {A->shape[0], B->shape[1]};
    int64_t e = tc__check("gemm", bl, A, B, 2, pshape, C, out, ctx);
    if (e < 0)
        return (int)-e;
    tc__mat a = {A->data, A->shape[0], A->shape[1], A->strides[0], A->strides[1]};
    tc__mat b = {B->data, B->shape[0], B->shape[1], B->strides[0], B->strides[1]};
    return tc__matmul("gemm", bl, alpha, &a, &b, 2, pshape, beta, C, out, e, ctx);
}

/* out = alpha * A @ B + beta * C where A or B is 1-d: (m,k)@(k,) -> (m,), (k,)@(k,n) -> (n,),
 * (k,)@(k,) -> (). */
static int tc_gemv(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
                   const tc_array *C, const tc_array *out, tc_ctx *ctx)
{
    if (!((A->ndim == 2 && B->ndim == 1) || (A->ndim == 1 && (B->ndim == 1 || B->ndim == 2))))
        return tc_fail(ctx, TC_ERR_ABI, "gemv: takes (2-d, 1-d), (1-d, 2-d) or (1-d, 1-d) operands, "
                       "got %d-d and %d-d", A->ndim, B->ndim);
    int da = A->ndim - 1;
    if (A->shape[da] != B->shape[0])
        return tc__not_aligned(ctx, A, B, da, 0);
    int64_t pshape[1] = {A->ndim == 2 ? A->shape[0] : B->ndim == 2 ? B->shape[1] : 1};
    int pnd = A->ndim + B->ndim - 2;
    int64_t e = tc__check("gemv", bl, A, B, pnd, pshape, C, out, ctx);
    if (e < 0)
        return (int)-e;
    int64_t k = B->shape[0];
    /* the 1-d operands as a row (1,k) of A or a column (k,1) of B */
    tc__mat a = A->ndim == 2 ? (tc__mat){A->data, A->shape[0], k, A->strides[0], A->strides[1]}
                             : (tc__mat){A->data, 1, k, k * e, A->strides[0]};
    tc__mat b = B->ndim == 2 ? (tc__mat){B->data, k, B->shape[1], B->strides[0], B->strides[1]}
                             : (tc__mat){B->data, k, 1, B->strides[0], e};
    return tc__matmul("gemv", bl, alpha, &a, &b, pnd, pshape, beta, C, out, e, ctx);
}

#endif
