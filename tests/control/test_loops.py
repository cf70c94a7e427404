"""Python loops and ifs in tc.compile functions, captured as scan/ifelse by the AST
conversion, each checked against running the same function under plain NumPy."""
import numpy as np
import pytest

import tracec as tc
from tracec.trace.graph import toposort

RNG = np.random.default_rng(0)


def op_names(compiled):
    """Op names of the (single) traced program, outer graph only."""
    program, = compiled.programs
    return [n.op.name for n in toposort(program.roots())]


def all_ops(compiled):
    """Op names of the program and of every inner graph (scan steps, ifelse branches)."""
    program, = compiled.programs
    names, todo = [], [program.roots()]
    while todo:
        for node in toposort(todo.pop()):
            names.append(node.op.name)
            info = node.params.get("info")
            for graph in (getattr(info, "inner", None), getattr(info, "then_graph", None),
                          getattr(info, "else_graph", None)):
                if graph is not None:
                    todo.append(graph.outputs)
    return names


def check(fn, *args, **kwargs):
    """Run `fn` compiled and under NumPy on copies of `args`; values, dtypes and the
    arguments' final contents (write-back) must agree. Returns the compiled function."""
    compiled = tc.compile(fn, **kwargs)
    np_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    tc_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected, got = fn(*np_args), compiled(*tc_args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        if e is None:
            assert g is None
            continue
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12)
        assert np.asarray(g).dtype == np.asarray(e).dtype, (np.asarray(g).dtype, np.asarray(e).dtype)
    for a, b in zip(np_args, tc_args):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(b, a)
    return compiled


# -- for loops over traced bounds and arrays ---------------------------------------------------
def heat(A, nsteps):
    B = A.copy()
    for t in range(nsteps):
        B[1:-1, 1:-1] = A[1:-1, 1:-1] + 0.1 * (B[:-2, 1:-1] + B[2:, 1:-1] + B[1:-1, :-2]
                                               + B[1:-1, 2:] - 4 * B[1:-1, 1:-1])
    return B


def heat_in_place(B, nsteps):
    for _ in range(nsteps):
        B[1:-1, 1:-1] = 0.25 * (B[:-2, 1:-1] + B[2:, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:])


def test_heat_stencil_with_traced_step_count():
    A = RNG.random((7, 6))
    f = check(heat, A, 5)
    for n in (0, 1, 12):
        np.testing.assert_allclose(f(A, n), heat(A, n))
    # zero steps gives back B unchanged: scan_last, no ifelse around the loop
    assert "ifelse" not in op_names(f) and op_names(f).count("scan_last") == 1
    check(heat, A.astype(np.float32), 3)


def test_in_place_stencil_writes_back_into_the_argument():
    B = RNG.random((6, 6))
    f = check(heat_in_place, B, 4)
    B2, expected = B.copy(), B.copy()
    assert f(B2, 7) is None
    heat_in_place(expected, 7)
    np.testing.assert_allclose(B2, expected)


def test_ten_thousand_steps_are_one_scan_node():
    def decay(x, n):
        for i in range(n):
            x = 0.999 * x + 0.001
        return x

    f = check(decay, np.ones(3), 10_000)
    assert "ifelse" not in op_names(f) and len(op_names(f)) < 15
    assert all_ops(f).count("scan") == 1 and len(all_ops(f)) < 30


def test_accumulation_keeps_numpy_dtypes():
    def total(x, n):
        s = 0
        for i in range(n):
            s = s + x[i]
        return s

    check(total, RNG.random(5), 4)
    check(total, RNG.random(5).astype(np.float32), 5)   # 0 + float32 stays float32


def test_python_int_counter_becomes_a_traced_carry():
    def count_positive(x):
        steps = 0
        hits = 0
        for v in x:
            steps += 1
            hits = hits + (v > 0)
        return steps, hits

    check(count_positive, RNG.standard_normal(9))


def test_iterate_rows_enumerate_and_zip():
    def rows(X, Y):
        acc = np.zeros(X.shape[1])
        for row in X:
            acc = acc + row * row
        weighted = 0.0
        for i, row in enumerate(X):
            weighted = weighted + i * row.sum()
        dots = 0.0
        for a, b in zip(X, Y):
            dots = dots + a @ b
        return acc, weighted, dots

    check(rows, RNG.random((4, 3)), RNG.random((6, 3)))  # zip stops at the shorter one


def test_range_with_traced_start_and_negative_step():
    def walk(x, a, b):
        out = 0.0
        for i in range(b, a, -2):
            out = out * 10 + x[i]
        return out

    f = check(walk, np.arange(10.0), 1, 8)
    for a, b in ((0, 9), (5, 5), (7, 2)):
        assert f(np.arange(10.0), a, b) == walk(np.arange(10.0), a, b)


def test_loop_variable_used_after_the_loop():
    def last_index(x, n):
        i = -1
        for i in range(n):
            x = x + i
        return x, i

    f = check(last_index, np.zeros(2), 4)
    assert f(np.zeros(2), 0)[1] == -1


# -- while loops -------------------------------------------------------------------------------
def newton_sqrt(a):
    x = a
    steps = 0
    while np.abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
        steps += 1
    return x, steps


def test_while_newton_iteration():
    f = check(newton_sqrt, 2.0)
    for a in (1.0, 9.0, 1e6):  # a == 1 runs the body zero times
        x, steps = f(a)
        ex, esteps = newton_sqrt(a)
        assert np.isclose(x, ex) and steps == esteps
    assert len(f.programs) == 1


def test_while_with_and_condition_and_array_state():
    def relax(x, tol):
        err = tol + 1.0
        it = 0
        while err > tol and it < 100:
            new = 0.5 * (x + np.roll(x, 1))
            err = np.abs(new - x).max()
            x = new
            it += 1
        return x, it

    check(relax, RNG.random(6), 1e-3)


# -- if on traced conditions -------------------------------------------------------------------
def test_if_elif_else_on_traced_condition():
    def piecewise(x, t):
        y = x * 0
        if t > 1:
            y = x * 2
            z = 1.0
        elif t < -1:
            y = -x
            z = 2.0
        else:
            z = 3.0
        return y, z

    f = check(piecewise, RNG.random(3), 2.0)
    for t in (-5.0, 0.0, 5.0):
        for got, want in zip(f(np.ones(3), t), piecewise(np.ones(3), t)):
            np.testing.assert_allclose(got, want)
    assert "ifelse" in op_names(f)


def test_if_inside_traced_loop_and_conditional_expression():
    def clipped_sum(x):
        s = 0.0
        for v in x:
            if v > 0.5:
                s = s + 1.0
            else:
                s = s + v
        return s, (s if s > 1 else -s)

    check(clipped_sum, RNG.random(8))


def test_in_place_change_in_a_traced_branch():
    def maybe_zero(B, t):
        if t > 0:
            B[0] = 0.0
        return B.sum()

    B = np.arange(1.0, 4.0)
    f = check(maybe_zero, B, 1.0)
    B2 = B.copy()
    f(B2, -1.0)
    np.testing.assert_array_equal(B2, B)


# -- break and continue --------------------------------------------------------------------------
def test_break_under_traced_condition():
    def first_above(x, limit):
        idx = -1
        for i in range(x.shape[0]):
            if x[i] > limit:
                idx = i
                break
        return idx

    f = check(first_above, np.array([0.1, 0.7, 0.3, 0.9]), 0.5)
    assert f(np.array([0.1, 0.2]), 0.5) == -1


def test_continue_under_traced_condition_and_else_clause():
    def positives(x):
        total = 0.0
        count = 0
        for v in x:
            if v < 0:
                continue
            total = total + v
            count += 1
        else:
            count = count * 10
        return total, count

    check(positives, RNG.standard_normal(7))


def test_while_with_traced_break():
    def collatz(n):
        steps = 0
        while n != 1:
            if steps >= 50:
                break
            n = np.where(n % 2 == 0, n // 2, 3 * n + 1)
            steps += 1
        return n, steps

    f = check(collatz, np.int64(27))
    for n in (1, 6, 7):
        assert tuple(map(int, f(np.int64(n)))) == tuple(map(int, collatz(np.int64(n))))


# -- nesting and helpers -------------------------------------------------------------------------
def pairwise(X):
    n = X.shape[0]
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            D[i, j] = np.sqrt(((X[i] - X[j]) ** 2).sum())
    return D


def smooth(x, times):
    for _ in range(times):
        x = 0.5 * x + 0.25 * (np.roll(x, 1) + np.roll(x, -1))
    return x


def test_nested_traced_loops():
    check(pairwise, RNG.random((5, 2)))


def test_loops_in_called_helper_functions_are_converted():
    def model(x, times):
        y = smooth(x, times)
        return smooth(y, times) + newton_sqrt(2.0)[0]

    f = check(model, RNG.random(6), 3)
    np.testing.assert_allclose(f(np.ones(6), 0), model(np.ones(6), 0))


def test_while_inside_for():
    def roots(a):
        out = np.zeros_like(a)
        for i in range(a.shape[0]):
            x = a[i]
            while np.abs(x * x - a[i]) > 1e-9:
                x = 0.5 * (x + a[i] / x)
            out[i] = x
        return out

    check(roots, np.array([1.0, 2.0, 10.0]))


# -- loops over Python values ----------------------------------------------------------------------
def test_short_python_loops_unroll_with_python_semantics():
    def f(x):
        found = None
        for k in range(10):
            if k == 1:
                continue
            if k * k > 20:
                found = k
                break
            x = x + k
        else:
            found = -1
        names = []
        for name in ("a", "b"):
            names.append(name)
        return x, found, "".join(names)

    compiled = tc.compile(f)
    x, found, text = compiled(np.zeros(2))
    ex, efound, etext = f(np.zeros(2))
    np.testing.assert_allclose(x, ex)
    assert (found, text) == (efound, etext)
    assert "scan" not in op_names(compiled)


def test_concrete_loop_with_traced_break():
    def prefix_sum(x):
        s = 0.0
        for k in range(4):      # unrolled; after a traced break the remaining steps are guarded
            if x[k] > 0.5:
                break
            s = s + x[k]
        return s

    f = check(prefix_sum, np.array([0.1, 0.2, 0.9, 0.3]))
    for x in ([0.9, 0, 0, 0], [0.1, 0.1, 0.1, 0.1]):
        assert f(np.array(x)) == prefix_sum(np.array(x))
    assert "scan" not in all_ops(f)


def test_nested_traced_loops_are_two_scans():
    f = check(pairwise, RNG.random((4, 3)))
    assert all_ops(f).count("scan") == 2


def test_return_inside_concrete_loop_still_works():
    def first_even(x, values=(3, 5, 8, 9)):
        for v in values:
            if v % 2 == 0:
                return x * v
        return x

    check(first_even, np.ones(2))


def test_long_python_range_becomes_one_scan():
    def decay(x):
        steps = 0
        for i in range(1000):
            x = x * 0.99
            steps += 1
        total = 0
        for i in range(1000):   # pure Python: stays Python (total is an int)
            total += i
        return x, steps, total

    f = check(decay, np.ones(2))
    assert op_names(f).count("scan") == 1 and len(op_names(f)) < 10
    with tc.config.change(unroll_limit=2000):
        g = tc.compile(decay)
        g(np.ones(2))
        assert "scan" not in op_names(g)


def test_long_concrete_while_switches_to_scan():
    def grow(x):
        k = 0
        while k < 500:
            x = x * 1.01
            k += 1
        return x, k

    f = check(grow, np.ones(2))
    ops = all_ops(f)  # unroll_limit steps unrolled, then one scan for the rest
    assert ops.count("scan") == 1 and ops.count("multiply") == tc.config.unroll_limit + 1


def test_long_python_loop_needing_concrete_index_falls_back_with_warning():
    weights = [float(k) for k in range(100)]

    def weighted(x):
        for k in range(100):
            x = x + weights[k]
        return x

    with pytest.warns(UserWarning, match="runs unrolled"):
        check(weighted, np.zeros(2))


def test_unroll_limit_flag():
    assert tc.config.unroll_limit == 64
    assert "unroll_limit" in tc.config.describe()


# -- converted source and unavailable source ---------------------------------------------------------
def test_converted_source_shows_the_rewrite():
    text = tc.converted_source(tc.compile(heat))
    assert text.startswith("def heat(A, nsteps):")
    assert "_tc_.for_stmt(" in text and "B[1:(- 1), 1:(- 1)]" in text
    assert "_tc_.while_stmt(" in tc.converted_source(newton_sqrt)
    compile(text, "<converted>", "exec")  # valid Python


def test_function_without_source_is_traced_as_is_with_a_warning():
    namespace = {}
    exec("def double(x):\n    return x * 2\n", namespace)
    f = tc.compile(namespace["double"])
    with pytest.warns(UserWarning, match="could not read the source"):
        np.testing.assert_allclose(f(np.ones(2)), [2.0, 2.0])
    with pytest.raises(ValueError, match="no converted source"):
        tc.converted_source(namespace["double"])


def _recursive_power(x, k):
    return x if k == 0 else x * _recursive_power(x, k - 1)


def test_recursive_user_function_is_converted():
    f = tc.compile(_recursive_power, static_argnums=1)
    np.testing.assert_array_equal(f(np.arange(3.0), 3), np.arange(3.0) ** 4)
