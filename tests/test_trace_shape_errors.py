"""Shape errors certain when tracing: sizes fixed by the graph (constants, literal
reshape / broadcast_to sizes, dimensions the type knows to be 1, and what follows
from them) are known when a node is built, and operations they make certain to
fail raise NumPy's exception there, naming the shapes and the user's line."""
import os

import numpy as np
import pytest

import tracec as tc
from tracec.trace.numpy_shape import numpy_patched
from tracec.trace.ops.sizes import known_shape

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        hits = [i for i, line in enumerate(fh, 1) if line.rstrip().endswith("# " + marker)]
    assert len(hits) == 1, marker
    return hits[0]


def _v():
    return tc.dvector("v")  # sizes unknown until called


ERRORS = [  # (name, expression of a traced vector v, exception, message pattern)
    ("broadcast", lambda v: v.reshape(2, 3) + np.ones(4), ValueError,
     r"could not be broadcast together with shapes \(2, 3\) \(4,\)"),
    ("broadcast after slicing", lambda v: v.reshape(2, 3)[:, 1:] * np.ones(3), ValueError,
     r"shapes \(2, 2\) \(3,\)"),
    ("broadcast after reduction", lambda v: np.sum(v.reshape(2, 3), axis=0) - np.ones(2), ValueError,
     r"shapes \(3,\) \(2,\)"),
    ("broadcast after transpose", lambda v: v.reshape(2, 3).T + np.ones((2, 3)), ValueError,
     r"shapes \(3, 2\) \(2, 3\)"),
    ("broadcast in where", lambda v: np.where(v > 0, v.reshape(3, 2), np.zeros((2, 2))), ValueError,
     r"shapes \(\?,\) \(3, 2\) \(2, 2\) \('\?': a size not known when tracing\)"),
    ("matmul", lambda v: v.reshape(2, 3) @ np.ones((4, 2)), ValueError,
     r"matmul: .*size 4 is different from 3.*shapes \(2, 3\) and \(4, 2\)"),
    ("matmul vector", lambda v: np.ones((5, 2)) @ v.reshape(3, 2)[0:1, :].reshape(-1)[:1], ValueError,
     r"size 1 is different from 2"),
    ("dot", lambda v: np.dot(v.reshape(2, 3), np.ones(4)), ValueError,
     r"shapes \(2, 3\) and \(4,\) not aligned: 3 \(dim 1\) != 4 \(dim 0\)"),
    ("tensordot", lambda v: np.tensordot(v.reshape(2, 3), np.ones((2, 2)), axes=1), ValueError,
     r"shape-mismatch for sum"),
    ("concatenate", lambda v: np.concatenate([v.reshape(2, 3), np.zeros((2, 4))]), ValueError,
     r"along dimension 1, the array at index 0 has size 3 and the array at index 1 has size 4"),
    ("stack", lambda v: np.stack([v.reshape(2, 3), np.ones((3, 2))]), ValueError,
     r"all input arrays must have the same shape"),
    ("reshape", lambda v: v.reshape(2, 3).reshape(4, 2), ValueError,
     r"cannot reshape array of size 6 into shape \(4, 2\)"),
    ("reshape -1", lambda v: v.reshape(2, 3).reshape(4, -1), ValueError,
     r"cannot reshape array of size 6 into shape \(4, -1\)"),
    ("broadcast_to", lambda v: np.broadcast_to(v.reshape(2, 3), (2, 4)), ValueError,
     r"\(2, 3\) and requested shape \(2, 4\)"),
    ("squeeze", lambda v: np.squeeze(v.reshape(2, 3), axis=1), ValueError,
     r"squeeze out which has size not equal to one \(axis 1 of shape \(2, 3\)\)"),
    ("split", lambda v: np.split(v.reshape(2, 3), 2, axis=1), ValueError,
     r"array split does not result in an equal division"),
    ("index", lambda v: v.reshape(2, 3)[:, 3], IndexError,
     r"index 3 is out of bounds for axis 1 with size 3"),
    ("negative index", lambda v: v.reshape(2, 3)[-3], IndexError,
     r"index -3 is out of bounds for axis 0 with size 2"),
]


@pytest.mark.parametrize("name, fn, exc, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_certain_errors_raise_when_the_graph_is_built(name, fn, exc, pattern):
    v = _v()
    with pytest.raises(exc, match=pattern) as info:
        fn(v)
    assert THIS_FILE in str(info.value) and "inputs:" not in str(info.value)  # built, not run
    with pytest.raises(exc):  # NumPy agrees on a value of the size the graph fixes
        fn(np.arange(6.0))


def test_the_message_names_the_users_line_under_compile():
    @tc.compile
    def f(x):
        grid = x.reshape(3, 4)
        return grid @ np.ones((3, 1))  # the product

    with pytest.raises(ValueError, match=r"size 3 is different from 4") as info:
        f(np.ones(12))
    assert f"{THIS_FILE}:{line_of('the product')}" in str(info.value)
    assert "grid @ np.ones((3, 1))" in str(info.value)


def test_sizes_the_type_knows_to_be_1_count():
    column = tc.tensor("float64", (False, True), name="column")  # shape (?, 1)
    with pytest.raises(ValueError, match=r"size 3 is different from 1.*\(\?, 1\) and \(3, 4\)"):
        column @ np.ones((3, 4))
    assert known_shape((column + np.ones(5)).variable) == (None, 5)  # a 1 broadcasts


def test_setitem_of_a_value_that_does_not_fit():
    @tc.compile
    def f(x):
        out = np.zeros(5)
        out[1:3] = x.reshape(3, 2)[:, 0]  # the store
        return out

    with pytest.raises(ValueError, match=r"from shape \(3,\) into shape \(2,\)") as info:
        f(np.ones(6))
    assert f"{THIS_FILE}:{line_of('the store')}" in str(info.value)


def test_unknown_sizes_never_raise_early():
    v, w = tc.dvector("v"), tc.dmatrix("w")
    out = (v + w) @ w.T + np.ones(3)  # fine for v, w of fitting sizes
    f = tc.function([v, w], out)
    np.testing.assert_allclose(f(np.ones(3), np.ones((3, 3))), np.full((3, 3), 7.0))
    with pytest.raises(ValueError, match="broadcast"):  # and a run-time error where they do not fit
        f(np.ones(2), np.ones((3, 3)))
    assert known_shape(out.variable) == (None, 3)


SHAPES = [  # expressions of v (6 elements): the sizes known when tracing must be NumPy's
    lambda v: v.reshape(2, 3) * np.ones(3),
    lambda v: v.reshape(2, -1)[:, ::2] + np.ones((5, 1, 1)),
    lambda v: np.sum(v.reshape(1, 2, 3), axis=(0, 2), keepdims=True),
    lambda v: np.argmax(v.reshape(2, 3), axis=1),
    lambda v: np.cumsum(v.reshape(2, 3)),
    lambda v: np.transpose(v.reshape(1, 2, 3), (2, 0, 1)),
    lambda v: np.expand_dims(v.reshape(2, 3), (0, 3)),
    lambda v: np.squeeze(v.reshape(1, 6), axis=0),
    lambda v: v.reshape(2, 3) @ np.ones((3, 4)),
    lambda v: np.ones((5, 2)) @ v.reshape(2, 3),
    lambda v: v.reshape(2, 3)[0] @ np.ones((3, 4)),
    lambda v: np.dot(np.ones((4, 2)), v.reshape(2, 3)),
    lambda v: np.outer(v.reshape(2, 3), np.ones(2)),
    lambda v: np.tensordot(v.reshape(2, 3), np.ones((3, 2)), axes=1),
    lambda v: np.concatenate([v.reshape(2, 3), np.zeros((4, 3))], axis=0),
    lambda v: np.stack([v.reshape(2, 3), v.reshape(2, 3) * 2], axis=1),
    lambda v: np.split(v.reshape(2, 3), [1, 5], axis=1)[1],
    lambda v: np.array_split(v.reshape(2, 3), 2, axis=1)[0],
    lambda v: np.tile(v.reshape(2, 3), (2, 1, 2)),
    lambda v: np.repeat(v.reshape(2, 3), 2, axis=0),
    lambda v: np.broadcast_to(v.reshape(3, 2)[:, :1], (4, 3, 2)),
    lambda v: v.reshape(2, 3)[1, None, ::-1],
    lambda v: np.zeros((4, 2)) + v.reshape(-1, 2)[0],
    lambda v: np.flip(v.reshape(3, 2), 0) + np.eye(2)[0],
    lambda v: np.clip(v.reshape(6, 1), 0, np.ones(4)),
    lambda v: v[np.array([0, 2])] + np.ones(2),
    lambda v: np.eye(v.reshape(2, 3).shape[1], 4),
    lambda v: np.zeros(v.reshape(2, 3).shape) + np.ones_like(v.reshape(3, 2).T),
    lambda v: np.linspace(0, 1, v.reshape(2, 3).shape[0]),
    lambda v: np.arange(1, v.reshape(2, 3).shape[1], 0.5),
]


@pytest.mark.parametrize("k", range(len(SHAPES)))
def test_known_sizes_are_numpys(k):
    fn = SHAPES[k]
    with numpy_patched():  # np.zeros(traced shape) and friends, as inside tc.compile
        out = fn(_v())
    expected = np.shape(fn(np.arange(6.0)))
    known = known_shape(out.variable)
    assert len(known) == len(expected)
    assert all(d is None or d == e for d, e in zip(known, expected)), (known, expected)
    assert any(d is not None and d != 1 for d in known), known  # something beyond the type is known
