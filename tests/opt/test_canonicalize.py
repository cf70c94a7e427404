"""Each simplification: its structural result and numerical equality with the reference."""
import numpy as np
import pytest

import tracec as tc
from optcheck import check, rand


def _vec(dtype="float64"):
    return tc.tensor(dtype, broadcastable=(False,), name="x")


CASES = [  # (name, function of x, ops absent after, ops present after)
    ("x*1", lambda x: x * 1, ["multiply"], []),
    ("1*x", lambda x: 1.0 * x, ["multiply"], []),
    ("x+0", lambda x: x + 0, ["add"], []),
    ("0+x", lambda x: 0 + x, ["add"], []),
    ("x-0", lambda x: x - 0, ["subtract"], []),
    ("x/1", lambda x: x / 1, ["divide"], []),
    ("--x", lambda x: -(-x), ["negative"], []),
    ("x+(-y)", lambda x: x + -np.sin(x), ["add", "negative"], ["subtract"]),
    ("x-(-y)", lambda x: x - -np.sin(x), ["subtract", "negative"], ["add"]),
    ("log(exp(x))", lambda x: np.log(np.exp(x)), ["log", "exp"], []),
    ("x**1", lambda x: x ** 1, ["power"], []),
    ("x**2", lambda x: x ** 2, ["power"], ["multiply"]),
    ("x**0.5", lambda x: np.abs(x) ** 0.5, ["power"], ["sqrt"]),
    ("x**-1", lambda x: x ** -1, ["power"], ["reciprocal"]),
    ("x**-0.5", lambda x: np.abs(x) ** -0.5, ["power"], ["sqrt", "reciprocal"]),
    ("(x+1)+2", lambda x: ((x + 1) + 2) + 3, [], []),
    ("2*(3*x)", lambda x: 2 * (3 * (x * 4)), [], []),
    ("(x+1)+y+2", lambda x: (x + 1) + np.sin(x) + 2, [], []),
    ("sum(c*x)", lambda x: np.sum(2.5 * x), [], []),
    ("cast same", lambda x: x.astype(x.dtype), ["cast"], []),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, fn, absent, present", CASES, ids=[c[0] for c in CASES])
def test_simplification(name, fn, absent, present, dtype):
    x = _vec(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    _, counts = check([x], fn(x), [rand(7, dtype) + 0.1], absent=absent, present=present, rtol=rtol, atol=rtol)
    if name.startswith("(x+1)+2"):
        assert counts == {"add": 1}
    if name == "2*(3*x)":
        assert counts == {"multiply": 1}
    if name == "(x+1)+y+2":
        assert counts["add"] == 2
    if name == "sum(c*x)":
        assert counts["sum"] == 1 and counts["multiply"] == 1


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64"])
def test_x_minus_x_is_zeros_of_the_right_shape_and_dtype(dtype):
    x = tc.tensor(dtype, broadcastable=(False, True), name="x")
    opt, counts = check([x], x - x, [rand((4, 1), dtype)], absent=["subtract"], present=["alloc"])
    s = tc.lscalar("s")
    check([s], s - s, [np.int64(3)], absent=["subtract"])


def test_x_over_x_is_ones_also_at_zero():
    x = tc.ivector("x")
    opt, _ = check([x], x / x, [np.array([1, 2, 3], "int32")], absent=["divide"])
    from optcheck import run
    np.testing.assert_array_equal(run(opt, [np.array([0, 5], "int32")])[0], [1.0, 1.0])  # NumPy: nan


def test_rewrites_keep_dtypes_they_cannot_keep_out():
    i = tc.ivector("i")
    check([i], i * 1.0, [np.arange(3, dtype="int32")], present=["multiply"])  # int32 * 1.0 is float64
    check([i], i ** 2, [np.arange(3, dtype="int32")], present=["multiply"])
    check([i], i ** -1 if False else i ** 2.0, [np.arange(3, dtype="int32")], present=["power"])
    b = tc.bvector("b")  # int8: x + 0 stays int8
    check([b], b + 0, [np.arange(3, dtype="int8")], absent=["add"])
    f = tc.fvector("f")  # float32 * 2.0 stays float32 when constants are collected
    opt, _ = check([f], (f * 2.0) * 3.0, [rand(3, "float32")])
    assert opt.outputs[0].dtype == np.float32


def test_transpose_and_reshape_chains():
    x = tc.dtensor3("x")
    v = rand((2, 3, 4))
    check([x], np.transpose(np.transpose(x, (1, 2, 0)), (2, 0, 1)), [v], absent=["transpose"])
    _, counts = check([x], np.transpose(np.transpose(x, (1, 2, 0)), (1, 0, 2)), [v])
    assert counts["transpose"] == 1
    m = tc.dmatrix("m")
    check([m], m.T.T, [rand((2, 3))], absent=["transpose"])
    _, counts = check([x], x.reshape(6, 4).reshape(4, 6).reshape(24), [v])
    assert counts["reshape"] == 1
    check([x], x.reshape(x.shape), [v], absent=["reshape"])


def test_useless_casts_and_broadcasts():
    i = tc.ivector("i")
    _, counts = check([i], i.astype("int64").astype("float64"), [np.arange(3, dtype="int32")])
    assert counts["cast"] == 1
    _, counts = check([i], i.astype("int8").astype("int32"), [np.array([300, 1], "int32")])
    assert counts["cast"] == 2  # narrowing first: both casts matter
    m = tc.dmatrix("m")
    check([m], np.broadcast_to(m, m.shape) + 1, [rand((2, 3))], absent=["broadcast_to"])
    check([m], np.broadcast_to(m, (2, 3)) + 1, [rand((1, 3))], present=["broadcast_to"])


def test_chain_through_shared_intermediate_is_not_duplicated():
    x = tc.dvector("x")
    t = x + 1
    _, counts = check([x], [t + 2, t * 5], [rand(3)])
    assert counts["add"] == 2
