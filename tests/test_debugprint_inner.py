"""tc.debugprint beyond the basics (tests/test_debugprint.py): inner graphs of scan,
ifelse and fused nodes, the optimized graph, Programs, print_loc."""
import io
import os
import re

import numpy as np
import pytest

import tracec as tc

THIS_FILE = os.path.basename(__file__)


def dprint(obj, **kw):
    return tc.debugprint(obj, file=io.StringIO(), **kw)


def test_scan_step_is_printed_as_an_inner_graph():
    A, k = tc.dvector("A"), tc.iscalar("k")
    result, _ = tc.scan(lambda prior, A: prior * A, outputs_info=np.ones_like(A), non_sequences=A,
                        n_steps=k, name="power")
    text = dprint(result[-1])
    head, inner = text.split("Inner graphs:")
    scan_id = re.search(r"scan \[id (\w+)\]", head).group(1)
    assert f"scan [id {scan_id}]" in inner and "power output 0:" in inner
    assert "multiply" in inner and "power.out0[t-1]" in inner and "power.nonseq0" in inner
    assert "multiply" not in head  # the step's ops are not in the outer tree


def test_ifelse_branches_and_depth():
    a, b = tc.dscalar("a"), tc.dscalar("b")
    z = tc.ifelse(a < b, np.sqrt(a), np.log(b))
    text = dprint(z)
    inner = text.split("Inner graphs:")[1]
    assert "ifelse.then output 0:" in inner and "sqrt" in inner
    assert "ifelse.else output 0:" in inner and "log" in inner
    assert inner.index("ifelse.then output") < inner.index("ifelse.else output")
    assert "Inner graphs" not in dprint(a + b)


def test_optimized_graph_shows_fused_kernel():
    @tc.compile
    def f(x, y):
        return np.exp(-x * x / 2) * y + 1  # FUSED_LINE
    f(np.ones(3), np.ones(3))
    traced = dprint(f)
    optimized = dprint(f, graph="optimized")
    assert "fused_elemwise" not in traced and "exp" in traced
    assert "fused_elemwise" in optimized
    inner = optimized.split("Inner graphs:")[1]
    assert "exp" in inner and "negative" in inner
    with open(__file__) as fh:
        line = next(i for i, s in enumerate(fh, 1) if s.rstrip().endswith("# FUSED_LINE"))
    assert f"{THIS_FILE}:{line}" in inner
    with pytest.raises(ValueError, match="traced"):
        dprint(f, graph="fast")


def test_program_and_print_loc():
    x = tc.dvector("x")
    f = tc.function([x], np.exp(x) * 2, name="f")
    text = dprint(f.program)
    assert text.splitlines()[0] == "f" and "output 0:" in text and THIS_FILE in text
    assert THIS_FILE not in dprint(f, print_loc=False)


def test_print_loc_false_hides_lines_of_inner_graph_headers_too():
    a, b = tc.dscalar("a"), tc.dscalar("b")
    z = tc.ifelse(a < b, np.sqrt(a), np.log(b))  # IFELSE_LINE
    with open(__file__) as fh:
        line = next(i for i, s in enumerate(fh, 1) if s.rstrip().endswith("# IFELSE_LINE"))
    shown = dprint(z).split("Inner graphs:")[1]
    header = next(s for s in shown.splitlines() if s.startswith("ifelse [id"))
    assert header.endswith(f"  {THIS_FILE}:{line}")
    hidden = dprint(z, print_loc=False)
    assert "Inner graphs:" in hidden and THIS_FILE not in hidden
    header = next(s for s in hidden.splitlines() if s.startswith("ifelse [id"))
    assert header == header.rstrip() and re.fullmatch(r"ifelse(\{.*\})? \[id \w+\]", header)


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tc.dvector("x")
    y = x
    for _ in range(3000):
        y = y + 1
    text = dprint(y, print_loc=False)
    assert text.count("add [id") == 3000
