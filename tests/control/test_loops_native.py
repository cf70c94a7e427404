"""Converted Python loops as top-level scans: zero-step loops without ifelse, one forward
pass for value and gradient, mutated arguments written back as NumPy leaves them (also
when the loop swaps arrays between names), and loops inside tc.grad-transformed functions.
Each case is checked against the same function run by NumPy, gradients against finite
differences."""
import os

import numpy as np
import pytest

import tracec as tc
from tracec.trace.graph import toposort

RNG = np.random.default_rng(3)
MODES = [None, "FAST_COMPILE"]
THIS_FILE = os.path.basename(__file__)


def outer_nodes(compiled):
    """Nodes of the (single) optimized program of a tc.compile function."""
    program, = tc.opt.optimized_program(compiled)
    return toposort(program.roots())


def scans(compiled, name=None):
    return [n for n in outer_nodes(compiled) if n.op.name == "scan"
            and (name is None or n.params["info"].name == name)]


def copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def check(fn, *args, modes=MODES):
    """`fn` compiled (each mode) and under NumPy on copies of `args`: results and the
    arguments' contents after the call must agree. Returns the default-mode function."""
    np_args = copies(args)
    expected = fn(*np_args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    first = None
    for mode in modes:
        compiled = tc.compile(fn, mode=mode)
        tc_args = copies(args)
        got = compiled(*tc_args)
        got = got if isinstance(got, tuple) else (got,)
        for e, g in zip(expected, got):
            if e is None:
                assert g is None
            else:
                np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"mode={mode}")
                assert np.asarray(g).dtype == np.asarray(e).dtype
        for i, (a, b) in enumerate(zip(np_args, tc_args)):
            if isinstance(a, np.ndarray):
                np.testing.assert_allclose(b, a, err_msg=f"mode={mode}: argument {i} after the call")
        first = first or compiled
    return first


def line_of(marker):
    with open(__file__) as fh:
        hits = [i for i, line in enumerate(fh, 1) if line.rstrip().endswith("# " + marker)]
    assert len(hits) == 1, marker
    return hits[0]


# -- the loop is a top-level scan, storing one step ---------------------------------------------
def decay(x, n):
    for _ in range(n):
        x = 0.9 * x + 1.0
    return x


def newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
    return x


def test_for_loop_is_a_top_level_scan_storing_one_step_without_counter():
    f = check(decay, np.ones(3), 7)
    nodes = outer_nodes(f)
    assert "ifelse" not in [n.op.name for n in nodes]
    loop, = scans(f)
    info = loop.params["info"]
    assert info.keep == (1,)           # the one carried array; the unused counter is gone
    assert info.n_states == 1 and len(info.inner.outputs) == 1


def test_while_loop_is_a_top_level_scan_storing_one_step():
    f = check(newton_sqrt, 2.0)
    for a in (1.0, 9.0, 1e6):          # 1.0: the test fails at once, no step runs
        assert np.isclose(f(a), newton_sqrt(a))
    assert "ifelse" not in [n.op.name for n in outer_nodes(f)]
    assert scans(f)[0].params["info"].keep == (1,)


def test_value_and_grad_runs_the_forward_loop_once():
    def cost(x, n):
        for _ in range(n):
            x = np.sin(x) * 1.5
        return x.sum()

    f = tc.compile(lambda x, n: tc.value_and_grad(cost)(x, n))
    x = RNG.standard_normal(4)
    value, g = f(x, 5)
    assert np.isclose(value, cost(x, 5))
    assert len(scans(f, "for loop")) == 1 and len(scans(f)) == 2   # forward, and its reverse
    assert not any(scans(f, "for loop")[0].params["info"].keep or ())  # the reverse pass reads every step
    assert "ifelse" not in [n.op.name for n in outer_nodes(f)]
    eps = 1e-6
    numeric = [(cost(x + eps * e, 5) - cost(x - eps * e, 5)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(g, numeric, rtol=1e-6)


# -- zero steps and early exits, against NumPy --------------------------------------------------
def relax_in_place(B, n):
    for _ in range(n):
        B[1:-1] = 0.5 * (B[:-2] + B[2:])
    return B.sum()


def rows_sum(X):
    acc = np.zeros(X.shape[1])
    for row in X:
        acc = acc + row
    return acc


def until_large(x, limit):
    k = 0
    while x.sum() < limit:
        x[0] = x[0] + 1.0
        k += 1
    return k


def first_big(x, limit):
    total = 0.0
    for v in x:
        if v > limit:
            break
        total = total + v
    return total


def nested(X, n):
    out = np.zeros_like(X)
    for i in range(X.shape[0]):
        row = X[i]
        for _ in range(n):
            row = row * 0.5 + 1.0
        out[i] = row
    return out


@pytest.mark.parametrize("n", [0, 1, 4])
def test_zero_and_more_steps_match_numpy(n):
    check(relax_in_place, RNG.random(6), n)
    check(nested, RNG.random((3, 2)), n)
    check(decay, np.float32(2.0), n)


def test_loops_over_empty_sequences_and_failing_tests_run_no_step():
    check(rows_sum, np.zeros((0, 3)))
    check(rows_sum, RNG.random((4, 3)))
    check(until_large, np.ones(3), 0.0)    # the while test fails at once: x untouched
    check(until_large, np.ones(3), 7.5)
    check(first_big, np.array([5.0, 1.0]), 1.0)   # break in the first step
    check(first_big, np.array([0.5, 0.2, 3.0]), 1.0)
    check(first_big, np.zeros(0), 1.0)


# -- arrays swapped between names: the caller's arrays hold what NumPy leaves ----------------------
def jacobi(A, B, steps):
    for _ in range(steps):
        B[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
        A, B = B, A
    return A


def rotate(A, B, C, n):
    for i in range(n):
        C[0] = A[0] + B[0] + i
        A, B, C = B, C, A
    return A


def swap_while(A, B, limit):
    k = 0
    while A.sum() < limit:
        B[:] = 2.0 * A + 1.0
        A, B = B, A
        k += 1
    return k


def swap_until_converged(A, B, n):
    for _ in range(n):
        if A.sum() > 40.0:
            break
        B[:] = A + 1.5
        A, B = B, A
    return A


def swap_fixed_count(A, B):
    for i in range(101):              # a concrete range past the unroll limit: one scan
        B[:] = 0.5 * A + i
        A, B = B, A
    A[0] = -1.0                       # after 101 swaps A is the caller's B: written back there
    return A


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 6])
def test_jacobi_swap_writes_both_caller_arrays(steps):
    A0 = RNG.standard_normal((6, 5))
    check(jacobi, A0.copy(), A0.copy(), steps)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7])
def test_rotating_three_arrays(n):
    x = np.arange(3.0)
    check(rotate, x.copy(), x + 10, x + 20, n)


@pytest.mark.parametrize("limit", [-1.0, 20.0, 500.0])
def test_swap_in_while_loop(limit):
    check(swap_while, np.ones(3), np.zeros(3), limit)


@pytest.mark.parametrize("n", [0, 2, 3, 30])
def test_swap_after_traced_break(n):
    check(swap_until_converged, np.ones(3), np.zeros(3), n)


def test_swap_in_concrete_long_loop_binds_names_to_the_right_arrays():
    f = check(swap_fixed_count, np.ones(4), np.zeros(4))
    assert len(scans(f)) == 1


def test_swap_without_in_place_change_leaves_caller_arrays_alone():
    def fib(A, B, n):
        for _ in range(n):
            A, B = B, A + B
        return A

    f = check(fib, np.ones(2), np.ones(2), 6)
    assert not f.programs[0].writebacks


def test_swap_under_traced_if_outside_loops():
    def maybe_step(A, B, t):
        if t > 0:
            B[:] = A * 2.0
            A, B = B, A
        A = A + 0.0  # a new array: later writes to A leave the caller's arrays alone
        A[0] = 7.0
        return A

    for t in (1.0, -1.0):
        check(maybe_step, np.arange(3.0), np.zeros(3), t)


def test_swap_in_nested_loops():
    def outer(A, B, n, m):
        for _ in range(n):
            for _ in range(m):
                B[1:] = A[:-1] + 1.0
                A, B = B, A
            A[0] = A[0] * 2.0
        return A

    for n, m in ((0, 2), (2, 0), (2, 3), (3, 1)):
        check(outer, np.arange(4.0), np.zeros(4), n, m)


def test_scan_step_changing_its_arguments_in_place():
    @tc.compile
    def scanned(A, B, n):
        def step(A, B):
            B[1:-1] = 0.5 * (A[:-2] + A[2:])
            return B, A
        (As, _), _ = tc.scan(step, outputs_info=[A, B], n_steps=n)
        return As[-1]

    A0 = RNG.standard_normal(6)
    for n in (1, 4, 5):
        np.testing.assert_allclose(scanned(A0.copy(), A0.copy(), n), jacobi_1d(A0.copy(), A0.copy(), n))


def jacobi_1d(A, B, n):
    for _ in range(n):
        B[1:-1] = 0.5 * (A[:-2] + A[2:])
        A, B = B, A
    return A


# -- what cannot be followed raises, naming the line ------------------------------------------------
def refused(fn, args, marker, fragment):
    with pytest.raises(tc.LoopConversionError) as info:
        tc.compile(fn)(*args)
    text = str(info.value)
    assert f"{THIS_FILE}:{line_of(marker)}" in text and fragment in text, text


def test_two_names_for_one_array_changed_in_place_is_refused():
    def alias(A, n):
        B = A
        for _ in range(n):  # alias-loop
            B[0] = B[0] + 1.0
            A = A * 1.0
        return A

    refused(alias, (np.ones(2), 3), "alias-loop", "`A = B.copy()`")


def test_array_changed_then_rebound_in_a_loop_is_refused():
    def drop(A, n):
        for _ in range(n):  # drop-loop
            A[0] = A[0] + 1.0
            A = A * 2.0
        return A

    refused(drop, (np.ones(2), 3), "drop-loop", "changed in place and then bound to another array")


def test_in_place_change_through_a_name_chosen_at_run_time():
    def after(A, B, n):
        for _ in range(n):
            B[1] = A[1] + 1.0
            A, B = B, A
        A[0] = -1.0     # which caller array this is depends on n
        B[2] = A[0] + B[1]
        return A + B

    for n in (0, 1, 2, 5):
        check(after, np.ones(3), np.zeros(3), n)

    def branch(A, B, t):
        if t > 0:
            A = B
        A[0] = 5.0      # B's array when t > 0, else A's
        return A

    for t in (1.0, -1.0):
        check(branch, np.ones(2), np.zeros(2), t)


# -- gradients of converted loops (finite differences) -------------------------------------------------
def test_gradients_of_for_while_break_and_nested_loops():
    x = RNG.standard_normal(3) * 0.5
    for n in (0, 1, 4):
        tc.verify_grad(decay, [x, np.int64(n)], rng=n)
        tc.verify_grad(nested, [RNG.random((2, 3)), np.int64(n)], rng=n)

    def damped(x, tol):
        while np.sum(x * x) > tol:
            x = 0.5 * x + 0.01 * np.sin(x)
        return x

    for tol in (100.0, 0.01):          # no step, then several
        tc.verify_grad(damped, [np.array([1.0, 2.0]), np.float64(tol)], rng=1)
    tc.verify_grad(first_big, [np.array([0.3, 0.2, 2.0, 0.1]), np.float64(1.0)])
    tc.verify_grad(first_big, [np.array([3.0, 0.2]), np.float64(1.0)])
    tc.verify_grad(rows_sum, [RNG.random((3, 2))])
    tc.verify_grad(rows_sum, [np.zeros((0, 2))])


def test_gradient_through_swapping_loop():
    A0 = RNG.standard_normal((5, 4))
    for steps in (0, 1, 2, 3):
        tc.verify_grad(jacobi, [A0, A0 * 0.5, np.int64(steps)], rng=steps)


def test_second_derivative_of_a_loop():
    def cube_steps(x, n):
        for _ in range(n):
            x = x * x * 0.5 + x
        return x.sum()

    x = np.array([0.3, -0.2])
    for n in (0, 2):
        H = tc.hessian(cube_steps)(x, np.int64(n))
        grad = tc.grad(cube_steps)
        eps = 1e-6
        numeric = np.array([(grad(x + eps * e, np.int64(n)) - grad(x - eps * e, np.int64(n))) / (2 * eps)
                            for e in np.eye(2)])
        np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-8)


# -- loops in functions given to tc.grad & co. -------------------------------------------------------
def powered(x, n):
    y = x
    for _ in range(n):
        y = y * x
    return y.sum()


def test_functional_grad_converts_loops():
    x = np.array([1.5, -0.5, 2.0])
    for n in (0, 1, 3):
        g = tc.grad(powered)(x, n)
        np.testing.assert_allclose(g, (n + 1) * x ** n)
        value, g2 = tc.value_and_grad(powered)(x, np.int64(n))
        assert np.isclose(value, powered(x, n))
        np.testing.assert_allclose(g2, g)
    assert len(tc.grad(powered).__wrapped__.__code__.co_code) > 0


def test_functional_grad_of_while_loop_and_has_aux():
    def halvings(x):
        k = 0
        while np.sum(x * x) > 1.0:
            x = x * 0.5
            k += 1
        return np.sum(x ** 3), k

    x = np.array([3.0, 4.0])
    g, k = tc.grad(halvings, has_aux=True)(x)
    assert k == halvings(x)[1] == 3
    np.testing.assert_allclose(g, 3 * x ** 2 * 0.5 ** (3 * k))
    def cost(x):
        return halvings(x)[0]

    tc.verify_grad(cost, [x])


def test_grad_inside_compile_converts_the_differentiated_function():
    @tc.compile
    def step(x, n):
        return x - 0.1 * tc.grad(powered)(x, n)

    x = np.array([0.5, 1.0])
    np.testing.assert_allclose(step(x, 2), x - 0.1 * 3 * x ** 2)


# -- differentiated functions are pure: their updates are not applied ------------------------------------
def test_grad_of_function_updating_a_shared_variable():
    W = tc.shared(np.full(3, 2.0), name="W")

    def loss(x):
        W[...] = W * x          # seen (and differentiated) by the code after it, not applied
        return np.sum(W * x)

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(tc.grad(loss)(x), 4.0 * x)   # d/dx sum(2 x * x)
    np.testing.assert_allclose(W.get_value(), 2.0)
    tc.verify_grad(loss, [x])
    np.testing.assert_allclose(W.get_value(), 2.0)

    @tc.compile
    def train(x):
        return tc.value_and_grad(loss)(x)

    value, g = train(x)
    assert np.isclose(value, 2.0 * np.sum(x * x)) and not train.programs[0].updates
    np.testing.assert_allclose(W.get_value(), 2.0)


def test_grad_of_function_calling_set_value_and_writing_arguments():
    W = tc.shared(np.zeros(2), name="W")

    def loss(x, buf):
        W.set_value(x * 3.0)
        buf[0] = 5.0
        return np.sum(W * x) + buf.sum()

    x, buf = np.array([1.0, -1.0]), np.zeros(2)
    np.testing.assert_allclose(tc.grad(loss)(x, buf), 6.0 * x)
    np.testing.assert_allclose(buf, 0.0)
    np.testing.assert_allclose(W.get_value(), 0.0)
    tc.verify_grad(loss, [x, buf])


def test_set_value_of_a_traced_value_outside_a_trace_is_refused():
    W = tc.shared(np.zeros(2), name="W")
    with pytest.raises(TypeError, match="updates="):
        W.set_value(tc.dvector("v"))


# -- loop states and outputs nobody reads are not computed ------------------------------------------------
def test_unused_scan_outputs_and_states_are_dropped():
    @tc.compile
    def f(x, n):
        def step(a, b, c):
            return a * 0.5 + 1.0, b + c, c * 2.0   # b and c feed nothing that is read
        (a, b, c), _ = tc.scan(step, outputs_info=[x, x, x], n_steps=n)
        return a[-1]

    x = np.array([1.0, 4.0])
    np.testing.assert_allclose(f(x, 3), decay_half(x, 3))
    loop, = scans(f)
    assert loop.params["info"].n_states == 1

    @tc.compile
    def g(x):  # an unread per-step output and state; the stop condition reads the other state
        def step(a, b):
            return [a * 0.5 + 1.0, b * 2.0, a.sum()], tc.until(np.sum(a) > 3.5)
        (a, b, s), _ = tc.scan(step, outputs_info=[x, x, None], n_steps=20)
        return a[-1], a.shape[0]

    last, steps = g(x * 0.1)
    expected, k = x * 0.1, 0
    while True:
        k += 1
        stop = np.sum(expected) > 3.5
        expected = expected * 0.5 + 1.0
        if stop or k == 20:
            break
    np.testing.assert_allclose(last, expected)
    assert steps == k
    info = scans(g)[0].params["info"]
    assert info.n_states == 1 and info.n_plain_outputs == 0 and info.has_until


def decay_half(x, n):
    for _ in range(n):
        x = x * 0.5 + 1.0
    return x
