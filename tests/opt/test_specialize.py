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


def test_gemm_of_integer_addends_is_exact():
    # gemm adds -beta * C: negating an integer C (or beta) wraps at the minimum or, for
    # unsigned C, fails; those differences stay subtractions
    A, C = tc.imatrix("A"), tc.imatrix("C")
    low = np.iinfo(np.int32).min
    eye, c = np.eye(2, dtype=np.int32), np.array([[low, 0], [3, low + 1]], np.int32)
    check([A, C], 2.0 * (A @ A) - C, [eye, c], rtol=0, atol=0, absent=["gemm"])
    U = tc.tensor("uint8", (False, False), name="U")
    check([A, U], 0.5 * (A @ A) - U, [eye, np.array([[0, 255], [7, 1]], np.uint8)], rtol=0, atol=0,
          absent=["gemm"])
    D, s = tc.dmatrix("D"), tc.iscalar("s")
    check([D, C, s], (D @ D) - s * C, [np.eye(2), c, np.int32(low)], rtol=0, atol=0, absent=["gemm"])
    # exact negations still make a gemm: float C or beta, or a Python number beta
    check([D, C], 2.0 * (D @ D) - 2.5 * C, [np.eye(2), c], rtol=0, atol=0, present=["gemm"])
    check([D], (D @ D) - 3 * D, [rand((2, 2))], present=["gemm"])
    x = tc.dscalar("x")
    check([D, x], (D @ D) - x * D, [rand((2, 2)), 1.5], present=["gemm"])


def test_gemm_keeps_the_scale_inside_a_product_that_changes_dtype():
    # (2.0 * A) @ B is a float product; 2.0 * (A @ B) would multiply int32 (and wrap)
    A, B, C = tc.imatrix("A"), tc.imatrix("B"), tc.dmatrix("C")
    big = np.full((2, 2), 2 ** 30, np.int32)
    check([A, B, C], 2.0 * A @ B + C, [big, np.ones((2, 2), np.int32), rand((2, 2))], rtol=0, atol=0)
    I, J = tc.imatrix("I"), tc.imatrix("J")  # same dtype: the ring arithmetic agrees, gemm fires
    check([I, J, C], (3 * I) @ J + C, [big, np.ones((2, 2), np.int32), rand((2, 2))], rtol=0, atol=0,
          present=["gemm"])


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
