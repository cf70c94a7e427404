"""Products: matmul / @, dot, tensordot, outer, einsum."""
import numpy as np
import pytest

import tracec as tc

from cases import DTYPES, check, check_raises, check_same_error, numpy_raises, rand

MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)),
                 ((4,), (2, 4, 5)), ((2, 3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 4), (4, 1)),
                 ((3, 1), (1, 5)), ((1,), (1, 3))]


def _pair(shapes, dtypes, seed=0):
    return (rand(shapes[0], dtypes[0], -2, 3, seed=seed), rand(shapes[1], dtypes[1], -2, 3, seed=seed + 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, dtype):
    a, b = _pair(shapes, (dtype, dtype))
    check(lambda a, b: a @ b, a, b, expect_ops=["matmul"])
    check(lambda a, b: np.matmul(a, b), a, b, expect_ops=["matmul"])


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float32", "int32"), ("int32", "int64"),
                                    ("bool", "int32"), ("bool", "float32"), ("int64", "float32")],
                         ids="-".join)
def test_matmul_mixed_dtypes(dtypes):
    a, b = _pair(((3, 4), (4, 2)), dtypes)
    check(lambda a, b: a @ b, a, b)
    check(lambda a, b: b.T @ a.T, a, b)


def test_matmul_constants_and_errors():
    a = rand((3, 4), "float32")
    w = rand((4, 2), "float64", seed=1)
    check(lambda a: a @ w, a)           # constant operand (strong float64)
    check(lambda a: w.T @ a.T, a)       # __rmatmul__
    check(lambda a: [[1.0, 2.0]] @ a[:2], a)
    assert check_same_error(lambda a: a @ 2.0, a)
    assert check_same_error(lambda a, b: a @ b, a, rand((3, 4), "float32"))

    def imatmul(a, b):
        c = a.copy()
        c @= b
        return c
    check(imatmul, rand((3, 3), "float64"), rand((3, 3), "float64", seed=2))


DOT_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)), ((2, 3, 4), (4, 5)),
              ((2, 3, 4), (5, 4, 6)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((), (3, 4)), ((3, 4), ()),
              ((), ()), ((1, 4), (4, 1)), ((2, 1, 3), (1, 3, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", DOT_SHAPES, ids=str)
def test_dot(shapes, dtype):
    a, b = _pair(shapes, (dtype, dtype), seed=3)
    check(lambda a, b: np.dot(a, b), a, b, expect_ops=["dot"])
    check(lambda a, b: a.dot(b), a, b, expect_ops=["dot"])


def test_dot_scalars_and_mixed():
    a = rand((3, 4), "float32", seed=4)
    check(lambda a: np.dot(a, 2.5), a)
    check(lambda a: np.dot(2, a), a)
    check(lambda a, s: np.dot(a, s), a, 2)
    check(lambda a, b: np.dot(a, b), a, rand((4,), "int64", seed=5))

    def with_out(a, b):
        out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
        np.dot(a, b, out=out)
        return out
    check(with_out, a, rand((4, 2), "float32", seed=6))


TENSORDOT = [((3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 2), ((3, 4), (5, 6), 0), ((2, 3), (2, 3), 2),
             ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((2, 3, 4), (5, 2), (0, 1)),
             ((2, 3, 4), (3, 2), ([-2, 0], [0, -1])), ((3, 4), (4, 3), ((0, 1), (1, 0))),
             ((1, 4), (4, 1), 1), ((2, 3, 4), (4, 5), ([2], [0]))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("a_shape,b_shape,axes", TENSORDOT, ids=str)
def test_tensordot(a_shape, b_shape, axes, dtype):
    a, b = _pair((a_shape, b_shape), (dtype, dtype), seed=7)
    check(lambda a, b: np.tensordot(a, b, axes=axes), a, b, expect_ops=["tensordot"])
    if axes == 2:
        check(lambda a, b: np.tensordot(a, b), a, b, expect_ops=["tensordot"])


def test_tensordot_errors():
    a, b = _pair(((3, 4), (4, 5)), ("float64", "float64"))
    assert check_same_error(lambda a, b: np.tensordot(a, b, axes=([0, 1], [0])), a, b)


@pytest.mark.parametrize("axes", [([5], [5]), ([2], [0]), ([0], [2]), ([-3], [0]), ([0], [-3]), 3,
                                  ([0, 0], [0, 1]), ([1, -1], [0, 1])], ids=str)
def test_tensordot_bad_axes_raise_as_numpy(axes):
    # axes are not taken modulo ndim: out of range is NumPy's IndexError, a repeat its ValueError
    a, b = _pair(((2, 3), (3, 2)), ("float64", "float64"))
    assert check_same_error(lambda a, b: np.tensordot(a, b, axes=axes), a, b)
    check_raises(type(numpy_raises(lambda: np.tensordot(a, b, axes=axes))), lambda a, b:
                 np.tensordot(a, b, axes=axes), a, b, match=r"tensordot at .*test_linalg\.py")


def test_tensordot_of_0d_operands():
    x, y = np.float64(2.0), np.float64(3.0)
    check(lambda x, y: np.tensordot(x, y, axes=0), x, y)
    check(lambda x, y: np.tensordot(x, y, axes=([], [])), x, y)
    assert check_same_error(lambda x, y: np.tensordot(x, y, axes=([0], [0])), x, y)


@pytest.mark.parametrize("axes", [([-1], [0]), ([-2, -1], [-1, 0]), -1, ([0], [-1])], ids=str)
def test_tensordot_negative_axes(axes):
    a, b = _pair(((2, 3), (3, 2)), ("float64", "float64"), seed=3)
    check(lambda a, b: np.tensordot(a, b, axes=axes), a, b, expect_ops=["tensordot"])


@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "int32"), ("int32", "int64"),
                                    ("bool", "bool")], ids="-".join)
@pytest.mark.parametrize("shapes", [((3,), (4,)), ((2, 3), (4,)), ((3,), (2, 2)), ((1,), (3,)),
                                    ((), (3,)), ((1, 1), (1,))], ids=str)
def test_outer(shapes, dtypes):
    a, b = _pair(shapes, dtypes, seed=8)
    check(lambda a, b: np.outer(a, b), a, b, expect_ops=["outer"])


def test_outer_with_scalar_constant():
    check(lambda a: np.outer(a, 2.5), rand((3,), "float32"))
    check(lambda a: np.outer([1, 2], a), rand((3,), "int32"))


EINSUM = [("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,jk", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
          ("ij->ji", [(3, 4)]), ("ij", [(3, 4)]), ("ji", [(3, 4)]), ("ij->", [(3, 4)]), ("ij->j", [(3, 4)]),
          ("i,i->", [(4,), (4,)]), ("i,j->ij", [(3,), (4,)]), ("ij,ij->ij", [(3, 4), (3, 4)]),
          ("ij,j->i", [(3, 4), (4,)]), ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]), ("ii->i", [(3, 3)]),
          ("ii", [(3, 3)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("ij, jk -> ik", [(3, 4), (4, 5)]),
          ("ij,kj->ikj", [(1, 4), (3, 4)]), ("ba,ca->bc", [(3, 1), (2, 1)])]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("spec,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(spec, shapes, dtype):
    args = [rand(s, dtype, -2, 3, seed=9 + i) for i, s in enumerate(shapes)]
    fn = lambda *xs: np.einsum(spec, *xs)  # noqa: E731
    if not check_same_error(fn, *args):
        check(fn, *args, expect_ops=["einsum"])


def test_einsum_mixed_dtypes():
    check(lambda a, b: np.einsum("ij,jk->ik", a, b), rand((3, 4), "float32"), rand((4, 2), "int64", seed=1))
    check(lambda a, b: np.einsum("ij,jk->ik", a, b), rand((3, 4), "int32"), rand((4, 2), "float32", seed=1))


def test_einsum_unsupported_ellipsis():
    with pytest.raises(NotImplementedError):
        tc.compile(lambda a: np.einsum("...ij->...ji", a))(rand((2, 3, 4), "float64"))
