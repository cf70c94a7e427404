"""The ops the optimizer introduces (tracec/opt): each appears in an optimized program here,
and the compiled results match NumPy on the naive expression they replace."""
import numpy as np

import cases
import tracec as tc
from cases import check, rand
from tracec.trace.graph import toposort


def _record_optimized(compiled):
    ops = set()
    progs = tc.opt.optimized_program(compiled)
    for prog in progs if isinstance(progs, list) else [progs]:
        for node in toposort(prog.roots(), stop=prog.all_inputs()):
            ops.add(node.op.name)
            params = node.params
            if node.op.name == "inplace_elemwise":
                ops.add(params["op"])
                params = params["params"]
            if "inner" in params:
                ops.update(n.op.name for n in params["inner"].nodes)
    cases.SEEN_OPS.update(ops)
    return ops


def test_stable_special_functions():
    x = rand((3, 4), "float64")
    for fn, op in [(lambda x: np.log(1 + np.exp(x)), "softplus"),
                   (lambda x: 1 / (1 + np.exp(-x)), "sigmoid"),
                   (lambda x: np.log(np.sum(np.exp(x), axis=1)), "logsumexp")]:
        # logsumexp as stabilize makes it (FAST_RUN then lowers it to C reductions: test_lowering.py)
        with tc.config.change(optimizer_excluding=("logsumexp_as_reductions",)):
            f = check(fn, x)
            assert op in _record_optimized(f)
    f = check(lambda x: np.log(1 + np.exp(x)), rand((5,), "float32"))
    assert "softplus" in _record_optimized(f)


def test_gemm_gemv():
    a, b, c, v = rand((3, 4), "float64"), rand((4, 5), "float64"), rand((3, 5), "float64"), rand((4,), "float64")
    f = check(lambda a, b, c: 2.0 * (a @ b) + 0.5 * c, a, b, c)
    assert "gemm" in _record_optimized(f)
    f = check(lambda a, v, c: a @ v + c[:, 0], a, v, c)
    assert "gemv" in _record_optimized(f)


def test_fused_inplace_and_copy():
    x = rand((3, 4), "float64")
    f = check(lambda x: np.sin(np.exp(x) @ x.T) * 2 + 1, x)
    assert {"fused_elemwise", "inplace_elemwise"} <= _record_optimized(f)
    v = tc.dvector("v")  # a result folded to a constant is copied, so each call owns its array
    g = tc.function([v], [v + 1, tc.Tensor(tc.Constant(np.arange(4.0))) * 2])
    first, second = g(np.ones(2))[1], g(np.ones(2))[1]
    np.testing.assert_array_equal(first, [0.0, 2.0, 4.0, 6.0])
    assert first is not second and first.flags.writeable
    assert "copy" in _record_optimized(g)
