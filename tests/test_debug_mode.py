"""mode='DEBUG': node-by-node execution that checks every output for NaN, Inf and
huge values, and names the op, shapes, dtypes and the user's file and line."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tracec as tc
from tracec.config import Config
from tracec.trace.graph import SourceLoc, built_for

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        return next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith(f"# {marker}"))


def where(marker):
    return f"{THIS_FILE}:{line_of(marker)}"


def log_twice(x):
    y = np.log(x)  # LOG_LINE
    return y * 2


def test_nan_names_op_shapes_values_and_line():
    f = tc.compile(log_twice, mode="DEBUG")
    assert np.allclose(f(np.array([1.0, 2.0])), 2 * np.log([1.0, 2.0]))
    with pytest.raises(tc.debug.NaNError) as info:
        f(np.array([1.0, -2.0, 3.0]))
    err = info.value
    assert isinstance(err, FloatingPointError) and isinstance(err, tc.debug.BadValueError)
    text = str(err)
    assert text.startswith("NaN in log")
    assert where("LOG_LINE") in text and "in log_twice" in text and "y = np.log(x)" in text
    assert "inputs : float64[3]" in text and "output : float64[3]" in text
    assert "1 of 3 values are NaN" in text and "first at index (1,)" in text
    assert "-2.0" in text  # the input value that produced it
    assert err.node.op.name == "log" and err.index == (1,)


def test_global_mode_and_symbolic_function():
    with tc.config.change(mode="DEBUG"):
        f = tc.compile(log_twice)
        with pytest.raises(FloatingPointError, match=where("LOG_LINE")):
            f(np.array([-1.0]))
    x = tc.dvector("x")
    g = tc.function([x], np.sqrt(x) + 1, mode="DEBUG")  # SQRT_LINE
    with pytest.raises(tc.debug.NaNError, match=f"NaN in sqrt, built at .*{where('SQRT_LINE')}"):
        g([4.0, -4.0])


def test_mode_from_tracec_flags():
    c = Config(env={"TRACECRC": os.devnull,
                    "TRACEC_FLAGS": "mode=DEBUG,nan_is_error=0,big_is_error=1,big_threshold=1e3"})
    assert c.mode == "DEBUG" and c.nan_is_error is False and c.big_is_error is True
    assert c.big_threshold == 1000.0
    code = ("import numpy as np, tracec as tc\n"
            "f = tc.compile(lambda x: np.log(x))\n"
            "try:\n    f(np.array([-1.0]))\nexcept FloatingPointError as e:\n    print('raised', type(e).__name__)\n")
    env = dict(os.environ, TRACEC_FLAGS="mode=DEBUG")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "raised NaNError" in out.stdout, out.stderr


def test_inf_and_the_flags_that_turn_checks_off():
    f = tc.compile(lambda x: np.exp(x) - 1, mode="DEBUG")  # EXP_LINE
    with pytest.raises(tc.debug.InfError) as info:
        f(np.array([0.0, 1000.0]))
    assert "infinite values in exp" in str(info.value) and where("EXP_LINE") in str(info.value)
    assert "inf_is_error = False" in str(info.value)
    with tc.config.change(inf_is_error=False):
        assert np.isinf(f(np.array([0.0, 1000.0]))[1])
    g = tc.compile(lambda x: np.log(x), mode="DEBUG")
    with tc.config.change(nan_is_error=False):
        assert np.isnan(g(np.array([-1.0]))[0])


def test_big_values_only_when_asked():
    f = tc.compile(lambda x: x * 1e6, mode="DEBUG")  # BIG_LINE
    assert f(np.array([1e6]))[0] == 1e12
    with tc.config.change(big_is_error=True, big_threshold=1e9):
        with pytest.raises(tc.debug.BigValueError) as info:
            f(np.array([1.0, 1e6]))
    text = str(info.value)
    assert "larger than 1e+09" in text and where("BIG_LINE") in text and "first at index (1,)" in text


def test_integer_and_bool_outputs_are_not_checked():
    f = tc.compile(lambda x: (x // 2, x > 1), mode="DEBUG")
    a, b = f(np.array([1, 2, 3]))
    assert a.tolist() == [0, 1, 1] and b.tolist() == [False, True, True]


def test_nan_coming_in_through_an_argument_is_traced_to_it():
    def f(x, y):
        return x + y  # ADD_LINE
    g = tc.compile(f, mode="DEBUG")
    with pytest.raises(tc.debug.NaNError) as info:
        g(np.array([np.nan, 1.0]), np.ones(2))
    text = str(info.value)
    assert "NaN in add" in text and where("ADD_LINE") in text
    assert "input 0 is already NaN" in text and "the argument 'x'" in text
    # handled NaN is fine: np.where replaces it before anything produces a new one
    h = tc.compile(lambda x: np.where(np.isnan(x), 0.0, x) * 2, mode="DEBUG")
    assert h(np.array([np.nan, 1.0])).tolist() == [0.0, 2.0]


def test_scalar_output_and_reduction():
    f = tc.compile(lambda x: np.sum(x) / np.sum(x * 0), mode="DEBUG")  # DIV_LINE
    with pytest.raises(tc.debug.NaNError) as info:
        f(np.zeros(3))
    assert "the value is nan" in str(info.value) and where("DIV_LINE") in str(info.value)


def test_shape_mismatch_names_the_line_in_debug_mode():
    def f(x, y):
        return np.exp(x) + y  # SHAPE_LINE
    g = tc.compile(f, mode="DEBUG")
    with pytest.raises(ValueError) as info:
        g(np.ones(3), np.ones(4))
    text = str(info.value)
    assert "add" in text and where("SHAPE_LINE") in text and "float64[3], float64[4]" in text


def test_debug_mode_gives_the_same_results():
    def f(x, W):
        h = np.tanh(x @ W)
        return h.sum(axis=1), np.maximum(h, 0)
    x, W = np.random.default_rng(0).normal(size=(4, 3)), np.ones((3, 2))
    for got, want in zip(tc.compile(f, mode="DEBUG")(x, W), tc.compile(f)(x, W)):
        np.testing.assert_allclose(got, want)


def test_gradient_nodes_name_a_line_of_the_user():
    def loss(w, x):
        return np.sqrt(w * x).sum()  # FORWARD_LINE

    @tc.compile(mode="DEBUG")
    def grad_at(w, x):
        return tc.grad(loss)(w, x)  # GRAD_LINE

    with pytest.raises(tc.debug.InfError) as info:
        grad_at(np.array([1.0, 0.0]), np.ones(2))
    text = str(info.value)
    assert THIS_FILE in text
    assert where("FORWARD_LINE") in text or where("GRAD_LINE") in text


def test_nodes_built_for_a_forward_line_say_so():
    # what the backward driver does: build the gradient nodes "for" the forward node's line
    x = tc.dvector("x")
    forward = np.log(x)  # FORWARD_LOG
    loc = forward.variable.owner.loc
    with built_for(loc, "gradient of log"):
        g = 1.0 / x
    f = tc.function([x], g, mode="DEBUG")
    with pytest.raises(tc.debug.InfError) as info:
        f([0.0, 1.0])
    text = str(info.value)
    assert where("FORWARD_LOG") in text and "(gradient of log)" in text
    assert isinstance(g.variable.owner.loc, SourceLoc)


def test_nan_inside_scan_names_the_scan_line():
    x = tc.dvector("x")
    out, _ = tc.scan(lambda v: np.log(v), sequences=[x])  # SCAN_LINE
    f = tc.function([x], out, mode="DEBUG")
    with pytest.raises(tc.debug.NaNError, match=where("SCAN_LINE")):
        f([1.0, -1.0])


def test_nodes_inside_a_scan_step_are_checked_and_named():
    x = tc.dvector("x")

    def step(v, acc):
        return acc + np.log(v)  # STEP LINE

    out, _ = tc.scan(step, sequences=x, outputs_info=np.float64(0))
    f = tc.function([x], out, mode="DEBUG")
    np.testing.assert_allclose(f(np.array([1.0, 2.0])), [0.0, np.log(2.0)])
    with pytest.raises(tc.debug.NaNError) as err:
        f(np.array([1.0, -2.0]))
    message = str(err.value)
    assert "log" in message and "in step" in message and "STEP LINE" in message
