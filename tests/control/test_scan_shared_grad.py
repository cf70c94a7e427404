"""Gradients through shared variables updated inside a scan step: the updated
variable is a state carried from step to step, starting from the shared
variable's value; checked with central finite differences (the shared value
is perturbed with set_value) and against the same loop with an explicit state."""
import numpy as np
import pytest

import tracec as tc

RNG = np.random.default_rng(3)


def central_differences(cost, values, set_value, eps=1e-6):
    """d cost / d values, one coordinate at a time; `set_value(v)` installs a value."""
    values = np.array(values, dtype=np.float64)  # a copy: set_value may write into the original
    grad = np.zeros_like(values)
    for i in np.ndindex(values.shape):
        shifted = []
        for sign in (1, -1):
            v = values.copy()
            v[i] += sign * eps
            set_value(v)
            shifted.append(float(cost()))
        grad[i] = (shifted[0] - shifted[1]) / (2 * eps)
    set_value(values)
    return grad


def test_gradient_with_respect_to_the_shared_value_inputs_and_final_value():
    start = np.array([0.5, -0.2])
    acc = tc.shared(start.copy(), name="acc")
    xs, w = tc.dmatrix("xs"), tc.dscalar("w")
    out, updates = tc.scan(lambda e: (np.tanh(e * acc).sum(), {acc: acc * w + e}), sequences=xs)
    cost = (out ** 2).sum() + (updates[acc] ** 2).sum()  # per-step outputs and the value after the loop
    g_xs, g_w, g_acc = tc.grad(cost, [xs, w, acc])
    f = tc.function([xs, w], [cost, g_xs, g_w, g_acc])
    value = tc.function([xs, w], cost)
    X, W = RNG.standard_normal((5, 2)), 0.8
    c, gx, gw, gs = f(X, W)
    np.testing.assert_allclose(gs, central_differences(lambda: value(X, W), start, acc.set_value), rtol=1e-6)
    np.testing.assert_allclose(gx, central_differences(lambda: value(X, W), X, lambda v: X.__setitem__(..., v)),
                               rtol=1e-6, atol=1e-9)
    assert np.isclose(gw, (value(X, W + 1e-6) - value(X, W - 1e-6)) / 2e-6, rtol=1e-6)
    # the update itself still applies after the outputs are computed
    step = tc.function([xs, w], out, updates=updates)
    step(X, W)
    expected = start.copy()
    for e in X:
        expected = expected * W + e
    np.testing.assert_allclose(acc.get_value(), expected)


def _explicit_state(xs, w, s0, **kw):
    (out, state), _ = tc.scan(lambda e, s: [np.sin(s).sum() * e.sum(), s * w + e], sequences=xs,
                              outputs_info=[None, s0], **kw)
    return out, state[-1]


@pytest.mark.parametrize("options", [{}, {"checkpoint": 2}, {"truncate_gradient": 2},
                                     {"checkpoint": 3, "truncate_gradient": 4}, {"go_backwards": True}])
def test_same_gradients_as_an_explicit_state(options):
    start = RNG.standard_normal(2)
    acc = tc.shared(start, name="acc")
    xs, w, s0 = tc.dmatrix("xs"), tc.dscalar("w"), tc.dvector("s0")
    out, updates = tc.scan(lambda e: (np.sin(acc).sum() * e.sum(), {acc: acc * w + e}), sequences=xs, **options)
    cost = (out ** 2).sum() + updates[acc].sum()
    out_ref, final_ref = _explicit_state(xs, w, s0, **options)
    cost_ref = (out_ref ** 2).sum() + final_ref.sum()
    got = tc.function([xs, w], [cost] + tc.grad(cost, [xs, w, acc]))
    want = tc.function([xs, w, s0], [cost_ref] + tc.grad(cost_ref, [xs, w, s0]))
    X = RNG.standard_normal((7, 2))
    for a, b in zip(got(X, 0.9), want(X, 0.9, start)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    if "truncate_gradient" not in options:  # a truncated gradient is not the derivative
        tc.verify_grad(lambda xs, w, s0: _explicit_state(xs, w, s0, **options)[0], [X, np.float64(0.9), start],
                       rng=0)


def test_integer_shared_counter_updated_alongside():
    count = tc.shared(np.int64(0), name="count")
    acc = tc.shared(np.float64(0.3), name="acc")
    xs = tc.dvector("xs")
    out, updates = tc.scan(lambda e: (acc * e + count, {count: count + 1, acc: acc * 0.5 + e}),
                           sequences=xs, checkpoint=2)
    cost = (out ** 2).sum()
    g_xs, g_acc = tc.grad(cost, [xs, acc])
    f = tc.function([xs], [g_xs, g_acc])
    value = tc.function([xs], cost)
    X = RNG.standard_normal(5)
    gx, ga = f(X)
    np.testing.assert_allclose(ga, central_differences(lambda: value(X), np.array(0.3),
                                                       lambda v: acc.set_value(float(v))), rtol=1e-6)
    np.testing.assert_allclose(gx, central_differences(lambda: value(X), X, lambda v: X.__setitem__(..., v)),
                               rtol=1e-6)
    assert count.get_value() == 0  # no updates were passed to these functions


def test_compiled_step_reads_the_running_value_from_the_one_set_before_the_loop():
    total = tc.shared(np.float64(100.0), name="total")

    @tc.compile
    def running(s0, xs):
        total[...] = s0
        out, _ = tc.scan(lambda e: (total + e, {total: total + e}), sequences=xs)
        return out

    np.testing.assert_allclose(running(1.0, np.array([1.0, 2.0, 3.0])), [2.0, 4.0, 7.0])
    assert total.get_value() == 7.0


@pytest.mark.parametrize("checkpoint", [None, 2])
def test_until_loop_updating_a_shared_variable(checkpoint):
    level = tc.shared(np.float64(0.5), name="level")
    w = tc.dscalar("w")
    out, updates = tc.scan(lambda: (level * 2, {level: level * w + 0.3}, tc.until(level > 3.0)),
                           n_steps=40, checkpoint=checkpoint)
    cost = out.sum() + updates[level] ** 2
    g_level, g_w = tc.grad(cost, [level, w])
    grads, value = tc.function([w], [g_level, g_w]), tc.function([w], cost)
    gl, gw = grads(1.3)
    np.testing.assert_allclose(gl, central_differences(lambda: value(1.3), np.array(0.5),
                                                       lambda v: level.set_value(float(v))), rtol=1e-6)
    assert np.isclose(gw, (value(1.3 + 1e-6) - value(1.3 - 1e-6)) / 2e-6, rtol=1e-6)
