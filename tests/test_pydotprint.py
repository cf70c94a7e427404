"""tc.pydotprint: DOT source (needs nothing installed) and PNG/SVG drawings (need
the `graphviz` package and Graphviz's `dot` program)."""
import builtins
import importlib.util
import re
import shutil

import numpy as np
import pytest

import tracec as tc
from tracec.printing_dot import STYLES, dot_source

HAVE_DOT = shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz (`dot` and the graphviz package) not installed")


def training_step():
    x = tc.dvector("x")
    W = tc.shared(np.ones(3), name="W")
    cost = ((x * W).sum() - 1.5) ** 2
    return tc.function([x], cost, updates=[(W, W - 0.1 * x)], name="train")


def node_line(text, label):
    return next(line for line in text.splitlines() if f'label="{label}' in line)


def test_dot_kinds_are_visually_distinct():
    text = tc.pydotprint(training_step(), format="dot")
    assert text.startswith("digraph tracec {") and text.rstrip().endswith("}")
    assert STYLES["input"] in node_line(text, "x")
    assert STYLES["shared"] in node_line(text, "W")
    assert STYLES["constant"] in node_line(text, "1.5")
    assert STYLES["output"] in node_line(text, "output 0")
    assert STYLES["update"] in node_line(text, "update 'W'")
    assert len({STYLES[k] for k in ("input", "shared", "constant", "output", "update", "op")}) == 6
    assert re.search(r'-> n\d+ \[label="float64\[\?\]", style=dashed', text)  # the update edge
    assert "test_pydotprint.py:" in node_line(text, "multiply")  # ops show the user's line


def test_print_loc_puts_the_line_under_op_labels():
    x = tc.dvector("x")
    y = np.exp(x) * 2  # EXP_LINE
    with open(__file__) as fh:
        line = next(i for i, s in enumerate(fh, 1) if s.rstrip().endswith("# EXP_LINE"))
    where = f"test_pydotprint.py:{line}"
    assert f'label="exp\\n{where}"' in dot_source(y)
    hidden = dot_source(y, print_loc=False)
    labels = re.findall(r'\blabel="((?:[^"\\]|\\.)*)"', hidden)
    assert "exp" in labels and "multiply" in labels and not any(where in s for s in labels)
    assert where in node_line(hidden, "exp")  # the tooltip keeps it


def test_compact_false_draws_values_and_legend():
    x = tc.dvector("x")
    y = np.exp(x) * 2
    compact = dot_source(y)
    full = dot_source(y, compact=False, legend=True)
    assert STYLES["var"] not in compact and STYLES["var"] in full
    assert "cluster_legend" in full and "cluster_legend" not in compact


def test_inner_graphs_are_clusters_and_labels_are_escaped():
    a, b = tc.dscalar('a"q'), tc.dscalar("b")
    z = tc.ifelse(a < b, np.sqrt(a), np.log(b))
    text = dot_source(z)
    assert "subgraph cluster_g1" in text and 'label="ifelse.then"' in text and 'label="ifelse.else"' in text
    assert 'label="a\\"q"' in text
    assert "lhead=cluster_g1" in text
    assert STYLES["composite"] in node_line(text, "ifelse")


def test_compiled_function_with_two_signatures_and_optimized_graph():
    f = tc.compile(lambda x: np.exp(-x * x) + 1)
    f(np.ones(2))
    f(np.ones((2, 2)))
    text = tc.pydotprint(f, format="dot")
    assert text.count("subgraph cluster_") == 2 and "x: float64[?,?]" in text
    assert "fused_elemwise" in tc.pydotprint(f, format="dot", graph="optimized")


def test_format_from_extension_and_errors(tmp_path):
    x = tc.dvector("x")
    out = tmp_path / "g.dot"
    text = tc.pydotprint(x + 1, out)
    assert out.read_text() == text
    with pytest.raises(ValueError, match="format"):
        tc.pydotprint(x + 1, tmp_path / "g.png", format="jpeg")
    with pytest.raises(ValueError, match="outfile"):
        tc.pydotprint(x + 1, format="svg")


def test_missing_graphviz_package_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_graphviz(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError("no graphviz")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_graphviz)
    with pytest.raises(ImportError, match=r"pip install 'tracec\[graphviz\]'"):
        tc.pydotprint(tc.dvector("x") + 1, tmp_path / "g.png")


@pytest.mark.skipif(importlib.util.find_spec("graphviz") is None, reason="graphviz package not installed")
def test_missing_dot_program_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        tc.pydotprint(tc.dvector("x") + 1, tmp_path / "g.svg")


@needs_dot
def test_png_and_svg(tmp_path):
    f = training_step()
    tc.pydotprint(f, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tc.pydotprint(f, tmp_path / "g.svg", compact=False, legend=True)
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "update &#39;W&#39;" in svg and "#a8d8f0" in svg
