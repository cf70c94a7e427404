"""Control-flow ops (scan, ifelse), and the optimizer's rewrites (gemm, gemv, sigmoid,
softplus, logsumexp, fusion, in-place) over more dtypes, axes and shapes: the default
mode rewrites, FAST_COMPILE does not, both must match NumPy. (test_optimizer_ops.py,
test_grad_special.py and test_debugging_ops.py cover the remaining ops of this kind.)"""
import numpy as np
import pytest

import tracec as tc

from cases import check, rand


def X(shape=(3, 4), dtype="float64", seed=0, low=-3.0, high=3.0):
    return rand(shape, dtype, low, high, seed=seed)


# -- optimizer-introduced ops: the default mode rewrites, FAST_COMPILE does not; both match NumPy --
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm(dtype):
    a, b, c = X((3, 4), dtype), X((4, 5), dtype, 1), X((3, 5), dtype, 2)
    check(lambda a, b, c: a @ b + c, a, b, c, expect_ops=["gemm"])
    check(lambda a, b, c: 2.0 * np.dot(a, b) + 0.5 * c, a, b, c, expect_ops=["gemm"])
    check(lambda a, b, c: c - a @ b, a, b, c)
    check(lambda a, b, c: a @ b + c[0], a, b, c)  # broadcast addend
    check(lambda a, b, c: a.T.T @ b + c * 3, a, b, c)
    check(lambda a, b, c: (a @ b + c, a @ b), a, b, c)  # the product is also an output


def test_gemm_mixed_dtypes():
    a, b = X((3, 4), "float32"), X((4, 5), "float64", 1)
    check(lambda a, b: a @ b + 1.5, a, b)
    check(lambda a, b, c: a @ b + c, a, b, X((3, 5), "float32", 2))
    check(lambda a, b, c: a @ b + c, X((3, 4), "int32"), X((4, 5), "int32", 1), X((3, 5), "float64", 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemv(dtype):
    a, v, y = X((3, 4), dtype), X((4,), dtype, 1), X((3,), dtype, 2)
    check(lambda a, v, y: a @ v + y, a, v, y, expect_ops=["gemv"])
    check(lambda a, v, y: 3.0 * np.dot(a, v) - y, a, v, y, expect_ops=["gemv"])
    check(lambda a, v, y: a.T @ y + v, a, v, y, expect_ops=["gemv"])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint64", "bool"])
def test_logsumexp_of_integers(dtype):
    # the shift by the max is done in exp's float dtype: x - max(x) would wrap (uint8: 0 - 2
    # is 254, int8: -128 - 10 is 118) or, for bool, fail
    info = np.iinfo(dtype) if dtype != "bool" else None
    rows = [[0, 1, 2], [3, 0, 1]] if info is None or info.min == 0 else [[-128, 0, 10], [3, -5, 1]]
    x = np.array(rows).astype(dtype)
    for axis in (-1, 0, None):
        check(lambda x: np.log(np.sum(np.exp(x), axis=axis)), x, rtol=2e-3)  # lowered to C reductions
        with _logsumexp_kept():
            check(lambda x: np.log(np.sum(np.exp(x), axis=axis)), x, expect_ops=["logsumexp"], rtol=2e-3)


def _logsumexp_kept():
    """The default mode stabilizes to logsumexp, then lowers it to C reductions: not that here."""
    return tc.config.change(optimizer_excluding=("logsumexp_as_reductions",))


def test_softplus_and_sigmoid_of_nan_raise_nothing():
    # as log(1 + exp(x)) and 1 / (1 + exp(-x)) raise nothing for NaN (logaddexp would: 'invalid')
    x = np.array([np.nan, -np.inf, np.inf, 0.0, 2.0])
    with np.errstate(all="raise"):
        for fn in (lambda x: np.log(1 + np.exp(x)), lambda x: 1 / (1 + np.exp(-x))):
            check(fn, x)
        np.testing.assert_allclose(tc.trace.ops.OPS["softplus"].impl(x), np.log1p(np.exp(x)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_softplus(dtype):
    x = X((3, 4), dtype, low=-20, high=20)
    check(lambda x: 1 / (1 + np.exp(-x)), x, expect_ops=["sigmoid"])
    check(lambda x: 1.0 / (1.0 + np.exp(-x)) * 2, x)
    check(lambda x: np.log(1 + np.exp(x)), x, expect_ops=["softplus"])
    check(lambda x: np.log1p(np.exp(x)), x, expect_ops=["softplus"])
    check(lambda x: np.log1p(np.exp(-x)) + 1 / (1 + np.exp(x)), x)


@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp(dtype, axis):
    x = X((3, 4), dtype, low=-10, high=10)
    check(lambda x: np.log(np.sum(np.exp(x), axis=axis)), x)
    with _logsumexp_kept():
        check(lambda x: np.log(np.sum(np.exp(x), axis=axis)), x, expect_ops=["logsumexp"])
    check(lambda x: np.log(np.exp(x).sum(axis=axis, keepdims=True)), x)


def test_fusion_and_inplace():
    x, y = X((3, 4)), X((4,), seed=1)
    check(lambda x, y: np.exp(-x * x / 2) * y + 1, x, y, expect_ops=["fused_elemwise"])
    check(lambda x, y: np.where(x > 0, np.sqrt(np.abs(x)) * y, -y) - 0.5, x, y, expect_ops=["fused_elemwise"])
    check(lambda x: np.exp(x @ x.T), x, expect_ops=["inplace_elemwise"])
    check(lambda x: (np.tanh(x @ x.T) + 1, x @ x.T), x)  # the product is still needed: no in-place
    check(lambda x, y: (np.sin(x) * y + 1).sum(axis=0), X((3, 4), "float32"), X((4,), "float32", 1))
    check(lambda x: (x * 2 + 1).astype("int32") * 3, x)
    check(lambda x: ((x > 0) & (x < 2)) | (x == 0), x)


def test_constant_outputs_are_copies():
    def two_results(x):
        return x, np.ones(3) * 2 + 1  # traced allocation, folded to a constant, copied per call

    check(two_results, X(), expect_ops=["copy"])
    f = tc.compile(lambda x: np.arange(3.0) * 2)
    first = f(X())
    first[0] = 100.0  # the caller owns its result: the next call is not affected
    np.testing.assert_array_equal(f(X()), [0.0, 2.0, 4.0])


# -- control flow ------------------------------------------------------------------------------
def test_scan_and_map():
    x = X((5, 3))

    def cumulative(x):
        out, _ = tc.scan(lambda row, acc: acc + row, sequences=x, outputs_info=np.zeros_like(x[0]))
        return out
    check(cumulative, x, reference=lambda x: np.cumsum(x, axis=0), expect_ops=["scan"])
    check(lambda x: tc.map(np.square, x)[0], x, reference=lambda x: np.square(x), expect_ops=["scan"])

    def power(a, k):
        out, _ = tc.scan(lambda prior, a: prior * a, outputs_info=np.ones_like(a), non_sequences=a, n_steps=k)
        return out[-1]
    check(power, X((4,)), 3, reference=lambda a, k: a ** k, expect_ops=["scan"])


def test_ifelse():
    a, b = X((3,)), X((3,), seed=1)

    def f(a, b):
        return tc.ifelse(a.sum() < b.sum(), np.sqrt(np.abs(a)), np.log(np.abs(b) + 1))

    def ref(a, b):
        return np.sqrt(np.abs(a)) if a.sum() < b.sum() else np.log(np.abs(b) + 1)
    check(f, a, b, reference=ref, expect_ops=["ifelse"])
    check(f, b, a, reference=ref, expect_ops=["ifelse"])


def _decay(x, n):
    for _ in range(n):
        x = 0.5 * x + 1.0
    return x


def test_scan_last_and_its_gradient_op():
    # a converted loop's final value: its last step, or its initial value when no step runs
    for n in (0, 3):
        check(_decay, X((3,)), n, expect_ops=["scan_last"])

    def last_row_grad(g, stacked):  # the gradient scan_last gives the stack
        return tc.Tensor(tc.OPS["scan_last_grad"](g.variable, stacked.variable))

    def ref(g, stacked):
        out = np.zeros_like(stacked)
        out[-1:] = g
        return out
    check(last_row_grad, X((3,)), X((4, 3), seed=1), reference=ref, expect_ops=["scan_last_grad"])
    check(last_row_grad, X((3,)), X((0, 3)), reference=ref)
