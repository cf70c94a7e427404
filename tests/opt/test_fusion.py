"""Elementwise fusion and in-place buffer reuse."""
import numpy as np
import pytest

import tracec as tc
from optcheck import check, op_counts, program, rand, run
from tracec.opt import optimize

NO_INPLACE = tc.Mode("FAST_RUN").excluding("inplace")


def test_chain_becomes_one_kernel_with_its_source_lines():
    x, y, z = tc.dvector("x"), tc.dvector("y"), tc.dvector("z")
    a = -x * x          # line A
    b = np.exp(a / 2)   # line B
    out = b * y + z     # line C
    opt, counts = check([x, y, z], out, [rand(6), rand(6, seed=1), rand(6, seed=2)], mode=NO_INPLACE)
    assert counts["fused_elemwise"] == 1 and sum(v for k, v in counts.items() if ":" not in k) == 1
    inner = opt.outputs[0].owner.params["inner"]
    lines = {loc.lineno for loc in inner.locs}
    assert len(lines) == 3 and all(loc.filename.endswith("test_fusion.py") for loc in inner.locs)


def test_runtime_error_in_a_kernel_names_the_users_line():
    @tc.compile
    def f(x, y):
        a = np.exp(x)
        b = a + y        # the failing line
        return b * 2

    with pytest.raises(ValueError, match=r"b = a \+ y"):
        f(np.ones(3), np.ones(4))
    fused = [n for n in _nodes(tc.opt.optimized_program(f)[0]) if n.op.name == "fused_elemwise"]
    assert fused


def _nodes(prog):
    from tracec.trace.graph import toposort
    return toposort(prog.roots(), stop=prog.all_inputs())


def test_value_used_outside_ends_a_single_output_kernel():
    x = tc.dvector("x")
    e = np.exp(x) * 2
    single = NO_INPLACE.excluding("multi_output")
    opt, counts = check([x], [np.sin(e) + 1, e], [rand(4)], mode=single)
    assert counts["fused_elemwise"] == 2 and counts["fused:exp"] == 1  # exp computed once


def test_reduction_fed_by_a_chain_is_fused():
    x = tc.dmatrix("x")
    opt, counts = check([x], np.sum(np.exp(x) * 2 + 1, axis=1), [rand((3, 4))], mode=NO_INPLACE)
    assert counts == {"fused_elemwise": 1, "fused:exp": 1, "fused:multiply": 1, "fused:add": 1,
                      "fused:sum": 1}


def test_broadcasting_inside_kernels():
    x, y = tc.dmatrix("x"), tc.dvector("y")
    check([x, y], np.exp(x) * y + np.sin(y), [rand((3, 1)), rand(4, seed=1)], mode=NO_INPLACE,
          present=["fused_elemwise"])


def test_fusion_can_be_excluded():
    x = tc.dvector("x")
    _, counts = check([x], np.exp(x) + 1, [rand(3)], mode=tc.Mode("FAST_RUN").excluding("fusion"))
    assert not counts["fused_elemwise"]


NO_FUSION = tc.Mode("FAST_RUN").excluding("fusion")


def test_inplace_reuses_a_dead_intermediate():
    x = tc.dvector("x")
    opt, counts = check([x], np.sin(np.exp(x)) + 1, [rand(5)], mode=NO_FUSION)
    assert counts["inplace_elemwise"] == 2  # sin writes into exp's buffer, add into sin's
    xv = rand(5)
    saved = xv.copy()
    run(opt, [xv])
    np.testing.assert_array_equal(xv, saved)


def test_inplace_never_writes_inputs_shared_or_results():
    x = tc.dvector("x")
    w = tc.shared(np.ones(3), name="w")
    e = np.exp(x)
    opt, counts = check([x], [x + 1, w * 2, e, e + 1], [rand(3)], mode=NO_FUSION)
    assert not counts["inplace_elemwise"]
    f = tc.function([x], [np.exp(x) + w, w * 1], mode=NO_FUSION)
    xv = np.zeros(3)
    a, b = f(xv)
    np.testing.assert_array_equal(w.get_value(), np.ones(3))
    np.testing.assert_array_equal(xv, np.zeros(3))
    np.testing.assert_array_equal(a, 2 * np.ones(3))


def test_inplace_falls_back_when_the_buffer_does_not_fit():
    x, y = tc.dmatrix("x"), tc.dmatrix("y")
    opt, counts = check([x, y], np.exp(x) + y, [rand((3, 1)), rand((3, 4), seed=1)], mode=NO_FUSION)
    assert counts["inplace_elemwise"] == 1  # exp(x) is (3, 1), the result (3, 4): a fresh buffer
    opt, _ = check([x, y], np.exp(x) + y, [rand((3, 4)), rand((3, 4), seed=1)], mode=NO_FUSION)


def test_inplace_on_fused_kernels():
    x, y = tc.dvector("x"), tc.dvector("y")
    m = x @ y  # not elementwise: a fresh buffer
    keep_outer = tc.Mode("FAST_RUN").excluding("outer_as_multiply")  # else outer is fused away
    opt, counts = check([x, y], np.outer(x, y) * 2 + np.exp(y), [rand(3), rand(4, seed=1)], mode=keep_outer)
    assert counts["inplace_elemwise"] == 1  # the kernel writes into outer's buffer
    opt, counts = check([x, y], np.exp(np.sin(x) * m) + 1, [rand(3), rand(3, seed=1)], mode="FAST_RUN")
    assert counts["fused_elemwise"] == 1  # m is 0-d and x an input: nothing to write into


def test_the_full_pipeline_on_a_small_network():
    @tc.compile
    def net(x, W1, b1, W2, b2):
        h = np.tanh(x @ W1 + b1)
        logits = h @ W2 + b2
        return np.log(np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True))

    args = [rand((5, 3)), rand((3, 8), seed=1), rand(8, seed=2), rand((8, 4), seed=3), rand(4, seed=4)]
    got = net(*args)
    h = np.tanh(args[0] @ args[1] + args[2])
    logits = h @ args[3] + args[4]
    np.testing.assert_allclose(got, logits - np.log(np.exp(logits).sum(1, keepdims=True)), rtol=1e-12)
    counts = op_counts(tc.opt.optimized_program(net)[0])
    assert counts["gemm"] == 2 and not counts["logsumexp"]  # stabilized to logsumexp, then lowered
    assert counts["max"] == 1 and counts["fused:sum"] == 1  # ... to a max and a fused sum of exp
    prog = optimize(program([], []))
    assert prog.outputs == []
