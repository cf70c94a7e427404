"""Numerical stability rewrites: structure, equality on ordinary inputs, and the extreme
inputs where the naive expression overflows or loses all precision."""
import warnings

import numpy as np
import pytest

import tracec as tc
from optcheck import REWRITES, check, program, rand, run
from tracec.opt import optimize

STABLE = REWRITES.excluding("lowering")  # logsumexp stays one node (lowering makes it C reductions)


def _optimized_values(inputs, out, values):
    return run(optimize(program(inputs, out)), values)


def test_log1p_and_expm1():
    x = tc.dvector("x")
    check([x], np.log(1 + x), [rand(5, low=0, high=2)], absent=["log"], present=["log1p"])
    check([x], np.log(x + 1), [rand(5, low=0, high=2)], absent=["log"], present=["log1p"])
    check([x], np.exp(x) - 1, [rand(5)], absent=["exp"], present=["expm1"])
    tiny = [np.array([1e-20])]
    assert _optimized_values([x], np.log(1 + x), tiny)[0][0] == 1e-20  # naive: 0
    assert _optimized_values([x], np.exp(x) - 1, tiny)[0][0] == 1e-20


def test_softplus():
    x = tc.dvector("x")
    check([x], np.log(1 + np.exp(x)), [rand(6)], present=["softplus"], absent=["log", "exp"])
    got = _optimized_values([x], np.log(1 + np.exp(x)), [np.array([1000.0, -1000.0, 0.0])])[0]
    np.testing.assert_allclose(got, [1000.0, 0.0, np.log(2)])


def test_sigmoid_forms():
    x = tc.dvector("x")
    for out in (1 / (1 + np.exp(-x)), np.reciprocal(1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x))):
        check([x], out, [rand(6)], present=["sigmoid"], absent=["exp"])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _optimized_values([x], out, [np.array([-800.0, 800.0])])[0]
        np.testing.assert_array_equal(got, [0.0, 1.0])


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_sigmoid_forms_of_integers_keep_numpy_values(dtype):
    # NumPy computes -x in the integer dtype (it wraps: -INT_MIN is INT_MIN, -3 is 253 in
    # uint8) and exp(x) / (1 + exp(x)) is nan for large x: the naive forms stay
    x = tc.tensor(dtype, (False,), name="x")
    info = np.iinfo(dtype)
    values = [np.array([info.min, info.min + 1, 0, 3, info.max], dtype)]
    for out in (1 / (1 + np.exp(-x)), np.reciprocal(1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x))):
        check([x], out, values, rtol=0, atol=0, absent=["sigmoid"])


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_log1p_of_an_integer_sum_keeps_the_wrap(dtype):
    x = tc.tensor(dtype, (False,), name="x")
    values = [np.array([0, 1, 7, np.iinfo(dtype).max], dtype)]  # 1 + max wraps, as in NumPy
    check([x], np.log(1 + x), values, rtol=0, atol=0, absent=["log1p"])
    # computed in float64: no wrap (uint8's log1p would be float16: no rewrite either way)
    check([x], np.log(1.0 + x), values, present=["log1p"] if dtype == "int32" else [])


def test_log_sigmoid_and_log_one_minus_sigmoid():
    x = tc.dvector("x")
    p = 1 / (1 + np.exp(-x))
    check([x], np.log(p), [rand(6)], present=["softplus"], absent=["log", "sigmoid"])
    check([x], np.log(1 - p), [rand(6)], present=["softplus"], absent=["log", "sigmoid"])
    z = [np.array([-800.0, 800.0])]
    np.testing.assert_allclose(_optimized_values([x], np.log(p), z)[0], [-800.0, 0.0])
    np.testing.assert_allclose(_optimized_values([x], np.log(1 - p), z)[0], [0.0, -800.0])


@pytest.mark.parametrize("axis, keepdims", [(1, False), (0, True), (None, False)])
def test_logsumexp(axis, keepdims):
    x = tc.dmatrix("x")
    out = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    check([x], out, [rand((3, 4))], mode=STABLE, present=["logsumexp"], absent=["log", "exp"])
    big = np.array([[1000.0, 0.0, -1000.0]])
    got = _optimized_values([x], out, [big])[0]
    m = np.max(big, axis=axis, keepdims=True)
    expected = np.log(np.sum(np.exp(big - m), axis=axis, keepdims=True)) + m
    expected = expected if keepdims else np.squeeze(expected, axis=axis)
    assert np.shape(got) == expected.shape
    np.testing.assert_allclose(got, expected)


def test_log_softmax_written_by_hand():
    x = tc.dmatrix("x")
    out = np.log(np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True))
    check([x], out, [rand((3, 4))], mode=STABLE, present=["logsumexp"], absent=["log", "exp", "divide"])
    got = _optimized_values([x], out, [np.array([[1000.0, 0.0, -1000.0]])])[0]
    np.testing.assert_allclose(got, [[0.0, -1000.0, -2000.0]])
    f = tc.compile(lambda x: np.log(np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)))
    np.testing.assert_allclose(f(np.array([[1000.0, 0.0, -1000.0]])), [[0.0, -1000.0, -2000.0]])


def test_float32_stays_float32():
    x = tc.fvector("x")
    opt, _ = check([x], np.log(1 + np.exp(x)), [rand(4, "float32")], rtol=1e-6, atol=1e-6)
    assert opt.outputs[0].dtype == np.float32


def test_binary_cross_entropy_value_and_gradient_stay_finite():
    z, y = tc.dvector("z"), tc.dvector("y")
    p = 1 / (1 + np.exp(-z))
    loss = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    (stable,) = tc.opt.stabilized([loss.variable], stop=[z.variable])
    stable = tc.Tensor(stable)
    f = tc.function([z, y], [stable, tc.grad(stable, z)])
    zs, ys = np.array([-800.0, 800.0, 0.0, 3.0]), np.array([1.0, 0.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = f(zs, ys)
    sig = 1 / (1 + np.exp(-zs[2:]))
    np.testing.assert_allclose(value, 1600 + np.log(2) + np.log1p(np.exp(3.0)))
    np.testing.assert_allclose(grad, np.r_[-1.0, 1.0, sig - ys[2:]])
    g = tc.function([z, y], loss)  # the naive value alone is stabilized by the optimizer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(g(zs, ys))
