"""NaN in comparisons, maximum/minimum and their relatives (and infinities in exp): NumPy
raises no floating-point flag there, so the C kernels must not either (a flag makes the
runtime run the node again through NumPy: slow, and under np.errstate(invalid='raise') an
error NumPy does not give). Checked on the kernels themselves (through ctypes: the status word) and end
to end (results under np.errstate(all='raise'), and no NumPy rerun of a kernel's node)."""
import os
import sys

import numpy as np
import pytest

import tracec as tc
import tracec.cgen._native as native
from tracec.cgen.kernel import lower, render
from tracec.cgen.reduce_kernel import iteration_shape, lower_reduce, output_shape, render_reduce
from tracec.trace.graph import toposort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the ABI helper next to this file
from abi_ctypes import TC_FPE_INVALID, Kernel  # noqa: E402

# NumPy raises nothing for any pair of these in the ops below (no overflow or underflow either)
EDGES = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -3.75, 0.5]

OPS = {
    "maximum": lambda x, y: np.maximum(x, y), "minimum": lambda x, y: np.minimum(x, y),
    "fmax": lambda x, y: np.fmax(x, y), "fmin": lambda x, y: np.fmin(x, y),
    "less": lambda x, y: x < y, "less_equal": lambda x, y: x <= y,
    "greater": lambda x, y: x > y, "greater_equal": lambda x, y: x >= y,
    "equal": lambda x, y: x == y, "not_equal": lambda x, y: x != y,
    "where": lambda x, y: np.where(x > y, x, y * 2), "clip": lambda x, y: np.clip(x, -1.0, 0.75),
    "clip_nan_bound": lambda x, y: np.clip(x, y, 2.0), "sign": lambda x, y: np.sign(x),
    "heaviside": lambda x, y: np.heaviside(x, y),
    "spacing": lambda x, y: np.spacing(x + 4.0),  # not of 0: a subnormal, where the flags differ
    "sigmoid": lambda x, y: 1 / (1 + np.exp(-x)), "softplus": lambda x, y: np.log(1 + np.exp(x)),
    "exp": lambda x, y: np.exp(x) * 0.5,  # exp(-inf): glibc's vector exp raises 'invalid', NumPy's not
    "fused": lambda x, y: np.where(np.maximum(x * 2, y) > np.minimum(x, 0.5), x, y <= x),
}
REDUCTIONS = {
    "max_rows": lambda x, y: np.max(x, axis=1), "min_columns": lambda x, y: np.min(x, axis=0),
    "max_all": lambda x, y: np.max(x), "min_fused": lambda x, y: np.min(np.maximum(x, y) * 2, axis=1),
}
# the optimizer's stable forms and libm (vector) exp: not NumPy's bits
CLOSE = {"sigmoid", "softplus", "exp"}


def _pairs(dtype, repeat=1):
    """Every pair of EDGES (x, y), tiled `repeat` times: the vector loops and their tails."""
    x, y = np.meshgrid(np.array(EDGES, dtype), np.array(EDGES, dtype))
    return np.tile(x.ravel(), repeat), np.tile(y.ravel(), repeat)


def _same(got, want, name):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype)
    if name in CLOSE:
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)  # NaN where NumPy has NaN
    if name in ("maximum", "minimum", "clip", "sign", "where"):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=f"{name}: signed zeros")


def _kernel_node(fn, x, y):
    """The one node of fn's optimized graph that lowers to a kernel, and its spec."""
    xv = tc.tensor(x.dtype.name, (False,) * x.ndim, name="x")
    yv = tc.tensor(y.dtype.name, (False,) * y.ndim, name="y")
    f = tc.function([xv, yv], fn(xv, yv), mode="FAST_RUN", on_unused_input="ignore")
    program = tc.opt.optimized_program(f)
    found = [(n, s) for n in toposort(program.roots(), stop=program.all_inputs())
             if (s := lower(n, multi_output=True) or lower_reduce(n)) is not None]
    assert len(found) == 1, [n.op.name for n in toposort(program.roots())]
    node, spec = found[0]
    given = {id(v): value for v, value in zip(program.inputs, (x, y))}
    return spec, [given[id(v)] if id(v) in given else v.value for v in node.inputs]


def _run_kernel(fn, x, y, nthreads=1):
    """(status word, outputs) of fn's kernel called on x, y through the C ABI alone."""
    spec, node_values = _kernel_node(fn, x, y)
    values = [np.asarray(node_values[src] if kind == "input" else src, v.dtype)
              for v, (kind, src) in zip(spec.args, spec.sources)]
    if hasattr(spec, "reduction"):
        name, source = render_reduce(spec)
        shape = iteration_shape(spec, [a.shape for a in values])
        outs = [np.empty(output_shape(spec, shape), spec.output.dtype)]
    else:
        name, source = render(spec)
        shape = np.broadcast_shapes(*[a.shape for a in values])
        outs = [np.empty(shape, v.dtype) for v in spec.outputs]
    threshold = 1 if nthreads > 1 else 1 << 62
    rc, ctx = Kernel(name, source)(values + outs, shape, nthreads=nthreads, threshold=threshold)
    assert rc == 0, ctx.message
    return ctx.status, outs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_kernels_raise_no_flag_for_nan(name, dtype):
    for x, y in [_pairs(dtype), _pairs(dtype, repeat=9), tuple(a[::3] for a in _pairs(dtype, 5))]:
        status, (out,) = _run_kernel(OPS[name], x, y)
        assert not status & TC_FPE_INVALID, f"{name}: the kernel raised 'invalid'"
        assert status == 0, f"{name}: flags {status}"
        with np.errstate(all="raise"):
            _same(out, OPS[name](x, y), name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_kernels_raise_no_flag_for_nan(name, dtype):
    x, y = _pairs(dtype, repeat=40)
    x, y = x.reshape(-1, 11 * 11), y.reshape(-1, 11 * 11)  # NaN in some rows and columns only
    x[:, -3:] = y[:, -3:] = 1.5
    x[:5] = 7.0
    for nthreads in (1, 2):  # two threads: partial results combined at the end
        status, (out,) = _run_kernel(REDUCTIONS[name], x, y, nthreads)
        assert status == 0, f"{name}: flags {status}"
        with np.errstate(all="raise"):
            _same(out, REDUCTIONS[name](x, y), name)


def _kernel_reruns(monkeypatch):
    """Nodes the runtime runs through NumPy (run_node) from now on."""
    reruns = []
    run_node = native.run_node

    def spy(node, values):
        reruns.append(node)
        return run_node(node, values)
    monkeypatch.setattr(native, "run_node", spy)
    return reruns


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_functions_run_nan_natively_under_errstate_raise(dtype, monkeypatch):
    x, y = _pairs(dtype, repeat=9)
    cases = {**OPS, **REDUCTIONS}
    compiled = {}
    for name, fn in cases.items():
        shaped = (x.reshape(-1, 11), y.reshape(-1, 11)) if name in REDUCTIONS else (x, y)
        compiled[name] = (tc.compile(fn), shaped)
        compiled[name][0](*shaped)  # traced and compiled outside the check
    reruns = _kernel_reruns(monkeypatch)
    for name, (fn, args) in compiled.items():
        del reruns[:]
        with np.errstate(all="raise"):
            got, want = fn(*args), cases[name](*args)
        _same(got, want, name)
        (_, executable), = fn._cache.values()
        kernels = executable.backend.kernels
        assert kernels, f"{name}: no C kernel"
        assert not [n.op.name for n in reruns if id(n) in kernels], f"{name}: a kernel's node ran NumPy again"
