"""Multi-output fused kernels in C: `lower(..., multi_output=True)` and `render`
give one loop writing every output (ABI: inputs, then the outputs, all of the
broadcast shape), compiled and called here through ctypes against NumPy."""
import ctypes

import numpy as np

import tracec as tc
from tracec.cgen import build
from tracec.cgen.kernel import lower, render, signature
from tracec.opt import optimize
from tracec.trace.graph import toposort
from tracec.trace.program import Program


class _Array(ctypes.Structure):  # tc_array of templates/tc_abi.h
    _fields_ = [("data", ctypes.c_void_p), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("ndim", ctypes.c_int32),
                ("dtype", ctypes.c_int32)]


class _Ctx(ctypes.Structure):  # tc_ctx
    _fields_ = [("nthreads", ctypes.c_int32), ("status", ctypes.c_int32),
                ("parallel_threshold", ctypes.c_int64), ("message", ctypes.c_char * 256)]


def _int64s(values):
    values = list(values)
    return (ctypes.c_int64 * max(len(values), 1))(*values)


def _call(path, name, arrays, shape, nthreads=1, threshold=1 << 62):
    fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Array), ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                          ctypes.c_int, ctypes.POINTER(_Ctx))((name, ctypes.CDLL(path)))
    keep, structs = [], []
    for a in arrays:
        dims, steps = _int64s(a.shape), _int64s(a.strides)
        keep += [a, dims, steps]
        structs.append(_Array(a.ctypes.data, dims, steps, a.ndim, (ord(a.dtype.kind) << 8) | a.dtype.itemsize))
    ctx = _Ctx(nthreads, 0, threshold, b"")
    rc = fn((_Array * len(structs))(*structs), len(structs), _int64s(shape), len(shape), ctypes.byref(ctx))
    return rc, ctx


def _multi_output_node():
    x, y = tc.dmatrix("x"), tc.dvector("y")
    a = np.exp(x * y)
    outs = [a * 2, a + y, np.sin(a) > 0.5]
    prog = optimize(Program([x.variable, y.variable], [o.variable for o in outs]), "FAST_RUN")
    (node,) = [n for n in toposort(prog.roots(), stop=prog.all_inputs()) if n.op.name == "fused_elemwise"]
    return node


def _args(spec, inputs):
    """The kernel's input arrays: the node's inputs and the constants, in the spec's order."""
    return [np.ascontiguousarray(src) if kind == "const" else inputs[src] for kind, src in spec.sources]


def _expected(x, y):
    a = np.exp(x * y)
    return [a * 2, a + y, np.sin(a) > 0.5]


def test_multi_output_nodes_lower_only_when_asked():
    node = _multi_output_node()
    assert len(node.outputs) == 3
    assert lower(node) is None  # the current executor runs such nodes through NumPy
    spec = lower(node, multi_output=True)
    assert spec.outputs == list(node.params["inner"].outputs) and spec.output is spec.outputs[0]
    assert signature(spec) == "float64,float64,int64,float64->float64,float64,bool"


def test_multi_output_kernel_compiles_and_matches_numpy():
    spec = lower(_multi_output_node(), multi_output=True)
    name, source = render(spec)
    assert "-> 3 outputs" in source and "out2[i] = " in source and "test_multi_output_kernel.py:" in source
    path = build.build(source)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, 5)
    for xv, yv in [(x, y), (x[:, ::2], y[::2]), (x[:, :1], y), (np.asfortranarray(x), y)]:
        shape = np.broadcast_shapes(xv.shape, yv.shape)
        outs = [np.empty(shape), np.empty(shape), np.empty(shape, bool)]
        rc, ctx = _call(path, name, _args(spec, [xv, yv]) + outs, shape)
        assert rc == 0 and ctx.status == 0
        for got, want in zip(outs, _expected(xv, yv)):
            np.testing.assert_allclose(got, want, rtol=1e-14)
    rc, ctx = _call(path, name, [x, y], x.shape)  # wrong argument count: refused, not a crash
    assert rc != 0 and b"expects 7 arrays" in ctx.message


def test_threads_write_every_output():
    spec = lower(_multi_output_node(), multi_output=True)
    name, source = render(spec)
    path = build.build(source)
    x, y = np.linspace(-1, 1, 4000).reshape(2, 2000), np.linspace(0, 1, 2000)
    outs = [np.empty(x.shape), np.empty(x.shape), np.empty(x.shape, bool)]
    rc, _ = _call(path, name, _args(spec, [x, y]) + outs, x.shape, nthreads=2, threshold=100)
    assert rc == 0
    for got, want in zip(outs, _expected(x, y)):
        np.testing.assert_allclose(got, want, rtol=1e-14)
