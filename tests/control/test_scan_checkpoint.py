"""scan(checkpoint=N): the forward pass keeps the state every N steps and the
gradient replays each stretch; checked for memory (the arrays the loops
produce) and against the stored-history gradient and finite differences."""
import numpy as np
import pytest

import tracec as tc
from tracec.trace.interp import Interpreter

RNG = np.random.default_rng(7)


def rnn_states(xs, h0, W, U, **kw):
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ W + h @ U), sequences=xs, outputs_info=h0, **kw)
    return hs


def rnn_args(n=10):
    return [RNG.standard_normal((n, 3)) * 0.5, RNG.standard_normal(5) * 0.1,
            RNG.standard_normal((3, 5)) * 0.5, RNG.standard_normal((5, 5)) * 0.4]


def assert_same_grads(fn_checkpointed, fn_stored, args, argnums):
    got = tc.grad(fn_checkpointed, argnums=argnums)(*args)
    want = tc.grad(fn_stored, argnums=argnums)(*args)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("every", [1, 3, 4, 10, 16])  # 10 steps: N divides, does not, is larger
@pytest.mark.parametrize("read", ["all", "last"])
def test_gradient_equals_stored_history_gradient(every, read):
    def cost(*args, checkpoint=every):
        hs = rnn_states(*args, checkpoint=checkpoint)
        return (hs ** 2).sum() if read == "all" else hs[-1].sum()

    assert_same_grads(cost, lambda *a: cost(*a, checkpoint=None), rnn_args(), (0, 1, 2, 3))


def test_gradient_matches_finite_differences():
    tc.verify_grad(lambda *a: (rnn_states(*a, checkpoint=3) ** 2).sum(), rnn_args(), rng=0)


def _scan_arrays(f, args):
    """(info, output shapes) of every scan node the optimized program runs, in order."""
    program = tc.opt.optimized_program(f)
    produced = []

    class Recorder(Interpreter):
        def run_step(self, step, node, inputs):
            out = super().run_step(step, node, inputs)
            if node.op.name == "scan":
                produced.append((node.params["info"], [np.shape(o) for o in out]))
            return out

    Recorder(program).run(args)
    return produced


def test_forward_stores_one_state_in_every_n():
    n, every, width = 30, 4, 5
    xs, h0, W, U = tc.dmatrix("xs"), tc.dvector("h0"), tc.dmatrix("W"), tc.dmatrix("U")
    hs = rnn_states(xs, h0, W, U, checkpoint=every)
    cost = hs[-1].sum()
    f = tc.function([xs, h0, W, U], [cost] + tc.grad(cost, [xs, h0, W, U]))
    args = rnn_args(n)
    produced = _scan_arrays(f, args)
    forward = [shapes for info, shapes in produced if info.checkpoint]
    assert len(forward) == 1  # the forward loop runs once; the gradient replays stretches
    stacked, saved, trip_count = forward[0]
    assert stacked == (1, width)  # hs[-1] only
    assert saved == (n // every + 1, width) and trip_count == ()
    # no loop at this level holds the states of every step
    for info, shapes in produced:
        assert all(s[:1] != (n,) or s[1:] != (width,) for s in shapes), (info.name, shapes)
    # the stretch-by-stretch loop returns per stretch only the sequence's gradient rows
    outer = [shapes for info, shapes in produced if (info.name or "").startswith("checkpointed grad")]
    assert outer and outer[0][0] == (n // every, every, 3)
    plain = rnn_states(xs, h0, W, U)[-1].sum()
    reference = tc.function([xs, h0, W, U], [plain] + tc.grad(plain, [xs, h0, W, U]))
    for a, b in zip(f(*args), reference(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("every", [3, 4])
def test_until_loops(every):
    def cost(x0, rate, checkpoint=every):
        vals, _ = tc.scan(lambda v: (v * rate + 0.1 * np.sin(v), tc.until(v > 10.0)), outputs_info=x0,
                          n_steps=50, checkpoint=checkpoint)
        return vals.sum() + vals[-1] ** 2

    args = [np.float64(1.3), np.float64(1.5)]  # stops after 6 steps, of 50 allowed
    assert_same_grads(cost, lambda *a: cost(*a, checkpoint=None), args, (0, 1))
    tc.verify_grad(cost, args, rng=1)


@pytest.mark.parametrize("truncate", [-1, 2, 5])
def test_taps_plain_outputs_go_backwards_and_truncation(truncate):
    def cost(x, w, x0, checkpoint=3):
        (acc, sq), _ = tc.scan(lambda a, b, c, p2, p1: [p1 * w + a * c - b + 0.1 * np.sin(p2), (a - c) ** 2 * p1],
                               sequences=dict(input=x, taps=[-1, 0, 2]),
                               outputs_info=[dict(initial=x0, taps=[-2, -1]), None],
                               go_backwards=True, truncate_gradient=truncate, checkpoint=checkpoint)
        return (acc * acc).sum() + sq.sum() * w

    args = [RNG.standard_normal(11), np.float64(0.7), RNG.standard_normal(3)]  # 8 steps
    assert_same_grads(cost, lambda *a: cost(*a, checkpoint=None), args, (0, 1, 2))
    if truncate < 0:
        tc.verify_grad(cost, args, rng=2)


def test_second_derivative():
    w, x = tc.dscalar("w"), tc.dvector("x")
    out, _ = tc.scan(lambda v, h: h * w + v, sequences=x, outputs_info=np.float64(0), checkpoint=2)
    (gw,) = tc.grad(out[-1], [w])
    (gww,) = tc.grad(gw, [w])
    xv, wv = np.arange(1.0, 6.0), 0.5
    value, g1, g2 = tc.function([x, w], [out[-1], gw, gww])(xv, wv)
    # out[-1] = sum_i x_i w^(4-i)
    assert np.isclose(value, sum(xv[i] * wv ** (4 - i) for i in range(5)))
    assert np.isclose(g1, sum(xv[i] * (4 - i) * wv ** (3 - i) for i in range(4)))
    assert np.isclose(g2, sum(xv[i] * (4 - i) * (3 - i) * wv ** (2 - i) for i in range(3)))


def test_zero_steps():
    x0, n = tc.dvector("x0"), tc.iscalar("n")
    out, _ = tc.scan(lambda prev: prev * 2, outputs_info=x0, n_steps=n, checkpoint=2)
    f = tc.function([x0, n], tc.grad(out.sum() + x0.sum(), [x0]))
    np.testing.assert_allclose(f(np.ones(2), 0)[0], [1, 1])
    np.testing.assert_allclose(f(np.ones(2), 3)[0], [15, 15])


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4"])
def test_bad_checkpoint_values_are_refused(bad):
    x = tc.dvector("x")
    with pytest.raises((TypeError, ValueError), match="checkpoint must be a positive Python int"):
        tc.scan(lambda v: v * 2, sequences=x, checkpoint=bad)
