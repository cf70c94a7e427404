"""tc.htmlprint: one self-contained interactive HTML file. Its structure is checked
in Python; its behaviour (render, zoom, pan, expand/collapse, hover) in headless
Chromium through the page's `#selftest` hook, where Chromium is installed."""
import html
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import tracec as tc

THIS_FILE = os.path.basename(__file__)
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)


def embedded_model(page):
    data = re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    return json.loads(data)


def scan_and_ifelse():
    A, k = tc.dvector("A"), tc.iscalar("k")
    W = tc.shared(np.ones(3), name="W")
    result, _ = tc.scan(lambda prior, A: prior * A, outputs_info=np.ones_like(A), non_sequences=A, n_steps=k)
    a, b = tc.dscalar("a"), tc.dscalar("b")
    z = tc.ifelse(a < b, np.sqrt(a), np.log(b))  # IFELSE_LINE
    return tc.function([A, k, a, b], [result[-1] * W + 2.5, z], updates=[(W, W * 2)], name="demo")


def test_page_is_self_contained_and_embeds_the_graph(tmp_path):
    out = tmp_path / "g.html"
    page = tc.htmlprint(scan_and_ifelse(), out)
    assert out.read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>") and "<title>demo</title>" in page
    # no network: no src/href/url()/@import pointing anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    model = embedded_model(page)
    kinds = {n["kind"] for n in model["nodes"]}
    assert {"op", "input", "shared", "constant", "output", "update", "outer"} <= kinds
    ifelse = next(n for n in model["nodes"] if n["kind"] == "op" and n["op"] == "ifelse")
    assert len(ifelse["inner"]) == 2 and THIS_FILE in ifelse["loc"] and "tc.ifelse" in ifelse["loc"]
    inner_graphs = [g for g in model["graphs"] if g["parent"] == ifelse["id"]]
    assert [g["label"] for g in inner_graphs] == ["ifelse.then", "ifelse.else"]


def test_names_cannot_break_out_of_the_page():
    x = tc.dvector("</script><script>alert(1)</script>")
    page = tc.htmlprint(x + 1, title="<b>t</b>")
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    assert page.count("</script>") == 2  # the data block and the code block, nothing injected
    assert embedded_model(page)["nodes"][1]["label"].startswith("</script>")


def run_chromium(path, hash_="#selftest"):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,800",
           "--dump-dom", f"file://{path}{hash_}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium/Chrome installed")
def test_interaction_in_a_headless_browser(tmp_path):
    out = tmp_path / "g.html"
    tc.htmlprint(scan_and_ifelse(), out)
    dom = run_chromium(out)
    rendered = int(re.search(r'data-rendered="(\d+)"', dom).group(1))
    result = json.loads(html.unescape(re.search(r'data-selftest="([^"]*)"', dom).group(1)))
    model = embedded_model(out.read_text())
    top = {g["id"] for g in model["graphs"] if g["parent"] is None}
    assert result["nodes"] == sum(n["graph"] in top for n in model["nodes"])  # collapsed: outer graph only
    assert rendered == result["collapsed_nodes"]
    assert result["zoomed_in"] and "scale(" in result["transform"] and result["panned"]
    assert result["composites"] == 2  # scan and ifelse
    assert result["inner_graphs_shown"] >= 1 and result["expanded_nodes"] > result["nodes"]
    assert result["collapsed_nodes"] == result["nodes"]
    assert result["tip_visible"] and "type:" in result["tip"] and THIS_FILE in result["tip"]


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium/Chrome installed")
def test_fused_node_of_the_optimized_graph_in_a_browser(tmp_path):
    f = tc.compile(lambda x, y: np.exp(-x * x / 2) * y + 1)
    f(np.ones(3), np.ones(3))
    out = tmp_path / "f.html"
    tc.htmlprint(f, out, graph="optimized")
    result = json.loads(html.unescape(re.search(r'data-selftest="([^"]*)"', run_chromium(out)).group(1)))
    assert result["composites"] == 1 and result["inner_graphs_shown"] == 1
    assert result["expanded_nodes"] > result["nodes"]
