"""tc.ifelse under the C backend: an IfElseStep runs the taken branch's native Runner only."""
import numpy as np
import pytest

import tracec as tc


def step_names(fn):
    return [type(s).__name__ for s in fn.executable.backend.runner.steps_list]


def test_branches_run_natively_and_agree_with_the_interpreter():
    a, b = tc.vector("a"), tc.vector("b")
    out = tc.ifelse(np.sum(a) > 0, np.exp(a) * b + 1.0, np.tanh(b) - a * a)
    native = tc.function([a, b], out, mode="FAST_RUN")
    ref = tc.function([a, b], out, mode="FAST_COMPILE")
    assert "IfElseStep" in step_names(native)
    rng = np.random.default_rng(0)
    for sign in (1.0, -1.0):
        x, y = sign * np.abs(rng.standard_normal(6)), rng.standard_normal(6)
        np.testing.assert_allclose(native(x, y), ref(x, y), rtol=1e-14)


def test_only_the_taken_branch_runs():
    a, b = tc.lscalar("a"), tc.lscalar("b")
    f = tc.function([a, b], tc.ifelse(b != 0, a // b, a), mode="FAST_RUN")
    assert f(7, 0) == 7  # 7 // 0 would raise or warn if the branch ran
    assert f(7, 2) == 3


def test_several_outputs_and_dtypes():
    x = tc.fvector("x")
    lo, hi = tc.ifelse(np.max(x) > 1, [x * 2, np.sum(x)], [x - 1, np.prod(x)])
    native = tc.function([x], [lo, hi], mode="FAST_RUN")
    ref = tc.function([x], [lo, hi], mode="FAST_COMPILE")
    for v in (np.array([0.5, 2.0, 3.0], np.float32), np.array([0.1, 0.2], np.float32)):
        for g, w in zip(native(v), ref(v)):
            assert np.asarray(g).dtype == np.asarray(w).dtype
            np.testing.assert_allclose(g, w, rtol=1e-6)


def test_gradient_through_a_native_ifelse():
    x = tc.vector("x")
    y = tc.ifelse(np.sum(x) > 0, np.sum(np.sin(x) ** 2), np.sum(x ** 3))
    g = tc.grad(y, x)
    native = tc.function([x], g, mode="FAST_RUN")
    for v in (np.array([0.3, 0.7]), np.array([-0.3, -0.7])):
        want = np.sin(2 * v) if v.sum() > 0 else 3 * v ** 2
        np.testing.assert_allclose(native(v), want, rtol=1e-12)


def test_ifelse_inside_a_scan_body():
    xs = tc.vector("xs")
    acc, _ = tc.scan(lambda x, s: tc.ifelse(x > 0, s + x, s * 0.5), sequences=xs, outputs_info=np.float64(0.0))
    native = tc.function([xs], acc, mode="FAST_RUN")
    ref = tc.function([xs], acc, mode="FAST_COMPILE")
    v = np.random.default_rng(1).standard_normal(30)
    np.testing.assert_allclose(native(v), ref(v), rtol=1e-14)


def test_a_branch_error_names_the_users_line():
    a = tc.vector("a")
    f = tc.function([a], tc.ifelse(np.sum(a) > 0, a.reshape(2, 2).sum(axis=0), a[:2]), mode="FAST_RUN")
    with pytest.raises(ValueError, match="test_ifelse_native.py"):
        f(np.ones(3))
