"""Gradients through loops: backpropagation through time for scan, and ifelse,
checked with central finite differences (tc.verify_grad) and hand-written loops."""
import numpy as np

import tracec as tc
from tracec.trace.graph import toposort

RNG = np.random.default_rng(1)


def rnn_cost(xs, h0, W, U):
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ W + h @ U), sequences=xs, outputs_info=h0)
    return (hs ** 2).sum() + hs[-1].sum()


def test_rnn_bptt_matches_finite_differences():
    args = [RNG.standard_normal((5, 3)) * 0.5, RNG.standard_normal(4) * 0.1,
            RNG.standard_normal((3, 4)) * 0.5, RNG.standard_normal((4, 4)) * 0.5]
    tc.verify_grad(rnn_cost, args, rng=0)


def test_bptt_equals_gradient_of_unrolled_loop():
    def unrolled(xs, h0, W, U):
        h, total = h0, 0.0
        for t in range(5):
            h = np.tanh(xs[t] @ W + h @ U)
            total = total + (h ** 2).sum()
        return total + h.sum()

    args = [RNG.standard_normal((5, 3)) * 0.5, RNG.standard_normal(4) * 0.1,
            RNG.standard_normal((3, 4)) * 0.5, RNG.standard_normal((4, 4)) * 0.5]
    looped = tc.grad(rnn_cost, argnums=(0, 1, 2, 3))(*args)
    reference = tc.grad(unrolled, argnums=(0, 1, 2, 3))(*args)
    for a, b in zip(looped, reference):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sequence_taps_plain_outputs_and_go_backwards():
    def cost(x, w):
        (acc, sq), _ = tc.scan(lambda a, b, c, prev: [prev * w + a * c - b, (a - c) ** 2],
                               sequences=dict(input=x, taps=[-1, 0, 2]),
                               outputs_info=[np.float64(0.5), None], go_backwards=True)
        return (acc * acc).sum() + sq.sum() * w

    tc.verify_grad(cost, [RNG.standard_normal(7), np.float64(0.7)], rng=1)


def test_until_loop_gradient_uses_recorded_trip_count():
    def cost(x0, rate):
        vals, _ = tc.scan(lambda v: (v * rate, tc.until(v * rate > 10.0)), outputs_info=x0, n_steps=50)
        return vals.sum()

    # 1.3 * 1.5**k passes 10 at k=6: six steps are stored and differentiated
    tc.verify_grad(cost, [np.float64(1.3), np.float64(1.5)], rng=2)
    value_and_grad = tc.value_and_grad(cost, argnums=(0, 1))
    value, (g_x0, g_rate) = value_and_grad(1.3, 1.5)
    steps = [1.3 * 1.5 ** k for k in range(1, 7)]
    assert np.isclose(value, sum(steps))
    assert np.isclose(g_x0, sum(1.5 ** k for k in range(1, 7)))


def test_truncate_gradient_stops_after_k_steps():
    x = tc.dvector("x")
    h0 = tc.dscalar("h0")
    hs, _ = tc.scan(lambda v, h: h + v, sequences=x, outputs_info=h0, truncate_gradient=2)
    g_x, g_h0 = tc.grad(hs[-1], [x, h0])
    gx, gh = tc.function([x, h0], [g_x, g_h0])(np.arange(5.0), 0.0)
    np.testing.assert_allclose(gx, [0, 0, 0, 1, 1])  # only the last two steps are back-propagated
    assert gh == 0.0


def test_captured_values_and_second_order():
    w = tc.dscalar("w")
    x = tc.dvector("x")
    out, _ = tc.scan(lambda v, h: h * w + v, sequences=x, outputs_info=np.float64(0))
    cost = out[-1]
    (gw,) = tc.grad(cost, [w])
    (gww,) = tc.grad(gw, [w])
    f = tc.function([x, w], [cost, gw, gww])
    xv, wv = np.array([1.0, 2.0, 3.0]), 0.5
    c, g1, g2 = f(xv, wv)
    # cost = x0 w^2 + x1 w + x2
    assert np.isclose(c, xv[0] * wv ** 2 + xv[1] * wv + xv[2])
    assert np.isclose(g1, 2 * xv[0] * wv + xv[1])
    assert np.isclose(g2, 2 * xv[0])


def test_multi_tap_outputs_gradient_matches_unrolled_loop_and_finite_differences():
    # taps [-3, -1] on an initial value of 4 rows: the first row is never read
    def looped(x0, w):
        out, _ = tc.scan(lambda a, c: a * w + np.sin(c), outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=6)
        return (out ** 2).sum() + out[-1].sum()

    def unrolled(x0, w):
        hist, outs = [x0[1], x0[2], x0[3]], []
        for _ in range(6):
            hist.append(hist[-3] * w + np.sin(hist[-1]))
            outs.append(hist[-1])
        return sum((o ** 2).sum() for o in outs) + outs[-1].sum()

    args = [RNG.standard_normal((4, 2)), np.float64(0.7)]
    tc.verify_grad(looped, args, rng=4)
    g_x0, g_w = tc.grad(looped, argnums=(0, 1))(*args)
    ref_x0, ref_w = tc.grad(unrolled, argnums=(0, 1))(*args)
    np.testing.assert_allclose(g_x0, ref_x0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_w, ref_w, rtol=1e-10)
    assert np.all(g_x0[0] == 0)


def test_multi_tap_outputs_with_sequences_until_and_truncation():
    def cost(x0, xs, trunc=-1):
        out, _ = tc.scan(lambda x, a, b: (a * 0.5 + np.tanh(b) * x, tc.until(x > 1.5)), sequences=xs,
                         outputs_info=dict(initial=x0, taps=[-2, -1]), truncate_gradient=trunc)
        return (out ** 2).sum()

    xs = np.array([0.3, -0.2, 0.9, 0.1, 2.0, 0.4, 0.5])  # stops after the step reading 2.0
    tc.verify_grad(cost, [RNG.standard_normal(2), xs], rng=5)
    x0 = tc.dvector("x0")
    xv = tc.dvector("xs")
    g0, gx = tc.grad(cost(x0, xv, trunc=2), [x0, xv])
    g0, gx = tc.function([x0, xv], [g0, gx])(np.array([0.2, 0.1]), xs)
    assert np.all(g0 == 0) and np.all(gx[:3] == 0) and np.all(gx[5:] == 0) and np.all(gx[3:5] != 0)


def test_ifelse_gradient_follows_the_taken_branch():
    def cost(a, b):
        return tc.ifelse(a < b, a * a * b, np.sin(a) + b)

    for a, b in ((0.5, 2.0), (3.0, 1.0)):
        tc.verify_grad(cost, [np.float64(a), np.float64(b)], rng=3)
    a, b = tc.dscalar("a"), tc.dscalar("b")
    ga, gb = tc.grad(tc.ifelse(a < b, a * a * b, np.sin(a) + b), [a, b])
    f = tc.function([a, b], [ga, gb])
    np.testing.assert_allclose(f(0.5, 2.0), [2 * 0.5 * 2.0, 0.25])
    np.testing.assert_allclose(f(3.0, 1.0), [np.cos(3.0), 1.0])


def test_reverse_scan_computes_only_the_gradients_asked_for():
    xs, h0, W = tc.dmatrix("xs"), tc.dvector("h0"), tc.dmatrix("W")
    hs, _ = tc.scan(lambda x, h: np.tanh(x + h @ W), sequences=xs, outputs_info=h0)
    cost = (hs ** 2).sum()
    # the reverse scan as the gradient builds it (scan_pushout would move W's sum out of it)
    only_w = tc.function([xs, h0, W], tc.grad(cost, [W]), mode=tc.Mode().excluding("scan_pushout"))
    (node,) = [n for n in toposort(tc.opt.optimized_program(only_w).roots()) if n.op.name == "scan"
               and n.params["info"].name == "grad of scan"]
    info = node.params["info"]
    assert info.n_plain_outputs == 0  # no per-step rows for the gradient of xs
    assert info.n_states == 2  # the adjoint of h and the sum of W's gradient; none for other inputs
    args = [RNG.standard_normal((6, 3)), RNG.standard_normal(3), RNG.standard_normal((3, 3)) * 0.5]
    every = tc.function([xs, h0, W], tc.grad(cost, [xs, h0, W]))
    np.testing.assert_allclose(only_w(*args)[0], every(*args)[2], rtol=1e-12)
