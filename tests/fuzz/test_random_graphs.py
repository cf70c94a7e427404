"""Randomized graphs (hypothesis): the default mode (optimizer + C kernels) must agree with
the NumPy reference interpreter (FAST_COMPILE) and with NumPy itself, values and dtypes."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tracec as tc

UNARY = {
    "neg": lambda a: -a,
    "exp": lambda a: np.exp(np.clip(a, -20, 20)),
    "tanh": np.tanh,
    "sin": np.sin,
    "abs": np.abs,
    "sqrt": lambda a: np.sqrt(np.abs(a)),
    "log1p": lambda a: np.log1p(np.abs(a)),
    "square": lambda a: a * a,
    "softplus": lambda a: np.log(1 + np.exp(np.clip(a, -30, 30))),
    "sigmoid": lambda a: 1 / (1 + np.exp(-np.clip(a, -30, 30))),
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (np.abs(b) + 1),
    "max": np.maximum,
    "min": np.minimum,
    "where": lambda a, b: np.where(a > b, a, b * 0.5),
    "scaled": lambda a, b: 2.5 * a - b / 3,
}
SHAPES = [((4, 3), (4, 3)), ((4, 3), (3,)), ((4, 1), (1, 3)), ((4, 3), ())]


def expressions(depth):
    leaf = st.sampled_from(["x", "y", "c"])
    if depth == 0:
        return leaf
    sub = expressions(depth - 1)
    return st.one_of(leaf,
                     st.tuples(st.sampled_from(sorted(UNARY)), sub),
                     st.tuples(st.sampled_from(sorted(BINARY)), sub, sub))


def evaluate(expr, env):
    if isinstance(expr, str):
        return env[expr]
    if len(expr) == 2:
        return UNARY[expr[0]](evaluate(expr[1], env))
    return BINARY[expr[0]](evaluate(expr[1], env), evaluate(expr[2], env))


def build(expr, reduce_axis):
    def fn(x, y, c):
        out = evaluate(expr, {"x": x, "y": y, "c": c})
        return out if reduce_axis is None else np.sum(out, axis=reduce_axis) if np.ndim(out) else out
    return fn


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(3), shapes=st.sampled_from(SHAPES), dtype=st.sampled_from(["float64", "float32"]),
       reduce_axis=st.sampled_from([None, 0, -1]), seed=st.integers(0, 2 ** 16))
def test_default_mode_agrees_with_reference(expr, shapes, dtype, reduce_axis, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shapes[0]).astype(dtype)
    y = rng.standard_normal(shapes[1]).astype(dtype)
    c = 1.5  # a Python float: weak, so float32 stays float32
    fn = build(expr, reduce_axis)
    with np.errstate(all="ignore"):
        expected = np.asarray(fn(x, y, c))
        reference = tc.compile(fn, mode="FAST_COMPILE")
        optimized = tc.compile(fn)
        ref_out = np.asarray(reference(x, y, c))
        for _ in range(2):  # the second call runs the compiled kernels
            got = np.asarray(optimized(x, y, c))
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    for out in (ref_out, got):
        assert out.dtype == expected.dtype and out.shape == expected.shape, (expr, out.dtype, out.shape)
        np.testing.assert_allclose(out, expected, equal_nan=True, err_msg=str(expr), **tol)
