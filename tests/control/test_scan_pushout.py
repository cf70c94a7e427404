"""Work pushed out of scan loops (tracec/opt/scan_pushout.py): invariants, per-sequence work,
accumulations, and backward loops reading the forward loop's stacked steps. Each rewrite is
checked for its structure (the node left the loop body) and against the NumPy reference
interpreter (FAST_COMPILE, which runs no push-out), values and gradients."""
import collections
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.trace.graph import toposort

RNG = np.random.default_rng(7)
# the node rewrites only: fused kernels would hide the ops counted
STRUCTURE = tc.Mode("FAST_RUN").excluding("fusion", "multi_output", "inplace")
NO_PUSH = STRUCTURE.excluding("scan_pushout", "scan_reuse")


def _program(f):
    return tc.opt.optimized_program(f)


def _scans(f):
    return [n for n in toposort(_program(f).roots()) if n.op.name == "scan"]


def _inner_ops(node):
    inner = node.params["info"].inner
    return collections.Counter(n.op.name for n in toposort(inner.outputs, stop=inner.program.all_inputs()))


def _check_values(inputs, outputs, args, rtol=1e-10, mode=STRUCTURE):
    """The function in `mode` and on the reference interpreter give the same values (and shapes)."""
    f = tc.function(inputs, outputs, mode=mode)
    ref = tc.function(inputs, outputs, mode="FAST_COMPILE")
    got, want = f(*args), ref(*args)
    for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        assert np.shape(g) == np.shape(w) and np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)
    return f


def _rnn(dtype="float64"):
    xs, h0 = tc.tensor(dtype, (False,) * 3, name="xs"), tc.tensor(dtype, (False, False), name="h0")
    Wx, Wh = (tc.tensor(dtype, (False, False), name=n) for n in ("Wx", "Wh"))
    b = tc.tensor(dtype, (False,), name="b")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
    return [xs, h0, Wx, Wh, b], hs


def _rnn_args(steps, batch=3, n_in=4, hidden=5, dtype=np.float64):
    return [(RNG.standard_normal((steps, batch, n_in)) * 0.5).astype(dtype),
            (RNG.standard_normal((batch, hidden)) * 0.1).astype(dtype),
            (RNG.standard_normal((n_in, hidden)) * 0.5).astype(dtype),
            (RNG.standard_normal((hidden, hidden)) * 0.5).astype(dtype),
            (RNG.standard_normal(hidden) * 0.1).astype(dtype)]


def _numpy_rnn_grads(xs, h0, Wx, Wh, b):
    """Loss (mean of all h) and its gradients, by hand-written backpropagation through time."""
    hs, h = [], h0
    for x in xs:
        h = np.tanh(x @ Wx + h @ Wh + b)
        hs.append(h)
    direct = 1.0 / (len(xs) * h0.size)
    gWx, gWh, gb, g_next = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b), np.zeros_like(h0)
    for t in range(len(xs) - 1, -1, -1):
        g = (g_next + direct) * (1 - hs[t] ** 2)
        gWx += xs[t].T @ g
        gWh += (hs[t - 1] if t else h0).T @ g
        gb += g.sum(0)
        g_next = g @ Wh.T
    return np.mean(hs), gWx, gWh, gb


# -- invariants --------------------------------------------------------------------------------
def test_invariant_work_is_computed_once_before_the_loop():
    x, h0, W = tc.dmatrix("x"), tc.dvector("h0"), tc.dmatrix("W")
    hs, _ = tc.scan(lambda x_t, h, W: np.tanh(x_t.sum() + h @ (W.T * 2.0)),
                    sequences=x, outputs_info=h0, non_sequences=W)
    args = [RNG.standard_normal((6, 3)), RNG.standard_normal(4), RNG.standard_normal((4, 4)) * 0.3]
    f = _check_values([x, h0, W], hs, args)
    (loop,) = _scans(f)
    inner = _inner_ops(loop)
    assert inner["transpose"] == 0 and inner["sum"] == 0, inner  # W.T * 2 once; x_t.sum() on all rows
    assert _inner_ops(_scans(tc.function([x, h0, W], hs, mode=NO_PUSH))[0])["transpose"] == 1


def test_invariants_keep_the_promotion_the_step_saw():
    x = tc.fvector("x")
    # 2.5 reaches the step as a float64 non-sequence: x_t * (c * 3) is float64 there, and must stay so
    (_, out), _ = tc.scan(lambda x_t, h, c: [h + x_t, h * (c * 3)], sequences=x, non_sequences=2.5,
                          outputs_info=[np.float32(1), None])
    f = _check_values([x], out, [np.arange(4, dtype=np.float32)])
    assert f(np.ones(2, np.float32)).dtype == np.float64
    assert _inner_ops(_scans(f)[0])["multiply"] == 1  # h * (c * 3): c * 3 is computed once


def test_side_effects_stay_in_the_loop():
    x, c = tc.dvector("x"), tc.dscalar("c")
    out, _ = tc.scan(lambda x_t, c: x_t + tc.debug.print(c * 2, "c2"), sequences=x, non_sequences=c)
    f = tc.function([x, c], out, mode=STRUCTURE)
    assert _inner_ops(_scans(f)[0])["debug_print"] == 1


# -- sequences ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rnn_input_product_is_one_matrix_product_over_all_steps(dtype):
    inputs, hs = _rnn(dtype)
    args = _rnn_args(7, dtype=dtype)
    f = _check_values(inputs, hs, args, rtol=1e-5 if dtype == "float32" else 1e-10)
    (loop,) = _scans(f)
    assert inputs[0].variable not in loop.inputs  # xs is no longer sliced step by step ...
    products = [n for n in toposort(_program(f).roots()) if n.op.name == "matmul"]
    flat = [n for n in products if n.inputs[0].ndim == 2 and n.inputs[0].owner.op.name == "reshape"
            and n.inputs[0].owner.inputs[0] is inputs[0].variable]
    assert len(flat) == 1  # ... but multiplied once, as a (steps * batch, n_in) matrix
    assert sum(_inner_ops(loop)[k] for k in ("matmul", "gemm")) == 1  # only h @ Wh is left per step


@pytest.mark.parametrize("go_backwards", [False, True])
def test_sequence_taps_read_the_rows_each_step_reads(go_backwards):
    x, h0 = tc.dvector("x"), tc.dscalar("h0")
    hs, _ = tc.scan(lambda a, b, c, h: h * 0.5 + np.exp(a) * c - np.sin(b),
                    sequences=dict(input=x, taps=[-1, 0, 2]), outputs_info=h0, go_backwards=go_backwards)
    f = _check_values([x, h0], hs, [RNG.standard_normal(9), 0.3])
    inner = _inner_ops(_scans(f)[0])
    assert inner["exp"] == inner["sin"] == 0, inner
    tc.verify_grad(lambda x, h0: tc.scan(lambda a, b, c, h: h * 0.5 + np.exp(a) * c - np.sin(b),
                                         sequences=dict(input=x, taps=[-1, 0, 2]), outputs_info=h0,
                                         go_backwards=go_backwards)[0], [RNG.standard_normal(7), 0.3], rng=3)


def test_sequences_of_different_lengths_and_given_step_counts():
    x, y, n = tc.dvector("x"), tc.dvector("y"), tc.iscalar("n")
    out, _ = tc.scan(lambda a, b, h: h + a * b, sequences=[x, y], outputs_info=np.float64(0.0))
    args = [RNG.standard_normal(5), RNG.standard_normal(3)]
    f = _check_values([x, y], out, args)
    assert _inner_ops(_scans(f)[0])["multiply"] == 0 and len(f(*args)) == 3
    out_n, _ = tc.scan(lambda a, b, h: h + a * b, sequences=[x, y], outputs_info=np.float64(0.0), n_steps=n)
    g = _check_values([x, y, n], out_n, args + [2])
    with pytest.raises(ValueError, match="larger than the sequences allow"):
        g(*args, 4)


def test_until_loop_runs_the_steps_it_ran():
    x = tc.dvector("x")
    # rows past the stop overflow exp; no step reads them, no result may depend on them
    out, _ = tc.scan(lambda x_t, h: (h + np.exp(x_t), tc.until(h > 3)), sequences=x, outputs_info=np.float64(0))
    values = np.array([0.1, 0.5, 0.9, 1.2, 800.0, 900.0])
    with np.errstate(over="ignore"):
        f = _check_values([x], out, [values])
        assert len(f(values)) == 4  # the condition reads h before the step: it holds at step 4
    assert _inner_ops(_scans(f)[0])["exp"] == 0


def test_zero_step_loops():
    inputs, hs = _rnn()
    args = _rnn_args(0)
    f = _check_values(inputs, [hs] + tc.grad(hs.sum(), inputs[1:]), args)
    assert f(*args)[0].shape == (0, 3, 5)


# -- gradients: accumulations and stacked steps -------------------------------------------------
def test_rnn_gradient_sums_after_the_loop_and_reads_the_forward_steps():
    inputs, hs = _rnn()
    loss = hs.mean()
    grads = tc.grad(loss, inputs[2:])
    args = _rnn_args(6)
    f = _check_values(inputs, [loss] + grads, args)
    for got, want in zip(f(*args), _numpy_rnn_grads(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    forward, backward = sorted(_scans(f), key=lambda n: n.params["info"].name is not None)
    info = backward.params["info"]
    assert info.n_states == 1 and info.n_updates == 1  # only the adjoint carried back; dWx, dWh, db left
    assert info.n_plain_outputs == 1  # the per-step delta, stacked for the sums after the loop
    inner = _inner_ops(backward)
    assert inner["tanh"] == 0 and sum(inner[k] for k in ("matmul", "gemm")) == 1, inner
    reference = tc.function(inputs, [loss] + grads, mode=NO_PUSH)
    assert len(reference.program.inputs) == len(f.program.inputs)
    ref_inner = _inner_ops([n for n in _scans(reference) if n.params["info"].name][0])
    assert ref_inner["tanh"] == 1 and ref_inner["matmul"] + ref_inner["gemm"] >= 4


def test_rnn_gradient_matches_finite_differences():
    def cost(xs, h0, Wx, Wh, b):
        hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
        return (hs ** 2).sum() + hs[-1].sum()

    tc.verify_grad(cost, _rnn_args(4), rng=1)


@pytest.mark.parametrize("truncate", [1, 2, 10])
def test_truncated_gradient(truncate):
    xs, h0, W = tc.dmatrix("xs"), tc.dvector("h0"), tc.dmatrix("W")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ W + h), sequences=xs, outputs_info=h0, truncate_gradient=truncate)
    args = [RNG.standard_normal((5, 3)), RNG.standard_normal(4), RNG.standard_normal((3, 4))]
    f = _check_values([xs, h0, W], tc.grad((hs ** 2).sum(), [xs, h0, W]), args)
    backward = [n for n in _scans(f) if n.params["info"].name]
    assert backward and backward[0].params["info"].n_updates == 1  # dW is summed after the loop


def test_gradient_of_an_until_loop_sums_only_the_steps_that_ran():
    x, w = tc.dvector("x"), tc.dscalar("w")
    out, _ = tc.scan(lambda x_t, h, w: (h * w + x_t, tc.until(h > 2.0)), sequences=x,
                     outputs_info=np.float64(0.5), non_sequences=w)
    _check_values([x, w], tc.grad(out.sum(), [x, w]), [np.linspace(0.2, 2.0, 8), 1.1])
    tc.verify_grad(lambda x, w: tc.scan(lambda x_t, h, w: (h * w + x_t, tc.until(h > 2.0)), sequences=x,
                                        outputs_info=np.float64(0.5), non_sequences=w)[0].sum(),
                   [np.linspace(0.2, 2.0, 8), 1.1], rng=4)


def test_gradient_with_state_taps_plain_outputs_and_go_backwards():
    def cost(x, h0, w):
        (hs, sq), _ = tc.scan(lambda a, b, p2, p1, w: [np.tanh(a * p1 + b * p2 * w), a * b * w],
                              sequences=dict(input=x, taps=[-1, 1]), non_sequences=w,
                              outputs_info=[dict(initial=h0, taps=[-2, -1]), None], go_backwards=True)
        return (hs * hs).sum() + sq.sum()

    x, h0, w = tc.dvector("x"), tc.dvector("h0"), tc.dscalar("w")
    args = [RNG.standard_normal(8), RNG.standard_normal(2), 0.7]
    f = _check_values([x, h0, w], tc.grad(cost(x, h0, w), [x, h0, w]), args)
    backward = [n for n in _scans(f) if n.params["info"].name]
    assert _inner_ops(backward[0])["tanh"] == 0  # the forward values are read, not recomputed
    tc.verify_grad(cost, args, rng=5)


# -- accumulations written by the user ---------------------------------------------------------
@pytest.mark.parametrize("stop", [False, True])
def test_shared_variable_accumulated_in_a_loop(stop):
    total = tc.shared(np.zeros(3), name="total")
    x = tc.dmatrix("x")

    def step(x_t):
        ret = (x_t * 2, {total: total + x_t})
        return ret + (tc.until(x_t.sum() > 1.0),) if stop else ret

    out, updates = tc.scan(step, sequences=x)
    values = np.array([[0.1, 0.2, 0.0], [0.3, 0.1, 0.2], [0.9, 0.4, 0.3], [5.0, 5.0, 5.0]])
    results = []
    for mode in (STRUCTURE, "FAST_COMPILE"):
        total.set_value(np.ones(3))
        f = tc.function([x], out, updates=updates, mode=mode)
        results.append((f(values), total.get_value()))
    (got, got_total), (want, want_total) = results
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got_total, want_total)
    np.testing.assert_allclose(got_total, 1 + values[:3 if stop else 4].sum(0))
    assert _scans(f := tc.function([x], out, updates=updates, mode=STRUCTURE))[0].params["info"].n_updates == 0


def test_accumulation_in_a_loop_that_runs_no_step():
    x, W = tc.dtensor3("x"), tc.dmatrix("W")
    hs, _ = tc.scan(lambda x_t, h: np.tanh(x_t @ W + h), sequences=x, outputs_info=np.zeros((2, 3)))
    grads = tc.grad(hs.sum(), [W])
    f = _check_values([x, W], grads, [np.zeros((0, 2, 4)), RNG.standard_normal((4, 3))])
    np.testing.assert_array_equal(f(np.zeros((0, 2, 4)), np.ones((4, 3)))[0], np.zeros((4, 3)))


# -- the pipeline --------------------------------------------------------------------------------
def test_passes_are_listed_and_can_be_turned_off():
    text = tc.opt.describe_pipeline("FAST_RUN")
    assert "scan_pushout: push_out_invariants, push_out_sequences, push_out_accumulations" in text
    assert "scan_reuse: reuse_stacked_steps" in text
    inputs, hs = _rnn()
    f = tc.function(inputs, hs, mode=NO_PUSH)
    assert inputs[0].variable in _scans(f)[0].inputs


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_summed_matrix_products_of_sequences(transposed, go_backwards):
    total = tc.shared(np.zeros((2, 4)), name="total")
    A, B = tc.dtensor3("A"), tc.dtensor3("B")

    def step(a, b):
        return a.sum(), {total: total + ((a.T if transposed else a) @ b)}

    out, updates = tc.scan(step, sequences=[A, B], go_backwards=go_backwards)
    a = RNG.standard_normal((5, 3, 2) if transposed else (5, 2, 3))
    b = RNG.standard_normal((4, 3, 4))  # one step fewer: the loop runs 4 steps
    f = tc.function([A, B], out, updates=updates, mode=STRUCTURE)
    assert _scans(f)[0].params["info"].n_updates == 0
    total.set_value(np.ones((2, 4)))
    f(a, b)
    rows = a[1:] if go_backwards else a[:4]  # backwards, the loop reads each sequence from its end
    rows = rows.transpose(0, 2, 1) if transposed else rows
    np.testing.assert_allclose(total.get_value(), 1 + np.einsum("tij,tjk->ik", rows, b), rtol=1e-12)


@pytest.mark.parametrize("steps", [0, 5])
def test_sum_of_a_recurrent_state(steps):
    total = tc.shared(np.zeros(3), name="total")
    x, h0 = tc.dmatrix("x"), tc.dvector("h0")

    def step(x_t, h):
        new = h * 0.5 + x_t
        return new, {total: total + new}

    hs, updates = tc.scan(step, sequences=x, outputs_info=h0)
    f = tc.function([x, h0], hs, updates=updates, mode=STRUCTURE)
    assert _scans(f)[0].params["info"].n_updates == 0
    values, start = RNG.standard_normal((steps, 3)), RNG.standard_normal(3)
    total.set_value(np.ones(3))
    got = f(values, start)
    np.testing.assert_allclose(total.get_value(), 1 + got.sum(0), rtol=1e-12)


def test_integer_division_stays_in_the_loop():
    x = tc.ivector("x")
    # past the stop x holds 0: no step divides by it, and no moved-out division may either
    out, _ = tc.scan(lambda x_t, h: (h + 100 // x_t, tc.until(h > 50)), sequences=x, outputs_info=np.int64(0))
    f = _check_values([x], out, [np.array([3, 2, 1, 0, 0], np.int32)])
    assert _inner_ops(_scans(f)[0])["floor_divide"] == 1


def test_nested_loop_stays_and_its_own_body_is_pushed():
    x, W = tc.dmatrix("x"), tc.dmatrix("W")

    def outer_step(row, h):
        inner, _ = tc.scan(lambda v, c: c + np.exp(v) * 2.0, sequences=row, outputs_info=np.float64(0))
        return h @ W + inner[-1]

    hs, _ = tc.scan(outer_step, sequences=x, outputs_info=np.zeros(3))
    f = _check_values([x, W], hs, [RNG.standard_normal((4, 5)), RNG.standard_normal((3, 3)) * 0.3])
    (loop,) = _scans(f)
    assert _inner_ops(loop)["scan"] == 1
    (nested,) = [n for n in toposort(loop.params["info"].inner.outputs) if n.op.name == "scan"]
    assert _inner_ops(nested)["exp"] == 0


def test_loop_after_givens_reads_the_replacement():
    x, W, y, c = tc.dvector("x"), tc.dmatrix("W"), tc.dmatrix("y"), tc.dscalar("c")
    # W is captured by the step (read directly); W * c is computed in it, and moves out
    hs, _ = tc.scan(lambda x_t, h, c: np.tanh(x_t * ((W * c).T @ h)), sequences=x, outputs_info=np.ones(3),
                    non_sequences=c)
    args = [RNG.standard_normal(4), RNG.standard_normal((3, 3)), 0.5]
    f = tc.function([x, y, c], hs, givens={W: y * 2}, mode=STRUCTURE)
    ref = tc.function([x, y, c], hs, givens={W: y * 2}, mode="FAST_COMPILE")
    np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-12)
    assert _inner_ops(_scans(f)[0])["transpose"] == 0


def test_checkpointed_loop_gradient():
    def cost(xs, h0, W):
        hs, _ = tc.scan(lambda x, h: np.tanh(x @ W + h), sequences=xs, outputs_info=h0, checkpoint=2)
        return (hs ** 2).sum()

    xs, h0, W = tc.dmatrix("xs"), tc.dvector("h0"), tc.dmatrix("W")
    args = [RNG.standard_normal((5, 3)), RNG.standard_normal(4), RNG.standard_normal((3, 4))]
    _check_values([xs, h0, W], tc.grad(cost(xs, h0, W), [xs, h0, W]), args)
    tc.verify_grad(cost, args, rng=6)


def test_long_loop_body_stays_without_warnings():
    x = tc.dvector("x")

    def step(x_t, h):
        v = x_t
        for i in range(150):  # more than a pass may move out without tripping the engine's growth guard
            v = np.sin(v) * 1.01 + i
        return h + v

    hs, _ = tc.scan(step, sequences=x, outputs_info=np.float64(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", tc.opt.engine.OptimizerWarning)
        _check_values([x], hs, [np.linspace(0, 1, 3)])
