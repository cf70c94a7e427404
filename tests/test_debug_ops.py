"""tc.debug.print, tc.debug.breakpoint and tc.config.disable_compile."""
import os
import pdb

import numpy as np
import pytest

import tracec as tc
from tracec.trace.graph import toposort

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        return next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith(f"# {marker}"))


def ops_in(program):
    return [n.op.name for n in toposort(program.roots())]


def test_print_at_run_time_and_pass_through(capsys):
    @tc.compile
    def f(x):
        y = tc.debug.print(np.log(x), "log x")
        return y * 2
    out = f(np.array([1.0, np.e]))
    assert np.allclose(out, [0.0, 2.0])
    printed = capsys.readouterr().out
    assert printed.startswith("log x: [0. 1.]") and "float64, shape (2,)" in printed
    f(np.array([1.0, 1.0, 1.0]))  # every call prints, the trace is not repeated
    assert capsys.readouterr().out.startswith("log x: [0. 0. 0.]")
    assert len(f.programs) == 1


def test_print_default_message_is_the_line(capsys):
    x = tc.dvector("x")
    y = tc.debug.print(x + 1)  # PRINT_LINE
    f = tc.function([x], y * 3)
    assert capsys.readouterr().out == ""  # nothing printed while building the graph
    assert f([1.0]).tolist() == [6.0]
    assert capsys.readouterr().out.startswith(f"{THIS_FILE}:{line_of('PRINT_LINE')}: [2.]")


def test_print_survives_the_optimizer_in_every_mode(capsys):
    def f(x):
        return tc.debug.print(x * 1, "kept") + 0  # identities around it are simplified away
    for mode in ("FAST_RUN", "FAST_COMPILE", "DEBUG"):
        g = tc.compile(f, mode=mode)
        assert g(np.array([2.0])).tolist() == [2.0]
        assert capsys.readouterr().out.startswith("kept: [2.]"), mode
        assert "debug_print" in ops_in(g._cache[next(iter(g._cache))][1].backend.program)


def test_print_gradient_passes_through(capsys):
    g = tc.grad(lambda x: (tc.debug.print(x ** 2, "sq")).sum())
    assert np.allclose(tc.compile(g)(np.array([1.0, 3.0])), [2.0, 6.0])
    assert "sq:" in capsys.readouterr().out


def test_print_on_plain_numpy_prints_at_once(capsys):
    a = np.arange(3.0)
    assert tc.debug.print(a, "now") is a
    assert capsys.readouterr().out.startswith("now: [0. 1. 2.]")


def test_breakpoint_stops_only_when_the_condition_holds(monkeypatch, capsys):
    stops = []

    def fake_set_trace():
        import sys
        frame = sys._getframe(1)
        stops.append(dict(frame.f_locals))
    monkeypatch.setattr(pdb, "set_trace", fake_set_trace)

    @tc.compile
    def f(x):
        h = np.log(x)
        x, h = tc.debug.breakpoint(np.any(np.isnan(h)), x, h)  # BREAK_LINE
        return h + x

    assert np.allclose(f(np.array([1.0, 2.0])), np.log([1.0, 2.0]) + [1.0, 2.0])
    assert stops == []
    with np.errstate(invalid="ignore"):
        f(np.array([1.0, -1.0]))
    assert len(stops) == 1
    assert set(stops[0]) == {"x", "h"}
    assert stops[0]["x"].tolist() == [1.0, -1.0] and np.isnan(stops[0]["h"][1])
    banner = capsys.readouterr().out
    assert f"{THIS_FILE}:{line_of('BREAK_LINE')}" in banner and "the condition holds" in banner
    assert "h = [ 0. nan]" in banner


def test_breakpoint_gradient_and_errors(monkeypatch):
    monkeypatch.setattr(pdb, "set_trace", lambda: None)
    g = tc.grad(lambda x: (tc.debug.breakpoint(np.all(x > 0), x) ** 2).sum())
    assert np.allclose(tc.compile(g)(np.array([1.0, 2.0])), [2.0, 4.0])
    x = tc.dvector("x")
    with pytest.raises(TypeError, match="scalar"):
        tc.debug.breakpoint(x > 0, x)
    with pytest.raises(TypeError, match="at least one value"):
        tc.debug.breakpoint(np.any(x > 0))
    # unnamed values get placeholder names; names are valid identifiers
    y = tc.debug.breakpoint(np.any(x > 0), x * 2)
    assert y.variable.owner.params["names"] == ("value0",)


def test_breakpoint_on_plain_numpy(monkeypatch):
    seen = []
    monkeypatch.setattr(pdb, "set_trace", lambda: seen.append(True))
    a = np.ones(2)
    assert tc.debug.breakpoint(True, a) is a and seen == [True]
    assert tc.debug.breakpoint(False, a) is a and seen == [True]


def test_disable_compile_runs_python(monkeypatch):
    calls = []

    @tc.compile(static_argnums=1)
    def f(x, n):
        calls.append(type(x))
        return np.exp(x) * n
    with tc.config.change(disable_compile=True):
        out = f(np.zeros(2), 3)
        assert calls == [np.ndarray] and out.tolist() == [3.0, 3.0]
        assert f.programs == []  # nothing traced
        assert f(np.zeros(1), 2).tolist() == [2.0]
    f(np.zeros(2), 3)
    assert calls[-1] is not np.ndarray and len(f.programs) == 1
