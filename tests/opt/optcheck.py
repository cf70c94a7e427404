"""Helpers of the optimizer tests: optimize a symbolic graph, count its ops, and compare
the optimized program with the unoptimized one on the NumPy reference interpreter."""
import collections
import warnings

import numpy as np

import tracec as tc
from tracec.opt import optimize
from tracec.trace.graph import toposort
from tracec.trace.interp import Interpreter
from tracec.trace.program import Program

# the node rewrites only: fused kernels and in-place nodes would hide the ops we count
REWRITES = tc.Mode("FAST_RUN").excluding("fusion", "inplace")


def var(t):
    return t.variable if isinstance(t, tc.Tensor) else t


def program(inputs, outputs):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return Program([var(v) for v in inputs], [var(o) for o in outputs])


def op_counts(prog):
    counts = collections.Counter()
    for node in toposort(prog.roots(), stop=prog.all_inputs()):
        counts[node.op.name] += 1
        params = node.params
        if node.op.name == "inplace_elemwise":  # an op writing into its input's buffer
            counts["inplace:" + params["op"]] += 1
            params = params["params"]
        if "inner" in params:
            counts.update("fused:" + n.op.name for n in params["inner"].nodes)
    return counts


def run(prog, values):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Interpreter(prog).run(list(values) + [sv.get_value() for sv in prog.shared])


def check(inputs, outputs, values, mode=REWRITES, rtol=1e-12, atol=1e-12, present=(), absent=()):
    """Optimize; the optimized program must give the reference's values, dtypes and shapes,
    use every op of `present` and none of `absent`. Returns (optimized program, op counts)."""
    prog = program(inputs, outputs)
    opt = optimize(prog, mode)
    counts = op_counts(opt)
    for name in present:
        assert counts[name], f"{name} missing from the optimized program: {dict(counts)}"
    for name in absent:
        assert not counts[name], f"{name} still in the optimized program: {dict(counts)}"
    expected, got = run(prog, values), run(opt, values)
    for e, g in zip(expected, got):
        e, g = np.asarray(e), np.asarray(g)
        assert e.dtype == g.dtype and e.shape == g.shape, (e.dtype, e.shape, g.dtype, g.shape)
        if e.dtype.kind in "fc":
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, e)
    return opt, counts


def rand(shape, dtype="float64", low=-3, high=3, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(low, high, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)
