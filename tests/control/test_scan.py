"""tc.scan, map/reduce/foldl/foldr and ifelse, checked against plain Python loops."""
import numpy as np
import pytest

import tracec as tc

RNG = np.random.default_rng(0)


def test_seed_power_example():
    A, k = tc.vector("A"), tc.iscalar("k")
    result, updates = tc.scan(fn=lambda prior, A: prior * A, outputs_info=np.ones_like(A),
                              non_sequences=A, n_steps=k)
    power = tc.function([A, k], result[-1], updates=updates)
    np.testing.assert_allclose(power(range(10), 2), np.arange(10.0) ** 2)
    np.testing.assert_allclose(power(range(4), 5), np.arange(4.0) ** 5)
    all_steps = tc.function([A, k], result)(np.arange(3.0), 3)
    np.testing.assert_allclose(all_steps, [np.arange(3.0) ** p for p in (1, 2, 3)])


def test_polynomial_with_two_sequences_and_truncation():
    coefficients, x = tc.vector("coefficients"), tc.scalar("x")
    components, _ = tc.scan(lambda c, p, x: c * x ** p, sequences=[coefficients, np.arange(1000)],
                            non_sequences=x)
    poly = tc.function([coefficients, x], components.sum())
    c = RNG.standard_normal(5)
    assert np.isclose(poly(c, 1.5), sum(ci * 1.5 ** i for i, ci in enumerate(c)))


def test_sequence_taps_match_python_loop():
    x = tc.vector("x")
    out, _ = tc.scan(lambda a, b, c: a - 2 * b + c, sequences=dict(input=x, taps=[-1, 0, 1]))
    v = RNG.standard_normal(7)
    expected = [v[t - 1] - 2 * v[t] + v[t + 1] for t in range(1, 6)]
    np.testing.assert_allclose(tc.function([x], out)(v), expected)


def test_output_taps_fibonacci():
    n = tc.iscalar("n")
    fib, _ = tc.scan(lambda a, b: a + b, outputs_info=dict(initial=np.array([0, 1]), taps=[-2, -1]),
                     n_steps=n)
    f = tc.function([n], fib)
    seq = [0, 1]
    for _ in range(10):
        seq.append(seq[-1] + seq[-2])
    np.testing.assert_array_equal(f(10), seq[2:])
    assert f(10).dtype == np.int64


def test_symbolic_n_steps_and_zero_steps():
    x0, n = tc.dvector("x0"), tc.iscalar("n")
    out, _ = tc.scan(lambda prev: prev + 1, outputs_info=x0, n_steps=n)
    f = tc.function([x0, n], out)
    assert f(np.zeros(2), 0).shape == (0, 2)
    np.testing.assert_allclose(f(np.zeros(2), 3), [[1, 1], [2, 2], [3, 3]])


def test_until_is_do_while():
    start = tc.dscalar("start")
    vals, _ = tc.scan(lambda prev: (prev * 2, tc.until(prev * 2 > 40)), outputs_info=start, n_steps=100)
    f = tc.function([start], vals)
    expected, v = [], 1.0
    while True:
        v *= 2
        expected.append(v)
        if v > 40:
            break
    np.testing.assert_allclose(f(1.0), expected)
    np.testing.assert_allclose(f(100.0), [200.0])  # the body runs once before the test


def test_non_recurrent_and_recurrent_outputs_together():
    x = tc.dvector("x")
    (running, squares), _ = tc.scan(lambda v, acc: [acc + v, v * v], sequences=x,
                                    outputs_info=[np.float64(0), None])
    v = RNG.standard_normal(6)
    f = tc.function([x], [running, squares])
    r, s = f(v)
    np.testing.assert_allclose(r, np.cumsum(v))
    np.testing.assert_allclose(s, v * v)


def test_go_backwards_and_folds():
    x = tc.dvector("x")
    v = np.arange(1.0, 5.0)
    back, _ = tc.scan(lambda e: e * 10, sequences=x, go_backwards=True)
    np.testing.assert_allclose(tc.function([x], back)(v), v[::-1] * 10)
    m, _ = tc.map(lambda e: e * e, x)
    np.testing.assert_allclose(tc.function([x], m)(v), v * v)
    r, _ = tc.reduce(lambda e, acc: acc + e, x, np.float64(0))
    assert tc.function([x], r)(v) == v.sum()
    fl, _ = tc.foldl(lambda e, acc: acc * 10 + e, x, np.float64(0))
    fr, _ = tc.foldr(lambda e, acc: acc * 10 + e, x, np.float64(0))
    assert tc.function([x], fl)(v) == 1234.0
    assert tc.function([x], fr)(v) == 4321.0


def test_shared_variable_updated_inside_step():
    total = tc.shared(0.0, name="total")
    x = tc.dvector("x")
    out, updates = tc.scan(lambda e: (e + total, {total: total + e}), sequences=x)
    assert list(updates) == [total]
    f = tc.function([x], out, updates=updates)
    np.testing.assert_allclose(f(np.array([1.0, 2.0, 3.0])), [1.0, 3.0, 6.0])  # each step sees the last update
    assert total.get_value() == 6.0
    np.testing.assert_allclose(f(np.array([1.0])), [7.0])


def test_captured_outer_values_and_closure():
    x, w = tc.dvector("x"), tc.dscalar("w")
    scale = np.exp(w)  # an outer intermediate read by the step: computed once, captured
    out, _ = tc.scan(lambda e: e * scale, sequences=x)
    np.testing.assert_allclose(tc.function([x, w], out)(np.arange(3.0), 0.5), np.arange(3.0) * np.exp(0.5))


def test_nested_scan():
    M = tc.dmatrix("M")

    def row_sum(row):
        s, _ = tc.scan(lambda v, acc: acc + v, sequences=row, outputs_info=np.float64(0))
        return s[-1]

    rows, _ = tc.scan(row_sum, sequences=M)
    m = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(tc.function([M], rows)(m), m.sum(axis=1))


def test_scan_inside_compile_matches_python_loop():
    @tc.compile
    def rnn(xs, h0, W, U):
        hs, _ = tc.scan(lambda x, h: np.tanh(x @ W + h @ U), sequences=xs, outputs_info=h0)
        return hs

    def reference(xs, h0, W, U):
        h, out = h0, []
        for x in xs:
            h = np.tanh(x @ W + h @ U)
            out.append(h)
        return np.stack(out)

    args = (RNG.standard_normal((5, 3)), np.zeros(4), RNG.standard_normal((3, 4)), RNG.standard_normal((4, 4)))
    np.testing.assert_allclose(rnn(*args), reference(*args))
    longer = RNG.standard_normal((9, 3))
    np.testing.assert_allclose(rnn(longer, *args[1:]), reference(longer, *args[1:]))
    assert len(rnn.programs) == 1  # a new sequence length does not retrace


def test_errors_name_the_user_line():
    x0 = tc.fvector("x0")
    with pytest.raises(TypeError, match="test_scan.py") as err:
        tc.scan(lambda prev: prev * 2.0 + np.float64(1), outputs_info=x0, n_steps=3)
    assert "float32" in str(err.value) and "float64" in str(err.value)
    with pytest.raises(ValueError, match="n_steps"):
        tc.scan(lambda: np.float64(1.0), outputs_info=None)
    x = tc.dvector("x")
    out, _ = tc.scan(lambda e: e, sequences=x, n_steps=5)
    with pytest.raises(ValueError, match="larger than the sequences"):
        tc.function([x], out)(np.arange(3.0))


def test_ifelse_is_lazy_and_selects():
    a, b = tc.dscalar("a"), tc.dscalar("b")
    big = tc.dvector("big")
    then = np.sqrt(a) + big.sum()
    other = np.log(b) + big.max()
    f = tc.function([a, b, big], tc.ifelse(a < b, then, other))
    v = np.arange(3.0)
    assert f(4.0, 9.0, v) == 2.0 + 3.0
    assert np.isclose(f(9.0, np.e, v), 1.0 + 2.0)
    # the untaken branch is not computed: its inner graph is absent from the outer program
    from tracec.trace.graph import toposort
    outer_ops = [n.op.name for n in toposort(f.program.outputs)]
    assert "sqrt" not in outer_ops and "log" not in outer_ops


def test_ifelse_untaken_branch_errors_do_not_fire():
    x = tc.dvector("x")
    i = tc.lscalar("i")
    f = tc.function([x, i], tc.ifelse(i < x.shape[0], x[i], np.float64(-1.0)))
    assert f(np.arange(3.0), 1) == 1.0
    assert f(np.arange(3.0), 10) == -1.0  # x[10] would raise IndexError if it ran


def test_ifelse_type_mismatch():
    a = tc.dscalar("a")
    with pytest.raises(TypeError, match="branch"):
        tc.ifelse(a > 0, a, tc.fscalar("b"))
