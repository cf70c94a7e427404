"""gemm/gemv and small integer powers."""
import numpy as np
import pytest

import tracec as tc
from optcheck import check, rand


def test_scaled_product_plus_scaled_addend_is_one_gemm():
    A, B, C = tc.dmatrix("A"), tc.dmatrix("B"), tc.dmatrix("C")
    vals = [rand((3, 4)), rand((4, 5), seed=1), rand((3, 5), seed=2)]
    for out in (2.0 * (A @ B) + 3.0 * C, 2.0 * A @ B + C, C + (A @ B) * 0.5, A @ B - 2.0 * C,
                np.dot(A, B) + C):
        _, counts = check([A, B, C], out, vals, present=["gemm"], absent=["matmul", "dot", "add"])
        assert sum(counts.values()) <= 2  # gemm (+ a negation of beta)


def test_gemv_and_broadcast_addend():
    A, x, y = tc.dmatrix("A"), tc.dvector("x"), tc.dvector("y")
    check([A, x, y], 2.0 * (A @ x) + y, [rand((3, 4)), rand(4, seed=1), rand(3, seed=2)], present=["gemv"])
    B, b = tc.dmatrix("B"), tc.dvector("b")  # a bias row broadcast over the batch
    check([A, B, b], A @ B + b, [rand((3, 4)), rand((4, 5), seed=1), rand(5, seed=2)], present=["gemm"])


def test_no_gemm_for_integers_or_shared_products():
    A, B, C = tc.lmatrix("A"), tc.lmatrix("B"), tc.lmatrix("C")
    ints = [rand((2, 2), "int64"), rand((2, 2), "int64", seed=1), rand((2, 2), "int64", seed=2)]
    check([A, B, C], A @ B + C, ints, absent=["gemm"])
    D, E, F = tc.dmatrix("D"), tc.dmatrix("E"), tc.dmatrix("F")
    P = D @ E
    _, counts = check([D, E, F], [P + F, P * 2], [rand((2, 2)), rand((2, 2), seed=1), rand((2, 2), seed=2)])
    assert counts["matmul"] == 1 and not counts["gemm"]


@pytest.mark.parametrize("n", [3, 4, 5, 7, 8, -2, -3, 3.0])
def test_small_integer_powers(n):
    x = tc.dvector("x")
    _, counts = check([x], x ** n, [rand(5, low=0.5, high=2)], absent=["power"])
    assert counts["multiply"] <= 4
    if n < 0:
        assert counts["reciprocal"] == 1


def test_integer_base_powers():
    i = tc.lvector("i")
    check([i], i ** 3, [np.arange(-3, 4)], absent=["power"])
    check([i], i ** 20, [np.arange(-3, 4)], present=["power"])  # large: kept
