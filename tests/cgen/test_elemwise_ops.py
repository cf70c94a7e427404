"""Every elementwise op with a C expression, through the C backend, against NumPy:
values and dtypes over contiguous, strided, broadcast, empty and 0-d inputs.

One tc.function per dtype holds every op as a separate output, so its kernels
are compiled together (in parallel) once per session and reused by every layout.
"""
import numpy as np
import pytest

import tracec as tc
from tracec.cgen.render import C_EXPR, CRenderer
from tracec.trace.ops import OPS

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
UNARY = sorted(n for n in C_EXPR if isinstance(getattr(np, n, None), np.ufunc) and getattr(np, n).nin == 1)
BINARY = sorted(n for n in C_EXPR if isinstance(getattr(np, n, None), np.ufunc) and getattr(np, n).nin == 2)
OTHER = {  # the non-ufunc elementwise ops, as users write them
    "where": lambda x, y: np.where(x > y, x, y),
    "clip": lambda x, y: np.clip(x, y, y + 1) if x.dtype != np.bool_ else np.clip(x, y, True),
    "cast": lambda x, y: x.astype("float32" if x.dtype != np.float32 else "int64"),
}


def _values(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    x = rng.uniform(-4, 4, size=shape).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e30], dtype)
    flat = x.reshape(-1)
    flat[:min(flat.size, special.size)] = np.roll(special, seed)[:min(flat.size, special.size)]
    return x


def _numpy_expr(name):
    if name in OTHER:
        return OTHER[name]
    ufunc = getattr(np, name)
    if ufunc.nin == 1:
        return lambda x, y: ufunc(x)
    if name == "power":  # integers to negative powers raise (tested separately)
        return lambda x, y: ufunc(x, abs(y) if y.dtype.kind == "i" else y)
    return lambda x, y: ufunc(x, y)


def _applicable(name, dtype):
    sample = np.ones((1, 1), dtype)
    try:
        with np.errstate(all="ignore"):
            out = _numpy_expr(name)(sample, sample)
    except TypeError:
        return False
    return np.asarray(out).dtype.name in CRenderer.ctypes


_FUNCTIONS = {}


def compiled(dtype, x_bcast=(False, False), y_bcast=(False, False)):
    """The tc.function of every applicable op for `dtype`, and the op names, built once."""
    key = (dtype, x_bcast, y_bcast)
    if key not in _FUNCTIONS:
        x, y = tc.tensor(dtype, x_bcast, name="x"), tc.tensor(dtype, y_bcast, name="y")
        names = [n for n in UNARY + BINARY + sorted(OTHER) if _applicable(n, dtype)]
        outs = [_numpy_expr(n)(x, y) for n in names]
        # without fusion every op is its own kernel: each op's C expression is what runs
        fn = tc.function([x, y], outs, on_unused_input="ignore", mode=tc.Mode("FAST_RUN").excluding("fusion"))
        _FUNCTIONS[key] = fn, names
    return _FUNCTIONS[key]


def _check(dtype, x, y, **bcast):
    fn, names = compiled(dtype, **bcast)
    with np.errstate(all="ignore"):
        got = fn(x, y)
        for name, g in zip(names, got):
            expected = np.asarray(_numpy_expr(name)(x, y))
            g = np.asarray(g)
            assert g.dtype == expected.dtype, f"{name}: dtype {g.dtype}, NumPy gives {expected.dtype}"
            assert g.shape == expected.shape, f"{name}: shape {g.shape}, NumPy gives {expected.shape}"
            tol = 2e-6 if expected.dtype == np.float32 else 1e-13
            np.testing.assert_allclose(g, expected, rtol=tol, atol=0, equal_nan=True, err_msg=name)
            if expected.dtype.kind == "f" and name not in ("fmax", "fmin"):  # signed zeros too
                # (NumPy's own fmax/fmin pick either zero: its SIMD and scalar loops differ)
                same = (np.signbit(g) == np.signbit(expected)) | np.isnan(expected)
                assert same.all(), f"{name}: signs differ from NumPy's: {g} vs {expected}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_runs_in_c(dtype):
    fn, names = compiled(dtype)
    backend = fn.executable.backend
    in_c = {node.op.name for node, kernel, *_ in backend.steps if kernel is not None}
    in_numpy = sorted({node.op.name for node, kernel, *_ in backend.steps if kernel is None})
    # the ops that stay on NumPy for these dtypes are the ones whose C expression declines them
    for name in in_numpy:
        assert name in ("divmod", "modf", "frexp") or _declined(name, dtype), f"{name} did not run in C"
    assert len(in_c) >= len(names) // 2


def _declined(name, dtype):
    node = [n for n, *_ in compiled(dtype)[0].executable.backend.steps if n.op.name == name][0]
    return not CRenderer().supports(node)


@pytest.mark.parametrize("dtype", DTYPES)
def test_contiguous(dtype):
    _check(dtype, _values(dtype, (3, 5), 0), _values(dtype, (3, 5), 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided(dtype):
    big = _values(dtype, (5, 11), 2)
    other = _values(dtype, (5, 3), 3)
    _check(dtype, big[::2, 1::3], other.T[:, ::-1][:, :4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast(dtype):
    _check(dtype, _values(dtype, (4, 3), 4), _values(dtype, (1, 3), 5))
    _check(dtype, _values(dtype, (4, 1), 6), _values(dtype, (1, 3), 7))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype):
    _check(dtype, _values(dtype, (0, 3), 8), _values(dtype, (0, 3), 9))
    _check(dtype, _values(dtype, (0, 3), 8), _values(dtype, (1, 3), 9))


@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_zero_dimensional(dtype):
    # 0-d inputs are read once, outside the loop: kernels of their own (every op)
    _check(dtype, _values(dtype, (), 10), _values(dtype, (), 11), x_bcast=(), y_bcast=())


@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_zero_dimensional_with_arrays(dtype):
    # a 0-d operand against arrays, and both 0-d (a few ops: the loads are what differs)
    x, y = tc.tensor(dtype, (), name="x"), tc.tensor(dtype, (False,), name="y")
    ops = [np.add, np.subtract, np.multiply, np.floor_divide, np.maximum, np.less, np.negative]
    fn = tc.function([x, y], [op(x, y) if op.nin == 2 else op(x) + op(y) for op in ops]
                     + [op(x, x) for op in ops if op.nin == 2])
    xv, yv = _values(dtype, (), 12), _values(dtype, (7,), 13)
    with np.errstate(all="ignore"):
        got = fn(xv, yv)
        expected = [op(xv, yv) if op.nin == 2 else op(xv) + op(yv) for op in ops] + \
            [op(xv, xv) for op in ops if op.nin == 2]
    for g, e in zip(got, expected):
        assert np.asarray(g).dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("pair", [("int32", "float32"), ("bool", "int64"), ("int64", "float64"),
                                  ("float32", "float64")])
def test_mixed_dtypes_promote_like_numpy(pair):
    x, y = tc.tensor(pair[0], (False,), name="x"), tc.tensor(pair[1], (False,), name="y")
    ops = [np.add, np.multiply, np.true_divide, np.maximum, np.less, np.floor_divide]
    fn = tc.function([x, y], [op(x, y) for op in ops])
    xv, yv = _values(pair[0], (6,), 14), _values(pair[1], (6,), 15)
    with np.errstate(all="ignore"):
        for op, got in zip(ops, fn(xv, yv)):
            expected = op(xv, yv)
            assert got.dtype == expected.dtype, op.__name__
            np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True, err_msg=op.__name__)


def test_weak_scalars_take_the_array_dtype():
    x = tc.fvector("x")
    fn = tc.function([x], [x * 2.5, x + 1, 3 - x, x / 3, x ** 2, (x > 0.5) & (x < 2)])
    xv = np.array([0.1, 1.5, -2.0, 3.0], np.float32)
    got = fn(xv)
    expected = [xv * 2.5, xv + 1, 3 - xv, xv / 3, xv ** 2, (xv > 0.5) & (xv < 2)]
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-6)


def test_integer_edge_cases_match_numpy():
    x, y = tc.lvector("x"), tc.lvector("y")
    ops = [np.floor_divide, np.remainder, np.fmod, np.left_shift, np.right_shift, np.gcd, np.lcm,
           np.absolute, np.negative]
    fn = tc.function([x, y], [op(x, y) if op.nin == 2 else op(x) for op in ops])
    imin = np.iinfo(np.int64).min
    xv = np.array([7, -7, 7, -7, imin, imin, 5, -5, 0, 3], np.int64)
    yv = np.array([2, 2, -2, -2, -1, 3, 64, 70, 0, -1], np.int64)
    with np.errstate(all="ignore"):
        for op, got in zip(ops, fn(xv, yv)):
            expected = op(xv, yv) if op.nin == 2 else op(xv)
            np.testing.assert_array_equal(got, expected, err_msg=op.__name__)


def test_all_ops_have_one_c_entry():
    # one entry per op: the table fills each op's slot
    for name, expr in C_EXPR.items():
        assert OPS[name].c_expr is expr
