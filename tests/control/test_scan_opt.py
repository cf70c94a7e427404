"""Optimizer passes for loops: only the steps that are read are stored, and
scan/ifelse bodies are optimized with the outer graph's passes."""
import numpy as np

import tracec as tc
from tracec.trace.graph import toposort


def _nodes(program, name):
    return [n for n in toposort(program.roots()) if n.op.name == name]


def _scan_info(f):
    (node,) = _nodes(tc.opt.optimized_program(f), "scan")
    return node.params["info"]


def test_last_step_only_is_stored():
    A, k = tc.dvector("A"), tc.iscalar("k")
    result, updates = tc.scan(lambda prior, A: prior * A, outputs_info=np.ones_like(A),
                              non_sequences=A, n_steps=k)
    f = tc.function([A, k], result[-1], updates=updates)
    assert _scan_info(f).keep == (1,)
    np.testing.assert_allclose(f(range(6), 3), np.arange(6.0) ** 3)
    # the optimized loop really stores one step: run its node alone and look at the stack
    node = _nodes(tc.opt.optimized_program(f), "scan")[0]
    stacked = node.op.perform([5, np.arange(3.0), np.ones(3), np.arange(3.0)], node.params)[0]
    assert stacked.shape == (1, 3)


def test_last_k_steps_and_whole_history():
    x0, n = tc.dscalar("x0"), tc.iscalar("n")
    out, _ = tc.scan(lambda prev: prev + 1, outputs_info=x0, n_steps=n)
    two_last = tc.function([x0, n], out[-1] + out[-2])
    assert _scan_info(two_last).keep == (2,)
    assert two_last(0.0, 5) == 9.0
    whole = tc.function([x0, n], out.sum())
    assert _scan_info(whole).keep in (None, (None,))
    assert whole(0.0, 4) == 10.0


def test_gradient_graphs_keep_every_step():
    x, h0 = tc.dvector("x"), tc.dscalar("h0")
    hs, _ = tc.scan(lambda v, h: np.tanh(h + v), sequences=x, outputs_info=h0)
    (g,) = tc.grad(hs[-1], [h0])
    f = tc.function([x, h0], g)
    infos = [n.params["info"] for n in _nodes(tc.opt.optimized_program(f), "scan")]
    assert all(info.keep is None or None in info.keep for info in infos if info.name is None)
    tc.verify_grad(lambda x, h0: tc.scan(lambda v, h: np.tanh(h + v), sequences=x, outputs_info=h0)[0][-1],
                   [np.array([0.1, 0.2, -0.3]), np.float64(0.5)])


def test_inner_graph_is_optimized():
    x = tc.dvector("x")
    out, _ = tc.scan(lambda v: np.log(1 + np.exp(v)) * 1.0 + 0.0, sequences=x)
    f = tc.function([x], out, mode=tc.Mode().excluding("scan_pushout"))  # else the body leaves the loop
    inner = _scan_info(f).inner.program
    names = [n.op.name for n in toposort(inner.roots())]
    assert "softplus" in names and "multiply" not in names and "add" not in names
    np.testing.assert_allclose(f(np.array([-1000.0, 0.0, 1000.0])), [0.0, np.log(2.0), 1000.0])
    unoptimized = tc.function([x], out, mode="FAST_COMPILE")
    v = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(f(v), unoptimized(v))


def test_ifelse_branches_are_optimized():
    a = tc.dscalar("a")
    f = tc.function([a], tc.ifelse(a > 0, np.log(1 + a), a * 1.0))
    (node,) = _nodes(tc.opt.optimized_program(f), "ifelse")
    then_ops = [n.op.name for n in toposort(node.params["info"].then_graph.program.roots())]
    assert "log1p" in then_ops
    assert np.isclose(f(1e-12), 1e-12) and f(-2.0) == -2.0
