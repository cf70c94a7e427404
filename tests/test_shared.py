"""tc.shared: persistent arrays, implicit inputs, updates (traced and Theano style),
outputs-before-updates ordering, and Theano's tutorial examples."""
import numpy as np
import pytest

import tracec as tc


# -- the value -----------------------------------------------------------------------------------
def test_attributes():
    W = tc.shared(np.zeros((2, 3), np.float32), name="W")
    assert W.name == "W" and W.dtype == np.float32 and W.ndim == 2
    assert tc.shared(5).dtype == np.int64 and tc.shared(5).ndim == 0
    assert tc.shared(1.5).dtype == np.float64
    assert tc.shared(np.float32(1)).dtype == np.float32
    assert tc.shared(np.zeros(2)).name is None


def test_constructor_copies_unless_borrow():
    a = np.zeros(3)
    W = tc.shared(a)
    a[0] = 1
    assert W.get_value()[0] == 0
    b = np.zeros(3)
    B = tc.shared(b, borrow=True)
    assert B.get_value(borrow=True) is b


def test_get_value_copies_unless_borrow():
    W = tc.shared(np.arange(3.0))
    v = W.get_value()
    v[0] = 100
    assert W.get_value()[0] == 0
    inner = W.get_value(borrow=True)
    assert inner is W.get_value(borrow=True)
    assert not np.shares_memory(W.get_value(), inner)


def test_set_value_copies_unless_borrow():
    W = tc.shared(np.zeros(3))
    a = np.ones(3)
    W.set_value(a)
    a[0] = 5
    np.testing.assert_array_equal(W.get_value(), [1, 1, 1])
    W.set_value(a, borrow=True)
    assert W.get_value(borrow=True) is a


def test_set_value_checks_ndim_and_dtype():
    W = tc.shared(np.zeros(3), name="W")
    with pytest.raises(TypeError, match="dimension"):
        W.set_value(np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex128"):
        W.set_value(np.ones(3, np.complex128))
    with pytest.raises(TypeError):
        W.set_value("abc")
    W.set_value(np.arange(3, dtype=np.int32))  # safe cast keeps the shared dtype
    assert W.get_value().dtype == np.float64
    W.set_value(np.ones(7))                     # the shape may change
    assert W.get_value().shape == (7,)
    I = tc.shared(np.zeros(2, np.int32), name="I")
    with pytest.raises(TypeError):
        I.set_value(np.array([1.5, 2.0]))


def test_set_value_checks_broadcastable_pattern():
    row = tc.shared(np.zeros((1, 3)), broadcastable=(True, False))
    with pytest.raises(ValueError):
        row.set_value(np.zeros((2, 3)))


def test_rejects_non_numeric_and_traced_values():
    with pytest.raises(TypeError):
        tc.shared(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        tc.shared(tc.dvector("x"))


# -- reading: an implicit input ------------------------------------------------------------------
def test_read_in_compiled_function_sees_set_value_without_retrace():
    W = tc.shared(np.ones(3), name="W")
    f = tc.compile(lambda x: x * W)
    np.testing.assert_array_equal(f(np.full(3, 2.0)), [2, 2, 2])
    W.set_value(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(f(np.full(3, 2.0)), [2, 4, 6])
    W.set_value(np.arange(5.0))                   # a new shape: no retrace either
    np.testing.assert_array_equal(f(np.ones(5)), np.arange(5.0))
    assert len(f.programs) == 1
    assert f.programs[0].shared == [W]


def test_read_in_tc_function_sees_set_value():
    b = tc.shared(np.float64(1.0), name="b")
    x = tc.dvector("x")
    f = tc.function([x], x + b)
    np.testing.assert_array_equal(f([1.0]), [2.0])
    b.set_value(10.0)
    np.testing.assert_array_equal(f([1.0]), [11.0])


def test_function_with_no_explicit_inputs():
    W = tc.shared(np.arange(3.0))
    f = tc.function([], W.sum())
    assert f() == 3.0
    W.set_value(np.ones(2))
    assert f() == 2.0


# -- updates ------------------------------------------------------------------------------------
def test_inplace_update_in_compiled_function():
    W = tc.shared(np.ones(3), name="W")

    @tc.compile
    def sgd_step(g, lr):
        W[...] -= lr * g
    assert sgd_step(np.array([1.0, 2.0, 3.0]), 0.5) is None
    np.testing.assert_array_equal(W.get_value(), [0.5, 0.0, -0.5])
    sgd_step(np.array([1.0, 2.0, 3.0]), 0.5)
    np.testing.assert_array_equal(W.get_value(), [0.0, -1.0, -2.0])
    assert len(sgd_step.programs) == 1 and len(sgd_step.programs[0].updates) == 1


def test_augmented_assignment_on_shared_in_compiled_function():
    count = tc.shared(np.zeros(2, np.int64), name="count")

    @tc.compile
    def tick(n):
        count[0] += n
        count[1] = count[0] * 10
    tick(2)
    tick(3)
    np.testing.assert_array_equal(count.get_value(), [5, 50])


def test_trace_sees_its_own_update_but_outputs_are_computed_from_old_value():
    W = tc.shared(np.ones(3), name="W")

    @tc.compile
    def step(g):
        before = W * 1
        W[...] -= g
        after = W * 1
        return before, after
    before, after = step(np.ones(3))
    np.testing.assert_array_equal(before, [1, 1, 1])
    np.testing.assert_array_equal(after, [0, 0, 0])
    np.testing.assert_array_equal(W.get_value(), [0, 0, 0])


def test_tracing_does_not_change_the_value():
    W = tc.shared(np.ones(2))

    @tc.compile
    def f(x):
        W[...] = x
        return W * 2
    np.testing.assert_array_equal(f(np.full(2, 3.0)), [6, 6])
    np.testing.assert_array_equal(W.get_value(), [3, 3])


def test_updates_list_of_pairs_and_dict():
    W = tc.shared(np.zeros(2), name="W")
    n = tc.shared(0, name="n")
    x = tc.dvector("x")
    f = tc.function([x], W.sum(), updates=[(W, W + x), (n, n + 1)])
    assert f([1.0, 2.0]) == 0.0     # the old value
    np.testing.assert_array_equal(W.get_value(), [1, 2])
    assert f([1.0, 1.0]) == 3.0
    np.testing.assert_array_equal(W.get_value(), [2, 3])
    assert n.get_value() == 2
    g = tc.function([x], [], updates={W: W * x})
    assert g([2.0, 0.0]) == []
    np.testing.assert_array_equal(W.get_value(), [4, 0])


def test_all_outputs_computed_before_any_update():
    a = tc.shared(np.float64(1.0), name="a")
    b = tc.shared(np.float64(10.0), name="b")
    # swap: each update must read the other's OLD value
    swap = tc.function([], [a * 1, b * 1], updates=[(a, b), (b, a)])
    old = swap()
    assert old == [1.0, 10.0]
    assert (a.get_value(), b.get_value()) == (10.0, 1.0)
    swap()
    assert (a.get_value(), b.get_value()) == (1.0, 10.0)


def test_output_reading_updated_shared_returns_old_value_and_is_not_aliased():
    W = tc.shared(np.arange(3.0), name="W")
    f = tc.function([], W, updates=[(W, W + 1)])
    r = f()
    np.testing.assert_array_equal(r, [0, 1, 2])
    np.testing.assert_array_equal(W.get_value(), [1, 2, 3])
    r[0] = 100                     # the caller owns the result
    assert W.get_value()[0] == 1
    r2 = f()
    np.testing.assert_array_equal(r, [100, 1, 2])
    np.testing.assert_array_equal(r2, [1, 2, 3])


def test_compiled_function_returning_shared_returns_copy_of_old_value():
    W = tc.shared(np.zeros(2))

    @tc.compile
    def f():
        out = W
        W[...] += 1   # out is the same handle, so NumPy would show the new value
        return out * 1
    r = f()
    np.testing.assert_array_equal(r, [1, 1])
    np.testing.assert_array_equal(W.get_value(), [1, 1])


def test_update_dtype_and_rank_are_checked():
    n = tc.shared(0, name="n")
    W = tc.shared(np.zeros(2), name="W")
    with pytest.raises(TypeError, match="astype"):
        tc.function([], n * 1, updates=[(n, n + 0.5)])
    with pytest.raises(TypeError):
        tc.function([], W * 1, updates=[(W, W.sum())])
    with pytest.raises(TypeError, match="shared variable"):
        tc.function([], W * 1, updates=[(tc.dvector("v"), W)])
    with pytest.raises(ValueError, match="twice"):
        tc.function([], W * 1, updates=[(W, W + 1), (W, W + 2)])


def test_inplace_change_in_symbolic_code_is_refused():
    W = tc.shared(np.zeros(2), name="W")
    with pytest.raises(TypeError, match="updates"):
        W[0] = 1.0


def test_one_shared_variable_used_by_two_functions():
    W = tc.shared(np.zeros(2), name="W")
    x = tc.dvector("x")
    add = tc.function([x], [], updates=[(W, W + x)])

    @tc.compile
    def scale(k):
        W[...] *= k
        return W.sum()
    read = tc.function([], W * 1)
    add([1.0, 2.0])
    assert scale(10.0) == 30.0
    np.testing.assert_array_equal(read(), [10, 20])
    add([1.0, 1.0])
    np.testing.assert_array_equal(read(), [11, 21])
    assert scale(2.0) == 64.0


def test_shared_used_inside_compiled_and_tc_function_does_not_leak_trace_state():
    W = tc.shared(np.ones(2), name="W")

    @tc.compile
    def f(x):
        W[...] = x
        return W.sum()
    f(np.zeros(2))
    g = tc.function([], W * 2)   # built outside any trace: reads the storage, not f's update
    np.testing.assert_array_equal(g(), [0, 0])
    W.set_value(np.full(2, 4.0))
    np.testing.assert_array_equal(g(), [8, 8])


# -- Theano's tutorial ----------------------------------------------------------------------------
def test_theano_accumulator():
    state = tc.shared(0)
    inc = tc.iscalar("inc")
    accumulator = tc.function([inc], state, updates=[(state, state + inc)])
    assert state.get_value() == 0
    assert accumulator(1) == 0
    assert state.get_value() == 1
    assert accumulator(300) == 1
    assert state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1
    assert state.get_value() == 2


def test_theano_decrementor_shares_state():
    state = tc.shared(0)
    inc = tc.iscalar("inc")
    accumulator = tc.function([inc], state, updates=[(state, state + inc)])
    decrementor = tc.function([inc], state, updates=[(state, state - inc)])
    accumulator(301)
    assert decrementor(2) == 301
    assert state.get_value() == 299


def test_theano_givens_replace_shared_variable():
    state = tc.shared(0)
    inc = tc.iscalar("inc")
    accumulator = tc.function([inc], state, updates=[(state, state + inc)])
    accumulator(2)
    fn_of_state = state * 2 + inc
    foo = tc.scalar(dtype=state.dtype)
    skip_shared = tc.function([inc, foo], fn_of_state, givens=[(state, foo)])
    assert skip_shared(1, 3) == 7
    assert state.get_value() == 2         # the shared value was not used nor changed
    plain = tc.function([inc], fn_of_state)
    assert plain(1) == 5


def test_logistic_regression_training_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.float64)
    w = tc.shared(np.zeros(3), name="w")
    b = tc.shared(0.0, name="b")
    x_s, y_s = tc.dmatrix("x"), tc.dvector("y")
    p = 1 / (1 + np.exp(-(x_s @ w + b)))
    gw = x_s.T @ (p - y_s) / x_s.shape[0]
    gb = (p - y_s).mean()
    train = tc.function([x_s, y_s], ((p - y_s) ** 2).mean(),
                        updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)])
    # the same loop in NumPy
    wn, bn = np.zeros(3), 0.0
    for _ in range(20):
        err = train(X, y)
        pn = 1 / (1 + np.exp(-(X @ wn + bn)))
        np.testing.assert_allclose(err, ((pn - y) ** 2).mean(), rtol=1e-12)
        wn, bn = wn - 0.5 * X.T @ (pn - y) / len(X), bn - 0.5 * (pn - y).mean()
    np.testing.assert_allclose(w.get_value(), wn, rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), bn, rtol=1e-12)


def test_zero_d_shared_inplace_update_keeps_numpy_casting():
    n = tc.shared(0, name="n")

    @tc.compile
    def bump():
        n[...] += 1
        return n * 1
    assert bump() == 1 and bump() == 2 and n.get_value() == 2

    @tc.compile
    def bad():
        n[...] += 1.5
    with pytest.raises(TypeError, match="same_kind"):
        bad()
    assert n.get_value() == 2


def test_update_values_do_not_alias_each_other_or_constants():
    a = tc.shared(np.zeros(2), name="a")
    b = tc.shared(np.zeros(2), name="b")
    x = tc.dvector("x")
    new = x * 2
    tc.function([x], [], updates=[(a, new), (b, new)])([1.0, 2.0])
    assert not np.shares_memory(a.get_value(borrow=True), b.get_value(borrow=True))
    tc.function([], [], updates=[(a, np.array([7.0, 8.0]))])()
    inner = a.get_value(borrow=True)
    inner[0] = -1.0            # the storage is writeable, not a graph constant
    np.testing.assert_array_equal(a.get_value(), [-1, 8])
