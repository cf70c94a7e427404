"""The FAST_RUN executor: fused kernels, errors that name the user's line,
NumPy's warning semantics, aliasing, threads, and when kernels get compiled."""
import numpy as np
import pytest

import tracec as tc
from tracec.cgen.executor import CExecutor


def expr(x, y, z):
    return np.exp(-x * x / 2) * y + z


def test_fused_group_is_one_kernel_with_commented_source():
    f = tc.compile(expr)
    x = np.linspace(-3, 3, 11)
    np.testing.assert_allclose(f(x, x, x), expr(x, x, x), rtol=1e-14)
    (program,) = tc.opt.optimized_program(f)
    backend = next(iter(f._cache.values()))[1].backend
    assert isinstance(backend, CExecutor) and backend.n_kernels == 1
    (source,) = backend.sources()
    assert "exp(" in source and "test_executor.py:" in source and "return np.exp(-x * x / 2) * y + z" in source


def test_strided_and_broadcast_inputs_of_a_fused_kernel():
    f = tc.compile(expr)
    big = np.random.default_rng(0).standard_normal((6, 8))
    x, y, z = big[::2, ::2], big[1::2, 1::2].T.copy().T, np.float64(0.5) + big[0, :4]
    np.testing.assert_allclose(f(x, y, z), expr(x, y, z), rtol=1e-14)
    col = big[:, :1]
    np.testing.assert_allclose(f(col, big, big[0]), expr(col, big, big[0]), rtol=1e-14)


def test_shape_mismatch_names_the_op_and_line():
    f = tc.compile(expr)
    with pytest.raises(ValueError, match=r"(?s)at .*test_executor.py:\d+.*broadcast"):
        f(np.ones(3), np.ones(4), np.ones(3))


def test_integer_power_to_negative_power_raises_like_numpy():
    f = tc.compile(lambda a, b: (a + 1) ** b)
    with pytest.raises(ValueError, match="Integers to negative integer powers"):
        f(np.arange(3), np.array([1, -1, 2]))
    np.testing.assert_array_equal(f(np.arange(3), np.array([1, 3, 2])), (np.arange(3) + 1) ** [1, 3, 2])


def test_integer_division_by_zero_warns_like_numpy():
    f = tc.compile(lambda a, b: (a * 2) // b)
    a, b = np.arange(4), np.array([1, 0, 2, 0])
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        got = f(a, b)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(got, (a * 2) // b)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError, match="floor_divide at"):
        f(a, b)


def test_float_warnings_follow_errstate():
    f = tc.compile(lambda x: np.log(x * 2) + 1)
    x = np.array([1.0, 0.0, -1.0])
    with pytest.warns(RuntimeWarning):
        got = f(x)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, np.log(x * 2) + 1)
        np.testing.assert_array_equal(f(x), got)  # flags ignored: the native result stands
    with np.errstate(invalid="raise", divide="ignore"), pytest.raises(FloatingPointError):
        f(x)


def test_nan_comparisons_do_not_warn():
    f = tc.compile(lambda x, y: (x * 1 < y) | (x * 1 >= y))
    x = np.array([np.nan, 1.0, 2.0])
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(f(x, np.ones(3)), [False, True, True])


def test_results_are_never_aliased_with_internal_buffers():
    f = tc.compile(lambda x: (x * 2 + 1, x * 2 + 1))
    x = np.arange(4.0)
    a, b = f(x)
    a[0] = 100
    assert b[0] == 1 and x[0] == 0
    c, _ = f(x)
    assert c[0] == 1 and not np.shares_memory(a, c)
    view = c[1:]
    del c
    d, _ = f(x)  # the last output's buffer is reused only once nobody holds it, views included
    assert not np.shares_memory(view, d) and view[0] == 3


def test_threads_above_the_threshold_give_the_same_result():
    x = np.random.default_rng(1).standard_normal(50_001)
    f = tc.compile(expr)
    with tc.config.change(c_parallel_threshold=1000, c_threads=2):
        threaded = f(x, x, x)
    with tc.config.change(c_threads=1):
        single = f(x, x, x)
    # vector math (libmvec) and the scalar loop tails may differ in the last bit
    np.testing.assert_allclose(threaded, single, rtol=4e-16, atol=0)


def test_kernels_compile_after_the_first_calls_by_default():
    with tc.config.change(c_compile_after=1):
        x = tc.dvector("x")
        f = tc.function([x], np.cos(x * 3.25) + 1.5)
        backend = f.executable.backend
        if backend.n_kernels == 0:  # not cached yet: NumPy first, native from the second call
            assert backend.pending
            np.testing.assert_allclose(f(np.arange(3.0)), np.cos(np.arange(3.0) * 3.25) + 1.5)
        np.testing.assert_allclose(f(np.arange(3.0)), np.cos(np.arange(3.0) * 3.25) + 1.5)
        np.testing.assert_allclose(f(np.arange(3.0)), np.cos(np.arange(3.0) * 3.25) + 1.5)
        assert not backend.pending and len(backend.kernels) == 1


def test_fast_compile_stays_on_the_interpreter():
    from tracec.trace.interp import Interpreter
    f = tc.compile(expr, mode="FAST_COMPILE")
    x = np.ones(3)
    f(x, x, x)
    assert isinstance(next(iter(f._cache.values()))[1].backend, Interpreter)


def test_shared_updates_and_writebacks_with_kernels():
    w = tc.shared(np.ones(3), name="w")
    x = tc.dvector("x")
    step = tc.function([x], (w * x).sum(), updates=[(w, w - 0.5 * x * w)])
    assert step(np.arange(3.0)) == 3.0
    np.testing.assert_allclose(w.get_value(), 1 - 0.5 * np.arange(3.0))


def test_python_int_out_of_the_array_dtype_raises_like_numpy():
    @tc.compile
    def shifted(x, s):
        return (x + s) * 2

    x = np.arange(3, dtype=np.int8)
    np.testing.assert_array_equal(shifted(x, 3), (x + 3) * 2)
    assert shifted(x, 3).dtype == np.int8
    with pytest.raises(OverflowError, match="300 out of bounds for int8"):
        shifted(x, 300)  # NumPy refuses; a C kernel would wrap silently
