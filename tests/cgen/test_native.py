"""The native runner's call path: `tc.compile` calls with plain arrays go
straight to `Runner.fast_call` (argument checks, the whole graph, results in
C). Every behaviour of the general protocol must survive it."""
import warnings

import numpy as np
import pytest

import tracec as tc


def expr(x, y, z):
    return np.exp(-x * x / 2) * y + z


def args(*shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(3)]


def armed(f):
    return f._native_call is not None


def test_plain_array_calls_take_the_native_path_and_agree_with_numpy():
    f = tc.compile(expr)
    a = args(5)
    for _ in range(3):
        np.testing.assert_allclose(f(*a), expr(*a), rtol=1e-14)
    assert armed(f)
    b = args(2, 7, seed=1)  # another signature: rank 2
    np.testing.assert_allclose(f(*b), expr(*b), rtol=1e-14)
    np.testing.assert_allclose(f(*a), expr(*a), rtol=1e-14)


def test_signature_checks_in_c_send_other_arguments_to_the_general_path():
    f = tc.compile(expr)
    a = args(4)
    f(*a), f(*a)
    assert armed(f)
    a32 = [v.astype(np.float32) for v in a]
    out = f(*a32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expr(*a32), rtol=1e-6)
    one = [v[:1] for v in a]  # length-1 dimension: another broadcastable pattern
    np.testing.assert_allclose(f(*one), expr(*one), rtol=1e-14)
    x = a[0]
    np.testing.assert_allclose(f(x, x, x), expr(x, x, x), rtol=1e-14)  # same array three times
    np.testing.assert_allclose(f(1.5, a[1], a[2]), expr(1.5, a[1], a[2]), rtol=1e-14)  # a Python float
    swapped = a[0].astype(">f8")
    np.testing.assert_allclose(f(swapped, a[1], a[2]), expr(swapped, a[1], a[2]), rtol=1e-14)
    assert len(f._cache) >= 4


def test_results_are_never_internal_buffers_still_in_use():
    f = tc.compile(expr)
    a = args(6)
    first = f(*a)
    kept = first.copy()
    second = f(*[v + 1 for v in a])
    assert first is not second and not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)


def test_a_dropped_result_buffer_is_reused_by_the_next_call():
    f = tc.compile(expr)
    a = args(1000)
    f(*a), f(*a)
    address = f(*a).__array_interface__["data"][0]  # dropped at once
    assert f(*a).__array_interface__["data"][0] == address


def test_zero_d_results_are_numpy_scalars_and_tuples_keep_their_shape():
    @tc.compile
    def g(x, y):
        return np.exp(x) * y, (x * y - 1.0)

    x, y = np.array(0.5), np.array(2.0)
    for _ in range(3):
        out = g(x, y)
    assert armed(g)
    assert type(out) is tuple and isinstance(out[0], np.float64) and not isinstance(out[0], np.ndarray)
    assert out == (np.exp(0.5) * 2.0, 0.5 * 2.0 - 1.0)


def test_dict_results_keep_the_general_path():
    @tc.compile
    def g(x):
        return {"a": np.sin(x) + 1.0, "b": x * 2.0}

    x = np.arange(3.0)
    for _ in range(3):
        out = g(x)
    assert not armed(g)
    np.testing.assert_allclose(out["a"], np.sin(x) + 1.0)


def test_errors_from_the_native_path_name_the_users_line():
    f = tc.compile(expr)
    a = args(3)
    f(*a), f(*a)
    with pytest.raises(ValueError, match=r"(?s)test_native.py:\d+.*broadcast"):
        f(np.ones(3), np.ones(4), np.ones(3))


def test_floating_point_warnings_and_errstate_follow_numpy():
    @tc.compile
    def g(x, y):
        return np.log(x) * y + 1.0

    x, y = np.array([1.0, 0.0, 2.0]), np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g(x, y), g(x, y)
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        out = g(x, y)
    assert out[1] == -np.inf
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        g(x, y)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g(x, y)[1] == -np.inf


def test_in_place_kernels_report_floating_point_conditions_themselves():
    # without fusion, log writes into the buffer of x - 1 (a dead intermediate): NumPy cannot rerun it
    g = tc.compile(lambda x: np.log(x - 1.0), optimizer_excluding=["fusion"])
    x = np.array([2.0, 1.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g(x), g(x)
    (program,) = tc.opt.optimized_program(g)
    assert "inplace_elemwise" in {n.op.name for n in tc.trace.graph.toposort(program.roots())}
    with pytest.warns(RuntimeWarning, match="divide by zero encountered in"):
        out = g(x)
    np.testing.assert_array_equal(out, [0.0, -np.inf, np.log(2.0)])
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError, match=r"(?s)test_native.py"):
        g(x)


def test_thread_flags_are_read_at_every_call():
    f = tc.compile(expr)
    a = args(50_000)
    f(*a), f(*a)
    with tc.config.change(c_parallel_threshold=1000, c_threads=2):
        np.testing.assert_allclose(f(*a), expr(*a), rtol=1e-12, atol=1e-14)
    with tc.config.change(c_threads=1):
        np.testing.assert_allclose(f(*a), expr(*a), rtol=1e-12, atol=1e-14)


def test_disable_compile_bypasses_the_native_path():
    calls = []

    def h(x):
        calls.append(1)
        return np.exp(x) + 1.0

    f = tc.compile(h)
    x = np.arange(3.0)
    f(x), f(x), f(x)
    n = len(calls)
    with tc.config.change(disable_compile=True):
        f(x)
    assert len(calls) == n + 1


def test_tc_function_with_shared_updates_runs_natively():
    w = tc.shared(np.ones(4), name="w")
    x = tc.dvector("x")
    step = tc.function([x], x * w + 1.0, updates=[(w, w * 0.5 + x)])
    a = np.arange(4.0)
    expected_w = np.ones(4)
    for _ in range(4):
        out = step(a)
        np.testing.assert_allclose(out, a * expected_w + 1.0)
        expected_w = expected_w * 0.5 + a
        np.testing.assert_allclose(w.get_value(), expected_w)
    assert step._native_call is not None
    assert not np.shares_memory(out, w.get_value(borrow=True))
    np.testing.assert_allclose(step(np.arange(4)), a * expected_w + 1.0)  # int64: the general path converts
    expected_w = expected_w * 0.5 + a
    np.testing.assert_allclose(w.get_value(), expected_w)
    with pytest.raises(TypeError):
        step("abc")


def test_write_backs_of_mutated_arguments_in_c():
    @tc.compile
    def bump(x, y):
        x += y * 2.0
        return np.exp(y) + 1.0

    x, y = np.zeros(3), np.arange(3.0)
    for k in range(1, 4):
        out = bump(x, y)
        np.testing.assert_allclose(x, k * y * 2.0)
        np.testing.assert_allclose(out, np.exp(y) + 1.0)
    assert bump._native_call is not None
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        bump(frozen, y)
    base = np.zeros(6)
    with pytest.raises(ValueError, match="shares memory"):
        bump(base[:3], base[1:4])


def _step_kinds(fn):
    return [type(s).__name__ for s in fn.executable.backend.runner.steps_list]


def _both(inputs, outputs, *values, **kw):
    native = tc.function(inputs, outputs, **kw)
    reference = tc.function(inputs, outputs, mode="FAST_COMPILE", **kw)
    return native, native(*values), reference(*values)


def test_scan_runs_natively_and_agrees_with_the_interpreter():
    x0, a = tc.dscalar("x0"), tc.dscalar("a")
    res, _ = tc.scan(lambda h, a: a * h + 1.0, outputs_info=x0, non_sequences=a, n_steps=500)
    f, got, want = _both([x0, a], [res, res[-1]], 0.5, 0.9)
    assert "ScanStep" in _step_kinds(f)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def test_native_scan_over_taps_go_backwards_and_matrices():
    x = tc.dmatrix("x")
    h0 = tc.dmatrix("h0")
    out, _ = tc.scan(lambda xm1, xp1, hm2, hm1: np.tanh(xm1 + xp1 + 0.5 * hm2 - hm1),
                     sequences=dict(input=x, taps=[-1, 1]), outputs_info=dict(initial=h0, taps=[-2, -1]),
                     go_backwards=True)
    rng = np.random.default_rng(3)
    xv, hv = rng.standard_normal((9, 4)), rng.standard_normal((2, 4))
    f, got, want = _both([x, h0], out, xv, hv)
    assert "ScanStep" in _step_kinds(f)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_native_scan_with_until_grows_its_stacks_and_keeps_last_values():
    x0 = tc.dscalar("x0")

    def step(h):
        return h * 1.5 + 1.0, tc.until(h > 1e6)

    out, _ = tc.scan(step, outputs_info=x0, n_steps=10_000)
    f, got, want = _both([x0], [out, out[-3:]], 1.0)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert len(got[0]) < 100


def test_nested_native_scans():
    x = tc.dmatrix("x")
    rows, _ = tc.scan(lambda r: tc.scan(lambda e, acc: acc + e * e, sequences=r,
                                        outputs_info=np.float64(0))[0][-1], sequences=x)
    v = np.arange(12.0).reshape(3, 4)
    f, got, want = _both([x], rows, v)
    np.testing.assert_allclose(got, (v * v).sum(axis=1))
    np.testing.assert_allclose(got, want)


def test_native_scan_step_outputs_must_keep_their_shape():
    x = tc.dvector("x")
    idx = tc.lvector("idx")
    out, _ = tc.scan(lambda i, x: x[:i + 1] * 2.0, sequences=idx, non_sequences=x)
    f = tc.function([x, idx], out)
    with pytest.raises(ValueError, match="shape"):
        f(np.arange(5.0), np.arange(3))


def test_matrix_products_run_through_blas_and_agree_with_numpy():
    A, B, C = tc.dmatrix("A"), tc.dmatrix("B"), tc.dmatrix("C")
    v, u = tc.dvector("v"), tc.dvector("u")
    outs = [2.0 * (A @ B) + 0.5 * C, A @ v, u @ A, np.dot(A, B)]
    f, got, want = None, None, None
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    vv, uu = rng.standard_normal(5), rng.standard_normal(4)
    for layout in (lambda m: m, lambda m: np.asfortranarray(m)):
        f, got, want = _both([A, B, C, v, u], outs, layout(a), layout(b), c, vv, uu)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-13)
    assert _step_kinds(f).count("GemmStep") == 4
    np.testing.assert_allclose(f(a[:, ::-1], b[::-1], c, vv, uu)[0], 2.0 * (a[:, ::-1] @ b[::-1]) + 0.5 * c)
    with pytest.raises(ValueError, match=r"(?s)matmul at .*test_native.py"):
        f(a, b, c, np.ones(4), uu)
    x32 = tc.fmatrix("x32")
    g = tc.function([x32], x32 @ x32.T)
    m = rng.standard_normal((3, 6)).astype(np.float32)
    assert g(m).dtype == np.float32
    np.testing.assert_allclose(g(m), m @ m.T, rtol=1e-5)
