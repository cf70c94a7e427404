"""Bad input gets a clear Python exception (DESIGN section 4): wrong arguments,
dtypes, ranks, broadcastable dims, run-time shape and index errors pointing at
the user's line, Python control flow on traced values, unsupported functions."""
import os

import numpy as np
import pytest

import tracec as tc

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    """The line number in this file of the line ending with `# marker`."""
    with open(__file__) as fh:
        hits = [i for i, line in enumerate(fh, 1) if line.rstrip().endswith("# " + marker)]
    assert len(hits) == 1, marker
    return hits[0]


def assert_points_at(exc_info, marker):
    text = str(exc_info.value)
    assert f"{THIS_FILE}:{line_of(marker)}" in text, text


# -- arguments ----------------------------------------------------------------------------------
def test_function_wrong_number_of_arguments():
    x, y = tc.dvector("x"), tc.dvector("y")
    f = tc.function([x, y], x + y)
    with pytest.raises(TypeError, match=r"takes 2 input\(s\).*1 were given"):
        f([1.0])
    with pytest.raises(TypeError, match=r"takes 2 input\(s\).*3 were given"):
        f([1.0], [1.0], [1.0])
    with pytest.raises(TypeError, match="0 were given"):
        f()


def test_compile_wrong_number_of_arguments():
    f = tc.compile(lambda x, y: x + y)
    with pytest.raises(TypeError, match="y"):
        f(np.ones(3))
    with pytest.raises(TypeError):
        f(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="z"):
        f(np.ones(3), np.ones(3), z=np.ones(3))
    np.testing.assert_array_equal(f(np.ones(1), np.ones(1)), [2.0])   # still usable


@pytest.mark.parametrize("bad", ["abc", object(), {1, 2}, b"xy"])
def test_compile_non_array_argument(bad):
    f = tc.compile(lambda x, y: x + y)
    with pytest.raises(TypeError, match="x") as info:
        f(bad, np.ones(3))
    assert "static" in str(info.value)


def test_compile_non_numeric_array_argument():
    f = tc.compile(lambda x: x)
    with pytest.raises(TypeError, match="<U"):
        f(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        f(np.array([object()]))


def test_compile_error_names_nested_argument():
    f = tc.compile(lambda params: params["W"] * 2)
    with pytest.raises(TypeError, match=r"params\['W'\]"):
        f({"W": "not an array"})


@pytest.mark.parametrize("bad", ["abc", object(), None, [["a"]]])
def test_function_non_array_argument(bad):
    x = tc.dvector("x")
    f = tc.function([x], x * 2)
    with pytest.raises(TypeError, match="argument 0"):
        f(bad)


def test_function_wrong_ndim():
    x = tc.dvector("x")
    f = tc.function([x], x * 2)
    with pytest.raises(TypeError, match=r"expected 1 dimension.*\(2, 2\)"):
        f(np.ones((2, 2)))
    with pytest.raises(TypeError, match="dimension"):
        f(3.0)


def test_function_unsafe_dtype_cast_names_argument_and_remedy():
    x, i = tc.fvector("weights"), tc.ivector("idx")
    f = tc.function([x, i], x[i])
    with pytest.raises(TypeError) as info:
        f(np.ones(3), np.array([0], np.int32))
    msg = str(info.value)
    assert "weights" in msg and "float64" in msg and "float32" in msg
    assert "allow_input_downcast=True" in msg and "astype" in msg
    with pytest.raises(TypeError, match="idx.*int64.*int32"):
        f(np.ones(3, np.float32), np.array([0], np.int64))


def test_broadcastable_dim_that_is_not_one():
    col = tc.tensor("float64", broadcastable=(False, True), name="col")
    f = tc.function([col], col * 2)
    np.testing.assert_array_equal(f(np.ones((3, 1))), np.full((3, 1), 2.0))
    with pytest.raises(ValueError, match=r"col.*dimension 1.*broadcastable.*length 4"):
        f(np.ones((3, 4)))


# -- run-time shape errors point at the user's line ----------------------------------------------
def test_shape_mismatch_in_compiled_function_names_op_shapes_and_line():
    @tc.compile
    def f(x, y):
        z = np.exp(x)
        return z * 2 + y  # ADD_LINE
    f(np.ones(3), np.ones(3))
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    msg = str(info.value)
    assert "add" in msg
    assert "(3,)" in msg and "(4,)" in msg
    assert_points_at(info, "ADD_LINE")


def test_shape_mismatch_in_symbolic_graph_names_line():
    x, m = tc.dvector("x"), tc.dmatrix("m")
    prod = m @ x  # MATMUL_LINE
    f = tc.function([x, m], prod)
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones((2, 2)))
    msg = str(info.value)
    assert "matmul" in msg and "[2, 2]" in msg and "[3]" in msg
    assert_points_at(info, "MATMUL_LINE")


def test_shape_mismatch_in_inplace_assignment_names_line():
    @tc.compile
    def f(a, b):
        a[1:] = b  # SETITEM_LINE
    with pytest.raises(ValueError) as info:
        f(np.zeros(5), np.ones(3))
    assert_points_at(info, "SETITEM_LINE")


def test_reshape_mismatch_names_line():
    @tc.compile
    def f(x):
        return x.reshape(3, -1)  # RESHAPE_LINE
    np.testing.assert_array_equal(f(np.arange(6.0)).shape, (3, 2))
    with pytest.raises(ValueError) as info:
        f(np.arange(7.0))
    assert "reshape" in str(info.value)
    assert_points_at(info, "RESHAPE_LINE")


def test_index_out_of_range_names_line():
    @tc.compile
    def f(x, i):
        return x[i] * 2  # INDEX_LINE
    assert f(np.arange(3.0), 2) == 4.0
    with pytest.raises(IndexError) as info:
        f(np.arange(3.0), 7)
    assert "7" in str(info.value)
    assert_points_at(info, "INDEX_LINE")
    with pytest.raises(IndexError) as info:
        f(np.arange(3.0), np.array([0, 9]))
    assert_points_at(info, "INDEX_LINE")


def test_static_index_out_of_range_names_line():
    @tc.compile
    def f(x):
        return x[5]  # STATIC_INDEX_LINE
    with pytest.raises(IndexError) as info:
        f(np.ones(3))
    assert_points_at(info, "STATIC_INDEX_LINE")


def test_too_many_indices_at_trace_time():
    @tc.compile
    def f(x):
        return x[0, 0]  # TOO_MANY_LINE
    with pytest.raises(IndexError, match="too many indices") as info:
        f(np.ones(3))
    assert_points_at(info, "TOO_MANY_LINE")


def test_failed_call_does_not_apply_write_backs_or_updates():
    W = tc.shared(np.zeros(2), name="W")

    @tc.compile
    def f(a, b):
        a += 1
        W[...] += 1
        return a + b
    a = np.zeros(2)
    with pytest.raises(ValueError):
        f(a, np.ones(3))
    np.testing.assert_array_equal(a, [0, 0])
    np.testing.assert_array_equal(W.get_value(), [0, 0])


# -- Python needs a concrete value ------------------------------------------------------------
def test_bool_of_traced_value():
    @tc.compile
    def f(x):
        if x.sum() > 0:  # BOOL_LINE
            return x
        return -x
    with pytest.raises(tc.TracedValueError) as info:
        f(np.ones(3))
    assert isinstance(info.value, TypeError)
    msg = str(info.value)
    assert "np.where" in msg and "static" in msg
    assert_points_at(info, "BOOL_LINE")


def test_and_or_while_on_traced_value():
    with pytest.raises(tc.TracedValueError):
        tc.compile(lambda x, y: x and y)(np.ones(2), np.ones(2))
    x = tc.dscalar("x")
    with pytest.raises(tc.TracedValueError):
        bool(x)


@pytest.mark.parametrize("fn", [len, int, float, lambda t: list(t), lambda t: t.item(),
                                lambda t: range(t), lambda t: t.tolist()],
                         ids=["len", "int", "float", "iter", "item", "index", "tolist"])
def test_concrete_value_of_traced_value(fn):
    f = tc.compile(lambda x: fn(x.sum() if fn in (int, float) else x))
    with pytest.raises(tc.TracedValueError) as info:
        f(np.ones(3))
    assert "static" in str(info.value) or "traced" in str(info.value)


def test_static_argument_makes_control_flow_work():
    f = tc.compile(lambda x, n: x * 2 if n > 0 else x, static_argnums=1)
    np.testing.assert_array_equal(f(np.ones(2), 1), [2, 2])


def test_traced_value_into_numpy_array_outside_trace():
    x = tc.dvector("x")
    with pytest.raises(tc.TracedValueError):
        np.asarray(x)


# -- unsupported things ------------------------------------------------------------------------
@pytest.mark.parametrize("fn,name", [(np.sort, "np.sort"), (np.linalg.inv, "np.linalg.inv"),
                                     (np.unique, "np.unique")])
def test_unsupported_numpy_function_is_named(fn, name):
    f = tc.compile(lambda x: fn(x))
    with pytest.raises(NotImplementedError, match=name.replace(".", r"\.")):
        f(np.eye(3))
    x = tc.dmatrix("x")
    with pytest.raises(NotImplementedError, match=name.replace(".", r"\.")):
        fn(x)


def test_unsupported_ufunc_keyword():
    with pytest.raises(NotImplementedError, match="where"):
        tc.compile(lambda x: np.add(x, 1, where=x > 0))(np.ones(2))


def test_debug_mode_runs_and_names_the_line():
    # the DEBUG mode itself is tested in tests/test_debug_mode.py
    f = tc.compile(lambda x: x * 2, mode="DEBUG")
    assert f(np.ones(2)).tolist() == [2.0, 2.0]
    x = tc.dvector("x")
    with tc.config.change(mode="DEBUG"):
        g = tc.function([x], np.log(x) * 3)
    with pytest.raises(FloatingPointError, match="test_errors.py"):
        g([-1.0])


def test_unknown_mode():
    with pytest.raises(ValueError, match="FAST_COMPILE"):
        tc.compile(lambda x: x, mode="SLOW")(np.ones(1))


def test_compile_needs_a_callable():
    with pytest.raises(TypeError):
        tc.compile(3)


def test_traced_value_from_another_trace():
    leaked = []

    @tc.compile
    def f(x):
        leaked.append(x)
        return x * 1
    f(np.ones(2))
    g = tc.compile(lambda d: d["a"] * 2)
    with pytest.raises(TypeError, match="another trace"):
        g({"a": leaked[0]})


def test_function_keyword_arguments_missing_or_repeated():
    a, x = tc.dscalar("a"), tc.dvector("x")
    f = tc.function([a, x], a * x)
    with pytest.raises(TypeError, match="missing: x"):
        f(a=1.0)
    with pytest.raises(TypeError, match="multiple values.*'a'"):
        f(1.0, [1.0], a=2.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        f(1.0, [1.0], b=2.0)
