"""Shared helpers of the op tests: inputs, compile-and-compare, the op registry.

`check(fn, *args)` runs `fn` under NumPy and, compiled with `tc.compile`, in
the default mode and in FAST_COMPILE; results must agree in value, dtype and
shape, and so must every argument the function modified in place. Each op
that appears in a traced or optimized program is added to `SEEN_OPS`, which
`test_coverage.py` compares with the op table. In FAST_COMPILE (the NumPy
interpreter) every node's value must also fit its type's broadcastable pattern.
"""
import contextlib
import copy
import os
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.trace import interp
from tracec.trace.graph import toposort

HERE = os.path.dirname(os.path.abspath(__file__))
COVERAGE_FILE = os.path.join(HERE, "test_coverage.py")
REGISTRY_ENV = "TRACEC_OPS_SEEN_FILE"  # set by test_coverage when it reruns the suite in a subprocess

SEEN_OPS = set()      # op names seen in the programs traced by check()
ALL_ITEMS = set()     # node ids of the op tests collected in this session (filled by conftest)
EXECUTED = set()      # node ids of the op tests run in this process (filled by conftest)

MODES = (None, "FAST_COMPILE")  # None: the default mode (tc.config.mode)
DTYPES = ["float32", "float64", "int32", "int64", "bool"]
FLOAT_DTYPES = ["float32", "float64"]
INT_DTYPES = ["int32", "int64"]

# shape pairs for binary broadcasting
BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((1, 4), (3, 1)), ((), (3, 4)),
             ((2, 1, 4), (3, 1)), ((), ())]


def rand(shape, dtype, low=-3.0, high=3.0, seed=0, nonzero=False):
    """Deterministic small inputs of `dtype` in [low, high) (integers: [ceil(low), high))."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        out = rng.random(shape) < 0.5
        if nonzero:
            out = np.ones(shape, bool)
        return np.asarray(out)
    if dtype.kind in "iu":
        lo, hi = int(np.ceil(low)), int(np.ceil(high))
        out = rng.integers(lo, max(hi, lo + 1), size=shape).astype(dtype)
        if nonzero:
            out = np.where(out == 0, 1, out).astype(dtype)
        return np.asarray(out)
    out = rng.uniform(low, high, size=shape).astype(dtype)
    if nonzero:
        out = np.where(out == 0, 1, out).astype(dtype)
    return np.asarray(out)


def _tolerance(dtype, rtol, atol):
    if dtype == np.float32 or dtype == np.complex64 or dtype == np.float16:
        return (1e-5 if rtol is None else rtol), (1e-6 if atol is None else atol)
    return (1e-12 if rtol is None else rtol), (1e-12 if atol is None else atol)


def assert_same(got, expected, rtol=None, atol=None, values=True, where="result"):
    """Same structure, and for each leaf the same dtype, shape and (close) values."""
    if isinstance(expected, (tuple, list)):
        assert type(got) is type(expected), f"{where}: got {type(got).__name__}, expected {type(expected).__name__}"
        assert len(got) == len(expected), f"{where}: got {len(got)} items, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, rtol, atol, values, f"{where}[{i}]")
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), f"{where}: keys differ"
        for k in expected:
            assert_same(got[k], expected[k], rtol, atol, values, f"{where}[{k!r}]")
        return
    if expected is None:
        assert got is None, f"{where}: got {got!r}, expected None"
        return
    if isinstance(expected, np.ndarray) and expected.ndim > 0:
        assert isinstance(got, np.ndarray), f"{where}: got {type(got).__name__}, expected an ndarray"
    g, e = np.asarray(got), np.asarray(expected)
    assert g.dtype == e.dtype, f"{where}: dtype {g.dtype}, NumPy gives {e.dtype}"
    assert g.shape == e.shape, f"{where}: shape {g.shape}, NumPy gives {e.shape}"
    if not values:
        return
    if e.dtype.kind in "fc":
        r, a = _tolerance(e.dtype, rtol, atol)
        np.testing.assert_allclose(g, e, rtol=r, atol=a, equal_nan=True, err_msg=where)
    else:
        np.testing.assert_array_equal(g, e, err_msg=where)


def _programs(compiled, optimized=True):
    """The traced programs of `compiled` and (optimized) the programs its backends run."""
    programs = list(compiled.programs)
    if optimized:
        programs += tc.opt.optimized_program(compiled)
    return programs


def ops_of(compiled, optimized=False):
    """Names of the ops in the traced (and optionally the optimized) programs of `compiled`,
    including those inside fused and in-place elementwise nodes."""
    names = set()
    for program in _programs(compiled, optimized):
        for node in toposort(program.roots()):
            names.add(node.op.name)
            params = node.params
            if node.op.name == "inplace_elemwise":
                names.add(params["op"])
                params = params["params"]
            if "inner" in params and hasattr(params["inner"], "nodes"):
                names.update(n.op.name for n in params["inner"].nodes)
    return names


def record(compiled):
    """Add the op names of `compiled`'s traced and optimized programs to SEEN_OPS."""
    SEEN_OPS.update(ops_of(compiled, optimized=True))


@contextlib.contextmanager
def quiet():
    """No floating-point warnings (domain edges, ddof >= n): NumPy and tracec must agree anyway."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@contextlib.contextmanager
def checked_nodes():
    """While active, every node the interpreter runs must honour its type's broadcastable
    pattern: a dimension the type rule calls broadcastable has length 1 in the value."""
    original = interp.run_node

    def run_node(node, values):
        outs = original(node, values)
        for var, out in zip(node.outputs, outs):
            shape = np.shape(out)
            assert len(shape) == var.ndim, f"{node.op.name}: {len(shape)}-d value for type {var.type}"
            wrong = [a for a, (b, s) in enumerate(zip(var.broadcastable, shape)) if b and s != 1]
            assert not wrong, (f"{node.op.name}: the type rule says {var.type.short()} (dims {wrong} "
                               f"broadcastable) but the value has shape {shape}; params {dict(node.params)}")
        return outs
    interp.run_node = run_node
    try:
        yield
    finally:
        interp.run_node = original


def _copy_args(args):
    return copy.deepcopy(args)


def check(fn, *args, static_argnums=(), rtol=None, atol=None, values=True, expect_ops=(),
          reference=None, **kwargs):
    """Compare `fn(*args, **kwargs)` under NumPy with its compiled versions (all MODES).

    Arguments are copied for each call; arguments the function modifies must
    end up equal too. `expect_ops`: op names that must appear in the traced or
    optimized programs (guards against a test exercising a different op than
    intended). `reference`: a NumPy function giving the expected result, for
    functions that only mean something when traced. Returns the compiled
    function of the default mode.
    """
    np_args, np_kwargs = _copy_args(args), _copy_args(kwargs)
    with quiet():
        expected = (reference or fn)(*np_args, **np_kwargs)
    results, first = [], None
    for mode in MODES:
        compiled = tc.compile(fn, mode=mode, static_argnums=static_argnums)
        tc_args, tc_kwargs = _copy_args(args), _copy_args(kwargs)
        with quiet(), checked_nodes():
            got = compiled(*tc_args, **tc_kwargs)
        record(compiled)
        label = f"mode={mode or 'default'}"
        assert_same(got, expected, rtol, atol, values, f"{label}: result")
        assert_same(tc_args, np_args, rtol, atol, values, f"{label}: arguments after the call")
        assert_same(tc_kwargs, np_kwargs, rtol, atol, values, f"{label}: keyword arguments after the call")
        results.append(got)
        first = first or compiled
    assert_same(results[1], results[0], rtol, atol, values, "FAST_COMPILE vs default mode")
    used = ops_of(first, optimized=True)
    missing = set(expect_ops) - used
    assert not missing, f"the compiled programs do not use {sorted(missing)}: {sorted(used)}"
    return first


def check_raises(exc, fn, *args, static_argnums=(), match=None, **kwargs):
    """NumPy raises `exc` for `fn(*args)`, and so does the compiled function (tracing or running)."""
    with quiet():
        with pytest.raises(exc):
            fn(*_copy_args(args), **_copy_args(kwargs))
        compiled = tc.compile(fn, static_argnums=static_argnums)
        with pytest.raises(exc, match=match):
            compiled(*_copy_args(args), **_copy_args(kwargs))


def numpy_raises(fn, *args, **kwargs):
    """The exception NumPy raises for fn(*args), or None."""
    try:
        with quiet():
            fn(*_copy_args(args), **_copy_args(kwargs))
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


def builtin_class(exc):
    """The first built-in exception class of `exc` (NumPy's UFuncTypeError -> TypeError)."""
    return next(cls for cls in type(exc).__mro__ if cls.__module__ == "builtins")


def check_same_error(fn, *args, **kwargs):
    """If NumPy raises for fn(*args), the compiled function raises the same (built-in) class
    and True is returned; otherwise nothing is checked and False is returned."""
    err = numpy_raises(fn, *args, **kwargs)
    if err is None:
        return False
    check_raises(builtin_class(err), fn, *args, **kwargs)
    return True
