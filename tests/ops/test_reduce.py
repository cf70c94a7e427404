"""Reductions (sum prod mean var std max min argmax argmin any all) and scans (cumsum cumprod)."""
import numpy as np
import pytest

from cases import DTYPES, check, check_same_error, rand

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "any", "all"]
AXES = [None, 1, -1, (0, 2), (-1, 0), ()]


def _input(dtype, shape=(2, 3, 4), seed=0):
    low, high = (0.5, 1.5) if dtype in ("float32", "float64") else (-2, 3)
    return rand(shape, dtype, low, high, seed=seed)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction(name, dtype, axis, keepdims):
    x = _input(dtype)
    fn = lambda x: getattr(np, name)(x, axis=axis, keepdims=keepdims)  # noqa: E731
    if not check_same_error(fn, x):
        check(fn, x, expect_ops=[name])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_methods(name, dtype):
    x = _input(dtype)
    for axis, keepdims in ((None, False), (0, True), ((2, 1), False)):
        method = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)  # noqa: E731
        if not check_same_error(method, x):
            check(method, x, expect_ops=[name])
    if not check_same_error(lambda x: getattr(x, name)(1), x):
        check(lambda x: getattr(x, name)(1), x, expect_ops=[name])


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 1), (1, 4), (2, 1, 3)], ids=str)
@pytest.mark.parametrize("name", REDUCTIONS + ["argmax", "argmin"])
def test_reduction_shapes(name, shape):
    x = _input("float64", shape, seed=1)
    axes = [None] + list(range(-len(shape), len(shape)))
    for axis in axes:
        for keepdims in (False, True):
            check(lambda x: getattr(np, name)(x, axis=axis, keepdims=keepdims), x, expect_ops=[name])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, 2, -3], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_reduction(name, dtype, axis, keepdims):
    x = _input(dtype, seed=2)
    check(lambda x: getattr(np, name)(x, axis=axis, keepdims=keepdims), x, expect_ops=[name])
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), x, expect_ops=[name])
    if not keepdims:
        check(lambda x: getattr(np, name)(x, axis), x, expect_ops=[name])


def test_arg_reduction_ties_and_nan():
    x = np.array([[1.0, 3.0, 3.0, np.nan], [2.0, 2.0, 1.0, 1.0]])
    check(lambda x: (np.argmax(x, axis=1), np.argmin(x, axis=1), np.argmax(x), np.argmin(x[1])), x)
    check(lambda x: (np.max(x, axis=1), np.min(x, axis=0), np.sum(x)), x)


@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_ddof(name, dtype, axis, ddof):
    x = _input(dtype, seed=3)
    check(lambda x: getattr(np, name)(x, axis=axis, ddof=ddof), x, expect_ops=[name])
    check(lambda x: getattr(x, name)(axis=axis, ddof=ddof, keepdims=True), x, expect_ops=[name])


@pytest.mark.parametrize("out_dtype", ["float32", "int32", "int64", "bool", "float16"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std"])
def test_reduction_dtype_keyword(name, dtype, out_dtype):
    x = _input(dtype, seed=4)
    for axis in (None, 1):
        fn = lambda x: getattr(np, name)(x, axis=axis, dtype=out_dtype)  # noqa: E731
        if not check_same_error(fn, x):
            check(fn, x, expect_ops=[name], rtol=1e-2 if out_dtype == "float16" else None,
                  atol=1e-2 if out_dtype == "float16" else None)


def test_reduction_out_keyword():
    def f(x):
        out = np.zeros(x.shape[1:])
        np.sum(x, axis=0, out=out)
        m = np.zeros_like(out)
        np.max(x, axis=0, out=m)
        return out, m
    check(f, _input("float64", seed=5))


def test_reduction_of_python_scalars_and_broadcast_results():
    check(lambda a: np.sum(a), 3)
    check(lambda a: np.mean(a), 2.5)
    check(lambda x, y: (x + y).sum(axis=0), _input("float32", (3, 1)), _input("float32", (4,)))
    check(lambda x: (x > 1).sum(), _input("float64"))
    check(lambda x: (x > 1).mean(axis=1), _input("float64"))
    check(lambda x: x.sum(0).sum(0).sum(0), _input("int32"))


def test_ufunc_reduce_methods():
    x = _input("float64", seed=6)
    b = _input("bool", seed=7)
    check(lambda x: (np.add.reduce(x), np.add.reduce(x, 1), np.multiply.reduce(x, -1),
                     np.maximum.reduce(x, 0), np.minimum.reduce(x, 2)), x)
    check(lambda b: (np.logical_and.reduce(b, 1), np.logical_or.reduce(b)), b)


def test_reduction_axis_errors():
    x = _input("float64", seed=8)
    for fn in (lambda x: x.sum(axis=3), lambda x: x.sum(axis=(0, 0)), lambda x: np.argmax(x, axis=-4),
               lambda x: np.cumsum(x, axis=5)):
        assert check_same_error(fn, x)


SCAN_AXES = [None, 0, 1, -1, 2]


@pytest.mark.parametrize("axis", SCAN_AXES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan(name, dtype, axis):
    x = _input(dtype, seed=9)
    check(lambda x: getattr(np, name)(x, axis=axis), x, expect_ops=[name])
    check(lambda x: getattr(x, name)(axis=axis), x, expect_ops=[name])
    check(lambda x: getattr(np, name)(x, axis=axis, dtype="float32"), x, expect_ops=[name])
    check(lambda x: getattr(np, name)(x, axis=axis, dtype="int64"), x, expect_ops=[name])


@pytest.mark.parametrize("shape", [(), (1,), (5,), (1, 4), (3, 1)], ids=str)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_shapes(name, shape):
    x = _input("float64", shape, seed=10)
    for axis in [None] + list(range(-len(shape), len(shape))):
        check(lambda x: getattr(np, name)(x, axis=axis), x, expect_ops=[name])
    check(lambda x: getattr(np, name)(x), x, expect_ops=[name])


def test_ufunc_accumulate_methods():
    x = _input("int32", seed=11)
    check(lambda x: (np.add.accumulate(x), np.multiply.accumulate(x, 1),
                     np.add.accumulate(x, axis=-1, dtype="float64")), x)


def test_ufunc_reduce_keywords():
    x = _input("int32", seed=12)
    check(lambda x: (np.add.reduce(x, axis=None), np.add.reduce(x, axis=(0, 2), keepdims=True),
                     np.multiply.reduce(x, 1, dtype="float64"), np.add.reduce(x, 0, "int8"),
                     np.maximum.reduce(x, axis=-1, keepdims=True)), x)
