"""tc.config.debug_check_backend: every node of the backend under test is compared
with the NumPy reference interpreter; the first node that differs is reported."""
import os
import sys

import numpy as np
import pytest

import tracec as tc
from tracec.debug import BackendMismatchError, CheckedBackend, HookedInterpreter, compare_values
from tracec.trace import interp

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        return next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith(f"# {marker}"))


class WrongExp(HookedInterpreter):
    """A deliberately broken backend: exp is off by one."""

    def run_step(self, step, node, inputs):
        outs = interp.run_node(node, inputs)
        if node.op.name == "exp":
            outs = [outs[0] + 1]
        return outs


class WrongWhenJoined(HookedInterpreter):
    """Right on every single node, wrong on programs of several nodes (a 'fusion' bug)."""

    def run(self, input_values):
        out = super().run(input_values)
        return [o * 2 for o in out] if len(self.steps) > 1 else out


def model(x, W):
    h = np.tanh(x @ W)
    e = np.exp(h)  # EXP_LINE
    return e.sum(axis=1)


def test_first_differing_node_is_reported():
    x, W = np.ones((2, 3)), np.full((3, 4), 0.1)
    traced = tc.compile(model, mode="FAST_COMPILE")
    traced(x, W)
    program = traced.programs[0]
    checked = CheckedBackend(program, WrongExp)
    with pytest.raises(BackendMismatchError) as info:
        checked.run([x, W])
    text = str(info.value)
    assert "exp, built at" in text and f"{THIS_FILE}:{line_of('EXP_LINE')}" in text and "in model" in text
    assert "8 of 8 values differ, first at index (0, 0)" in text
    assert "node 3 of 4" in text and "inputs : float64[2, 4]" in text
    assert info.value.node.op.name == "exp"


def test_bug_only_in_the_joined_program_is_reported():
    x, W = np.ones((2, 3)), np.full((3, 4), 0.1)
    traced = tc.compile(model, mode="FAST_COMPILE")
    traced(x, W)
    with pytest.raises(BackendMismatchError, match="every node agrees .* result 0 .*sum"):
        CheckedBackend(traced.programs[0], WrongWhenJoined).run([x, W])


def test_flag_checks_the_backend_make_backend_selects(monkeypatch):
    # stand-in for a native backend: make_backend's executor is the broken one,
    # the reference stays the real interpreter
    monkeypatch.setattr(sys.modules["tracec.function"], "Interpreter", WrongExp)
    f = tc.compile(model, mode="FAST_COMPILE")
    x, W = np.ones((2, 3)), np.full((3, 4), 0.1)
    with tc.config.change(debug_check_backend=True):
        with pytest.raises(BackendMismatchError, match=f"{THIS_FILE}:{line_of('EXP_LINE')}"):
            f(x, W)


def test_a_correct_backend_passes_and_returns_its_results():
    x, W = np.random.default_rng(1).normal(size=(5, 3)), np.ones((3, 2))
    expected = model(x, W)
    with tc.config.change(debug_check_backend=True):
        for mode in ("FAST_COMPILE", "FAST_RUN"):  # FAST_RUN: the C backend where a compiler exists
            np.testing.assert_allclose(tc.compile(model, mode=mode)(x, W), expected)


def test_compare_values():
    assert compare_values(np.ones(3), np.ones(3) + 1e-12) is None
    assert compare_values(np.array([1.0, np.nan]), np.array([1.0, np.nan])) is None
    assert "reference float64[3], compiled float32[3]" in compare_values(np.ones(3), np.ones(3, np.float32))
    assert "1 of 3 values differ, first at index (2,)" in compare_values(np.arange(3), np.array([0, 1, 5]))
    assert compare_values(np.float32(1.0), np.float32(1.00001)) is None  # float32 tolerance
