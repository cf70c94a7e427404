"""Native scan loops replayed from a recorded step (tracec/cgen/_loop_plan.pxi).

A loop body made only of C kernels and BLAS calls runs its first step through
the checked path while recording it, then replays the recorded calls with only
data pointers moving. Every case here runs the same graph through the C backend
and through the NumPy interpreter, and checks how many steps were replayed.
"""
import warnings

import numpy as np
import pytest

import tracec as tc


def scan_steps(fn):
    """The ScanSteps of a compiled tc.function's native runner."""
    return [s for s in fn.executable.backend.runner.steps_list if type(s).__name__ == "ScanStep"]


def both(inputs, outputs, *args, updates=None):
    """(C backend results, interpreter results, the C function) for one call."""
    native = tc.function(inputs, outputs, updates=updates, mode="FAST_RUN")
    ref = tc.function(inputs, outputs, updates=updates, mode="FAST_COMPILE")
    return native(*args), ref(*args), native


def assert_same(got, want, rtol=1e-12, atol=1e-12):
    got = got if isinstance(got, list) else [got]
    want = want if isinstance(want, list) else [want]
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def test_scalar_recurrence_is_replayed_after_one_recorded_step():
    x0, k = tc.dscalar("x0"), tc.iscalar("k")
    xs, _ = tc.scan(lambda x: 0.999 * x + 1, outputs_info=x0, n_steps=k)
    got, want, f = both([x0, k], xs, 0.5, 1000)
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 999


def test_sequence_taps_state_taps_and_plain_outputs():
    x, s0 = tc.vector("x"), tc.tensor3("s0")
    W = tc.matrix("W")

    def step(xm1, x0, xp1, s2, s1, W):
        new = np.tanh(s1 @ W + 0.5 * s2 + xm1 * x0 - xp1)
        return new, np.sum(new * new)

    (ss, energy), _ = tc.scan(step, sequences=dict(input=x, taps=[-1, 0, 1]),
                              outputs_info=[dict(initial=s0, taps=[-2, -1]), None], non_sequences=W)
    rng = np.random.default_rng(0)
    args = (rng.standard_normal(40), rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 4)) / 2)
    got, want, f = both([x, s0, W], [ss, energy], *args)
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 37  # 38 steps, the first one recorded


def test_go_backwards_and_strided_sequences():
    X = tc.matrix("X")
    h0 = tc.vector("h0")
    hs, _ = tc.scan(lambda row, h: np.sin(h) + row, sequences=X, outputs_info=h0, go_backwards=True)
    X0 = np.random.default_rng(1).standard_normal((30, 10))[:, ::2]  # non-contiguous rows
    got, want, f = both([X, h0], hs, X0, np.ones(5))
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 29


def test_until_stops_at_the_same_step():
    x0 = tc.dscalar("x0")

    def step(x):
        y = x * 1.5
        return y, tc.until(y > 1000.0)

    xs, _ = tc.scan(step, outputs_info=x0, n_steps=500)
    got, want, f = both([x0], xs, 0.1)
    assert_same(got, want)
    assert len(got) == len(want) == 23
    assert scan_steps(f)[0].replayed == 22


def test_until_without_n_steps_grows_the_stack():
    x0 = tc.dscalar("x0")
    xs, _ = tc.scan(lambda x: (x + 1.0, tc.until(x >= 5000.0)), outputs_info=x0)
    got, want, f = both([x0], xs, 0.0)
    assert_same(got, want)
    assert len(got) == 5001
    assert scan_steps(f)[0].replayed == 5000


def test_rnn_body_with_blas_matches_the_interpreter():
    xs, h0 = tc.ftensor3("xs"), tc.fmatrix("h0")
    Wx, Wh, b = tc.fmatrix("Wx"), tc.fmatrix("Wh"), tc.fvector("b")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
    rng = np.random.default_rng(2)
    args = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(12, 4, 6), (4, 8), (6, 8), (8, 8), (8,)]]
    got, want, f = both([xs, h0, Wx, Wh, b], hs, *args)
    assert_same(got, want, rtol=1e-5, atol=1e-6)
    assert scan_steps(f)[0].replayed == 11


def test_rnn_gradient_loops_agree():
    xs, h0 = tc.tensor3("xs"), tc.matrix("h0")
    Wx, Wh = tc.matrix("Wx"), tc.matrix("Wh")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh), sequences=xs, outputs_info=h0)
    loss = np.sum(hs[-1] ** 2)
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s) * 0.4 for s in [(15, 3, 5), (3, 6), (5, 6), (6, 6)]]
    got, want, f = both([xs, h0, Wx, Wh], [loss] + tc.grad(loss, [Wx, Wh]), *args)
    assert_same(got, want, rtol=1e-10)
    assert any(s.replayed > 0 for s in scan_steps(f))


def test_a_state_broadcast_at_step_zero_is_recorded_at_step_one():
    x = tc.matrix("x")
    h0 = tc.tensor("float64", broadcastable=(True, False), name="h0")  # (1, n): (m, n) after step 0
    hs, _ = tc.scan(lambda h, x: h * 0.5 + x, outputs_info=h0, non_sequences=x, n_steps=10)
    got, want, f = both([x, h0], hs[-1], np.arange(6.0).reshape(3, 2), np.ones((1, 2)))
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 8


def test_final_only_states_and_shared_updates():
    acc = tc.shared(np.zeros(3), name="acc")
    x = tc.matrix("x")
    _, updates = tc.scan(lambda row: {acc: acc + np.exp(row)}, sequences=x)
    native = tc.function([x], [], updates=updates, mode="FAST_RUN")
    X = np.random.default_rng(4).standard_normal((20, 3))
    native(X)
    np.testing.assert_allclose(acc.get_value(), np.exp(X).sum(axis=0), rtol=1e-12)


def test_last_value_only_uses_a_ring_of_rows():
    x0, k = tc.vector("x0"), tc.iscalar("k")
    xs, _ = tc.scan(lambda x: np.cos(x) * 0.9, outputs_info=x0, n_steps=k)
    got, want, f = both([x0, k], xs[-3:], np.linspace(0, 1, 7), 100)
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 99


def test_floating_point_warning_mid_loop_is_raised_as_numpy_does():
    x0 = tc.dscalar("x0")
    xs, _ = tc.scan(lambda x: np.exp(x) * 0.0 + x * 10.0, outputs_info=x0, n_steps=400)
    native = tc.function([x0], xs, mode="FAST_RUN")
    ref = tc.function([x0], xs, mode="FAST_COMPILE")
    with warnings.catch_warnings(record=True) as w_native:
        warnings.simplefilter("always")
        got = native(1.0)
    with warnings.catch_warnings(record=True) as w_ref:
        warnings.simplefilter("always")
        want = ref(1.0)
    np.testing.assert_array_equal(got, want)  # inf and nan at the same steps
    assert {type(w.message) for w in w_native} == {type(w.message) for w in w_ref} == {RuntimeWarning}
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        native(1.0)


def test_integer_state_and_int_division_error_hands_back_to_numpy():
    n0, d = tc.lscalar("n0"), tc.lvector("d")
    ns, _ = tc.scan(lambda di, n: n // di + 3, sequences=d, outputs_info=n0)
    native = tc.function([n0, d], ns, mode="FAST_RUN")
    ref = tc.function([n0, d], ns, mode="FAST_COMPILE")
    divisors = np.array([1, 2, 3, 1, 1, 2, 0, 5], dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(native(100, divisors), ref(100, divisors))


def test_nested_scans_run_and_agree():
    X = tc.matrix("X")

    def outer(row, acc):
        inner, _ = tc.scan(lambda v, a: a * 0.5 + v, sequences=row, outputs_info=acc)
        return inner[-1]

    out, _ = tc.scan(outer, sequences=X, outputs_info=tc.as_tensor(np.float64(0.0)) if hasattr(tc, "as_tensor")
                     else np.float64(0.0))
    X0 = np.random.default_rng(5).standard_normal((6, 9))
    got, want, f = both([X], out, X0)
    assert_same(got, want)


def test_repeated_calls_with_other_shapes_replay_correctly():
    x0, k = tc.vector("x0"), tc.iscalar("k")
    xs, _ = tc.scan(lambda x: x * 0.5 + 1.0, outputs_info=x0, n_steps=k)
    native = tc.function([x0, k], xs, mode="FAST_RUN")
    ref = tc.function([x0, k], xs, mode="FAST_COMPILE")
    for n, steps in [(3, 10), (17, 5), (3, 50), (1000, 8)]:
        v = np.linspace(-1, 1, n)
        assert_same(native(v, steps), ref(v, steps))


def test_views_and_loop_invariant_values_in_the_body_are_replayed():
    X, h0, W = tc.tensor3("X"), tc.matrix("h0"), tc.matrix("W")

    def step(x, h, W):
        flat = x.reshape(-1)                       # a view of the sequence row
        return np.tanh(h.T @ W.T + flat[:4])       # views of the state and of a non-sequence

    hs, _ = tc.scan(step, sequences=X, outputs_info=h0, non_sequences=W)
    rng = np.random.default_rng(6)
    args = rng.standard_normal((9, 2, 2)), rng.standard_normal((4, 4)) * 0.3, rng.standard_normal((4, 4))
    got, want, f = both([X, h0, W], hs, *args)
    assert_same(got, want)
    scan = scan_steps(f)[0]
    assert scan.replayed > 0, scan.not_replayed


def test_a_body_with_a_numpy_step_says_why_it_is_not_replayed():
    A = tc.matrix("A")

    def step(A):
        A[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
        return A

    As, _ = tc.scan(step, outputs_info=A, n_steps=20)
    got, want, f = both([A], As[-1], np.random.default_rng(7).standard_normal((6, 7)))
    assert_same(got, want)
    scan = scan_steps(f)[0]
    assert scan.replayed == 0 and "setitem" in scan.not_replayed


def test_the_checked_path_keeps_only_the_last_rows_read():
    A = tc.matrix("A")

    def step(A):
        A[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
        return A

    for n in (1, 2, 3, 17):
        As, _ = tc.scan(step, outputs_info=A, n_steps=n)
        got, want, f = both([A], [As[-2:], As[-1]], np.random.default_rng(n).standard_normal((6, 7)))
        assert_same(got, want)
        assert scan_steps(f)[0].replayed == 0


def test_sizes_in_the_body_are_fixed_values_of_the_replay():
    X, h0 = tc.tensor3("X"), tc.matrix("h0")
    hs, _ = tc.scan(lambda x, h: np.tanh(h * 0.5 + x.mean() + x.shape[1]), sequences=X, outputs_info=h0)
    rng = np.random.default_rng(8)
    got, want, f = both([X, h0], hs, rng.standard_normal((12, 3, 4)), rng.standard_normal((3, 4)))
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 11, scan_steps(f)[0].not_replayed


def test_python_ints_that_overflow_a_small_integer_state_still_raise():
    @tc.compile
    def add_k(a, k, n):
        for _ in range(n):
            a = a + k
        return a

    a = np.array([1, 2], np.int8)
    np.testing.assert_array_equal(add_k(a, 3, 6), a + 18)
    with pytest.raises(OverflowError):
        add_k(a, 300, 6)  # NumPy: Python integer 300 out of bounds for int8


def test_rows_picked_by_a_carried_index_are_replayed_views():
    table, vec = tc.matrix("table"), tc.vector("vec")
    i0 = tc.lscalar("i0")

    def step(i, acc, table, vec):
        return i - 1, acc * 0.5 + table[i] * vec[i]   # a row view and a 0-d element, counting down

    (idx, accs), _ = tc.scan(step, outputs_info=[i0, np.zeros(3)], non_sequences=[table, vec], n_steps=8)
    rng = np.random.default_rng(9)
    args = rng.standard_normal((10, 3)), rng.standard_normal(10), np.int64(-1)
    got, want, f = both([table, vec, i0], accs, *args)
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 7, scan_steps(f)[0].not_replayed


def test_an_index_running_out_of_range_raises_numpys_error():
    vec, i0 = tc.vector("vec"), tc.lscalar("i0")
    (idx, accs), _ = tc.scan(lambda i, acc, v: (i + 1, acc + v[i]), outputs_info=[i0, np.float64(0.0)],
                             non_sequences=vec, n_steps=12)
    native = tc.function([vec, i0], accs, mode="FAST_RUN")
    np.testing.assert_allclose(native(np.arange(20.0), 0), np.cumsum(np.arange(12.0)))
    assert scan_steps(native)[0].replayed == 11
    with pytest.raises(IndexError, match="test_scan_replay.py"):
        native(np.arange(10.0), 0)  # step 10 reads v[10]: the replay hands that step back
    assert scan_steps(native)[0].replayed == 9


def test_rnn_backward_loop_is_replayed_and_gradients_agree():
    xs, h0, Wx, Wh, b = tc.ftensor3("xs"), tc.fmatrix("h0"), tc.fmatrix("Wx"), tc.fmatrix("Wh"), tc.fvector("b")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
    loss = np.mean(hs)
    rng = np.random.default_rng(10)
    args = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(20, 4, 6), (4, 8), (6, 8), (8, 8), (8,)]]
    got, want, f = both([xs, h0, Wx, Wh, b], [loss] + tc.grad(loss, [Wx, Wh, b]), *args)
    assert_same(got, want, rtol=2e-5, atol=1e-6)
    loops = scan_steps(f)
    assert len(loops) == 2 and all(s.replayed == 19 for s in loops), [s.not_replayed for s in loops]


@pytest.mark.parametrize("every", [1, 3, 7, 40])
def test_checkpointed_loops_run_natively_and_give_the_same_gradients(every):
    xs, h0, W = tc.tensor3("xs"), tc.matrix("h0"), tc.matrix("W")
    hs, _ = tc.scan(lambda x, h: np.tanh(x + h @ W), sequences=xs, outputs_info=h0, checkpoint=every)
    loss = np.sum(hs[-1] ** 2)
    rng = np.random.default_rng(11)
    args = rng.standard_normal((20, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((4, 4)) * 0.5
    got, want, f = both([xs, h0, W], [loss] + tc.grad(loss, [xs, W]), *args)
    assert_same(got, want, rtol=1e-10)
    assert sum(s.replayed for s in scan_steps(f)) > 0


def test_checkpointed_until_loop_saves_the_state_after_the_last_stretch():
    x0, w = tc.dscalar("x0"), tc.dscalar("w")
    xs, _ = tc.scan(lambda x, w: (x * w, tc.until(x * w > 100.0)), outputs_info=x0, non_sequences=w,
                    n_steps=50, checkpoint=4)
    loss = xs[-1]
    got, want, f = both([x0, w], [loss] + tc.grad(loss, [x0, w]), 1.0, 1.5)  # stops after 12 steps
    assert_same(got, want, rtol=1e-12)


def test_kept_rows_of_the_recorded_step_survive_the_replay():
    # the recorded step's row of a kept output is held by reference; the replay reuses its buffer
    x0 = tc.dvector("x0")
    (xs, ys), _ = tc.scan(lambda x: (x + 1.0, np.exp(x) * x), outputs_info=[x0, None], n_steps=4)
    got, want, f = both([x0], [ys[-4], ys[-3:], xs[-2]], np.linspace(0.0, 1.0, 3))
    assert_same(got, want)
    assert scan_steps(f)[0].replayed == 3
