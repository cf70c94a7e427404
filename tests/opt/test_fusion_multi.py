"""Multi-output fusion: kernels sharing inputs or intermediates become one node
with several outputs -- never computing a value twice, never making a cycle,
and only where every output surely has the kernel's broadcast shape."""
import io
import re

import numpy as np
import pytest

import tracec as tc
from optcheck import check, op_counts, rand, run
from tracec.opt.verify import GraphError, check_fused
from tracec.trace.graph import toposort

NO_INPLACE = tc.Mode("FAST_RUN").excluding("inplace")


def _fused(prog):
    return [n for n in toposort(prog.roots(), stop=prog.all_inputs()) if n.op.name == "fused_elemwise"]


def test_intermediate_read_outside_becomes_an_extra_output():
    x = tc.dvector("x")
    e = np.exp(x) * 2
    opt, counts = check([x], [np.sin(e) + 1, e], [rand(4)], mode=NO_INPLACE)
    assert counts["fused_elemwise"] == 1 and counts["fused:exp"] == 1
    (node,) = _fused(opt)
    assert len(node.outputs) == 2
    assert opt.outputs[0] is node.outputs[1] and opt.outputs[1] is node.outputs[0]  # e comes first


def test_siblings_of_one_intermediate_share_one_kernel_and_it_is_not_stored():
    x = tc.dvector("x")
    a = np.exp(x)
    opt, counts = check([x], [a * 2, a + 1], [rand(5)], mode=NO_INPLACE)
    assert counts == {"fused_elemwise": 1, "fused:exp": 1, "fused:multiply": 1, "fused:add": 1}
    (node,) = _fused(opt)
    inner = node.params["inner"]
    assert [v.owner.op.name for v in inner.outputs] == ["multiply", "add"]  # exp(x) stays in the loop
    assert len(inner.locs) == 2 and all(loc.filename.endswith("test_fusion_multi.py") for loc in inner.locs)
    text = tc.debugprint(opt.outputs, file=io.StringIO())
    assert "fused_elemwise.0 [id A]" in text and "fused_elemwise.1 [id A]" in text
    assert len(re.findall(r"exp \[id \w+\]  test_fusion_multi", text)) == 1 and "inner output 1:" in text


def test_siblings_reading_the_same_inputs_share_one_kernel():
    x, y = tc.dmatrix("x"), tc.dvector("y")
    outs = [np.sin(x) * y, np.cos(x) + y, np.where(x > y, x, y)]
    opt, counts = check([x, y], outs, [rand((3, 4)), rand(4, seed=1)], mode=NO_INPLACE)
    (node,) = _fused(opt)
    assert len(node.outputs) == 3 and counts["fused_elemwise"] == 1


def test_values_of_possibly_different_shapes_stay_in_separate_kernels():
    # exp(x) has x's shape, x + y the broadcast shape: (3, 1) and (3, 4) below
    x, y = tc.dmatrix("x"), tc.dmatrix("y")
    a = np.exp(x) * 2
    opt, counts = check([x, y], [a, a + y, np.sin(y) - 1],
                        [rand((3, 1)), rand((3, 4), seed=1)], mode=NO_INPLACE)
    assert all(len(n.outputs) == 1 for n in _fused(opt)) and counts["fused:exp"] == 1


def test_a_dimension_known_to_be_1_does_not_prevent_merging():
    x, row = tc.dmatrix("x"), tc.tensor("float64", (True, False), name="row")
    a = np.exp(x) * 2  # its shape is x's, whatever row's length: row only broadcasts into it
    opt, _ = check([x, row], [a, a + 1, a * row], [rand((3, 4)), rand((1, 4), seed=1)], mode=NO_INPLACE)
    assert [len(n.outputs) for n in _fused(opt)] == [2]  # a and a + 1; a * row may differ in shape


def test_a_kernel_never_both_feeds_and_reads_an_outside_node():
    # exp(x) and x * s share x and have x's shape, but s = sum(exp(x)) lies between them
    x = tc.dvector("x")
    a = np.exp(x)
    opt, counts = check([x], [x * np.sum(a), a + 1], [rand(5)], mode=NO_INPLACE)
    assert counts["sum"] == 1 and counts["fused:exp"] == 1 and not counts["exp"]
    for node in _fused(opt):
        assert "multiply" not in [n.op.name for n in node.params["inner"].nodes]


def test_kernels_merge_across_a_chain_of_sharing():
    x, y = tc.dvector("x"), tc.dvector("y")
    a = np.exp(x) * y        # a fused kernel of its own
    b = np.tanh(a)           # reads a
    c = a / (1 + np.abs(y))  # reads a and y
    opt, counts = check([x, y], [a, b, c * 2], [rand(6), rand(6, seed=1)], mode=NO_INPLACE)
    assert counts["fused_elemwise"] == 1 and counts["fused:exp"] == 1
    assert len(_fused(opt)[0].outputs) == 3


def test_multi_output_fusion_can_be_excluded_and_goes_with_fusion():
    x = tc.dvector("x")
    a = np.exp(x)
    _, counts = check([x], [a * 2, a + 1], [rand(3)], mode=NO_INPLACE.excluding("multi_output"))
    assert counts["fused_elemwise"] == 0 and counts["exp"] == 1
    _, counts = check([x], [a * 2, a + 1], [rand(3)], mode=NO_INPLACE.excluding("fusion"))
    assert counts["fused_elemwise"] == 0


def test_inplace_writes_into_an_output_of_a_multi_output_kernel():
    x, y = tc.dvector("x"), tc.dvector("y")
    a = np.exp(x)
    opt, counts = check([x, y], [a * 2, (a + 1) * y], [rand(4), rand(4, seed=1)], mode="FAST_RUN")
    # {exp, a * 2} has outputs a and a * 2; the kernel (a + 1) * y writes into a's buffer
    assert counts["inplace_elemwise"] == 1 and counts["inplace:fused_elemwise"] == 1
    assert [len(n.outputs) for n in _fused(opt)] == [2]
    xv, yv = rand(4), rand(4, seed=1)
    saved = xv.copy(), yv.copy()
    run(opt, [xv, yv])
    np.testing.assert_array_equal(xv, saved[0])
    np.testing.assert_array_equal(yv, saved[1])


def _three_ways(fn, *args):
    """fn under NumPy, FAST_COMPILE and FAST_RUN: the results, which must agree."""
    expected = fn(*args)
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        got = tc.compile(fn, mode=mode)(*args)
        for e, g in zip(expected, got):
            assert np.asarray(g).dtype == np.asarray(e).dtype and np.shape(g) == np.shape(e)
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    return expected


def test_multi_output_kernels_against_numpy_with_broadcasting():
    def f(x, y, z):
        a = np.exp(-x * x / 2) * y
        b = np.log1p(a * a) + z
        return a, b, np.maximum(a, b) > z, (a - b) ** 2

    args = rand((3, 1)), rand((1, 4), seed=1), rand(4, seed=2)
    _three_ways(f, *args)
    g = tc.compile(f)
    g(*args)
    (prog,) = tc.opt.optimized_program(g)
    assert max(len(n.outputs) for n in _fused(prog)) >= 2


def _softmax_xent(W, x, y):
    z = x @ W
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.mean(np.sum(y * np.log(p), axis=1))


def test_gradient_of_softmax_cross_entropy():
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((4, 3)), rng.standard_normal((5, 4))
    y = np.eye(3)[rng.integers(0, 3, 5)]
    grads = {mode: tc.compile(tc.grad(_softmax_xent), mode=mode) for mode in ("FAST_COMPILE", "FAST_RUN")}
    fast = grads["FAST_RUN"](W, x, y)
    np.testing.assert_allclose(fast, grads["FAST_COMPILE"](W, x, y), rtol=1e-12, atol=1e-14)
    (prog,) = tc.opt.optimized_program(grads["FAST_RUN"])
    assert any(len(n.outputs) > 1 for n in _fused(prog))  # z - max and the max's mask share a kernel
    tc.verify_grad(_softmax_xent, [W, x, y], rng=1)


def test_runtime_error_in_a_multi_output_kernel_names_the_users_line():
    @tc.compile
    def f(x, y):
        a = np.exp(x)
        b = a + y        # the failing line
        return b * 2, b - 1

    f(np.ones(3), np.ones(3))
    (prog,) = tc.opt.optimized_program(f)
    assert [len(n.outputs) for n in _fused(prog)] == [2]
    with pytest.raises(ValueError, match=r"b = a \+ y"):
        f(np.ones(3), np.ones(4))


def test_verifier_checks_kernel_invariants():
    x = tc.dvector("x")
    opt, _ = check([x], [np.exp(x) * 2, np.exp(x) + 1], [rand(3)], mode=NO_INPLACE)
    (node,) = _fused(opt)
    inner = node.params["inner"]
    check_fused(inner, "ok")
    bad = type(inner)(inner.inputs, [inner.outputs[0], inner.outputs[0]], inner.nodes)
    with pytest.raises(GraphError, match="distinct"):
        check_fused(bad, "duplicated output")
    bad = type(inner)(inner.inputs, inner.outputs, inner.nodes[::-1])
    with pytest.raises(GraphError, match="computed after it"):
        check_fused(bad, "wrong order")
    with pytest.raises(AttributeError, match="2 outputs"):
        inner.output


def test_every_value_is_computed_once_in_a_larger_graph():
    x, y = tc.dmatrix("x"), tc.dmatrix("y")
    h = np.tanh(x @ y)
    g = (1 - h * h) * 3
    outs = [h, g, np.sum(g * h, axis=0), np.exp(h) + g]
    before = op_counts(check([x, y], outs, [rand((3, 3)), rand((3, 3), seed=1)], mode="FAST_COMPILE")[0])
    _, counts = check([x, y], outs, [rand((3, 3)), rand((3, 3), seed=1)], mode=NO_INPLACE)
    for name in ("tanh", "exp"):
        assert counts["fused:" + name] + counts[name] == before[name] == 1


def test_a_wide_fan_out_makes_kernels_of_bounded_size():
    from tracec.opt.fusion import MAX_UNITS
    x = tc.dvector("x")
    outs = [np.sin(x) * k for k in range(2, 2 * MAX_UNITS + 6)]
    opt, counts = check([x], outs, [rand(3)], mode=NO_INPLACE)
    sizes = [len(n.outputs) for n in _fused(opt)]
    # sin and 31 products (sin is an output too: the other kernels read it; x, 31 constants and
    # 32 outputs are 64 arrays), 31 products (sin, 31 constants, 31 outputs: 63; one more is 65)
    # and the 6 left
    assert counts["fused:sin"] == 1 and sizes == [MAX_UNITS, MAX_UNITS - 1, 6] and sum(sizes) == len(outs) + 1
    assert [kernel_arrays(n) for n in _fused(opt)] == [64, 63, 13]


def kernel_arrays(node):
    """Arrays the C kernel of a fused node takes: inputs, constants and outputs."""
    constants = {id(c) for n in node.params["inner"].nodes for c in n.inputs if isinstance(c, tc.Constant)}
    return len({id(v) for v in node.inputs}) + len(constants) + len(node.outputs)


def _sum_of(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def test_a_kernel_takes_at_most_the_arrays_the_c_runtime_accepts():
    # 70 inputs into one expression: a single kernel would take 71 arrays, the C runtime 64
    from tracec.opt.fusion import MAX_KERNEL_ARRAYS
    xs = [tc.dvector(f"x{i}") for i in range(70)]
    values = [rand(3, seed=i) for i in range(70)]
    opt, counts = check(xs, _sum_of([x * (i + 1.5) for i, x in enumerate(xs)]), values, mode=NO_INPLACE)
    kernels = _fused(opt)
    # 70 inputs, 70 constants, one result and each link twice (a kernel's output, the next's input)
    assert counts["fused:add"] == 69 and counts["fused:multiply"] == 70
    assert max(map(kernel_arrays, kernels)) <= MAX_KERNEL_ARRAYS
    assert sum(map(kernel_arrays, kernels)) == 141 + 2 * (len(kernels) - 1) and len(kernels) == 3
    # the multi-output form: 70 outputs of one shape reading a common y; each kernel within budget
    y = tc.dvector("y")
    opt, counts = check(xs + [y], [np.sin(x) + y for x in xs], values + [rand(3, seed=99)], mode=NO_INPLACE)
    kernels = _fused(opt)
    assert sum(len(n.outputs) for n in kernels) == 70 and counts["fused:sin"] == 70
    assert max(map(kernel_arrays, kernels)) <= MAX_KERNEL_ARRAYS
