"""The whole op table through the C backend (FAST_RUN, lone elementwise nodes compiled too,
kernels compiled at once) against the NumPy reference interpreter (FAST_COMPILE): values,
dtypes and errors, over contiguous, strided, transposed, broadcast, empty and 0-d inputs.

Every op has a few cases: functions of two arrays x, y of one dtype, written as users write
them (the optimizer-introduced ops through the expressions it rewrites). For one dtype and the
layouts whose inputs have the same types, every case NumPy runs without raising goes into one
tc.compile function per mode, so one compile covers them all; cases where NumPy raises run one
by one (their kernels compiled together first). A test is one op and one layout, over all dtypes.
Float results agree to a few units in the last place (C's libm and NumPy's SIMD loops differ
there), with NaN in the same places and zeros of the same sign; others exactly.
"""
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.cgen import executor
from tracec.cgen.executor import BackendWarning
from tracec.cgen.render import CRenderer
from tracec.trace.graph import toposort
from tracec.trace.ops import OPS

DTYPES = ["bool", "int8", "int32", "int64", "uint64", "float32", "float64"]  # (uint8: as int8, uint64)


# -- inputs --------------------------------------------------------------------------------
def _values(dtype, shape, seed):
    """Random values of `dtype` with the edge values (NaN, infinities, signed zeros, integer
    extremes) at the front, rolled by `seed` so x and y pair them differently."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -5), 6, size=shape).astype(dtype)
        special = np.array([info.min, info.max, 0, 1, 2, info.max - 1] + ([-1, -2] if info.min else []), dtype)
    else:
        x = rng.uniform(-4, 4, size=shape).astype(dtype)
        special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e30], dtype)
    flat = x.reshape(-1)
    k = min(flat.size, special.size)
    flat[:k] = np.roll(special, seed)[:k]
    return x


LAYOUTS = {  # name -> dtype -> (x, y)
    "contiguous": lambda d: (_values(d, (3, 4), 0), _values(d, (3, 4), 1)),
    "strided": lambda d: (_values(d, (6, 4), 2)[::2], _values(d, (3, 8), 3)[:, ::-2]),
    "transposed": lambda d: (_values(d, (4, 3), 4).T, _values(d, (4, 3), 5).T),
    "broadcast": lambda d: (_values(d, (3, 1), 6), _values(d, (1, 4), 7)),
    "empty": lambda d: (_values(d, (0, 3), 8), _values(d, (0, 3), 9)),
    "0d": lambda d: (_values(d, (), 10), _values(d, (), 11)),
}


def _types(layout, dtype):
    """What tc.compile specializes on: each argument's broadcastable pattern (length-1 dims)."""
    return tuple(tuple(s == 1 for s in a.shape) for a in LAYOUTS[layout](dtype))


# -- the cases -----------------------------------------------------------------------------
class Case:
    """`fn(x, y)` built on traced arrays; `numpy(x, y)` raises on arrays where the case should
    (default: `fn` itself; None: no NumPy equivalent, only the two backends are compared).
    `zero_d=False`: not run on 0-d inputs (each 0-d kernel compiles on its own, see LAYOUT_DTYPES)."""

    def __init__(self, fn, numpy="same", zero_d=True):
        self.fn, self.zero_d = fn, zero_d
        self.numpy = fn if numpy == "same" else numpy


def _ufunc_cases(ufunc):
    if ufunc.nin == 1:
        return [Case(lambda x, y: ufunc(x))]
    # a weak Python int operand is a constant input of the kernel
    return [Case(lambda x, y: ufunc(x, y)), Case(lambda x, y: ufunc(x, 3), zero_d=False)]


def _reduction(name, keepdims=True):
    f = getattr(np, name)
    kw = {"keepdims": True} if keepdims else {}
    return [Case(lambda x, y: f(x)), Case(lambda x, y: f(x, axis=-1)), Case(lambda x, y: f(x * 1, axis=0, **kw))]


def _small(x):
    """Floats in [-1.5, 1.5] from any dtype (integer inputs meet the optimizer's stable forms
    in the known-bug tests below)."""
    return np.clip(x * 0.5, -1.5, 1.5)


def _castable(x, dtype):
    """x, with the values a cast to `dtype` leaves undefined (NumPy warns 'invalid value
    encountered in cast' and its own SIMD and scalar loops disagree) replaced by 0."""
    if x.dtype.kind == "f" and np.dtype(dtype).kind in "iu":
        return np.where(np.abs(x) < 1e9, x, 0)
    return x


def _copy_and_set(x, y):
    z = x.copy()
    z[0] = y[-1]
    z[..., -1:] = x[..., :1]
    return z


def _set_masked(x, y):
    z = x.copy()
    z[x > y] = y[x > y]
    return z


def _scan_sum(x, y):
    out, _ = tc.scan(lambda row, acc: acc + row, sequences=x, outputs_info=np.zeros_like(x[0]))
    return out


def _branches(x, y):
    return tc.ifelse(np.sum(x) > np.sum(y), x * 2, x - y)


def _pick(x, y):
    return x * 2 if np.sum(x) > np.sum(y) else x - y


def _loop_total(x, y):  # a converted Python loop: its final value is read with scan_last
    total = y * 0
    for _ in range(x.size):
        total = total + y
    return total


def _last_row_grad(g, stacked):  # what scan_last_grad computes: zeros, the last row (if any) g
    out = np.zeros_like(stacked)
    out[-1:] = g
    return out


def _grad_of_product(x, y):
    return tc.grad(np.sum(x * y), [x])[0]  # summed back to x's shape: sum_to


def _jacobian(x, y):
    return tc.jacobian(lambda a: np.sin(a) * np.sum(a))(x)


CASES = {name: _ufunc_cases(getattr(np, name))
         for name, op in OPS.items() if op.kind == "elemwise" and isinstance(getattr(np, name, None), np.ufunc)}
CASES.update({
    # the other elementwise ops
    "where": [Case(lambda x, y: np.where(x > y, x, y)), Case(lambda x, y: np.where(x, y, 0))],
    "clip": [Case(lambda x, y: np.clip(x, y, y * 2)), Case(lambda x, y: np.clip(x, -1, 2)),
             Case(lambda x, y: np.clip(x, None, y))],
    "cast": [Case(lambda x, y, t=t: _castable(x, t).astype(t))
             for t in ("bool", "int8", "uint8", "int32", "int64", "uint64", "float32", "float64")],
    # the optimizer's stable forms, on clipped inputs: where exp overflows or 1 + exp(x) rounds,
    # the rewritten form is right and the naive one FAST_COMPILE runs is not
    "softplus": [Case(lambda x, y: np.log(1 + np.exp(_small(x)))),
                 Case(lambda x, y: np.log1p(np.exp(-_small(y))))],
    "sigmoid": [Case(lambda x, y: 1 / (1 + np.exp(-_small(x)))),
                Case(lambda x, y: 1.0 / (1.0 + np.exp(_small(y))) * 2)],
    "fused_elemwise": [Case(lambda x, y: np.exp(-x * x / 2) * y + 1), Case(lambda x, y: (x * 2 + y) * (x - y)),
                       Case(lambda x, y: np.where(x > 0, np.sqrt(np.abs(x)) * y, -y) - 0.5)],
    # reductions
    **{name: _reduction(name) for name in ("sum", "prod", "mean", "var", "std", "max", "min", "argmax",
                                           "argmin", "any", "all")},
    **{name: _reduction(name, keepdims=False) for name in ("cumsum", "cumprod")},
    "logsumexp": [Case(lambda x, y: np.log(np.sum(np.exp(_small(x)), axis=-1))),
                  Case(lambda x, y: np.log(np.exp(_small(x)).sum(axis=0, keepdims=True)))],
    # products
    "matmul": [Case(lambda x, y: x @ y.T), Case(lambda x, y: x.T @ y), Case(lambda x, y: x @ y)],
    "dot": [Case(lambda x, y: np.dot(x, y.T)), Case(lambda x, y: np.dot(x, y[0]))],
    "tensordot": [Case(lambda x, y: np.tensordot(x, y, axes=([-1], [-1]))),
                  Case(lambda x, y: np.tensordot(x, y, axes=0))],
    "outer": [Case(lambda x, y: np.outer(x, y))],
    "einsum": [Case(lambda x, y: np.einsum("ij,kj->ik", x, y)), Case(lambda x, y: np.einsum("ij,ij->i", x, y)),
               Case(lambda x, y: np.einsum("ij->j", x))],
    # (a subtracted integer product is the known bug test_gemm_of_integer_difference)
    "gemm": [Case(lambda x, y: x @ y.T + 1.5 * (y @ x.T)),
             Case(lambda x, y: 2.0 * np.dot(x, y.T) - 0.5 * (y @ y.T))],
    "gemv": [Case(lambda x, y: x @ y[0] + x[:, 0]), Case(lambda x, y: 3.0 * np.dot(x.T, y[:, -1]) + y[0])],
    "inplace_elemwise": [Case(lambda x, y: np.exp(x @ y.T)), Case(lambda x, y: (x @ y.T) * 2 + 1)],
    # shapes
    "shape_i": [Case(lambda x, y: x * x.shape[-1]), Case(lambda x, y: x.reshape(x.shape[0], -1))],
    "reshape": [Case(lambda x, y: x.reshape(-1)), Case(lambda x, y: x.reshape(1, -1) * y.reshape(1, -1))],
    "transpose": [Case(lambda x, y: x.T), Case(lambda x, y: x.T * y.T)],
    "expand_dims": [Case(lambda x, y: np.expand_dims(x, 0)), Case(lambda x, y: np.expand_dims(x, -1) - y)],
    "squeeze": [Case(lambda x, y: np.squeeze(x)), Case(lambda x, y: np.squeeze(x, axis=-1))],
    "broadcast_to": [Case(lambda x, y: np.broadcast_to(x, (2,) + x.shape)),
                     Case(lambda x, y: np.broadcast_to(y, (x.shape[-1],) + y.shape))],
    "concatenate": [Case(lambda x, y: np.concatenate([x, y])), Case(lambda x, y: np.concatenate([x, y], axis=-1))],
    "stack": [Case(lambda x, y: np.stack([x, y])), Case(lambda x, y: np.stack([x, y], axis=-1))],
    "split": [Case(lambda x, y: np.split(x, 2, axis=-1)), Case(lambda x, y: np.split(y, [1], axis=0))],
    "flip": [Case(lambda x, y: np.flip(x)), Case(lambda x, y: np.flip(x, -1) + y)],
    "roll": [Case(lambda x, y: np.roll(x, 1)), Case(lambda x, y: np.roll(x, -2, axis=-1))],
    "tile": [Case(lambda x, y: np.tile(x, 2)), Case(lambda x, y: np.tile(x, (2, 1)))],
    "repeat": [Case(lambda x, y: np.repeat(x, 2)), Case(lambda x, y: np.repeat(x, 2, axis=-1))],
    "sum_to": [Case(_grad_of_product, numpy=None)],
    # indexing
    "getitem": [Case(lambda x, y: x[0]), Case(lambda x, y: x[::-1, 1:]), Case(lambda x, y: x[..., [0, -1]]),
                Case(lambda x, y: x[x > y])],
    "setitem": [Case(_copy_and_set), Case(_set_masked)],
    "nonzero": [Case(lambda x, y: np.nonzero(x)), Case(lambda x, y: np.nonzero(x > y))],
    # creation
    "alloc": [Case(lambda x, y: np.zeros_like(x)), Case(lambda x, y: np.full(x.shape, 2, dtype=x.dtype) + y)],
    "arange": [Case(lambda x, y: np.arange(x.size)), Case(lambda x, y: np.arange(x.size, dtype=x.dtype))],
    "eye": [Case(lambda x, y: np.eye(x.size)), Case(lambda x, y: np.eye(x.size, dtype=x.dtype) * 2)],
    "linspace": [Case(lambda x, y: np.linspace(0, 1, x.size))],
    # control flow, debugging, differentiation
    "scan": [Case(_scan_sum, numpy=None)],
    "ifelse": [Case(_branches, numpy=_pick)],
    "scan_last": [Case(_loop_total)],
    "scan_last_grad": [Case(lambda x, y: tc.Tensor(OPS["scan_last_grad"]((x * 2).variable, np.expand_dims(y, 0).variable)),
                            numpy=lambda x, y: _last_row_grad(x * 2, np.expand_dims(y, 0)))],
    "debug_print": [Case(lambda x, y: tc.debug.print(x, "x") * 1, numpy=lambda x, y: x * 1)],
    "debug_breakpoint": [Case(lambda x, y: tc.debug.breakpoint(x.size < 0, x) + y,  # never stops
                              numpy=lambda x, y: x + y)],
    "stop_gradient": [Case(lambda x, y: tc.stop_gradient(x) * 2, numpy=lambda x, y: x * 2)],
    "jacobian": [Case(_jacobian, numpy=None)],
    # (a result the optimizer folds to a constant is copied: each call owns its array)
    "copy": [Case(lambda x, y: (x * 1, tc.Tensor(tc.Constant(np.arange(3.0))) * 2),
                  numpy=lambda x, y: x * 1)],
})
CASE_LIST = [(name, i, case) for name in sorted(CASES) for i, case in enumerate(CASES[name])]
POSITION = {(name, i): k for k, (name, i, _) in enumerate(CASE_LIST)}


# -- running the cases ---------------------------------------------------------------------
MODES = ("FAST_RUN", "FAST_COMPILE")
CHUNK = 48  # cases sharing one pair of inputs; kernels reading the same array may merge (see Batch)


def _flatten(result):
    if isinstance(result, (tuple, list)):
        return [leaf for r in result for leaf in _flatten(r)]
    return [result]


def _quiet():
    """Floating-point conditions are compared elsewhere (test_floating_point_warnings)."""
    return np.errstate(all="ignore")


def _numpy_outcome(fn, x, y):
    try:
        fn(x.copy(), y.copy())
    except Exception as exc:  # noqa: BLE001 -- any exception is an outcome to compare
        return exc
    return None


class Batch:
    """The cases `keys` in one tc.compile function under `mode`.

    Every `chunk` cases read their own pair of arguments (equal arrays, not the same ones,
    which tc.compile would trace as one argument): the optimizer merges kernels that read a
    common array into one multi-output kernel, and a chunk bounds how large such a kernel
    gets, so each stays one the native runtime takes, while one compile covers all of them.
    Chunks go by place in the case table, so a case missing from one batch leaves the kernels
    of the others as they were; cases with an op the C renderer declines (`native[key]` false)
    get chunks of their own, or a kernel merged with such an op would run through NumPy whole.
    """

    def __init__(self, keys, mode, chunk=CHUNK, native=None):
        self.keys, self.mode = list(keys), mode
        slots, plan = {}, []
        for key in self.keys:
            slot = slots.setdefault((native is None or native[key], POSITION[key] // chunk), len(slots))
            plan.append((CASES[key[0]][key[1]].fn, 2 * slot))
        self.n_pairs = len(slots)

        def cases(*args):
            return [_flatten(fn(args[at], args[at + 1])) for fn, at in plan]
        self.fn = tc.compile(cases, mode=mode)

    def run(self, layout, dtype):
        """{key: (values of the first call, of the second)} or the exception raised, on the
        inputs of `layout`. FAST_RUN is called twice: the second call may reuse the buffers of
        the first, which the caller holds."""
        args = [a for _ in range(self.n_pairs) for a in LAYOUTS[layout](dtype)]
        try:
            first = self.fn(*args)
            second = self.fn(*args) if self.mode == "FAST_RUN" else first
        except Exception as exc:  # noqa: BLE001
            return exc
        return {k: (a, b) for k, a, b in zip(self.keys, first, second)}


def _renders(dtype, types, key):
    """Whether the C renderer takes every elementwise node the case `key` builds on inputs of
    `types` (traced here on symbolic inputs; a case that does not trace so is let be)."""
    inputs = [tc.tensor(dtype, b) for b in types]
    try:
        outputs = [o.variable for o in _flatten(CASES[key[0]][key[1]].fn(*inputs)) if isinstance(o, tc.Tensor)]
    except Exception:  # noqa: BLE001
        return True
    renderer = CRenderer()
    return all(renderer.supports(node) for node in toposort(outputs) if node.op.kind == "elemwise")


def _one(result, key):
    return result if isinstance(result, Exception) else result[key]


def _culprits(keys, run):
    """The keys for which `run(keys)` raises (bisecting: few raise, many cases run)."""
    if not isinstance(run(keys), Exception):
        return []
    if len(keys) == 1:
        return list(keys)
    half = len(keys) // 2
    return _culprits(keys[:half], run) + _culprits(keys[half:], run)


class Group:
    """Every case for one dtype over the layouts whose inputs have the same types (so the same
    compiled functions serve them all): `numpy[layout][key]` (the exception NumPy raises, or
    None), `results[layout][key][mode]` ((first call, second call) values, or the exception),
    and the BackendWarnings (generated C that did not compile) seen meanwhile.

    Cases NumPy runs for every layout go into one Batch per mode; the others, and any the
    interpreter refuses, run one by one, their kernels compiled together beforehand."""

    def __init__(self, dtype, layouts):
        arrays = {layout: LAYOUTS[layout](dtype) for layout in layouts}
        zero_d = next(iter(arrays.values()))[0].ndim == 0
        keys = [(name, i) for name, i, case in CASE_LIST if case.zero_d or not zero_d]
        self.results = {layout: {} for layout in layouts}
        with _quiet(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BackendWarning)
            self.numpy = {layout: {k: _numpy_outcome(CASES[k[0]][k[1]].numpy, x, y)
                                   if CASES[k[0]][k[1]].numpy else None for k in keys}
                          for layout, (x, y) in arrays.items()}
            batch = [k for k in keys if all(self.numpy[layout][k] is None for layout in layouts)]
            # the interpreter first (nothing to compile): what it refuses (a static type it cannot
            # know, a feature not built) leaves the batch, so the batch runs in one piece in both modes
            reference = Batch(batch, "FAST_COMPILE")
            for layout in layouts:
                if isinstance(reference.run(layout, dtype), Exception):
                    refused = _culprits(batch, lambda keys: Batch(keys, "FAST_COMPILE").run(layout, dtype))
                    batch = [k for k in batch if k not in refused]
                    reference = Batch(batch, "FAST_COMPILE")
            first = {layout: reference.run(layout, dtype) for layout in layouts}
            self.renders = {k: _renders(dtype, _types(layouts[0], dtype), k) for k in batch}
            singles = [k for k in keys if k not in batch]
            alone = {k: {mode: Batch([k], mode) for mode in MODES} for k in singles}
            self._precompile(singles, alone, layouts[0], dtype)
            self.native = Batch(batch, "FAST_RUN", native=self.renders)
            for layout in layouts:
                runs = {"FAST_RUN": self.native.run(layout, dtype), "FAST_COMPILE": first[layout]}
                results = self.results[layout]
                for k in batch:
                    if isinstance(runs["FAST_RUN"], Exception):  # which case? (a bug: compiles one by one)
                        results[k] = {"FAST_RUN": _one(Batch([k], "FAST_RUN").run(layout, dtype), k),
                                      "FAST_COMPILE": runs["FAST_COMPILE"][k]}
                    else:
                        results[k] = {mode: runs[mode][k] for mode in MODES}
                for k in singles:
                    results[k] = {mode: _one(alone[k][mode].run(layout, dtype), k) for mode in MODES}
        self.warnings = [str(w.message) for w in caught if issubclass(w.category, BackendWarning)]

    @staticmethod
    def _precompile(singles, alone, layout, dtype):
        """Compile the kernels of the cases that run alone in one go: a function of all those
        that trace, each on arguments of its own (called once, to trace; it may well raise)."""
        traced = []
        for k in singles:
            alone[k]["FAST_COMPILE"].run(layout, dtype)
            if alone[k]["FAST_COMPILE"].fn.programs:  # traced (then perhaps raised running)
                traced.append(k)
        Batch(traced, "FAST_RUN", chunk=1).run(layout, dtype)


# Which dtypes each layout runs (0-d kernels are not merged, so each compiles on its own:
# the costliest layout runs fewer dtypes).
LAYOUT_DTYPES = {layout: DTYPES for layout in LAYOUTS}
LAYOUT_DTYPES["0d"] = ["int64", "float64"]
_GROUPS = {}


def group_for(dtype, layout):
    """The Group of `dtype` holding `layout` (built with every layout of the same input types)."""
    if (dtype, layout) not in _GROUPS:
        same = [lay for lay in LAYOUTS
                if dtype in LAYOUT_DTYPES[lay] and _types(lay, dtype) == _types(layout, dtype)]
        group = Group(dtype, same)
        for lay in same:
            _GROUPS[dtype, lay] = group
    return _GROUPS[dtype, layout]


# -- comparing -----------------------------------------------------------------------------
def _builtin(exc):
    """The first built-in class of `exc` (NumPy's UFuncTypeError -> TypeError, AxisError -> ValueError)."""
    return next(cls for cls in type(exc).__mro__ if cls.__module__ == "builtins")


def _describe(exc):
    return f"{type(exc).__name__}: {str(exc)[:300]}"


TOLERANCE = {"float16": 1e-2, "float32": 4e-6, "float64": 1e-13}


def _same_values(got, ref, where, op):
    """None if `got` equals the reference value `ref` (dtype, type, shape, values), else why not."""
    g, r = np.asarray(got), np.asarray(ref)
    if g.dtype != r.dtype:
        return f"{where}: dtype {g.dtype}, FAST_COMPILE gives {r.dtype}"
    if type(got) is not type(ref):
        return f"{where}: a {type(got).__name__}, FAST_COMPILE gives a {type(ref).__name__}"
    if g.shape != r.shape:
        return f"{where}: shape {g.shape}, FAST_COMPILE gives {r.shape}"
    try:
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=TOLERANCE[r.dtype.name], atol=0, equal_nan=True)
            zeros = (r == 0) & (np.signbit(g) != np.signbit(r))
            # (NumPy's own fmax/fmin pick either zero of a pair: its SIMD and scalar loops differ)
            assert op in ("fmax", "fmin") or not zeros.any(), f"signed zeros differ at {np.argwhere(zeros)[:4]}"
        else:
            np.testing.assert_array_equal(g, r)
    except AssertionError as exc:
        return f"{where}: values differ\n{exc}\nFAST_RUN {g!r}\nFAST_COMPILE {r!r}"
    return None


def compare(name, i, dtype, layout):
    """Why FAST_RUN and FAST_COMPILE (and, for errors, NumPy) disagree on case i of op `name`, or None."""
    g = group_for(dtype, layout)
    where = f"{name} case {i} ({dtype}, {layout})"
    if (name, i) not in g.results[layout]:
        return None  # not run for this layout
    expected, outcome = g.numpy[layout][name, i], g.results[layout][name, i]
    ref, got = outcome["FAST_COMPILE"], outcome["FAST_RUN"]
    if isinstance(expected, Exception):
        if not isinstance(ref, Exception):
            return f"{where}: NumPy raises {_describe(expected)}; FAST_COMPILE returns {ref[0]!r}"
        if not isinstance(ref, _builtin(expected)):
            return f"{where}: NumPy raises {_describe(expected)}; FAST_COMPILE raises {_describe(ref)}"
    if isinstance(ref, Exception):
        if not isinstance(got, Exception):
            return f"{where}: FAST_COMPILE raises {_describe(ref)}; FAST_RUN returns {got[0]!r}"
        if not isinstance(got, _builtin(ref)):
            return f"{where}: FAST_COMPILE raises {_describe(ref)}; FAST_RUN raises {_describe(got)}"
        if __file__ in str(ref) and __file__ not in str(got):  # the user's line, even from a kernel
            return f"{where}: FAST_RUN's error does not name the source line: {_describe(got)}"
        return None
    if isinstance(got, Exception):
        return f"{where}: FAST_RUN raises {_describe(got)}; FAST_COMPILE returns {ref[0]!r}"
    for call, values in zip(("first call", "second call"), got):
        for k, (v, r) in enumerate(zip(values, ref[0])):
            problem = _same_values(v, r, f"{where}, output {k}, {call}", name)
            if problem:
                return problem
    return None


KNOWN_BUGS = {}  # (op, layout) -> "file:line, what": cases xfailed until fixed


def _params():
    for name in sorted(CASES):
        for layout in LAYOUTS:
            reason = KNOWN_BUGS.get((name, layout))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, layout, id=f"{name}-{layout}", marks=marks)


@pytest.mark.parametrize("name,layout", list(_params()))
def test_op(name, layout):
    problems = [p for dtype in LAYOUT_DTYPES[layout] for i in range(len(CASES[name]))
                if (p := compare(name, i, dtype, layout))]
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_generated_c_compiles(layout):
    problems = [w for dtype in LAYOUT_DTYPES[layout] for w in group_for(dtype, layout).warnings]
    assert not problems, "\n".join(problems)


def _native_steps(fn):
    """(op name, runs native code) of each step of a traced FAST_RUN function, from its
    backend's description (the one place that says which nodes run C and which NumPy)."""
    (_, executable), = fn._cache.values()
    return [(line.split()[0], "NumPy" not in line) for line in executable.backend.describe().splitlines()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cases_the_renderer_takes_run_native_code(dtype):
    # a guard against comparing NumPy with itself: the kernels of the cases whose elementwise
    # ops all render (see Batch) really run in C
    g = group_for(dtype, "contiguous")
    keys = [k for k in g.native.keys if g.renders[k]]
    with _quiet():
        batch = Batch(keys, "FAST_RUN", native=g.renders)
        batch.run("contiguous", dtype)
    steps = _native_steps(batch.fn)
    kernels = [native for op, native in steps if op in ("fused_elemwise", "inplace_elemwise")]
    assert kernels and all(kernels), steps
    assert sum(native for _, native in steps) >= 5, steps
    # the description says C also for kernels the runtime leaves to NumPy for having more
    # arguments (inputs, constants, outputs) than it takes: none of these has
    (program,) = tc.opt.optimized_program(batch.fn)
    for node in toposort(program.roots(), stop=program.all_inputs()):
        if node.op.name == "fused_elemwise":
            constants = {id(v) for n in node.params["inner"].nodes for v in n.inputs if isinstance(v, tc.Constant)}
            limit = getattr(executor, "MAX_KERNEL_ARGS", 64)  # the runtime's, where it says
            assert len(node.inputs) + len(constants) + len(node.outputs) <= limit, node


# -- floating-point warnings ------------------------------------------------------------------
# Ops whose NumPy loops warn (divide by zero, overflow, invalid value) on the edge values of
# _values: those whose flags come from tracec's own C (tc_kernel.h helpers, quiet comparisons,
# casts) and a few libm ones. Each case runs as a lone kernel (inputs of its own), so a flag
# one kernel misses is not hidden by another op of a merged kernel raising its own.
FP_OPS = ["divide", "floor_divide", "remainder", "fmod", "power", "reciprocal", "sqrt", "log", "exp",
          "arccos", "logaddexp", "maximum", "less", "spacing", "ldexp", "cast"]
FP_DTYPES = ["int64", "float64"]
_FP_BATCHES = {}


def _fp_batches(dtype):
    """{mode: Batch} of every FP_OPS case that traces and renders for `dtype`, one kernel each."""
    if dtype not in _FP_BATCHES:
        g = group_for(dtype, "contiguous")
        # (not x ** 3: FAST_RUN multiplies, so NumPy's overflow warning names multiply)
        keys = [(name, i) for name in FP_OPS for i in range(len(CASES[name])) if (name, i) != ("power", 1)
                and g.renders.get((name, i)) and g.numpy["contiguous"][name, i] is None]
        with _quiet():
            _FP_BATCHES[dtype] = {mode: Batch(keys, mode, chunk=1) for mode in MODES}
    return _FP_BATCHES[dtype]


def _warnings_of(batch, dtype):
    with np.errstate(all="warn"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch.run("contiguous", dtype)
    # the text NumPy gives ("divide by zero encountered in log"), without a location after it
    return sorted({(w.category.__name__, str(w.message).split(" (at ")[0]) for w in caught
                   if issubclass(w.category, RuntimeWarning) and not issubclass(w.category, BackendWarning)})


@pytest.mark.parametrize("dtype", FP_DTYPES)
def test_floating_point_warnings(dtype):
    # every warning NumPy gives, the C kernels give (they run NumPy again when a flag is raised
    # and np.errstate does not ignore it: a flag C misses is a warning lost)
    batches = _fp_batches(dtype)
    with _quiet():
        batches["FAST_RUN"].run("contiguous", dtype)  # compiled (and traced) first: warnings of the calls only
    got, expected = _warnings_of(batches["FAST_RUN"], dtype), _warnings_of(batches["FAST_COMPILE"], dtype)
    assert got == expected, (f"FAST_RUN misses {sorted(set(expected) - set(got))}, "
                             f"adds {sorted(set(got) - set(expected))}")


# -- the table is covered ----------------------------------------------------------------------
def _op_names(program):
    """Names of the ops of `program`, with those inside fused and in-place kernels."""
    names = set()
    for node in toposort(program.roots(), stop=program.all_inputs()):
        names.add(node.op.name)
        params = node.params
        if node.op.name == "inplace_elemwise":
            names.add(params["op"])
            params = params["params"]
        if "inner" in params and hasattr(params["inner"], "nodes"):
            names.update(n.op.name for n in params["inner"].nodes)
    return names


def test_every_op_has_cases():
    assert set(CASES) == set(OPS), (f"ops without cases: {sorted(set(OPS) - set(CASES))}; "
                                    f"cases of no op: {sorted(set(CASES) - set(OPS))}")


def test_every_case_computes_somewhere():
    # a case that raises for every dtype and layout would compare errors only
    idle = [f"{name} case {i}" for name, i, case in CASE_LIST
            if not any(not isinstance(group_for(dtype, layout).results[layout].get((name, i), {})
                                      .get("FAST_COMPILE", ValueError()), Exception)
                       for layout in LAYOUTS for dtype in LAYOUT_DTYPES[layout])]
    assert not idle, f"cases that never compute a value: {idle}"


def test_each_op_appears_in_its_cases():
    # traced or after FAST_RUN's rewrites (the optimizer's own ops), for some dtype and layout
    missing = []
    # the programs matter here, not kernels; logsumexp as stabilize makes it, before lowering
    with tc.config.change(c_compile_after=10 ** 9, optimizer_excluding=("logsumexp_as_reductions",)), _quiet():
        for name in sorted(CASES):
            seen = set()
            for dtype in ("float64", "int64"):
                for layout in ("contiguous", "broadcast"):
                    for i in range(len(CASES[name])):  # alone: one that raises does not hide the others
                        batch = Batch([(name, i)], "FAST_RUN")
                        batch.run(layout, dtype)
                        for program in batch.fn.programs + tc.opt.optimized_program(batch.fn):
                            seen |= _op_names(program)
            if name not in seen:
                missing.append(name)
    assert not missing, f"no case of these ops builds a node of the op: {missing}"


# -- run-time errors inside kernels --------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int32", "float64"])
def test_shape_mismatch_in_a_kernel_names_the_op_and_line(dtype):
    # lone, fused and merged multi-output kernels, and one writing over its input
    x, y = tc.tensor(dtype, (False, False), name="x"), tc.tensor(dtype, (False, False), name="y")
    cases = {"add": lambda: x + y, "where": lambda: np.where(x > 0, x, y),
             "fused": lambda: (x * 2 + y) * (x - 1),
             "merged": lambda: [np.maximum(x, y), np.minimum(x, y), x * y],
             "in place": lambda: np.negative(x @ x.T) + y}
    xv, yv = _values(dtype, (3, 3), 0), _values(dtype, (2, 3), 1)
    for what, build in cases.items():
        outs = build()
        line = build.__code__.co_firstlineno
        for mode in MODES:
            fn = tc.function([x, y], outs, mode=mode)
            with _quiet(), pytest.raises(ValueError, match=rf"(?s)test_optable_c\.py:{line}\b.*broadcast"):
                fn(xv, yv)


# -- bugs outside the C backend the matrix found (fixed; kept as regression tests) --
def _both(fn, *args):
    """FAST_RUN's and FAST_COMPILE's results of tc.compile(fn)(*args)."""
    with _quiet():
        return [tc.compile(fn, mode=mode)(*args) for mode in MODES]


def test_gemm_of_integer_difference():
    a = np.array([[1, 0], [0, 1]], np.int32)
    c = np.array([[np.iinfo(np.int32).min, 0], [0, 0]], np.int32)
    fast, reference = _both(lambda a, c: 2.0 * (a @ a) - c, a, c)
    np.testing.assert_array_equal(fast, reference)


def test_sigmoid_of_integer_minimum():
    x = np.array([np.iinfo(np.int64).min, 0, 3])
    fast, reference = _both(lambda x: 1 / (1 + np.exp(-x)), x)
    np.testing.assert_array_equal(fast, reference)


def test_tensordot_axis_out_of_range():
    a = np.arange(6.0).reshape(2, 3)
    with pytest.raises(IndexError):
        np.tensordot(a, a, axes=([5], [5]))
    for mode in MODES:
        with pytest.raises(IndexError):
            tc.compile(lambda a: np.tensordot(a, a, axes=([5], [5])), mode=mode)(a)


def test_logsumexp_of_unsigned_integers():
    x = np.array([[0, 1, 2], [3, 0, 1]], np.uint8)
    fast, reference = _both(lambda x: np.log(np.sum(np.exp(x), axis=-1)), x)
    np.testing.assert_allclose(fast, reference, rtol=1e-2)
