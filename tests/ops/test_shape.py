"""Shape ops: shape_i, reshape, transpose, expand_dims, squeeze, broadcast_to, concatenate,
stack, split, flip, roll, tile, repeat, and the NumPy functions built on them."""
import numpy as np
import pytest

import tracec as tc

from cases import DTYPES, check, check_same_error, rand


def X(shape=(2, 3, 4), dtype="float64", seed=0):
    return rand(shape, dtype, -5, 5, seed=seed)


# -- shape ---------------------------------------------------------------------------
def test_shape_values():
    check(lambda x: (x.shape[0] * 1, np.shape(x)[1] + 0, x.size + 0, np.size(x, 1) + 0), X(), expect_ops=["shape_i"])
    check(lambda x: x.shape, X())  # traced dims come back as NumPy ints
    check(lambda x: x.shape, X((1, 3)))
    check(lambda x: x * x.shape[1], X(dtype="float32"))  # x.shape[i] promotes like a Python int
    check(lambda x: x / x.shape[0], X(dtype="int32"))
    check(lambda x: x.sum() / x.size, X(dtype="float32"))
    check(lambda x: (x.ndim, np.ndim(x), x.dtype.itemsize), X())


# -- reshape ---------------------------------------------------------------------------
RESHAPES = [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1)), ((2, 3, 4), (2, -1, 2)),
            ((2, 3, 4), (24, 1)), ((2, 3, 4), (1, 24)), ((2, 3, 4), (2, 3, 4, 1)), ((1,), ()),
            ((), (1, 1)), ((6,), (2, 3)), ((1, 6), (3, 2)), ((3, 1), (3,))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,new", RESHAPES, ids=str)
def test_reshape(shape, new, dtype):
    x = X(shape, dtype)
    check(lambda x: x.reshape(new), x, expect_ops=["reshape"])
    check(lambda x: np.reshape(x, new), x, expect_ops=["reshape"])
    if len(new) > 1:
        check(lambda x: x.reshape(*new), x, expect_ops=["reshape"])


def test_reshape_traced_sizes():
    x = X((2, 3, 4))
    check(lambda x: x.reshape(x.shape[0], -1), x)
    check(lambda x: x.reshape(x.shape[0] * x.shape[1], x.shape[2]), x)

    def flat(x):
        n, m, k = x.shape
        return x.reshape(n * m * k)
    check(flat, x)

    def two_d(x):
        n, m = x.shape
        return x.reshape(n * m), x.reshape((m, n)), x.reshape(-1, n)
    check(two_d, X((3, 4)))
    check(lambda x, n: x.reshape(n, -1), x, 4)          # a size passed as a Python int argument
    check(lambda x: np.reshape(x, (x.shape[-1], -1)), x)
    check(lambda x: x.ravel(), x)
    check(lambda x: np.ravel(x.T), x)
    check(lambda x: x.flatten(), x)
    check(lambda x: x.reshape(x.size), x)
    assert check_same_error(lambda x: x.reshape(5, -1), x)
    assert check_same_error(lambda x: x.reshape(-1, -1), x)


def test_reshape_newshape_keyword_and_copy():
    x = X((2, 6))
    check(lambda x: np.reshape(x, shape=(3, 4)), x)
    check(lambda x: np.reshape(x, (3, 4), copy=True), x)


# -- transpose, swapaxes, moveaxis -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose(dtype):
    x = X((2, 3, 4), dtype)
    check(lambda x: x.T, x, expect_ops=["transpose"])
    check(lambda x: x.mT, x, expect_ops=["transpose"])
    check(lambda x: x.transpose(), x, expect_ops=["transpose"])
    check(lambda x: x.transpose(1, 0, 2), x, expect_ops=["transpose"])
    check(lambda x: x.transpose((2, 0, 1)), x, expect_ops=["transpose"])
    check(lambda x: np.transpose(x, (-1, 0, 1)), x, expect_ops=["transpose"])
    check(lambda x: np.transpose(x, None), x, expect_ops=["transpose"])
    check(lambda x: np.swapaxes(x, 0, 2), x, expect_ops=["transpose"])
    check(lambda x: x.swapaxes(-1, 1), x, expect_ops=["transpose"])
    check(lambda x: np.moveaxis(x, 0, -1), x, expect_ops=["transpose"])
    check(lambda x: np.moveaxis(x, [0, 1], [2, 0]), x, expect_ops=["transpose"])
    check(lambda x: np.moveaxis(x, -1, 0), x, expect_ops=["transpose"])
    c = X((3, 1))
    check(lambda x: c.T + x.T[0], X((1, 3)), expect_ops=["transpose"])
    check(lambda x: (x.T, x.T.T), X((3,), dtype))
    check(lambda x: x.T, X((), dtype))
    assert check_same_error(lambda x: x.transpose(0, 1), x)


# -- expand_dims / newaxis, squeeze -------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1, 3, (0, 2), (-1, 0), (0, 1, 4)], ids=str)
def test_expand_dims(axis):
    x = X((2, 3))
    fn = lambda x: np.expand_dims(x, axis)  # noqa: E731
    if not check_same_error(fn, x):
        check(fn, x, expect_ops=["expand_dims"])


def test_newaxis_and_atleast():
    x = X((2, 3))
    check(lambda x: x[None], x)
    check(lambda x: x[:, None, :, np.newaxis], x)
    check(lambda x: x[..., None] * x[:, None, :], x)
    check(lambda s: (np.atleast_1d(s), np.atleast_2d(s)), 2.5)
    check(lambda x: (np.atleast_1d(x[0, 0]), np.atleast_2d(x[0]), np.atleast_2d(x)), x)


@pytest.mark.parametrize("shape,axis", [((1, 3, 1), None), ((1, 3, 1), 0), ((1, 3, 1), -1), ((1, 3, 1), (0, 2)),
                                        ((3,), None), ((1,), None), ((1, 1), 1), ((2, 1, 4), 1), ((), None)],
                         ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_squeeze(shape, axis, dtype):
    x = X(shape, dtype)
    check(lambda x: np.squeeze(x, axis), x)
    check(lambda x: x.squeeze(axis=axis), x)
    if shape != (3,) and shape != ():
        check(lambda x: np.squeeze(x, axis), x, expect_ops=["squeeze"])


def test_squeeze_errors():
    x = X((2, 1, 4))
    assert check_same_error(lambda x: x.squeeze(0), x)
    # a size-1 dimension the trace did not know about: squeeze() without axis refuses at run time
    f = tc.compile(lambda x, k: np.squeeze(x[:k]))  # x[:k] may have length 1: not known when tracing
    assert f(X((2, 3)), 2).shape == (2, 3)
    with pytest.raises(ValueError, match="axis"):
        f(X((2, 3)), 1)


def test_squeeze_then_write_through():
    def f(x):
        y = x.copy()
        v = y[:, None]
        v[0] = 7.0
        s = np.squeeze(y[None], 0)
        s[1] = -1.0
        return y, v
    check(f, X((3, 4)))


# -- broadcast_to ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,target", [((4,), (3, 4)), ((3, 1), (3, 4)), ((1,), (2, 3)), ((), (2, 2)),
                                          ((1, 4), (2, 3, 4)), ((3, 4), (3, 4)), ((1, 1), (1, 5))], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_to(shape, target, dtype):
    x = X(shape, dtype)
    check(lambda x: np.broadcast_to(x, target), x, expect_ops=["broadcast_to"])
    check(lambda x: np.broadcast_to(x, target) + 0, x, expect_ops=["broadcast_to"])


def test_broadcast_to_traced_shape():
    check(lambda x, y: np.broadcast_to(x, y.shape), X((1, 4)), X((3, 4), seed=1))
    check(lambda x, y: np.broadcast_to(x, (y.shape[0], x.shape[1])), X((1, 4)), X((3, 4), seed=1))
    check(lambda x, n: np.broadcast_to(x, (n, 4)), X((4,)), 3)
    check(lambda x: np.broadcast_to(x, 5), X((1,)))
    assert check_same_error(lambda x: np.broadcast_to(x, (3, 5)), X((3, 4)))
    assert check_same_error(lambda x: np.broadcast_to(x, (4,)), X((3, 4)))


# -- concatenate, stack, hstack, vstack ---------------------------------------------------------------
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float64"), ("int32", "float32"),
                                    ("bool", "int32"), ("int32", "int64"), ("bool", "bool")], ids="-".join)
def test_concatenate(dtypes):
    a = X((2, 3), dtypes[0])
    b = X((4, 3), dtypes[1], seed=1)
    c = X((2, 5), dtypes[1], seed=2)
    check(lambda a, b: np.concatenate([a, b]), a, b, expect_ops=["concatenate"])
    check(lambda a, b: np.concatenate((a, b, a), axis=0), a, b, expect_ops=["concatenate"])
    check(lambda a, c: np.concatenate([a, c], axis=1), a, c, expect_ops=["concatenate"])
    check(lambda a, c: np.concatenate([a, c], axis=-1), a, c, expect_ops=["concatenate"])
    check(lambda a, b: np.concatenate([a, b], axis=None), a, b, expect_ops=["concatenate"])
    check(lambda a: np.concatenate([a]), a, expect_ops=["concatenate"])
    check(lambda a, b: np.concatenate([a, b], dtype="float32"), a, b, expect_ops=["concatenate"])


def test_concatenate_broadcastable_and_constants():
    check(lambda a, b: np.concatenate([a, b], axis=0), X((1, 3)), X((1, 3), seed=1))
    check(lambda a, b: np.concatenate([a, b], axis=1), X((1, 3)), X((1, 2), seed=1))
    check(lambda a: np.concatenate([a, np.ones((1, 3))]), X((2, 3)))
    check(lambda a: np.concatenate([a, [[1, 2, 3]]]), X((2, 3), "int32"))
    assert check_same_error(lambda a, b: np.concatenate([a, b]), X((2, 3)), X((3,)))
    assert check_same_error(lambda a: np.concatenate([a[0, 0], a[0, 1]]), X((2, 3)))


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3], ids=str)
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("int32", "float32"), ("bool", "bool")],
                         ids="-".join)
def test_stack(axis, dtypes):
    a, b = X((2, 3), dtypes[0]), X((2, 3), dtypes[1], seed=1)
    check(lambda a, b: np.stack([a, b], axis=axis), a, b, expect_ops=["stack"])
    check(lambda a, b: np.stack((a, b, a), axis), a, b, expect_ops=["stack"])
    check(lambda a: np.stack([a], axis=axis), a, expect_ops=["stack"])


def test_stack_scalars_and_lists_of_tensors():
    check(lambda a, b: np.stack([a, b]), 1.5, 2.5)
    check(lambda x: np.stack([x[0, 0], x[1, 1], 3.0]), X((2, 3), "float32"))
    check(lambda x: np.array([x[0], x[1]]), X((2, 3)))
    check(lambda x: np.array([[x[0, 0], 1.0], [2.0, x[1, 2]]]), X((2, 3), "float32"))
    check(lambda x, n: np.asarray([x.shape[0], n]), X((2, 3)), 4)
    check(lambda a, b: np.stack([a, b], dtype="float32"), X((2,)), X((2,), seed=1))
    assert check_same_error(lambda a, b: np.stack([a, b]), X((2,)), X((2, 1)))


def test_hstack_vstack():
    a, b = X((2, 3)), X((2, 3), "int32", seed=1)
    v1, v2 = X((3,), "float32"), X((4,), "float32", seed=1)
    check(lambda a, b: np.hstack([a, b]), a, b)
    check(lambda a, b: np.vstack([a, b]), a, b)
    check(lambda v1, v2: np.hstack((v1, v2)), v1, v2)
    check(lambda v1: np.vstack((v1, v1, v1)), v1)
    check(lambda a, v1: np.vstack([a, v1]), a, v1)
    check(lambda s, t: np.hstack([s, t]), 1.0, 2.0)
    check(lambda s, t: np.vstack([s, t]), 1, 2)
    check(lambda a: np.hstack([a, a[:, :1]]), a)
    check(lambda a: np.vstack([a, a], dtype="float32"), a)
    assert check_same_error(lambda a: np.vstack([a, a], dtype="int64"), a)  # same_kind casting
    assert check_same_error(lambda a: np.concatenate([a, a], dtype="int32"), a)
    assert check_same_error(lambda a: np.stack([a, a], dtype="bool"), a)


# -- split, array_split ------------------------------------------------------------------------------
@pytest.mark.parametrize("sections,axis", [(2, 0), (3, 1), (4, -1), ([1, 3], 1), ((1,), 0), ([2, 2, 5], 2),
                                           ([], 0), (1, 0)], ids=str)
def test_split(sections, axis):
    x = X((4, 6, 4))
    for fn in (lambda x: np.split(x, sections, axis=axis), lambda x: np.array_split(x, sections, axis)):
        if not check_same_error(fn, x):
            check(fn, x, expect_ops=["split"])


def test_array_split_uneven():
    x = X((7, 5))
    check(lambda x: np.array_split(x, 3), x, expect_ops=["split"])
    check(lambda x: np.array_split(x, 4, axis=1), x, expect_ops=["split"])
    check(lambda x: np.array_split(x, 8), x, expect_ops=["split"])
    check(lambda x: [p.sum() for p in np.array_split(x, 2)], x)
    assert check_same_error(lambda x: np.split(x, 3), x)  # not an equal division


def test_split_traced_sections_refused():
    with pytest.raises(NotImplementedError):
        tc.compile(lambda x: np.split(x, [x.shape[0] // 2]))(X((4, 2)))


# -- flip, fliplr, flipud --------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_flip(axis, dtype):
    x = X((2, 3, 4), dtype)
    check(lambda x: np.flip(x, axis), x, expect_ops=["flip"])
    check(lambda x: np.flip(x, axis=axis) * 1, x, expect_ops=["flip"])


def test_fliplr_flipud():
    x = X((3, 4))
    check(lambda x: (np.fliplr(x), np.flipud(x), np.flipud(x[0])), x, expect_ops=["flip"])
    check(lambda x: np.flip(x[0]), X((1, 4)))
    assert check_same_error(lambda x: np.fliplr(x), X((4,)))

    def write_through(x):
        y = x.copy()
        f = np.fliplr(y)
        f[0, 0] = 100.0
        return y
    check(write_through, x)


# -- roll ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift,axis", [(1, None), (-2, None), (7, None), (1, 0), (-1, 1), (2, -1),
                                        ((1, 2), (0, 1)), ((1, -1), (2, 0)), (3, (0, 1)), ((1, 2), (1, 1)), ((2, 1), (-1, 0)), ((1, 2), 1),
                                        (0, 0)], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "int32", "bool"])
def test_roll(shift, axis, dtype):
    x = X((2, 3, 4), dtype)
    check(lambda x: np.roll(x, shift, axis=axis), x, expect_ops=["roll"])


def test_roll_traced_shift_and_broadcastable():
    check(lambda x, s: np.roll(x, s), X((3, 4)), 5)
    check(lambda x: np.roll(x, x.shape[0], axis=1), X((3, 4)))
    check(lambda x: np.roll(x, 1, axis=0), X((1, 4)))
    check(lambda x: np.roll(x, 1), X((1, 1)))
    check(lambda s: np.roll(s, 1), 2.5)


# -- tile, repeat ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reps", [2, (2,), (2, 1), (1, 3), (2, 1, 2), (1, 1), (3, 1, 1, 2), 1, (0, 2)], ids=str)
@pytest.mark.parametrize("shape", [(2, 3), (3,), (1, 3), ()], ids=str)
def test_tile(shape, reps):
    x = X(shape, "int32")
    check(lambda x: np.tile(x, reps), x, expect_ops=["tile"])


def test_tile_traced_reps_refused():
    with pytest.raises(NotImplementedError):
        tc.compile(lambda x: np.tile(x, x.shape[0]))(X((2,)))


@pytest.mark.parametrize("repeats", [2, 1, 0, [1, 2, 0], np.array([2, 1, 3])], ids=str)
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "bool"])
def test_repeat(repeats, axis, dtype):
    x = X((3, 3), dtype)
    fn = lambda x: np.repeat(x, repeats, axis=axis)  # noqa: E731
    if not check_same_error(fn, x):
        check(fn, x, expect_ops=["repeat"])
        check(lambda x: x.repeat(repeats, axis), x, expect_ops=["repeat"])


def test_repeat_traced_and_broadcastable():
    check(lambda x, r: np.repeat(x, r, axis=0), X((2, 3)), 3)
    check(lambda x, r: np.repeat(x, r, axis=1), X((2, 3)), np.array([1, 0, 2]))
    check(lambda x: np.repeat(x, x.shape[1]), X((2, 3)))
    check(lambda x: np.repeat(x, 1, axis=0), X((1, 3)))
    check(lambda x: np.repeat(x, 3, axis=0), X((1, 3)))
    check(lambda x: np.repeat(x, [4], axis=0), X((1, 3)))
    check(lambda s: np.repeat(s, 3), 2.5)


def test_sum_to_keeps_narrow_integer_and_bool_dtypes():
    from tracec.trace.ops import OPS
    for dtype in (np.int32, np.int8, np.bool_):
        g = tc.tensor(dtype, (False, False), name="g")
        out = tc.Tensor(OPS["sum_to"](g.variable, OPS["shape_i"](g.variable, i=1)))
        f = tc.function([g], out, mode="FAST_COMPILE")
        value = (np.arange(6) % 3).astype(dtype).reshape(2, 3)
        got = f(value)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, value.sum(axis=0, dtype=dtype))
