/* Helpers every generated kernel includes: broadcasting strides, dimension
 * coalescing, floating-point status, and the NumPy semantics C does not give
 * for free (floor division and remainder signs, integer division by zero,
 * integer powers, shifts, NaN-propagating extrema). Static inline: each module
 * keeps only what it uses.
 */
#ifndef TC_KERNEL_H
#define TC_KERNEL_H
#include <fenv.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include "tc_abi.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* glibc's vector math library (libmvec): declaring the SIMD variants lets the
 * vectorizer call them without -ffast-math (the library keeps NaN/Inf results). */
#if defined(TC_LIBMVEC)
#define TC_SIMD __attribute__((__simd__("notinbranch")))
TC_SIMD double exp(double); TC_SIMD float expf(float);
TC_SIMD double log(double); TC_SIMD float logf(float);
TC_SIMD double sin(double); TC_SIMD float sinf(float);
TC_SIMD double cos(double); TC_SIMD float cosf(float);
TC_SIMD double pow(double, double); TC_SIMD float powf(float, float);
#if defined(TC_LIBMVEC_2_35)  /* glibc 2.35 added these */
TC_SIMD double tanh(double); TC_SIMD float tanhf(float);
TC_SIMD double sinh(double); TC_SIMD float sinhf(float);
TC_SIMD double cosh(double); TC_SIMD float coshf(float);
TC_SIMD double expm1(double); TC_SIMD float expm1f(float);
TC_SIMD double exp2(double); TC_SIMD float exp2f(float);
TC_SIMD double log2(double); TC_SIMD float log2f(float);
TC_SIMD double log10(double); TC_SIMD float log10f(float);
TC_SIMD double tan(double); TC_SIMD float tanf(float);
TC_SIMD double atan(double); TC_SIMD float atanf(float);
TC_SIMD double asin(double); TC_SIMD float asinf(float);
TC_SIMD double acos(double); TC_SIMD float acosf(float);
TC_SIMD double cbrt(double); TC_SIMD float cbrtf(float);
#endif
#endif

static int tc_fail(tc_ctx *ctx, int32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    ctx->status |= code;
    return code;
}

static inline int64_t tc_size(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

/* Strides (bytes) of every argument against the output shape -- right-aligned,
 * 0 where an argument broadcasts -- then adjacent dimensions merged where every
 * argument allows it. Returns the number of dimensions left (at least 1). */
static int tc_prepare(const tc_array *args, int nargs, const int64_t *shape, int ndim,
                      int64_t (*st)[TC_MAX_NDIM], int64_t *cshape)
{
    int cnd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue;  /* a length-1 dimension never moves a pointer */
        int merge = cnd > 0;
        for (int k = 0; k < nargs; k++) {
            int off = ndim - args[k].ndim;
            int64_t s = (d < off || args[k].shape[d - off] == 1) ? 0 : args[k].strides[d - off];
            st[k][cnd] = s;  /* tentative slot */
            if (merge && st[k][cnd - 1] != s * shape[d])
                merge = 0;
        }
        if (merge) {
            cshape[cnd - 1] *= shape[d];
            for (int k = 0; k < nargs; k++)
                st[k][cnd - 1] = st[k][cnd];
        } else {
            cshape[cnd++] = shape[d];
        }
    }
    if (cnd == 0) {
        cshape[0] = 1;
        for (int k = 0; k < nargs; k++)
            st[k][0] = 0;
        cnd = 1;
    }
    return cnd;
}

/* Pointers to the start of row `row` (all dimensions but the last). */
static inline void tc_row_pointers(const tc_array *args, int nargs, int64_t (*st)[TC_MAX_NDIM],
                                   const int64_t *cshape, int cnd, int64_t row, char **p)
{
    for (int k = 0; k < nargs; k++)
        p[k] = args[k].data;
    for (int d = cnd - 2; d >= 0; d--) {
        int64_t idx = row % cshape[d];
        row /= cshape[d];
        for (int k = 0; k < nargs; k++)
            p[k] += idx * st[k][d];
    }
}

static inline int32_t tc_fp_status(void)
{
    int f = fetestexcept(FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID);
    return ((f & FE_DIVBYZERO) ? TC_FPE_DIVIDE : 0) | ((f & FE_OVERFLOW) ? TC_FPE_OVERFLOW : 0)
         | ((f & FE_UNDERFLOW) ? TC_FPE_UNDERFLOW : 0) | ((f & FE_INVALID) ? TC_FPE_INVALID : 0);
}

static inline int tc_clamp_int(int64_t e)
{
    return e > INT32_MAX ? INT32_MAX : (e < INT32_MIN ? INT32_MIN : (int)e);
}

/* ---- quiet comparisons of floats -----------------------------------------
 * NumPy's comparisons, maximum/minimum, sign, ... raise no 'invalid' flag for a
 * quiet NaN. C's < > <= >= do, and GCC 12 vectorizes even isless & co. into
 * signaling compares (vcmppd LT_OS under AVX-512). These compare the bit
 * patterns as integers: no floating-point instruction, so no flag. As IEEE
 * says, they are false when an operand is NaN, and -0 equals +0. */
#define TC_QUIET_COMPARE(T, I, S, ABS, INF)                                             \
static inline int tc_isnan_##S(T x)                                                     \
{                                                                                       \
    I i;                                                                                \
    __builtin_memcpy(&i, &x, sizeof i);                                                 \
    return (i & ABS) > INF;                                                             \
}                                                                                       \
static inline int tc_isinf_##S(T x)                                                     \
{                                                                                       \
    I i;                                                                                \
    __builtin_memcpy(&i, &x, sizeof i);                                                 \
    return (i & ABS) == INF;                                                            \
}                                                                                       \
static inline I tc_key_##S(T x)  /* ordered as the (non-NaN) values are */              \
{                                                                                       \
    I i;                                                                                \
    __builtin_memcpy(&i, &x, sizeof i);                                                 \
    return i < 0 ? -(i & ABS) : i;                                                      \
}                                                                                       \
static inline int tc_lt_##S(T a, T b)                                                   \
{ return !(tc_isnan_##S(a) | tc_isnan_##S(b)) & (tc_key_##S(a) < tc_key_##S(b)); }      \
static inline int tc_le_##S(T a, T b)                                                   \
{ return !(tc_isnan_##S(a) | tc_isnan_##S(b)) & (tc_key_##S(a) <= tc_key_##S(b)); }     \
static inline int tc_gt_##S(T a, T b) { return tc_lt_##S(b, a); }                       \
static inline int tc_ge_##S(T a, T b) { return tc_le_##S(b, a); }                       \
static inline T tc_select_##S(int c, T a, T b)  /* c ? a : b, bitwise */                \
{                                                                                       \
    I ia, ib, r, m = -(I)c;                                                             \
    T out;                                                                              \
    __builtin_memcpy(&ia, &a, sizeof ia);                                               \
    __builtin_memcpy(&ib, &b, sizeof ib);                                               \
    r = (ia & m) | (ib & ~m);                                                           \
    __builtin_memcpy(&out, &r, sizeof out);                                             \
    return out;                                                                         \
}

TC_QUIET_COMPARE(double, int64_t, f64, INT64_MAX, (int64_t)0x7ff0000000000000)
TC_QUIET_COMPARE(float, int32_t, f32, INT32_MAX, (int32_t)0x7f800000)

/* ---- floating point: NumPy's npymath definitions ------------------------ */
#define TC_FLOAT_HELPERS(T, I, S, M)                                                     \
static inline T tc_divmod_##S(T a, T b, T *modulus)                                     \
{                                                                                       \
    T mod = fmod##M(a, b), div, floordiv;                                               \
    if (!b) { *modulus = mod; return a / b; }                                           \
    div = (a - mod) / b;                                                                \
    if (mod) {                                                                          \
        if (isless(b, 0) != isless(mod, 0)) { mod += b; div -= 1; }                     \
    } else {                                                                            \
        mod = copysign##M(0, b);                                                        \
    }                                                                                   \
    if (div) {                                                                          \
        floordiv = floor##M(div);                                                       \
        if (isgreater(div - floordiv, (T)0.5)) floordiv += 1;                           \
    } else {                                                                            \
        floordiv = copysign##M(0, a / b);                                               \
    }                                                                                   \
    *modulus = mod;                                                                     \
    return floordiv;                                                                    \
}                                                                                       \
static inline T tc_floor_divide_##S(T a, T b, int32_t *st)                              \
{                                                                                       \
    T mod;                                                                              \
    (void)st;                                                                           \
    if (!b) return a / b;                                                               \
    return tc_divmod_##S(a, b, &mod);                                                   \
}                                                                                       \
static inline T tc_remainder_##S(T a, T b, int32_t *st)                                 \
{                                                                                       \
    T mod;                                                                              \
    (void)st;                                                                           \
    if (!b) return fmod##M(a, b);                                                       \
    tc_divmod_##S(a, b, &mod);                                                          \
    return mod;                                                                         \
}                                                                                       \
/* exp, but exp(+-inf) is exp(0) replaced: glibc's vector exp (libmvec) raises 'invalid'  \
 * for an infinite argument, NumPy's exp nothing (softmax masks are -inf) */            \
static inline T tc_exp_##S(T x)                                                         \
{                                                                                       \
    I i, r, inf;                                                                        \
    T y;                                                                                \
    __builtin_memcpy(&i, &x, sizeof i);                                                 \
    inf = -(I)tc_isinf_##S(x);                    /* all ones for +-inf */              \
    r = i & ~inf;                                 /* the argument: 0 for +-inf */       \
    __builtin_memcpy(&y, &r, sizeof y);                                                 \
    y = exp##M(y);                                                                      \
    __builtin_memcpy(&r, &y, sizeof r);                                                 \
    r = (r & ~inf) | (i & inf & ~(i >> (8 * sizeof i - 1)));  /* +inf: +inf, -inf: 0 */ \
    __builtin_memcpy(&y, &r, sizeof y);                                                 \
    return y;                                                                           \
}                                                                                       \
/* (quiet comparisons from here on: NumPy raises nothing for NaN in these) */           \
/* a if it is NaN or the larger (smaller), else b; chosen by a mask over the bits, as a \
 * C conditional here keeps GCC from vectorizing a chain of them (clip) */              \
static inline T tc_maximum_##S(T a, T b)                                                \
{                                                                                       \
    return tc_select_##S(tc_isnan_##S(a) | tc_gt_##S(a, b), a, b);                      \
}                                                                                       \
static inline T tc_minimum_##S(T a, T b)                                                \
{                                                                                       \
    return tc_select_##S(tc_isnan_##S(a) | tc_lt_##S(a, b), a, b);                      \
}                                                                                       \
static inline T tc_sign_##S(T a)                                                        \
{                                                                                       \
    return tc_gt_##S(a, 0) ? 1 : (tc_lt_##S(a, 0) ? -1 : (a == 0 ? 0 : a));             \
}                                                                                       \
static inline T tc_heaviside_##S(T x, T h0)                                             \
{                                                                                       \
    if (tc_isnan_##S(x)) return x;                                                      \
    return x == 0 ? h0 : (tc_lt_##S(x, 0) ? 0 : 1);                                     \
}                                                                                       \
static inline T tc_spacing_##S(T x)                                                     \
{                                                                                       \
    if (isinf(x)) return (T)NAN;                                                        \
    return nextafter##M(x, tc_lt_##S(x, 0) ? -(T)INFINITY : (T)INFINITY) - x;           \
}                                                                                       \
static inline T tc_logaddexp_##S(T x, T y)                                              \
{                                                                                       \
    if (x == y) return x + (T)0.693147180559945309417232121458176568;                   \
    T tmp = x - y;                                                                      \
    if (tmp > 0) return x + log1p##M(tc_exp_##S(-tmp));                                 \
    if (tmp <= 0) return y + log1p##M(tc_exp_##S(tmp));                                 \
    return tmp;                                                                         \
}                                                                                       \
static inline T tc_sigmoid_##S(T x)                                                     \
{                                                                                       \
    T e = tc_exp_##S(-fabs##M(x));                                                      \
    return tc_ge_##S(x, 0) ? 1 / (1 + e) : e / (1 + e);                                 \
}                                                                                       \
/* log1p(e) for e in [0, 1] (or NaN) through log, which vectorizes (libmvec has log, and  \
 * log1p only from glibc 2.35): u = 1 + e rounds, e - (u - 1) is that rounding exactly     \
 * (-ffp-contract=off), and log(1 + e) = log(u) + log(1 + (e - (u - 1)) / u) ~ log(u) +   \
 * (e - (u - 1)) / u. u = 1 (e below half an ulp of 1) gives e itself */                  \
static inline T tc_log1p_unit_##S(T e)                                                  \
{                                                                                       \
    const T u = 1 + e;                                                                  \
    return log##M(u) + (e - (u - 1)) / u;                                               \
}                                                                                       \
static inline uint64_t tc_to_u64_##S(T x)  /* NumPy's cast: negative values wrap */     \
{                                                                                       \
    return x < 0 ? (uint64_t)(int64_t)x : (uint64_t)x;                                  \
}                                                                                       \
static inline T tc_logaddexp2_##S(T x, T y)                                             \
{                                                                                       \
    const T log2e = (T)1.442695040888963407359924681001892137;                          \
    if (x == y) return x + 1;                                                           \
    T tmp = x - y;                                                                      \
    if (tmp > 0) return x + log2e * log1p##M(exp2##M(-tmp));                            \
    if (tmp <= 0) return y + log2e * log1p##M(exp2##M(tmp));                            \
    return tmp;                                                                         \
}

TC_FLOAT_HELPERS(double, int64_t, f64, )
TC_FLOAT_HELPERS(float, int32_t, f32, f)

/* logaddexp(0, x) as max(x, 0) + log1p(exp(-|x|)), the same operations, but quiet for
 * NaN as log(1 + exp(x)) is (logaddexp's comparison of x - 0 raises 'invalid'); every
 * step vectorizes (log1p as tc_log1p_unit) */
static inline double tc_softplus_f64(double x)
{
    return (tc_gt_f64(x, 0) ? x : 0) + tc_log1p_unit_f64(tc_exp_f64(-fabs(x)));
}

/* float32 computed in double and rounded once: the vector expf and logf err by a few
 * ulp, which the float32 formula would add up */
static inline float tc_softplus_f32(float x)
{
    return (float)tc_softplus_f64(x);
}

/* ---- integers: NumPy's loops (division by zero gives 0 and a warning) --- */
#define TC_INT_HELPERS(T, U, S, MIN, BITS, SIGNED)                                      \
static inline T tc_floor_divide_##S(T a, T b, int32_t *st)                              \
{                                                                                       \
    if (b == 0) { *st |= TC_FPE_DIVIDE; return 0; }                                     \
    if (SIGNED && a == MIN && b == (T)-1) { *st |= TC_FPE_OVERFLOW; return MIN; }       \
    T q = a / b;                                                                        \
    if (SIGNED && ((a > 0) != (b > 0)) && q * b != a) q--;                              \
    return q;                                                                           \
}                                                                                       \
static inline T tc_remainder_##S(T a, T b, int32_t *st)                                 \
{                                                                                       \
    if (b == 0) { *st |= TC_FPE_DIVIDE; return 0; }                                     \
    if (SIGNED && b == (T)-1) return 0;                                                 \
    T r = a % b;                                                                        \
    if (SIGNED && r != 0 && ((r < 0) != (b < 0))) r += b;                               \
    return r;                                                                           \
}                                                                                       \
static inline T tc_fmod_##S(T a, T b, int32_t *st)                                      \
{                                                                                       \
    if (b == 0) { *st |= TC_FPE_DIVIDE; return 0; }                                     \
    if (SIGNED && b == (T)-1) return 0;                                                 \
    return a % b;                                                                       \
}                                                                                       \
static inline T tc_power_##S(T a, T b, int32_t *st)                                     \
{                                                                                       \
    if (SIGNED && b < 0) { *st |= TC_ERR_NEGATIVE_POWER; return 0; }                    \
    U r = 1, x = (U)a, e = (U)b;                                                        \
    while (e) { if (e & 1) r *= x; x *= x; e >>= 1; }                                   \
    return (T)r;                                                                        \
}                                                                                       \
static inline T tc_abs_##S(T a) { return (T)(a < 0 ? (U)0 - (U)a : (U)a); }             \
static inline T tc_left_shift_##S(T a, T b)                                             \
{                                                                                       \
    return (b >= 0 && b < BITS) ? (T)((U)a << b) : 0;                                   \
}                                                                                       \
static inline T tc_right_shift_##S(T a, T b)                                            \
{                                                                                       \
    if (b >= 0 && b < BITS) return a >> b;                                              \
    return (SIGNED && a < 0) ? (T)-1 : 0;                                               \
}                                                                                       \
static inline T tc_gcd_##S(T a, T b)                                                    \
{                                                                                       \
    U x = (U)tc_abs_##S(a), y = (U)tc_abs_##S(b);                                       \
    while (y) { U t = x % y; x = y; y = t; }                                            \
    return (T)x;                                                                        \
}                                                                                       \
static inline T tc_lcm_##S(T a, T b)                                                    \
{   /* NumPy's: |a| / gcd * |b| in unsigned arithmetic, wrapping where it overflows */  \
    U x = (U)tc_abs_##S(a), y = (U)tc_abs_##S(b), g = (U)tc_gcd_##S(a, b);              \
    return g == 0 ? 0 : (T)(x / g * y);                                                 \
}

TC_INT_HELPERS(int8_t, uint8_t, i8, INT8_MIN, 8, 1)
TC_INT_HELPERS(int16_t, uint16_t, i16, INT16_MIN, 16, 1)
TC_INT_HELPERS(int32_t, uint32_t, i32, INT32_MIN, 32, 1)
TC_INT_HELPERS(int64_t, uint64_t, i64, INT64_MIN, 64, 1)
TC_INT_HELPERS(uint8_t, uint8_t, u8, 0, 8, 0)
TC_INT_HELPERS(uint16_t, uint16_t, u16, 0, 16, 0)
TC_INT_HELPERS(uint32_t, uint32_t, u32, 0, 32, 0)
TC_INT_HELPERS(uint64_t, uint64_t, u64, 0, 64, 0)

#endif
