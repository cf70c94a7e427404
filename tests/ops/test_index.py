"""Indexing: getitem (basic, advanced, masks), setitem (x[k] = v, x[k] op= v, np.add.at), nonzero."""
import numpy as np
import pytest

import tracec as tc

from cases import DTYPES, assert_same, check, check_same_error, rand


def X(shape=(4, 5, 6), dtype="float64", seed=0):
    return rand(shape, dtype, -5, 5, seed=seed)


BASIC_KEYS = [
    0, -1, 2, slice(None), slice(1, 3), slice(None, None, -1), slice(3, 0, -1), slice(-2, None),
    slice(None, -1, 2), slice(None, None, -2), slice(10, -10, -3), slice(-10, 10), slice(5, 1),
    (1, 2), (1, 2, 3), (-1, -2, -3), (slice(None), 1), (slice(1, 3), slice(None, None, -1), 2),
    Ellipsis, (Ellipsis, 0), (0, Ellipsis), (0, Ellipsis, 1), (Ellipsis, slice(None, None, -1)),
    None, (None, 0), (0, None, slice(1, 3)), (Ellipsis, None), (slice(None), None, Ellipsis, None),
    (None, Ellipsis, None, 1), (), (1, slice(None), None, -1),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_basic_getitem(key, dtype):
    x = X(dtype=dtype)
    check(lambda x: x[key], x, expect_ops=[] if key == () else ["getitem"])


@pytest.mark.parametrize("shape", [(1, 5), (4, 1), (1, 1), (5,), (1,)], ids=str)
def test_getitem_broadcastable_inputs(shape):
    x = X(shape)
    for key in [0, slice(None), slice(0, 1), slice(None, None, -1), (Ellipsis, 0), -1, (None, Ellipsis),
                slice(1, None), slice(0, 0)]:
        if not check_same_error(lambda x: x[key], x):
            check(lambda x: x[key], x)


def test_getitem_errors():
    x = X((4, 5))
    for fn in (lambda x: x[4], lambda x: x[0, 0, 0], lambda x: x[..., ...], lambda x: x[1.5],
               lambda x: x[::0], lambda x: x[[1.5]], lambda x: x[:, 10]):
        assert check_same_error(fn, x), fn


def test_traced_int_and_slice_bounds():
    x = X((4, 5, 6))
    check(lambda x: x[x.shape[0] - 1], x)
    check(lambda x: x[:, x.shape[1] // 2], x)
    check(lambda x: x[: x.shape[0] // 2, 1:x.shape[1] - 1, ::2], x)

    def halves(x):
        n = x.shape[0]
        return x[: n // 2], x[n // 2:], x[n - 1::-1], x[::n - 2]
    check(halves, x)
    check(lambda x, i: x[i], x, 2)
    check(lambda x, i: x[i, -i], x, 1)
    check(lambda x, i, j: x[i:j], x, 1, 3)
    check(lambda x, i, j: x[j:i:-1], x, 0, 3)
    check(lambda x, i: x[..., i], x, -1)
    check(lambda x, i: x[i], x, np.int32(3))
    check(lambda x, i: x[i], x, np.array(2))        # a 0-d integer array argument
    check(lambda x, i: x[i, 1:i], x, np.int64(3))
    # the traced index is out of range only at run time
    f = tc.compile(lambda x, i: x[i])
    with pytest.raises(IndexError):
        f(x, 7)


@pytest.mark.parametrize("key", [
    [0, 2], [[0, 1], [3, 2]], np.array([3, -1, 0, 3]), (slice(None), [1, 1, 0]),
    ([0, 1], [2, 3]), ([0, 1], slice(1, 3), [2, 3]), (slice(None), [0, 2], [1, 3]),
    ([[0], [1]], [0, 2]), (Ellipsis, [0, 5]), ([0, 2], Ellipsis), (1, [0, 2]), ([0, 2], 1),
    ([1], slice(None), 2), (0, slice(None), [1, 2]), (None, [0, 1]), ([0, 1], None, [0, 1]),
    (slice(None, None, -1), [[0, 1]], slice(1, None)), (np.array([[1]]), 0, np.array([2, 3])),
    (np.array([], dtype=np.int64), slice(None)),
], ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_integer_array_indexing(key, dtype):
    x = X(dtype=dtype)
    key = tuple(np.asarray(k) if isinstance(k, list) else k for k in (key if isinstance(key, tuple) else (key,)))
    # the index arrays as constants in the function ...
    check(lambda x: x[key], x, expect_ops=["getitem"])
    # ... and as traced arguments
    arrays = [k for k in key if isinstance(k, np.ndarray)]

    def traced(x, *idx):
        it = iter(idx)
        return x[tuple(next(it) if isinstance(k, np.ndarray) else k for k in key)]
    check(traced, x, *arrays, expect_ops=["getitem"])


def test_integer_array_indexing_more():
    x = X((4, 5))
    i = np.array([3, 0, 0, 2])
    check(lambda x, i: x[i, i], x, i)
    check(lambda x, i: x[i[:, None], i[None, :2]], x, i)
    check(lambda x, i: x[x.shape[0] - 1 - i], x, i)
    check(lambda x, i: x[i.astype(np.int32)], x, i)
    check(lambda x, i: x[i.astype(np.uint8)], x, i)
    check(lambda x: x[[0, -1]], x)
    check(lambda x: (x[[]], x[[], 1], x[[[]]]), x)
    check(lambda x: x[(0, -1),], x)
    check(lambda x: np.take(x, [1, 3]), x)
    check(lambda x, i: np.take(x, i, axis=1), x, i)
    check(lambda x, i: x.take(i, axis=-1), x, i)
    check(lambda x: x[np.arange(x.shape[0]), np.arange(x.shape[0])], x)
    check(lambda x: x[np.argmax(x, axis=0), np.arange(x.shape[1])], x)
    f = tc.compile(lambda x, i: x[i])
    with pytest.raises(IndexError):
        f(x, np.array([0, 4]))
    assert check_same_error(lambda x: x[[0, 1], [0, 1, 2]], x)  # shape mismatch


@pytest.mark.parametrize("dtype", DTYPES)
def test_boolean_mask_getitem(dtype):
    x = X((4, 5), dtype)
    check(lambda x: x[x > 0], x, expect_ops=["getitem"])
    check(lambda x: x[x[:, 0] > 0], x)
    check(lambda x: x[:, x[0] > 0], x)
    check(lambda x: x[x[:, 0] > 0, 1:], x)
    check(lambda x: x[x[:, 0] > 0, [1]], x)
    check(lambda x, m: x[m], x, rand((4, 5), "bool", seed=1))
    check(lambda x, m: x[m], x, np.zeros((4, 5), bool))
    check(lambda x, m: x[..., m], x, rand((5,), "bool", seed=2))
    check(lambda x, m: x[m, None], x, rand((4,), "bool", seed=3))


def test_boolean_mask_errors():
    x = X((4, 5))
    assert check_same_error(lambda x: x[np.ones(3, bool)], x)
    assert check_same_error(lambda x: x[np.ones((4, 5, 2), bool)], x)


def test_nonzero():
    x = X((4, 5), "int32")
    check(lambda x: np.nonzero(x > 0), x, expect_ops=["nonzero"])
    check(lambda x: (x > 0).nonzero(), x, expect_ops=["nonzero"])
    check(lambda x: np.where(x > 2), x, expect_ops=["nonzero"])
    check(lambda x: np.nonzero(x[0]), x, expect_ops=["nonzero"])
    check(lambda x: x[np.nonzero(x > 1)], x)
    check(lambda x: np.nonzero(x), X((3, 1, 2), "bool"))
    assert check_same_error(lambda x: np.nonzero(x[0, 0]), x)  # 0-d: NumPy refuses


# -- setitem ----------------------------------------------------------------------------------------
SET_KEYS = [0, -1, slice(1, 3), slice(None, None, -2), (1, 2), (Ellipsis, 0), (slice(None), slice(1, None, 2)),
            [0, 2], (slice(None), [0, 3]), ([0, 1], [1, 2]), (None, 1), ([[1], [2]], [0, 3])]


@pytest.mark.parametrize("key", SET_KEYS, ids=repr)
@pytest.mark.parametrize("dtype", ["float64", "int32", "bool"])
def test_setitem(key, dtype):
    x = X((4, 5), dtype)

    def scalar(x):
        y = x.copy()
        y[key] = 1
        return y

    def array(x, v):
        y = x.copy()
        y[key] = v
        return y

    def argument(x):  # mutating the argument itself: the caller's array is updated too
        x[key] = 0
        return x.sum()

    check(scalar, x, expect_ops=["setitem"])
    value = X((4, 5), dtype, seed=1)[key]
    check(array, x, value, expect_ops=["setitem"])
    check(argument, x, expect_ops=["setitem"])
    if np.ndim(value) >= 1:
        check(array, x, value[..., :1])  # broadcast value


def test_setitem_casting_and_values():
    x = X((4, 5))
    i = X((4, 5), "int32")

    def f(i, x):
        j = i.copy()
        j[0] = x[0]          # float into int: NumPy casts unsafely on assignment
        j[1] = 2.9
        j[2] = True
        return j
    check(f, i, x)

    def g(x):
        y = x.copy()
        y[0, :] = [1, 2, 3, 4, 5]
        y[1:3] = np.arange(5)
        y[-1] = y[0] * 2
        return y
    check(g, x)

    def bad_shape(x):
        y = x.copy()
        y[0:2] = np.ones(3)
        return y
    assert check_same_error(bad_shape, x)


def test_mask_assignment():
    def relu(x):
        x[x < 0] = 0
        return x
    check(relu, X((4, 5)))
    check(relu, X((4, 5), "int32"))

    def with_values(x):
        y = x.copy()
        m = y > 1
        y[m] = y[m] * 10
        y[~m] = -1.5
        return y
    check(with_values, X((4, 5)))

    def rows(x):
        y = x.copy()
        y[y[:, 0] > 0] = 9
        y[:, y[0] < 0] = y[:, :1] * 0 + 7
        return y
    check(rows, X((4, 5)))


def test_inplace_through_index():
    def f(x, idx, v):
        y = x.copy()
        y[idx] += v
        return y
    x = X((5, 3))
    check(f, x, np.array([0, 2, 4]), X((3, 3), seed=1))
    check(f, x, np.array([0, 2, 2]), 1.0)   # repeated index: buffered, last write wins (NumPy)
    check(f, x, 1, X((3,), seed=2))

    def g(y):
        y = y.copy()
        y[::2] *= 2
        y[1::2] -= 1
        y[:, -1] /= 4
        y[0, 0] **= 2
        return y
    check(g, x)
    check(g, X((5, 3), "float32"))

    def h(y):
        y[::2] *= 2   # the argument itself
        return None
    check(h, x)


def test_slice_assignment_whole():
    def f(a, b):
        c = np.zeros_like(a)
        c[:] = a * b + 1
        return c
    check(f, X((3, 4)), X((4,), seed=1))

    def g(c, a):
        c[:] = np.exp(a)
        c[...] = c * 2
        return c
    check(g, X((3, 4)), X((3, 4), seed=2))

    def fill(a):
        b = a.copy()
        b.fill(3)
        return b
    check(fill, X((3, 4), "int32"))


def test_views_write_through():
    def f(x):
        y = x.copy()
        row = y[1]
        row[2] = 100.0          # writes into y
        col = y[:, 0]
        col += 1                # writes into y
        t = y.T
        t[0, 1] = -100.0        # writes into y through the transpose
        return y, row, col
    check(f, X((3, 4)))

    def g(x):
        v = x[::2]
        v[:] = 0                # the argument is modified through a view
        return x
    check(g, X((5, 2)))


def test_add_at():
    def f(x, i, v):
        y = x.copy()
        np.add.at(y, i, v)
        return y
    x = X((5, 3))
    check(f, x, np.array([0, 2, 2, 4, 0]), 1.0)                     # repeated indices accumulate
    check(f, x, np.array([0, 2, 2]), X((3, 3), seed=1))
    check(f, x, (np.array([0, 0, 1]), np.array([1, 1, 2])), X((3,), seed=2))
    check(lambda x: f(x, (slice(None), np.array([0, 0])), 1.0), x)
    check(f, X((5,), "int32"), np.array([1, 1, 1]), 2)

    def on_argument(x, i):
        np.add.at(x, i, 1)
        return x.sum()
    check(on_argument, x, np.array([1, 1, 3]))


def test_setitem_on_python_scalar_refused():
    with pytest.raises(TypeError):
        tc.compile(lambda s: s.__setitem__(0, 1))(np.float64(2.0))


@pytest.mark.parametrize("layout", ["transposed", "strided", "fortran", "reversed"])
def test_arguments_that_are_views(layout):
    """Non-contiguous arguments: results match, and in-place changes land in the caller's view."""
    take = {"transposed": lambda p: p.T, "strided": lambda p: p[:, ::2],
            "fortran": np.asfortranarray, "reversed": lambda p: p[::-1]}[layout]

    def relu(x):
        x[x < 0] = 0
        return x.sum(axis=0)

    def shift(x):
        x += 1
        x[0] *= -1

    for fn in (relu, shift, lambda x: x.T @ x, lambda x: x.reshape(-1)[::-1]):
        parent_np, parent_tc = X((4, 6)), X((4, 6))
        view_np, view_tc = take(parent_np), take(parent_tc)
        expected = fn(view_np)
        got = tc.compile(fn)(view_tc)
        assert_same(got, expected)
        assert_same(parent_tc, parent_np, where="the caller's array")


def test_aliased_arguments():
    def f(a, b):
        a += 1          # b is the same array: it sees the change
        return b.sum(), a is b
    x = X((3, 4))
    check(lambda a, b: f(a, b)[0], x, x)
    y = X((3, 4))
    check(lambda a, b: f(a, b)[0], y, y.copy())
