"""The engine, merge, constant folding, dead code, modes, the verifier and the pipeline."""
import io
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.opt import GraphError, OptimizerWarning, RewriteError, optimize, run_pass
from tracec.opt.engine import Builder, on
from tracec.trace.graph import Node
from tracec.trace.ops import OPS
from optcheck import REWRITES, check, op_counts, program, rand, run


def test_merge_equal_subexpressions():
    x = tc.dvector("x")
    opt, counts = check([x], np.exp(x) + np.exp(x), [rand(5)], mode="FAST_COMPILE")
    assert counts["exp"] == 1
    text = tc.debugprint(opt.outputs, file=io.StringIO())
    assert text.count("exp [id B]") == 2 and "exp [id C]" not in text  # printed once, then referred to


def test_merge_reaches_through_merged_inputs():
    x, y = tc.dvector("x"), tc.dvector("y")
    a = np.sin(np.exp(x) * y)
    b = np.sin(np.exp(x) * y)
    _, counts = check([x, y], [a + b, a * b], [rand(4), rand(4, seed=1)], mode="FAST_COMPILE")
    assert counts["exp"] == counts["multiply"] - 1 == counts["sin"] == 1


def test_merge_equal_constants_but_not_signed_zeros():
    x = tc.dvector("x")
    prog = optimize(program([x], [x * np.array([2.0, 3.0]) + np.array([2.0, 3.0]), x / -0.0, x / 0.0]),
                    "FAST_COMPILE")
    mul, add = prog.outputs[0].owner.inputs[0].owner, prog.outputs[0].owner
    assert mul.inputs[1] is add.inputs[1]  # one constant [2, 3]
    with np.errstate(divide="ignore"):
        got = run(prog, [np.ones(2)])
    assert np.all(got[1] == -np.inf) and np.all(got[2] == np.inf)


def test_constant_folding_uses_the_op_table():
    x = tc.dvector("x")
    c = np.exp(tc.Tensor(tc.Constant(np.array([0.0, 1.0])))) * 2 + 1
    opt, counts = check([x], x * c, [rand(2)], mode="FAST_COMPILE")
    assert dict(counts) == {"multiply": 1}


def test_constant_folding_keeps_big_allocations_and_errors():
    @tc.compile(mode="FAST_COMPILE")
    def f(x):
        return x + np.zeros((1000, 10)).sum() + np.ones(np.int64(300) * 100, float).sum()

    assert f(np.ones(2))[0] == 30001.0

    @tc.compile
    def bad(x):
        return x + (np.ones(3) + np.ones(4))  # folding this would hide the user's line

    with pytest.raises(ValueError, match="test_engine.py"):
        bad(np.ones(3))


def test_dead_code_and_identity_ops():
    x = tc.dvector("x")
    _, counts = check([x], tc.stop_gradient(np.positive(x)) * 2, [rand(3)], mode="FAST_COMPILE")
    assert dict(counts) == {"multiply": 1}


def test_fast_compile_does_not_simplify():
    x = tc.dvector("x")
    _, counts = check([x], x * 1, [rand(3)], mode="FAST_COMPILE")
    assert counts["multiply"] == 1
    _, counts = check([x], x * 1, [rand(3)], mode="FAST_RUN")
    assert not counts


def test_modes_include_exclude():
    x = tc.dvector("x")
    out = np.log(1 + x * 1)
    vals = [rand(3, low=0, high=1)]
    assert check([x], out, vals, mode=REWRITES.excluding("canonicalize"))[1]["multiply"] == 1
    assert check([x], out, vals, mode=REWRITES.excluding("mul_by_one"))[1]["multiply"] == 1
    assert check([x], out, vals, mode=REWRITES.excluding("log1p_from_log"))[1]["log1p"] == 0
    assert check([x], out, vals, mode=tc.Mode("FAST_COMPILE").including("stabilize"))[1]["log1p"] == 1
    with tc.config.change(optimizer_excluding="stabilize:fusion"):
        assert check([x], out, vals)[1]["log"] == 1
    with pytest.warns(UserWarning, match="no pass or rewrite is named 'nonsense'"):
        optimize(program([x], out), tc.Mode("FAST_RUN").excluding("nonsense"))
    with pytest.raises(ValueError, match="unknown mode"):
        tc.Mode("FASTEST")


def test_mode_objects_reach_compile_and_function():
    mode = tc.Mode("FAST_RUN").excluding("fusion", "inplace", "canonicalize")

    @tc.compile(mode=mode)
    def f(x):
        return x * 1

    np.testing.assert_array_equal(f(np.arange(3.0)), np.arange(3.0))
    assert op_counts(tc.opt.optimized_program(f)[0])["multiply"] == 1
    x = tc.dvector("x")
    g = tc.function([x], x * 1, mode=mode)
    assert op_counts(tc.opt.optimized_program(g))["multiply"] == 1
    assert repr(mode) == "Mode('FAST_RUN', excluding=('fusion', 'inplace', 'canonicalize'))"


def test_pipeline_is_printable_and_profiled():
    text = tc.opt.describe_pipeline(tc.Mode("FAST_RUN").excluding("fusion"))
    names = [line.split(":")[0].strip("- ").strip() for line in text.splitlines()[1:]]
    assert names == [name for name, _ in tc.opt.PIPELINE]
    assert "- fusion" in text and "log1p_from_log" in text
    x = tc.dvector("x")
    opt = optimize(program([x], np.exp(x) * 1 + np.exp(x)))
    report = tc.opt.profile_report(opt)
    assert "canonicalize" in report and "mul_by_one×1" in report


def test_type_breaking_rewrite_is_refused_loudly():
    @on("exp")
    def bad(node):
        return Builder(node)("cast", node.inputs[0], dtype="float32")

    x = tc.dvector("x")
    with pytest.raises(RewriteError, match="bad replaced exp"):
        run_pass(program([x], np.exp(x)), "bad", [bad])
    with tc.config.change(check_graph=False):
        out, _ = run_pass(program([x], np.exp(x)), "bad", [bad])
    assert op_counts(out) == {"exp": 1}


def test_growth_guard_and_sweep_cap(monkeypatch):
    @on("exp")
    def doubling(node):  # exp(x) -> (exp(x) + exp(x)) * 0.5, forever
        b = Builder(node)
        return b("multiply", b("add", b("exp", node.inputs[0]), b("exp", node.inputs[0])), tc.Constant(0.5))

    @on("exp")
    def creeping(node):  # exp(x) -> exp(x) * 1, forever
        b = Builder(node)
        return b("multiply", b("exp", node.inputs[0]), tc.Constant(1))

    x = tc.dvector("x")
    prog = program([x], np.exp(x))
    with pytest.warns(OptimizerWarning, match="grew the graph"):
        out, stats = run_pass(prog, "doubling", [doubling], merge=False)
    assert stats["nodes_after"] <= 2 * 200 + 2
    np.testing.assert_allclose(run(out, [np.ones(2)])[0], np.e)
    monkeypatch.setattr(tc.opt.engine, "MAX_SWEEPS", 3)  # 3 sweeps of at most 25 nested rewrites
    with pytest.warns(OptimizerWarning, match="fixed point"):
        out, _ = run_pass(prog, "creeping", [creeping], merge=False)
    np.testing.assert_allclose(run(out, [np.ones(2)])[0], np.e)


def test_verifier_catches_broken_graphs():
    x = tc.dvector("x")
    node = OPS["exp"].make_node([x.variable])
    broken = Node(OPS["exp"], [x.variable], node.params, [tc.TensorType("float32", (False,))], node.loc)
    with pytest.raises(GraphError, match="records types"):
        tc.opt.verify(program([x], broken.outputs[0]), [broken.outputs[0].type], "test")
    stray = tc.dvector("stray")
    with pytest.raises(GraphError, match="not an input"):
        tc.opt.verify(program([x], x + 1), [x.variable.type], "test") or \
            tc.opt.verify(tc.opt.engine.with_roots(program([x], x + 1), [(x + stray).variable]),
                          [x.variable.type], "test")


def test_interface_kept_when_a_shared_variable_drops_out():
    w = tc.shared(np.ones(3), name="w")
    x = tc.dvector("x")
    f = tc.function([x], x + (w - w))
    np.testing.assert_array_equal(f(np.arange(3.0)), np.arange(3.0))
    assert f.program.shared == tc.opt.optimized_program(f).shared


def test_constant_results_are_fresh_arrays():
    x = tc.dvector("x")
    f = tc.function([x], [x + 1, tc.Tensor(tc.Constant(np.arange(3.0))) * 2])
    a, b = f(np.ones(3))[1], f(np.ones(3))[1]
    assert a.flags.writeable and a is not b
    a[:] = 0
    np.testing.assert_array_equal(f(np.ones(3))[1], [0, 2, 4])


def test_intermediate_inputs_are_leaves():
    x = tc.dvector("x")
    y = np.exp(x)
    f = tc.function([y], np.log(y))  # log(exp(x)) -> x would need x, which is not an input
    np.testing.assert_allclose(f(np.array([1.0, 2.0])), np.log([1.0, 2.0]))


def test_writebacks_and_updates_survive_optimization():
    w = tc.shared(np.zeros(3), name="w")

    @tc.compile
    def step(x, out):
        out[:] = np.exp(x) * 1 + 0
        w[...] += x * 1
        return np.exp(x) + np.exp(x)

    x, out = np.arange(3.0), np.empty(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = step(x, out)
    np.testing.assert_allclose(r, 2 * np.exp(x))
    np.testing.assert_allclose(out, np.exp(x))
    np.testing.assert_allclose(w.get_value(), x)
    np.testing.assert_array_equal(x, np.arange(3.0))


def test_compile_accepts_optimizer_excluding():
    import numpy as np
    import tracec as tc
    from tracec.trace.graph import toposort

    def f(x):
        return np.log(1 + np.exp(x))

    plain = tc.compile(f, optimizer_excluding=["stabilize"])
    stable = tc.compile(f)
    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(plain(x), stable(x))
    ops_plain = {n.op.name for n in toposort(tc.opt.optimized_program(plain)[0].roots())}
    ops_stable = {n.op.name for n in toposort(tc.opt.optimized_program(stable)[0].roots())}
    assert "softplus" not in ops_plain and "softplus" in ops_stable


def test_functions_compiled_from_several_threads_agree():
    import threading
    import numpy as np
    import tracec as tc

    def loss(x):
        return np.log(1 + np.exp(x)).sum() + (x * 1.0 + 0.0).mean()

    x = np.linspace(-3, 3, 11)
    expected = tc.compile(loss, mode="FAST_COMPILE")(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(tc.compile(loss)(x))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20 and all(np.isclose(r, expected) for r in results)


def test_toposort_stops_at_variables_or_at_their_ids():
    from tracec.trace.graph import toposort
    x, y = tc.dvector("x"), tc.dvector("y")
    e = np.exp(x)
    out = (np.sin(e) * y).variable
    names = [n.op.name for n in toposort([out])]
    assert names == ["exp", "sin", "multiply"]  # inputs first, each node's inputs in order
    assert toposort([out], stop=[e.variable]) == toposort([out], stop_ids={id(e.variable): e.variable})
    assert [n.op.name for n in toposort([out], stop_ids={id(e.variable)})] == ["sin", "multiply"]
    with pytest.raises(TypeError, match="not both"):
        toposort([out], stop=[e.variable], stop_ids={id(e.variable)})


def test_new_nodes_of_a_replacement_merge_in_the_same_sweep():
    @on("square")
    def square_to_multiply(node):  # square(y) -> y * y
        y = node.inputs[0]
        return Builder(node)("multiply", y, y)

    x = tc.dvector("x")
    prog = program([x], np.exp(x * x) + np.exp(np.square(x)))
    out, stats = run_pass(prog, "square", [square_to_multiply])
    assert op_counts(out) == {"multiply": 1, "exp": 1, "add": 1}  # the new x*x and exp merged
    assert stats["sweeps"] == 1 and stats["rewrites"] == {"square_to_multiply": 1}
    values = [rand(6)]
    np.testing.assert_allclose(run(out, values)[0], run(prog, values)[0], rtol=1e-15)
