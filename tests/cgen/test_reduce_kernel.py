"""Reduction kernels (tracec/cgen/reduce_kernel.py, templates/reduce.c), called
through ctypes with the C ABI and compared with the node's NumPy implementation:
lone reductions over dtypes and axes, fused producers, every memory layout the
ABI allows, empty and 0-d inputs, NaN, floating-point flags, threads, float32
accuracy, and the argument checks."""
import os
import sys

import numpy as np
import pytest

import tracec as tc
from tracec.cgen import build, executor
from tracec.cgen.kernel import lower, render
from tracec.cgen.reduce_kernel import iteration_shape, lower_reduce, output_shape, render_reduce, signature
from tracec.trace.graph import Variable, toposort
from tracec.trace.interp import run_node
from tracec.trace.ops import OPS
from tracec.trace.types import TensorType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the ABI helper next to this file
from abi_ctypes import TC_ERR_ABI, TC_ERR_EMPTY_REDUCTION, TC_FPE_DIVIDE, TC_FPE_INVALID, TC_FPE_OVERFLOW, \
    Kernel, tc_array  # noqa: E402

RNG = np.random.default_rng(5)
_KERNELS = {}


def graph(inputs, output):
    """(program, nodes) of `tc.function(inputs, output)` as FAST_RUN optimizes it."""
    f = tc.function(inputs, output, mode=tc.Mode("FAST_RUN"))
    program = tc.opt.optimized_program(f)
    return program, toposort(program.roots(), stop=program.all_inputs())


def reduction(inputs, output):
    """The one node of the optimized graph that lowers to a reduction kernel, and its spec."""
    program, nodes = graph(inputs, output)
    found = [(n, s) for n in nodes if (s := lower_reduce(n)) is not None]
    assert len(found) == 1, [n.op.name for n in nodes]
    node, spec = found[0]
    positions = {id(v): i for i, v in enumerate(program.inputs)}
    return node, spec, [positions[id(v)] for v in node.inputs]


def kernel(spec):
    name, source = render_reduce(spec)
    if name not in _KERNELS:
        _KERNELS[name] = Kernel(name, source)
    return _KERNELS[name]


def run(spec, node_values, nthreads=1, threshold=1 << 62):
    """(return code, ctx, output) of the kernel on the outer node's input values."""
    values = [np.asarray(node_values[src] if kind == "input" else src, dtype=v.dtype)
              for v, (kind, src) in zip(spec.args, spec.sources)]
    shape = iteration_shape(spec, [v.shape for v in values])
    out = np.full(output_shape(spec, shape), 77, spec.output.dtype)  # 77: never a result by chance
    rc, ctx = kernel(spec)(values + [out], shape, nthreads=nthreads, threshold=threshold)
    return rc, ctx, out


def reference(node, node_values):
    with np.errstate(all="ignore"):
        return run_node(node, list(node_values))[0]


def check(node, spec, node_values, **threads):
    """The kernel's result equals NumPy's: dtype, shape, values (floats to rounding)."""
    rc, ctx, out = run(spec, node_values, **threads)
    assert rc == 0, ctx.message
    want = np.asarray(reference(node, node_values))
    assert out.dtype == want.dtype and out.shape == want.shape
    if want.dtype.kind == "f":
        rtol = 2e-5 if want.dtype == np.float32 else 1e-12
        finite = np.abs(want[np.isfinite(want)])
        np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * max(1.0, finite.max(initial=0.0)))
    else:
        np.testing.assert_array_equal(out, want)
    return out, ctx


def sample(dtype, shape, op):
    """Random values of `dtype` a reduction `op` keeps meaningful (products stay near 1)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) < (0.97 if op == "all" else 0.03 if op == "any" else 0.5)
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" or op == "prod" else -9
        values = RNG.integers(lo, 3 if op == "prod" else 10, shape).astype(dtype)
        if op in ("any", "all"):
            values[RNG.random(shape) < 0.9] = 1 if op == "all" else 0
        return values
    values = RNG.uniform(0.5, 1.5, shape) if op == "prod" else RNG.standard_normal(shape)
    if op in ("any", "all"):
        values[RNG.random(shape) < 0.9] = 1.0 if op == "all" else 0.0
    return values.astype(dtype)


def layouts(dtype, op):
    """3-d arrays of the same dtype in every layout: C order, transposed, stepped,
    reversed, broadcast (stride 0), length-1 dimensions, empty."""
    base = sample(dtype, (6, 7, 150), op)
    yield "contiguous", np.ascontiguousarray(base[:4, :5])
    yield "transposed", np.ascontiguousarray(base.transpose(2, 0, 1)).transpose(1, 2, 0)
    yield "stepped", base[::2, ::2, ::3]
    yield "reversed", base[::-1, :, ::-2]
    yield "broadcast", np.broadcast_to(base[:1, :, :], (3, 7, 150))
    yield "broadcast inner", np.broadcast_to(base[:, :, :1], (6, 7, 20))
    yield "length-1", base[:1, 2:3, :]
    yield "all length-1", base[:1, :1, :1]
    yield "empty kept", base[:0]
    yield "empty reduced", base[:, :, :0]


CASES = [
    ("sum", "float64", None, False), ("sum", "float64", 1, True), ("sum", "float32", (0, 2), False),
    ("sum", "int8", None, False), ("sum", "int32", (1, 2), True), ("sum", "bool", None, False),
    ("sum", "uint8", 1, False),
    ("prod", "float64", 0, False), ("prod", "int8", -1, True),
    ("max", "float64", None, False), ("max", "float32", 0, False), ("max", "int64", (0, 2), True),
    ("max", "bool", 1, False),
    ("min", "float64", -1, False), ("min", "uint8", None, False),
    ("any", "float64", 1, False), ("any", "int8", (0, 2), False),
    ("all", "bool", -1, True), ("all", "float32", 0, False),
]


@pytest.fixture(scope="module")
def case_specs(cache_dir):
    """(node, spec) of every case, their kernels compiled together (in parallel) once."""
    if not executor.available():
        pytest.skip("no C compiler or runtime: the C backend cannot run here")
    specs = {}
    with tc.config.change(cache_dir=cache_dir, c_single_ops=True):  # lone reductions too
        for op, dtype, axis, keepdims in CASES:
            x = tc.tensor(dtype, broadcastable=(False,) * 3)
            out = getattr(np, op)(x, axis=axis, keepdims=keepdims)
            specs[op, dtype, axis, keepdims] = reduction([x], out)[:2]
        build.build_many([render_reduce(spec)[1] for _, spec in specs.values()])
    return specs


@pytest.mark.parametrize("op, dtype, axis, keepdims", CASES)
def test_lone_reduction_matches_numpy_in_every_layout(case_specs, op, dtype, axis, keepdims):
    node, spec = case_specs[op, dtype, axis, keepdims]
    assert spec.reduction == op and len(spec.nodes) == 1
    for what, arr in layouts(dtype, op):
        empty_axis = arr.size == 0 and 0 in [arr.shape[a] for a in spec.axes]
        if op in ("max", "min") and empty_axis:
            rc, ctx, _ = run(spec, [arr])
            assert rc == TC_ERR_EMPTY_REDUCTION and ctx.status & TC_ERR_EMPTY_REDUCTION, what
            with pytest.raises(ValueError, match=ctx.message.decode()):
                getattr(np, op)(arr, axis=axis, keepdims=keepdims)
            continue
        check(node, spec, [arr])
        check(node, spec, [arr], nthreads=3, threshold=0)  # every output split or chunked


def fused(fn, *inputs):
    return reduction(list(inputs), fn(*inputs))


def test_fused_squared_distance_broadcasts_its_inputs():
    x, y = tc.dmatrix("x"), tc.dvector("y")
    node, spec, order = fused(lambda x, y: np.sum((x - y) ** 2, axis=1), x, y)
    assert node.op.name == "fused_elemwise" and [n.op.name for n in spec.nodes][-1] == "sum"
    assert len(spec.nodes) >= 2
    a, b = RNG.standard_normal((9, 1000)), RNG.standard_normal(1000)
    values = [(a, b)[i] for i in order]
    out, _ = check(node, spec, values)
    np.testing.assert_allclose(out, np.sum((a - b) ** 2, axis=1), rtol=1e-13)
    check(node, spec, [v[..., ::-3] if v.ndim == 2 else v[::-3] for v in values], nthreads=4, threshold=0)


def test_fused_max_of_exp_and_mean_like_pattern():
    x = tc.fmatrix("x")
    node, spec, _ = fused(lambda x: np.max(np.exp(x)), x)
    a = RNG.standard_normal((37, 51)).astype(np.float32)
    check(node, spec, [a])
    check(node, spec, [a.T], nthreads=2, threshold=0)
    # mean over the batch: the sum is fused with its producer, the division follows it
    node, spec, _ = fused(lambda x: np.sum(x * 0.5 + 1, axis=0, keepdims=True) / x.shape[0], x)
    assert any(kind == "const" for kind, _ in spec.sources)  # constants travel as 0-d args
    for arr in (a, a[::2, ::-1], np.broadcast_to(a[:1], (1000, 51))):
        check(node, spec, [arr])
        check(node, spec, [arr], nthreads=4, threshold=0)


def test_fused_boolean_producers_feed_any_and_all():
    x = tc.dmatrix("x")
    node, spec, _ = fused(lambda x: np.any(x > 0.5, axis=0), x)
    assert spec.output.dtype == np.bool_
    a = RNG.standard_normal((40, 30))
    check(node, spec, [a])
    node, spec, _ = fused(lambda x: np.all(np.isfinite(x * 2), axis=1), x)
    a[3, 7], a[5, 1] = np.inf, np.nan
    out, _ = check(node, spec, [a])
    assert not out[3] and not out[5] and out[0]


def test_sum_in_a_wider_dtype_than_its_input():
    x = tc.fvector("x")
    node, spec, _ = fused(lambda x: np.sum(x * x, dtype=np.float64), x)
    assert spec.output.dtype == np.float64
    check(node, spec, [RNG.standard_normal(5000).astype(np.float32)])
    i = tc.bmatrix("i")
    node, spec, _ = fused(lambda i: np.sum(i * 3, axis=1), i)  # int8 products accumulate in int64
    assert spec.output.dtype == np.int64
    check(node, spec, [RNG.integers(-128, 128, (5, 300)).astype(np.int8)])


def test_producer_flags_are_reported_and_values_match_numpy():
    a, b = tc.lmatrix("a"), tc.lmatrix("b")
    node, spec, order = fused(lambda a, b: np.sum(a // b, axis=1), a, b)
    x, y = RNG.integers(-50, 50, (4, 9)), RNG.integers(-3, 3, (4, 9))
    _, ctx = check(node, spec, [(x, y)[i] for i in order])
    assert ctx.status & TC_FPE_DIVIDE  # NumPy warns "divide by zero" here


def test_nan_propagates_through_max_min_and_sum_without_invalid_flags(case_specs):
    for case in [("max", "float64", None, False), ("min", "float64", -1, False), ("sum", "float64", 1, True),
                 ("max", "float32", 0, False)]:
        node, spec = case_specs[case]
        a = sample(case[1], (3, 4, 200), case[0])
        a[0, :, 150], a[1:, 3, 0], a[2, 1:3, -1], a[:, 0, 9] = np.nan, np.nan, np.nan, np.nan
        for arr, threads in ((a, {}), (np.asfortranarray(a), {"nthreads": 3, "threshold": 0})):
            out, ctx = check(node, spec, [arr], **threads)
            want = reference(node, [arr])
            np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
            assert np.isnan(out).any()
            assert not ctx.status & TC_FPE_INVALID  # quiet NaNs raise nothing, as in NumPy


def test_overflow_and_invalid_flags_of_float_sums(case_specs):
    node, spec = case_specs["sum", "float64", None, False]
    _, ctx, out = run(spec, [np.array([1e308, 1e308]).reshape(1, 1, 2)])
    assert out == np.inf and ctx.status & TC_FPE_OVERFLOW
    _, ctx, out = run(spec, [np.array([np.inf, -np.inf, 1.0]).reshape(1, 3, 1)])
    assert np.isnan(out) and ctx.status & TC_FPE_INVALID
    _, ctx, out = run(spec, [np.full((2, 1, 9), -0.0)])
    assert out == 0 and np.signbit(out) == np.signbit(np.sum(np.full(9, -0.0)))  # NumPy 2: +0.0


def test_zero_d_inputs_and_zero_d_iteration_space():
    x = tc.dscalar("x")
    y = tc.dvector("y")
    node, spec, order = fused(lambda x, y: np.max(y * x), x, y)
    check(node, spec, [(np.array(-2.0), RNG.standard_normal(50))[i] for i in order])
    # a reduction over a 0-d value (no axes): built directly, the optimizer would drop it
    v = Variable(TensorType("float32", ()), name="v")
    node = OPS["sum"].make_node([v], {"axis": (), "keepdims": False, "dtype": None})
    spec = lower_reduce(node)
    assert spec.ndim == 0 and output_shape(spec, ()) == ()
    check(node, spec, [np.array(2.5, np.float32)])


def test_float32_sums_of_a_million_elements_are_as_accurate_as_numpy():
    x = tc.fvector("x")
    node, spec, _ = reduction([x], np.sum(x))
    a = RNG.uniform(0, 1, 10 ** 6).astype(np.float32)
    exact = np.sum(a, dtype=np.float64)
    numpy_error = abs(float(np.sum(a)) - exact)
    ulp = float(np.spacing(np.float32(exact)))
    for threads in ({}, {"nthreads": 4, "threshold": 0}):
        _, _, out = run(spec, [a], **threads)
        assert abs(float(out) - exact) <= max(4 * numpy_error, 4 * ulp), (float(out), exact, numpy_error)
    assert abs(float(np.cumsum(a)[-1]) - exact) > 16 * ulp  # a running sum, for scale: far worse
    m = tc.fmatrix("m")
    a = a.reshape(1000, 1000)
    for axis in (0, 1):  # tiles of columns; rows
        node, spec, _ = reduction([m], np.sum(m, axis=axis))
        exact = np.sum(a, axis=axis, dtype=np.float64)
        numpy_error = np.abs(np.sum(a, axis=axis) - exact).max()
        for arr in (a, np.asfortranarray(a)):
            _, _, out = run(spec, [arr], nthreads=2, threshold=0)
            assert np.abs(out - exact).max() <= max(4 * numpy_error, 4 * np.spacing(np.float32(500)))


def test_wide_outputs_and_long_reductions_with_threads():
    m = tc.fmatrix("m")
    a = RNG.standard_normal((3000, 130)).astype(np.float32)
    node, spec, _ = reduction([m], np.sum(m, axis=0))
    check(node, spec, [a], nthreads=4, threshold=0)  # one tile of columns, not a multiple of 8
    wide = RNG.standard_normal((40, 2100)).astype(np.float32)  # tiles of 1024 columns, a ragged last one
    check(node, spec, [wide])
    check(node, spec, [wide], nthreads=4, threshold=0)
    check(node, spec, [a[:, :1]], nthreads=4, threshold=0)  # fewer outputs than threads: chunks
    # 5000 equal rows: NumPy's running sum down axis 0 drifts (about 1e-4 here); pairwise does not
    _, _, out = run(spec, [np.broadcast_to(a[:1], (5000, 130))], nthreads=3, threshold=0)
    np.testing.assert_allclose(out, 5000 * a[0].astype(np.float64), rtol=2e-6)
    node, spec, _ = reduction([m], np.sum(m, axis=1))
    check(node, spec, [a.T], nthreads=4, threshold=0)
    check(node, spec, [a[:2].T.copy().T], nthreads=4, threshold=0)


def test_argument_checks_refuse_bad_calls(case_specs):
    node, spec = case_specs["sum", "float64", 1, True]
    k = kernel(spec)
    a, out = np.ones((3, 4, 2)), np.zeros((3, 1, 2))
    assert k([a, out], (3, 4, 2))[0] == 0 and (out == 4).all()
    bad = [
        ([a, out], (3, 4, 2), {"nargs": 3}),                     # argument count
        ([a, out], (3, 4, 2, 1), {}),                            # iteration rank
        ([a, np.zeros((3, 1, 4))], (3, 4, 2), {}),               # output of the wrong shape
        ([a, np.zeros((3, 2))], (3, 4, 2), {}),                  # output without the kept dimension
        ([a, np.zeros((3, 1, 4))[..., ::2]], (3, 4, 2), {}),     # output not contiguous
        ([a.astype(np.float32), out], (3, 4, 2), {}),            # input dtype
        ([np.ones((2, 4, 2)), out], (3, 4, 2), {}),              # input does not broadcast
        ([tc_array(a, dtype=np.int64), out], (3, 4, 2), {}),     # dtype code
    ]
    for arrays, shape, kw in bad:
        rc, ctx = k(arrays, shape, **kw)
        assert rc == TC_ERR_ABI and ctx.status & TC_ERR_ABI and ctx.message, (shape, kw)


def test_what_does_not_lower_runs_numpy():
    x, h = tc.dmatrix("x"), tc.tensor("float16", broadcastable=(False,))
    for inputs, out in [([x], np.mean(x, axis=0)), ([x], np.argmax(x, axis=0)), ([x], np.cumsum(x, axis=0)),
                        ([x], np.var(x)), ([h], np.sum(h)), ([x], np.sum(x, dtype=np.int32)),
                        ([x], np.sum(x > 0, dtype=bool)), ([x], np.exp(x) + 1)]:
        with tc.config.change(optimizer_excluding=("lowering",)):  # mean, var: not rewritten to sums
            _, nodes = graph(inputs, out)
        assert all(lower_reduce(n) is None for n in nodes), [n.op.name for n in nodes]


def test_inplace_wrapper_of_a_fused_reduction_lowers_like_the_group():
    x = tc.dmatrix("x")
    node, spec, _ = fused(lambda x: np.sum(np.exp(x) * 2, axis=1), x)
    wrapped = OPS["inplace_elemwise"].make_node(node.inputs, {"op": "fused_elemwise", "params": node.params,
                                                              "dest": 0}, loc=node.loc)
    spec2 = lower_reduce(wrapped)
    assert render_reduce(spec2)[0] == render_reduce(spec)[0] and spec2.node is wrapped
    check(node, spec2, [RNG.standard_normal((4, 33))])


def test_source_names_nodes_and_lines_and_several_kernels_share_a_module(case_specs):
    x = tc.dmatrix("x")
    node, spec, _ = fused(lambda x: np.sum(np.sin(x) + 1, axis=1), x)
    name, source = render_reduce(spec)
    assert name.startswith("tc_r") and "sin(" in source and "test_reduce_kernel.py:" in source
    assert "np.sum(np.sin(x) + 1, axis=1)" in source
    assert signature(spec) == "float64,int64->float64"  # x, then the constant 1 (a Python int)
    assert render_reduce(lower_reduce(node))[0] == name  # the name is a content hash
    assert kernel(spec).signature == signature(spec)  # exported as NAME_signature
    # two reductions and an elementwise kernel in one module, as the executor builds them
    other_node, other = case_specs["max", "float64", None, False]
    _, nodes = graph([x], np.exp(x) * 3)
    elem = next(render(s) for n in nodes if (s := lower(n)) is not None)
    module = "\n".join([source, render_reduce(other)[1], elem[1]])
    for n, s, shape in ((node, spec, (5, 6)), (other_node, other, (2, 3, 4))):
        name = render_reduce(s)[0]
        _KERNELS[name] = Kernel(name, module)
        check(n, s, [RNG.standard_normal(shape)])
    del _KERNELS[render_reduce(other)[0]]


def test_output_and_iteration_shapes(case_specs):
    spec = case_specs["sum", "float64", 1, True][1]
    assert output_shape(spec, (3, 4, 5)) == (3, 1, 5)
    assert output_shape(case_specs["any", "int8", (0, 2), False][1], (3, 4, 5)) == (4,)
    assert output_shape(case_specs["max", "float64", None, False][1], (3, 4, 5)) == ()
    assert iteration_shape(spec, [(4, 1), (3, 1, 5)]) == (3, 4, 5)
    assert iteration_shape(spec, [(5,)]) == (1, 1, 5)
    with pytest.raises(ValueError, match="rank"):
        output_shape(spec, (3,))
    with pytest.raises(ValueError):
        iteration_shape(spec, [(2,), (3,)])
