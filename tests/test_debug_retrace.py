"""Retraces explained: tc.config.explain_retrace logs which argument's type changed,
and the retrace warning says it too, pointing at the caller's line."""
import logging
import os
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.debug import explain_signature_change

THIS_FILE = os.path.basename(__file__)


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "tracec"]


def test_dtype_rank_and_pattern_changes_are_named(caplog):
    f = tc.compile(lambda x, y: x * y)
    with tc.config.change(explain_retrace=True), caplog.at_level(logging.WARNING, logger="tracec"):
        f(np.ones(3), np.ones(3))
        assert messages(caplog) == []
        f(np.ones(3), np.ones(3))  # same signature: no trace, nothing logged
        f(np.ones(3, np.float32), np.ones(3))
        f(np.ones(2, np.float32), np.ones((3, 2)))
        f(np.ones(2, np.float32), np.ones((3, 1)))
    logged = messages(caplog)
    assert len(logged) == 3
    assert "x: float64[?] (1-d) -> float32[?] (1-d)" in logged[0] and "(trace 2)" in logged[0]
    assert "y: float64[?] (1-d) -> float64[?,?] (2-d)" in logged[1]
    assert "y: float64[?,?] (2-d) -> float64[?,1] (2-d)" in logged[2]


def test_static_values_scalars_and_structure(caplog):
    @tc.compile(static_argnames="axis")
    def g(x, params, axis):
        return (x * params["w"]).sum(axis=axis)

    with tc.config.change(explain_retrace=True), caplog.at_level(logging.WARNING, logger="tracec"):
        g(np.ones((2, 2)), {"w": 1.0}, axis=0)
        g(np.ones((2, 2)), {"w": 1.0}, axis=1)
        g(np.ones((2, 2)), {"w": 1}, axis=1)
        g(np.ones((2, 2)), {"w": 1, "b": 2}, axis=1)
    logged = messages(caplog)
    assert "axis: static value 0 -> static value 1" in logged[0]
    assert "params['w']: a Python float -> a Python int" in logged[1]
    assert "params['b']: absent -> a Python int" in logged[2]


def test_no_log_without_the_flag(caplog):
    f = tc.compile(lambda x: x + 1)
    with caplog.at_level(logging.WARNING, logger="tracec"):
        f(np.ones(2))
        f(np.ones(2, np.int32))
    assert messages(caplog) == []


def test_retrace_warning_names_the_change_and_the_callers_line():
    f = tc.compile(lambda x: x + 1)
    with tc.config.change(retrace_warn=2):
        f(np.ones(2))
        with pytest.warns(UserWarning, match=r"traced 2 times .* because x: float64\[\?\] \(1-d\) -> "
                                             r"int32\[\?\] \(1-d\)") as record:
            f(np.ones(2, np.int32))
    assert os.path.basename(record[0].filename) == THIS_FILE


def test_no_warning_below_the_threshold():
    f = tc.compile(lambda x: x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(np.ones(2))
        f(np.ones(2, np.float32))


def test_explain_picks_the_closest_earlier_signature():
    f32 = ((("tuple", (("tuple", (("leaf",),)), ("dict", (), ()))), (np.dtype("float32"), (False,)), (0,)))
    f64 = ((("tuple", (("tuple", (("leaf",),)), ("dict", (), ()))), (np.dtype("float64"), (False,)), (0,)))
    i32 = ((("tuple", (("tuple", (("leaf",),)), ("dict", (), ()))), (np.dtype("int32"), (False,)), (0,)))
    # keys are (treedef, leaf keys, aliases)
    keys = [(k[0], (k[1],), k[2]) for k in (f32, f64, i32)]
    text = explain_signature_change(keys[:2], keys[2])
    assert "-> int32[?] (1-d)" in text and "args[0][0]" in text
