"""tc.debugprint: text trees of variables, lists, tc.function and tc.compile
functions, with ids so that shared subexpressions print once."""
import io
import os
import re

import numpy as np
import pytest

import tracec as tc

THIS_FILE = os.path.basename(__file__)


def dprint(obj, **kw):
    return tc.debugprint(obj, file=io.StringIO(), **kw)


def test_returns_text_and_prints_to_file():
    x = tc.dvector("x")
    buf = io.StringIO()
    text = tc.debugprint(np.exp(x) * 2, file=buf)
    assert isinstance(text, str) and buf.getvalue() == text
    assert "exp" in text and "multiply" in text and "x" in text


def test_prints_to_stdout_by_default(capsys):
    x = tc.dvector("x")
    text = tc.debugprint(x + 1)
    assert capsys.readouterr().out == text


def test_shared_subexpression_shows_once_with_back_reference():
    x = tc.dvector("x")
    e = np.exp(x)
    text = dprint(e + e)
    lines = text.splitlines()
    exp_lines = [line for line in lines if "exp" in line]
    assert len(exp_lines) == 2
    first, again = exp_lines
    ident = re.search(r"\[id (\w+)\]", first).group(1)
    assert f"[id {ident}]" in again and again.rstrip().endswith("...")
    assert text.count("x [id") == 1   # the input under exp is printed once too
    # the full subtree below the first occurrence only
    assert sum(1 for line in lines if "[id" in line) == 4   # add, exp, x, back-reference


def test_ids_are_distinct_for_distinct_nodes():
    x = tc.dvector("x")
    text = dprint(np.exp(x) + np.exp(x))   # two different exp nodes
    ids = re.findall(r"exp \[id (\w+)\]", text)
    assert len(ids) == 2 and ids[0] != ids[1]


def test_tree_structure_and_source_lines():
    x, y = tc.dvector("x"), tc.dvector("y")
    out = np.tanh(x * y)  # TANH_LINE
    text = dprint(out)
    lines = text.splitlines()
    assert lines[0].startswith("tanh [id A]")
    assert lines[1].startswith("└─ multiply")
    assert any(line.startswith("   ├─ x") for line in lines)
    assert any(line.startswith("   └─ y") for line in lines)
    with open(__file__) as fh:
        lineno = next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith("# TANH_LINE"))
    assert f"{THIS_FILE}:{lineno}" in lines[0]


def test_list_of_variables_shares_ids():
    x = tc.dvector("x")
    e = np.exp(x)
    text = dprint([e * 2, e + 1])
    assert text.count("exp [id B]") == 2 and text.count("...") == 1
    assert "multiply" in text and "add" in text


def test_print_type():
    x = tc.fvector("x")
    text = dprint(x * 2, print_type=True)
    assert "float32[?]" in text and "~int64[]" in text
    assert "float32" not in dprint(x * 2)


def test_depth_limits_the_tree():
    x = tc.dvector("x")
    v = np.tanh(np.exp(np.log(x)) + 1)
    full = dprint(v)
    assert "log" in full and "x [id" in full
    one = dprint(v, depth=1)
    assert "tanh" in one and "add" in one and "exp" not in one
    two = dprint(v, depth=2)
    assert "exp" in two and "log" not in two


def test_constants_and_params_are_shown():
    x = tc.dmatrix("x")
    text = dprint(np.sum(x, axis=1) + 2.5)
    assert "2.5" in text and "sum{" in text and "axis=(1,)" in text


def test_tc_function_shows_outputs_and_updates():
    x = tc.dvector("x")
    W = tc.shared(np.ones(2), name="W")
    f = tc.function([x], [(np.exp(x) * W).sum(), x * 2], updates=[(W, W + x)], name="train")
    text = dprint(f)
    assert text.splitlines()[0] == "train"
    assert "output 0:" in text and "output 1:" in text and "update 'W':" in text
    assert "shared W" in text
    # ids span sections: the same leaf has the same id everywhere
    assert len(set(re.findall(r"\bx \[id (\w+)\]", text))) == 1
    assert len(set(re.findall(r"shared W \[id (\w+)\]", text))) == 1
    assert text.count("x [id") == 3


def test_compiled_function_all_signatures():
    @tc.compile
    def g(a, b):
        a += 1
        return np.exp(a) * b
    assert "not traced yet" in dprint(g)
    g(np.ones(2), np.ones(2))
    g(np.ones(2, np.float32), np.ones((2, 2)))
    text = dprint(g)
    assert "a: float64[?], b: float64[?]" in text
    assert "a: float32[?], b: float64[?,?]" in text
    assert text.count("output 0:") == 2 and text.count("write-back a:") == 2
    assert text.count("exp [id") == 2


def test_graph_variable_and_bad_argument():
    x = tc.dvector("x")
    assert "exp" in dprint(np.exp(x).variable)
    with pytest.raises(TypeError, match="debugprint"):
        dprint("not a graph")
    with pytest.raises(TypeError):
        dprint([x, 3])
