"""tc.function, the Theano-style front end: symbolic inputs, outputs, givens,
unused inputs, calling conventions and input conversion."""
import warnings

import numpy as np
import pytest

import tracec as tc


# -- declaring inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("maker,ndim", [(tc.scalar, 0), (tc.vector, 1), (tc.matrix, 2),
                                        (tc.tensor3, 3), (tc.tensor4, 4)])
def test_untyped_constructors_use_floatX(maker, ndim):
    v = maker("v")
    assert v.dtype == np.float64 and v.ndim == ndim and v.name == "v"
    assert v.broadcastable == (False,) * ndim
    with tc.config.change(floatX="float32"):
        w = maker()
        assert w.dtype == np.float32 and w.ndim == ndim
        assert maker(dtype="int16").dtype == np.int16
    assert maker().dtype == np.float64   # the change is undone


@pytest.mark.parametrize("prefix,dtype", [("b", np.int8), ("w", np.int16), ("i", np.int32),
                                          ("l", np.int64), ("f", np.float32), ("d", np.float64)])
@pytest.mark.parametrize("rank,ndim", [("scalar", 0), ("vector", 1), ("matrix", 2),
                                       ("tensor3", 3), ("tensor4", 4)])
def test_typed_shortcuts(prefix, dtype, rank, ndim):
    v = getattr(tc, prefix + rank)("name")
    assert v.dtype == dtype and v.ndim == ndim and v.name == "name"
    with tc.config.change(floatX="float32"):   # typed shortcuts ignore floatX
        assert getattr(tc, prefix + rank)().dtype == dtype


def test_tensor_with_broadcastable_pattern():
    row = tc.tensor("float64", broadcastable=(True, False), name="row")
    assert row.broadcastable == (True, False) and row.name == "row" and row.ndim == 2
    m = tc.dmatrix("m")
    f = tc.function([row, m], row + m)
    np.testing.assert_array_equal(f(np.arange(3.0)[None], np.ones((2, 3))),
                                  np.arange(3.0)[None] + np.ones((2, 3)))
    assert (row + m).broadcastable == (False, False)
    with pytest.raises(ValueError, match="broadcastable"):
        f(np.ones((2, 3)), np.ones((2, 3)))


def test_tensor_dtype_none_is_floatX():
    with tc.config.change(floatX="float32"):
        assert tc.tensor(None, broadcastable=(False,)).dtype == np.float32
    assert tc.tensor(None, broadcastable=()).dtype == np.float64
    assert tc.tensor("int32", (False, False)).dtype == np.int32


# -- outputs ------------------------------------------------------------------------------------
def test_single_output_returns_value():
    x, y = tc.dscalar("x"), tc.dscalar("y")
    f = tc.function([x, y], x + y)
    r = f(2, 3)
    assert r == 5.0 and not isinstance(r, list)
    assert np.asarray(r).dtype == np.float64


def test_list_of_outputs_returns_list():
    x = tc.dvector("x")
    f = tc.function([x], [x + 1, x * 2, x.sum()])
    out = f([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 3
    np.testing.assert_array_equal(out[0], [2, 3])
    np.testing.assert_array_equal(out[1], [2, 4])
    assert out[2] == 3.0
    one = tc.function([x], [x + 1])([1.0])
    assert isinstance(one, list) and len(one) == 1


def test_numpy_calls_on_symbolic_variables():
    x, W, b = tc.dmatrix("x"), tc.dmatrix("W"), tc.dvector("b")
    out = 1 / (1 + np.exp(-(x @ W + b)))
    f = tc.function([x, W, b], [out, np.sum(out, axis=1, keepdims=True), out.T])
    rng = np.random.default_rng(0)
    xv, Wv, bv = rng.random((4, 3)), rng.random((3, 2)), rng.random(2)
    expected = 1 / (1 + np.exp(-(xv @ Wv + bv)))
    got = f(xv, Wv, bv)
    np.testing.assert_allclose(got[0], expected, rtol=1e-14)
    np.testing.assert_allclose(got[1], expected.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(got[2], expected.T, rtol=1e-14)


def test_constant_output():
    x = tc.dvector("x")
    f = tc.function([x], [x * 1, 3.0], on_unused_input="ignore")
    a, c = f([1.0])
    assert c == 3.0


def test_output_equal_to_input_is_a_copy():
    x = tc.dvector("x")
    f = tc.function([x], x)
    a = np.arange(3.0)
    r = f(a)
    np.testing.assert_array_equal(r, a)
    assert not np.shares_memory(r, a)


def test_results_do_not_alias_each_other():
    x = tc.dvector("x")
    y = x * 2
    a, b = tc.function([x], [y, y])(np.ones(2))
    assert not np.shares_memory(a, b)


def test_shapes_are_not_part_of_the_type():
    x = tc.dmatrix("x")
    f = tc.function([x], x.sum(axis=0))
    np.testing.assert_array_equal(f(np.ones((2, 3))), [2, 2, 2])
    np.testing.assert_array_equal(f(np.ones((4, 1))), [4])


# -- inputs -------------------------------------------------------------------------------------
def test_intermediate_variable_as_input():
    x = tc.dvector("x")
    y = x * 2
    f = tc.function([y], y + 1)
    np.testing.assert_array_equal(f([1.0, 2.0]), [2.0, 3.0])   # y is given directly, x is not needed
    z = y + 1
    g = tc.function([x, y], z * x, on_unused_input="ignore")
    np.testing.assert_array_equal(g([1.0, 1.0], [10.0, 20.0]), [11.0, 21.0])


def test_missing_input_names_the_variable():
    x, a = tc.dvector("x_missing"), tc.dscalar("a")
    with pytest.raises(tc.MissingInputError, match="x_missing"):
        tc.function([a], x * a)
    assert issubclass(tc.MissingInputError, Exception)


def test_givens_replaces_a_variable():
    x, y = tc.dvector("x"), tc.dvector("y")
    z = tc.dvector("z")
    out = x * 2 + y
    f = tc.function([x, z], out, givens=[(y, z * 10)])
    np.testing.assert_array_equal(f([1.0], [1.0]), [12.0])
    g = tc.function([x, z], out, givens={y: z})
    np.testing.assert_array_equal(g([1.0], [5.0]), [7.0])


def test_givens_type_mismatch_raises():
    x, y = tc.dvector("x"), tc.dvector("y")
    with pytest.raises(TypeError):
        tc.function([x], x + y, givens=[(y, tc.dmatrix("m"))])


def test_on_unused_input_raise_warn_ignore():
    a, x = tc.dscalar("a"), tc.dvector("x")
    with pytest.raises(ValueError, match="a"):
        tc.function([a, x], x * 2)
    with pytest.warns(UserWarning, match="not used"):
        f = tc.function([a, x], x * 2, on_unused_input="warn")
    np.testing.assert_array_equal(f(1.0, [1.0]), [2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = tc.function([a, x], x * 2, on_unused_input="ignore")
    np.testing.assert_array_equal(g(1.0, [3.0]), [6.0])
    with pytest.raises(ValueError, match="on_unused_input"):
        tc.function([x], x, on_unused_input="sometimes")


def test_keyword_arguments_by_input_name():
    a, x = tc.dscalar("a"), tc.dvector("x")
    f = tc.function([a, x], a * x)
    np.testing.assert_array_equal(f(x=[1.0, 2.0], a=3.0), [3.0, 6.0])
    np.testing.assert_array_equal(f(2.0, x=[1.0]), [2.0])
    with pytest.raises(TypeError, match="nope"):
        f(1.0, nope=[1.0])


def test_python_lists_and_ints_as_arguments():
    x = tc.dvector("x")
    f = tc.function([x], x * 2)
    np.testing.assert_array_equal(f(range(10)), np.arange(10) * 2.0)
    np.testing.assert_array_equal(f([1, 2]), [2.0, 4.0])
    assert f([1, 2]).dtype == np.float64
    s = tc.dscalar("s")
    assert tc.function([s], s + 1)(1) == 2.0
    i = tc.ivector("i")
    r = tc.function([i], i + 1)([1, 2])
    assert r.dtype == np.int32
    np.testing.assert_array_equal(r, [2, 3])
    m = tc.fmatrix("m")
    r = tc.function([m], m.sum(axis=0))([[1, 2], [3, 4]])
    assert r.dtype == np.float32


def test_safe_casts_are_silent():
    x = tc.dvector("x")
    f = tc.function([x], x + 0)
    r = f(np.array([1, 2], np.int32))
    assert r.dtype == np.float64
    r = f(np.array([1, 2], np.float32))
    assert r.dtype == np.float64


def test_unsafe_cast_needs_allow_input_downcast():
    x = tc.fvector("x")
    f = tc.function([x], x * 2)
    with pytest.raises(TypeError, match="allow_input_downcast"):
        f(np.array([1.0, 2.0]))          # float64 array into float32
    i = tc.ivector("i")
    g = tc.function([i], i * 2)
    with pytest.raises(TypeError, match="allow_input_downcast"):
        g([1.5])                          # not an exact int
    h = tc.function([i], i * 2, allow_input_downcast=True)
    r = h(np.array([1.7, 2.2]))
    assert r.dtype == np.int32
    np.testing.assert_array_equal(r, [2, 4])
    r = tc.function([x], x * 2, allow_input_downcast=True)(np.array([1.0, 2.0]))
    assert r.dtype == np.float32


def test_functions_are_reusable_on_new_values():
    x = tc.dvector("x")
    f = tc.function([x], (x ** 2).sum())
    assert f([1.0, 2.0]) == 5.0
    assert f([3.0]) == 9.0
    assert f(np.arange(4.0)) == 14.0


def test_inputs_are_not_modified():
    x = tc.dvector("x")
    f = tc.function([x], x + 1)
    a = np.zeros(3)
    f(a)
    np.testing.assert_array_equal(a, 0)


def test_shared_variable_in_inputs_is_rejected():
    w = tc.shared(np.zeros(2), name="w")
    with pytest.raises(TypeError, match="shared"):
        tc.function([w], w * 2)


def test_mode_fast_compile_and_unknown_mode():
    x = tc.dvector("x")
    f = tc.function([x], x * 3, mode="FAST_COMPILE")
    np.testing.assert_array_equal(f([1.0]), [3.0])
    with pytest.raises(ValueError, match="FAST_RUN"):
        tc.function([x], x * 3, mode="FASTEST")


def test_function_name_appears_in_errors():
    x = tc.dvector("x")
    f = tc.function([x], x + 1, name="my_fn")
    with pytest.raises(TypeError, match="my_fn"):
        f()


def test_constant_array_output_is_owned_by_caller():
    x = tc.dvector("x")
    f = tc.function([x], [x * 1, np.arange(3.0), np.arange(4.0)[1:]])
    _, c, v = f([1.0])
    c[0] = 5.0                 # writeable, and not the graph's own constant
    v[0] = 5.0
    _, c2, v2 = f([1.0])
    np.testing.assert_array_equal(c2, [0, 1, 2])
    np.testing.assert_array_equal(v2, [1, 2, 3])
