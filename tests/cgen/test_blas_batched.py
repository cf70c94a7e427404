"""matmul of stacks of matrices through BLAS (GemmStep.run_batched): the batch
dimensions broadcast as NumPy's do; results agree with np.matmul."""
import numpy as np
import pytest

import tracec as tc

CASES = [
    ((3, 4, 5), (5, 6)),          # rows stack: one gemm
    ((2, 3, 4, 5), (5, 2)),
    ((3, 4, 5), (3, 5, 6)),       # one gemm per matrix
    ((1, 4, 5), (3, 5, 6)),       # A broadcast over the batch
    ((2, 1, 4, 5), (3, 5, 6)),    # both broadcast
    ((4, 5), (3, 5, 6)),          # 2-d @ 3-d
    ((0, 4, 5), (5, 6)),          # empty batch
    ((3, 4, 0), (0, 6)),          # empty sum: zeros
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sa,sb", CASES)
def test_batched_matmul_agrees_with_numpy(sa, sb, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    A = tc.tensor(dtype, (False,) * len(sa), name="a")
    B = tc.tensor(dtype, (False,) * len(sb), name="b")
    fn = tc.function([A, B], A @ B, mode="FAST_RUN")
    assert "GemmStep" in [type(s).__name__ for s in fn.executable.backend.runner.steps_list]
    got = fn(a, b)
    want = np.matmul(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_strided_and_transposed_stacks():
    rng = np.random.default_rng(1)
    A = tc.tensor3("A")
    B = tc.tensor3("B")
    fn = tc.function([A, B], A @ B, mode="FAST_RUN")
    a = rng.standard_normal((5, 6, 4)).swapaxes(1, 2)        # (5, 4, 6), transposed matrices
    b = rng.standard_normal((5, 6, 14))[:, :, ::2]            # (5, 6, 7), strided columns
    np.testing.assert_allclose(fn(a, b), np.matmul(a, b), rtol=1e-12)
    a2 = rng.standard_normal((4, 10, 6))[::2]                 # every other matrix: rows do not stack
    W = tc.matrix("W")
    g = tc.function([A, W], A @ W, mode="FAST_RUN")
    w = rng.standard_normal((6, 3))
    np.testing.assert_allclose(g(a2, w), np.matmul(a2, w), rtol=1e-12)


def test_mismatched_stacks_raise_like_numpy():
    A, B = tc.tensor3("A"), tc.tensor3("B")
    fn = tc.function([A, B], A @ B, mode="FAST_RUN")
    with pytest.raises(ValueError):
        fn(np.ones((2, 3, 4)), np.ones((3, 4, 5)))   # batch 2 vs 3
    with pytest.raises(ValueError):
        fn(np.ones((2, 3, 4)), np.ones((2, 5, 5)))   # k 4 vs 5
    np.testing.assert_allclose(fn(np.ones((2, 3, 4)), np.ones((2, 4, 5))), np.full((2, 3, 5), 4.0))


def test_gradient_of_a_batched_product():
    rng = np.random.default_rng(2)
    tc.verify_grad(lambda a, b: np.sum(np.tanh(a @ b)),
                   [rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 2))])
