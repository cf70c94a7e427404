"""Random programs (hypothesis) through the C backend (FAST_RUN) and the NumPy reference
interpreter (FAST_COMPILE): the same values and dtypes, and both raise (the same kind of
error, the one NumPy raises) or neither.

A program is a list of steps over a growing list of values, starting from 1-3 inputs of
mixed dtypes and broadcast-compatible shapes (some empty, some 0-d) in contiguous, reversed,
Fortran-ordered or strided memory: elementwise ops on pairs of values (broadcasting) or a
value and a Python scalar, where/clip, casts across dtypes, reductions, matrix products,
indexing, reshapes. A step that does not fit the dtypes and shapes at hand is left out
(tried on stand-in arrays); now and then one that does not (mismatched shapes) ends the
program, to compare errors. Half the programs are tc.function graphs whose inputs broadcast
only at run time (no broadcastable dimension in their types).
"""
import random
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tracec as tc

DTYPES = ["bool", "int8", "int32", "int64", "uint8", "float32", "float64"]
TOLERANCE = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-9}

UNARY = {
    "negative": lambda a: -a if a.dtype != np.bool_ else ~a,
    "absolute": np.abs,
    "exp": lambda a: np.exp(np.clip(a, -20, 20)),
    "sqrt": lambda a: np.sqrt(np.abs(a)),
    "log1p": lambda a: np.log1p(np.abs(a)),
    "tanh": np.tanh,
    "sin": np.sin,
    "floor": np.floor,
    "sign": np.sign,
    "square": np.square,
    "invert": np.invert,
    "logical_not": np.logical_not,
    "isnan": np.isnan,
    "sigmoid": lambda a: 1 / (1 + np.exp(-np.clip(a * 0.5, -30, 30))),
    "softplus": lambda a: np.log(1 + np.exp(np.clip(a * 0.5, -30, 30))),
    "transpose": lambda a: a.T,
    "ravel": lambda a: a.reshape(-1),
}
BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": lambda a, b: a / (np.abs(b) + 1),
    "floor_divide": np.floor_divide,
    "remainder": np.remainder,
    "power": lambda a, b: a ** 2 + b,
    "maximum": np.maximum,
    "fmin": np.fmin,
    "less": np.less,
    "equal": np.equal,
    "logical_and": np.logical_and,
    "bitwise_xor": np.bitwise_xor,
    "arctan2": np.arctan2,
    "hypot": np.hypot,
}
REDUCTIONS = ["sum", "prod", "mean", "max", "min", "any", "all", "argmax", "cumsum"]
SCALARS = [0, 1, 2, -3, 7, 0.5, -1.25, 3.0, True]


# -- steps: (text, fn, the values it reads); fn(values) -> new value, for NumPy and traced values alike.
# Choices come from a random.Random seeded by hypothesis: uniform over the ops (hypothesis's own
# draws favour the first of each list), and reproducible.
def _unary(rnd, pool):
    i, name = _pick(rnd, pool), rnd.choice(sorted(UNARY))
    return f"{name}(v{i})", lambda v: UNARY[name](v[i]), {i}


def _binary(rnd, pool):
    name, i = rnd.choice(sorted(BINARY)), _pick(rnd, pool)
    if rnd.random() < 0.5:
        c = rnd.choice(SCALARS)
        return f"{name}(v{i}, {c!r})", lambda v: BINARY[name](v[i], c), {i}
    j = _pick(rnd, pool)
    return f"{name}(v{i}, v{j})", lambda v: BINARY[name](v[i], v[j]), {i, j}


def _where(rnd, pool):
    i, j, k = (_pick(rnd, pool) for _ in range(3))
    c = rnd.choice(SCALARS)
    return f"where(v{i} > {c!r}, v{j}, v{k})", lambda v: np.where(v[i] > c, v[j], v[k]), {i, j, k}


def _clip(rnd, pool):
    i, lo = _pick(rnd, pool), rnd.choice([-2, -1, 0, 0.5])
    hi = lo + rnd.choice([1, 3, 2.5])
    return f"clip(v{i}, {lo}, {hi})", lambda v: np.clip(v[i], lo, hi), {i}


def _cast(rnd, pool):
    i, dtype = _pick(rnd, pool), rnd.choice(DTYPES)

    def cast(v):
        a = v[i]
        if a.dtype.kind == "f" and np.dtype(dtype).kind in "iu":  # out of range: undefined (NumPy warns)
            a = np.where(np.abs(a) < 100, a, 0)
        return a.astype(dtype)
    return f"v{i}.astype({dtype})", cast, {i}


def _reduce(rnd, pool):
    i, name = _pick(rnd, pool), rnd.choice(REDUCTIONS)
    axis = rnd.choice([None, 0, -1])
    if name in ("argmax", "cumsum"):
        return f"{name}(v{i}, axis={axis})", lambda v: getattr(np, name)(v[i], axis=axis), {i}
    keepdims = rnd.random() < 0.5
    return (f"{name}(v{i}, axis={axis}, keepdims={keepdims})",
            lambda v: getattr(np, name)(v[i], axis=axis, keepdims=keepdims), {i})


def _matmul(rnd, pool):
    i, j = _pick(rnd, pool), _pick(rnd, pool)
    form = rnd.choice(["a @ b.T", "a @ b[0]", "a.T @ b", "a @ w"])
    w = np.linspace(-1, 1, 12).reshape(4, 3)  # a constant of the graph
    fns = {"a @ b.T": lambda a, b: a @ b.T, "a @ b[0]": lambda a, b: a @ b[0],
           "a.T @ b": lambda a, b: a.T @ b, "a @ w": lambda a, b: a @ w}
    fn = fns[form]
    return f"{form} with a=v{i}, b=v{j}", lambda v: fn(v[i], v[j]), {i, j}


def _index(rnd, pool):
    i = _pick(rnd, pool)
    keys = {"[0]": lambda a: a[0], "[::-1]": lambda a: a[::-1], "[..., 1:]": lambda a: a[..., 1:],
            "[:, [0, -1]]": lambda a: a[:, [0, -1]], "[a > 0]": lambda a: a[a > 0]}
    key = rnd.choice(sorted(keys))
    return f"v{i}{key}", lambda v: keys[key](v[i]), {i}


def _mismatch(rnd, pool):
    i, j = _pick(rnd, pool), _pick(rnd, pool)
    return f"v{i} + v{j}[..., :2]", lambda v: v[i] + v[j][..., :2], {i, j}


STEPS = [_unary, _binary, _binary, _where, _clip, _cast, _reduce, _matmul, _index]


def _pick(rnd, pool):
    """A value, the recent ones more often (so chains get deep)."""
    n = len(pool)
    return rnd.choice([n - 1, max(0, n - 2), rnd.randrange(n)])


def _stand_in(value):
    return np.zeros(np.shape(value), np.asarray(value).dtype) if np.size(value) else np.asarray(value)


@st.composite
def programs(draw):
    """(inputs [(dtype, shape, layout)], steps [(text, fn)], the values returned: every step's
    that no later step reads, so no step is dead code, and the last; and the relative tolerance
    of the least precise float computed on the way: its rounding carries over into casts)."""
    rnd = random.Random(draw(st.integers(0, 2 ** 32 - 1)))
    rows = rnd.choice([3, 3, 3, 1, 0])
    shapes = [(rows, 4), (rows, 4), (1, 4), (rows, 1), (4,), ()]
    inputs = [(rnd.choice(DTYPES), rnd.choice(shapes), rnd.choice(["contiguous", "reversed", "fortran", "strided"]))
              for _ in range(rnd.randint(1, 3))]
    pool = [np.zeros(shape, dtype) for dtype, shape, _ in inputs]
    steps, read = [], set()
    for _ in range(rnd.randint(1, 10)):
        text, fn, uses = rnd.choice(STEPS)(rnd, pool)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = fn(pool)
        except Exception:  # noqa: BLE001 -- does not fit these dtypes or shapes: skipped
            continue
        steps.append((text, fn))
        read |= uses
        pool.append(_stand_in(value))
    if rnd.random() < 0.1:
        text, fn, uses = _mismatch(rnd, pool)  # (mostly) a shape error, to compare errors
        steps.append((text, fn))
        read |= uses
        pool.append(None)
    results = [k for k in range(len(inputs), len(pool)) if k not in read] or [len(pool) - 1]
    tolerance = max([TOLERANCE[a.dtype.name] for a in pool if a is not None and a.dtype.kind == "f"] or [0])
    return inputs, steps, results, tolerance


def _array(dtype, shape, layout, seed, specials):
    rng = np.random.default_rng(seed)
    big = tuple(2 * s for s in shape) if layout == "strided" else shape
    if dtype == "bool":
        a = rng.random(big) < 0.5
    elif np.dtype(dtype).kind in "iu":
        a = rng.integers(0 if dtype.startswith("u") else -5, 6, size=big).astype(dtype)
    else:
        a = (rng.standard_normal(big) * 2).astype(dtype)
        if specials and a.size:
            flat = a.reshape(-1)
            flat[rng.integers(0, a.size, 3)] = np.array([np.nan, np.inf, 0.0], dtype)
    if layout == "strided":
        return a[tuple(slice(None, None, 2) for _ in shape)]
    if layout == "reversed":
        return a[::-1] if a.ndim else a
    if layout == "fortran" and a.ndim > 1:  # (asfortranarray makes a 0-d array 1-d)
        return np.asfortranarray(a)
    return a


def _run(fn, args, twice):
    """The results of fn(*args) (FAST_RUN: of the second call too, which may reuse the first's
    buffers while the caller holds them), or the exception raised."""
    try:
        with np.errstate(all="ignore"):
            first = fn(*args)
            second = fn(*args) if twice else first
    except Exception as exc:  # noqa: BLE001
        return exc
    return first, second


def _builtin(exc):
    return next(cls for cls in type(exc).__mro__ if cls.__module__ == "builtins")


def _assert_close(got, ref, where, tolerance):
    g, r = np.asarray(got), np.asarray(ref)
    assert g.dtype == r.dtype and g.shape == r.shape, f"{where}: {g.dtype}{g.shape}, reference {r.dtype}{r.shape}"
    if r.dtype.kind == "f":
        finite = np.abs(r[np.isfinite(r)])
        tol = max(tolerance, TOLERANCE[r.dtype.name])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0  # (chains cancel: absolute error too)
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * scale, equal_nan=True, err_msg=where)
    else:
        np.testing.assert_array_equal(g, r, err_msg=where)


@settings(max_examples=100, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=programs(), dynamic=st.booleans(), specials=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_c_backend_agrees_with_the_interpreter(program, dynamic, specials, seed):
    inputs, steps, results, tolerance = program
    args = [_array(dtype, shape, layout, seed + k, specials) for k, (dtype, shape, layout) in enumerate(inputs)]

    def fn(*values):
        values = list(values)
        for _, step in steps:
            values.append(step(values))
        return [values[k] for k in results]

    text = "; ".join(f"v{len(inputs) + k} = {t}" for k, (t, _) in enumerate(steps)) + f"; return {results}"
    where = f"inputs {[(d, s, lay) for d, s, lay in inputs]}, dynamic={dynamic}: {text}"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(*args)
            numpy_error = None
        except Exception as exc:  # noqa: BLE001
            numpy_error = exc
        outcomes = {}
        for mode in ("FAST_RUN", "FAST_COMPILE"):
            if dynamic:  # a graph of symbolic inputs whose dimensions broadcast only at run time
                symbols = [tc.tensor(d, (False,) * len(s)) for d, s, _ in inputs]
                try:
                    compiled = tc.function(symbols, fn(*symbols), mode=mode, on_unused_input="ignore")
                except Exception as exc:  # noqa: BLE001
                    outcomes[mode] = exc
                    continue
            else:
                compiled = tc.compile(fn, mode=mode)
            outcomes[mode] = _run(compiled, args, twice=mode == "FAST_RUN")
    fast, reference = outcomes["FAST_RUN"], outcomes["FAST_COMPILE"]
    if numpy_error is not None:
        assert isinstance(reference, _builtin(numpy_error)), f"{where}: NumPy raises {numpy_error!r}, " \
                                                            f"FAST_COMPILE gives {reference!r}"
    if isinstance(reference, Exception):
        assert isinstance(fast, _builtin(reference)), f"{where}: FAST_COMPILE raises {reference!r}, " \
                                                     f"FAST_RUN gives {fast!r}"
        return
    assert not isinstance(fast, Exception), f"{where}: FAST_RUN raises {fast!r}; FAST_COMPILE does not"
    for call, values in zip(("first", "second"), fast):
        for k, (got, ref) in enumerate(zip(values, reference[0])):
            _assert_close(got, ref, f"{where}: result {k}, {call} call", tolerance)
