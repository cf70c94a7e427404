"""The lowered ops (tracec/opt/lowering.py) under FAST_RUN's C backend: sum_to, mean, var,
std, outer, tensordot and logsumexp run as C reductions, C kernels and BLAS products, with
no NumPy step computing them, and match NumPy (float sums to rounding: the C reduction adds
in another order where the reduced axis is not the innermost). Also max/min with NumPy's
`initial`, which the lowered logsumexp uses for its shift."""
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.cgen.executor import CExecutor, how_op_runs
from tracec.trace.ops import OPS

RNG = np.random.default_rng(7)
ROWS = np.array([[0.0, 1.0, 2.0, -3.0], [-np.inf] * 4, [np.inf, 1000.0, 1.0, 0.0], [np.nan, 1000.0, 1.0, 0.0],
                 [np.inf, -np.inf, 3.0, 0.0], [1e308, 1e308, -1e308, 0.0], [1.7e308, -1.7e308, 0.0, -np.inf],
                 [-1.7e308] * 4, [1000.0, 0.0, -1000.0, 999.0]])


def tol(dtype):
    return dict(rtol=3e-6, atol=3e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-12)


def steps(f):
    """(op names of the native steps, op names of the steps NumPy computes) of `f`'s program."""
    backend = f.executable.backend
    assert isinstance(backend, CExecutor)
    native = [node.op.name for node, kernel in backend.steps if kernel is not None]
    numpy = [node.op.name for node, kernel in backend.steps if how_op_runs(node.op) == "NumPy"]
    return native, numpy


def run_native(inputs, outputs, values):
    """Results of `tc.function(inputs, outputs)` on `values`, and the function; no NumPy step
    computes anything and no RuntimeWarning is raised."""
    f = tc.function(inputs, outputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = f(*values)
    native, numpy = steps(f)
    assert not numpy, f"steps run by NumPy: {numpy}"
    return got, native


def assert_close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    np.testing.assert_allclose(got, want, equal_nan=True, **tol(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("name", ["mean", "var", "std"])
def test_mean_var_std_run_as_c_reductions(dtype, name):
    fn = getattr(np, name)
    x = tc.tensor(dtype, (False, False), name="x")
    v = RNG.standard_normal((64, 33)) * 10
    v = v.astype(dtype) if dtype != "bool" else v > 0
    for axis, keepdims in [(1, False), (0, True), (None, False)]:
        kw = dict(ddof=1) if name != "mean" else {}
        got, native = run_native([x], fn(x, axis=axis, keepdims=keepdims, **kw), [v])
        assert native.count("sum") + native.count("fused_elemwise") >= 1
        assert_close(got, fn(v, axis=axis, keepdims=keepdims, **kw), "float32" if dtype == "float32" else "float64")


def test_mean_var_of_empty_and_special_values():
    x = tc.dmatrix("x")
    special = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 0.0], [1e300, -1e300, 3.0]])
    for fn in (np.mean, np.var, np.std):
        f = tc.function([x], [fn(x, axis=1), fn(x, axis=0)])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's 'Mean of empty slice'
            for value in (special, np.zeros((0, 3)), np.zeros((3, 0))):
                for got, axis in zip(f(value), (1, 0)):
                    assert_close(got, fn(value, axis=axis), "float64")
        assert not steps(f)[1]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_outer_is_one_c_kernel(dtype):
    a, b = tc.tensor(dtype, (False,), name="a"), tc.tensor(dtype, (False,), name="b")
    va, vb = RNG.standard_normal(50) * 5, RNG.standard_normal(40) * 5
    va, vb = (va.astype(dtype), vb.astype(dtype)) if dtype != "bool" else (va > 0, vb > 0)
    got, native = run_native([a, b], np.outer(a, b) * 2, [va, vb])
    assert native == ["fused_elemwise"]
    np.testing.assert_array_equal(got, np.outer(va, vb) * 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tensordot_runs_blas(dtype):
    a, b = tc.tensor(dtype, (False,) * 3, name="a"), tc.tensor(dtype, (False,) * 2, name="b")
    va, vb = RNG.standard_normal((6, 5, 4)).astype(dtype), RNG.standard_normal((5, 7)).astype(dtype)
    for axes in (([1], [0]), 0):
        got, _ = run_native([a, b], np.tensordot(a, b, axes=axes), [va, vb])
        assert_close(got, np.tensordot(va, vb, axes=axes), dtype)
    W = tc.tensor(dtype, (False, False), name="W")  # the gradient of a batched dot
    grads = tc.grad(np.sum(np.tanh(np.dot(a, W))), [W, a])
    vw = RNG.standard_normal((4, 3)).astype(dtype)
    f = tc.function([a, W], grads)
    got = f(va, vw)
    assert set(steps(f)[1]) <= {"sum_to"}  # (declared inputs: a broadcast shows at run time)
    t = np.tanh(np.dot(va, vw))
    gz = 1 - t * t
    assert_close(got[0], np.tensordot(va, gz, axes=([0, 1], [0, 1])), dtype)
    assert_close(got[1], np.dot(gz, vw.T), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp_runs_native_and_quiet(dtype):
    x = tc.tensor(dtype, (False, False), name="x")
    with np.errstate(over="ignore"):
        rows = ROWS.astype(dtype)
    for axis, keepdims in [((1,), False), ((0,), True), ((0, 1), False)]:
        out = OPS["logsumexp"](x.variable, axis=axis, keepdims=keepdims)
        got, native = run_native([x], tc.Tensor(out), [rows])  # default errstate: no warning either
        assert "max" in native
        with np.errstate(all="ignore"):
            want = OPS["logsumexp"].impl(rows, axis=axis, keepdims=keepdims)
        assert_close(got, want, dtype)


def test_logsumexp_of_nothing_and_of_integers():
    x = tc.dmatrix("x")
    f = tc.function([x], tc.Tensor(OPS["logsumexp"](x.variable, axis=(1,), keepdims=False)))
    np.testing.assert_array_equal(f(np.zeros((3, 0))), [-np.inf] * 3)  # max's `initial`, in C
    assert not steps(f)[1]
    i = tc.imatrix("i")
    vi = RNG.integers(-50, 50, (5, 6)).astype(np.int32)
    got, _ = run_native([i], tc.Tensor(OPS["logsumexp"](i.variable, axis=(0,), keepdims=False)), [vi])
    assert_close(got, OPS["logsumexp"].impl(vi, axis=(0,), keepdims=False), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, initial", [("max", -np.inf), ("max", 0.5), ("min", np.inf), ("min", -1.25)])
def test_max_min_with_initial(dtype, name, initial):
    x = tc.tensor(dtype, (False, False), name="x")
    v = RNG.standard_normal((7, 300)).astype(dtype)
    v[0, 5], v[1] = np.nan, -np.inf
    for axis in ((1,), (0,), (0, 1)):
        out = tc.Tensor(OPS[name](x.variable, axis=axis, keepdims=False, initial=initial))
        f = tc.function([x], out)
        for value in (v, np.zeros((3, 0), dtype), np.zeros((0, 4), dtype)):
            got = f(value)
            np.testing.assert_array_equal(got, getattr(np, name)(value, axis=axis, initial=initial))
        assert steps(f)[0] == [name]


def test_sum_to_known_axes_is_a_c_reduction():
    g = tc.dtensor3("g")
    out = OPS["sum_to"](g.variable, tc.Constant(1), OPS["shape_i"](g.variable, i=2))
    v = RNG.standard_normal((4, 5, 3))
    got, native = run_native([g], tc.Tensor(out), [v])
    assert native.count("sum") == 2
    assert_close(got, v.sum(axis=0).sum(axis=0, keepdims=True), "float64")


def test_training_step_leaves_only_run_time_sum_to_to_numpy():
    # the MLP step of bench/mlp.py: mean and logsumexp are C now; a declared weight's gradient
    # keeps a sum_to (a length-1 dimension that broadcasts shows only at run time), a no-op here
    x, y = tc.fmatrix("x"), tc.fmatrix("y")
    W1, b1 = tc.shared(RNG.standard_normal((8, 6)).astype(np.float32)), tc.shared(np.zeros(6, np.float32))
    W2, b2 = tc.shared(RNG.standard_normal((6, 3)).astype(np.float32)), tc.shared(np.zeros(3, np.float32))
    z = np.tanh(x @ W1 + b1) @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * (z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))), axis=1))
    grads = tc.grad(loss, [W1, b1, W2, b2])
    f = tc.function([x, y], [loss] + grads)
    vx, vy = RNG.standard_normal((5, 8)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0]]
    got = f(vx, vy)
    ref = tc.function([x, y], [loss] + grads, mode="FAST_COMPILE")(vx, vy)
    for g, r in zip(got, ref):
        assert_close(g, r, "float32")
    assert set(steps(f)[1]) <= {"sum_to"}


def _ulps(a, b):
    """|a - b| in units in the last place of their dtype (0 where both are NaN)."""
    ints = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    sign = np.int64(np.iinfo(ints).max)
    ia, ib = np.where(ia < 0, -(ia & sign), ia), np.where(ib < 0, -(ib & sign), ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, np.abs(ia - ib))


@pytest.mark.parametrize("dtype, most", [("float64", 1), ("float32", 2)])
def test_softplus_through_log_matches_numpy(dtype, most):
    # softplus's log1p is log(u) + (e - (u - 1)) / u (log vectorizes; float32 in double):
    # within `most` ulp of NumPy's logaddexp(0, x) over a dense sweep, edges included
    fi = np.finfo(dtype)
    with np.errstate(over="ignore"):
        v = np.concatenate([np.linspace(-800, 800, 400_001), np.linspace(-40, 40, 400_001),
                            np.geomspace(fi.tiny, 60, 50_001), -np.geomspace(fi.tiny, 800, 50_001),
                            [0.0, -0.0, np.inf, -np.inf, np.nan, fi.max, -fi.max, fi.eps]]).astype(dtype)
    x = tc.tensor(dtype, (False,), name="x")
    f = tc.function([x], tc.Tensor(OPS["softplus"](x.variable)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = f(v)
    assert steps(f)[0] == ["softplus"]
    want = OPS["softplus"].impl(v)
    assert got.dtype == want.dtype and _ulps(got, want).max() <= most


def test_integer_max_with_initial_runs_numpy():
    # `initial` lowers for float accumulators only; an integer one is NumPy's, with the same result
    i = tc.imatrix("i")
    f = tc.function([i], tc.Tensor(OPS["max"](i.variable, axis=(1,), keepdims=False, initial=5)))
    v = RNG.integers(-10, 10, (4, 6)).astype(np.int32)
    np.testing.assert_array_equal(f(v), np.max(v, axis=1, initial=5))
    np.testing.assert_array_equal(f(np.zeros((2, 0), np.int32)), [5, 5])
    assert "max" not in steps(f)[0]  # no kernel: the NumPy implementation ran
