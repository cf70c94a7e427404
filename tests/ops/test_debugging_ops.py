"""The debug ops of the op table (debug_print, debug_breakpoint) as values: they pass
their inputs through unchanged in every mode. Their behaviour is tested in
tests/test_debug_ops.py."""
import pdb

import numpy as np

import tracec as tc

from cases import DTYPES, check, rand


def test_debug_print_passes_values_through(capsys):
    for dtype in DTYPES:
        check(lambda x: tc.debug.print(x, "x") * 1, rand((2, 3), dtype), expect_ops=["debug_print"])
    assert "x: " in capsys.readouterr().out


def test_debug_breakpoint_passes_values_through(monkeypatch):
    monkeypatch.setattr(pdb, "set_trace", lambda: None)
    check(lambda x, y: tc.debug.breakpoint(np.any(x > 10), x, y), rand((3,), "float64"),
          rand((2, 3), "int32"), expect_ops=["debug_breakpoint"])
    check(lambda x: tc.debug.breakpoint(np.all(x > -10), x) + 1, rand((3,), "float32"),
          expect_ops=["debug_breakpoint"])
