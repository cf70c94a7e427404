"""Run the ```python code blocks of the user guide (docs/**/*.md) as tests.

The blocks of one page run in order in one namespace, as a reader would type
them into one session; each page is one test. Blocks fenced as ```text,
```console (or anything but ```python) are not run. Line numbers in
tracebacks, and the source lines tracec records for graph nodes, are those of
the markdown file.
"""
import re
import traceback
from pathlib import Path

import pytest

import tracec as tc
from tracec.trace.numpy_api import HANDLED
from tracec.trace.ops import OPS

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")


def code_blocks(text):
    """(language, first code line number, code) of every fenced block in `text`."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks = len(m["indent"]), m["ticks"]
        lang = (m["info"].split() or [""])[0].lower()
        start, body, i = i + 2, [], i + 1
        while i < len(lines) and not re.match(rf"^[ \t]*{ticks}`*\s*$", lines[i]):
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            i += 1
        if i == len(lines):
            raise ValueError(f"unclosed ``` block starting at line {start - 1}")
        blocks.append((lang, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def python_blocks(path):
    return [(start, code) for lang, start, code in code_blocks(path.read_text(encoding="utf-8"))
            if lang in ("python", "py")]


def run_page(path, label):
    """Execute the page's python blocks in one fresh namespace; fail naming file and line."""
    namespace = {"__name__": "__main__", "__file__": str(path)}
    for start, code in python_blocks(path):
        # pad with newlines so line numbers (tracebacks, node locations) match the .md file
        source = "\n" * (start - 1) + code
        failure = None
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report any failure with its place in the docs
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            failure = (f"{label}: the python block starting at line {start} failed with "
                       f"{type(exc).__name__}: {exc}\n\n{tb}")
        if failure:
            pytest.fail(failure, pytrace=False)


PAGES = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_doc_page(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a page that writes a file by mistake writes it here
    ops_before, handled_before = dict(OPS), dict(HANDLED)
    try:
        with tc.config.change():     # flags a page sets do not leak into other tests
            run_page(path, f"docs/{path.relative_to(DOCS)}")
    finally:  # nor do ops or NumPy functions a page registers (docs/developer/ops.md does)
        OPS.clear()
        OPS.update(ops_before)
        HANDLED.clear()
        HANDLED.update(handled_before)


def test_pages_found():
    assert DOCS / "index.md" in PAGES
    assert any(python_blocks(p) for p in PAGES)


LINK = re.compile(r"\]\((?P<target>[^)#\s]+\.md)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_doc_links(path):
    """Relative links between pages point at pages that exist."""
    text = path.read_text(encoding="utf-8")
    for m in LINK.finditer(text):
        target = m["target"]
        if "://" in target:
            continue
        assert (path.parent / target).resolve().is_file(), \
            f"docs/{path.relative_to(DOCS)}: broken link to {target}"


def test_code_blocks_extraction():
    text = "\n".join([
        "# title",
        "```python",
        "def f():",
        "    return 1",
        "```",
        "```text",
        "not run",
        "```",
        "```console",
        "$ python -m pytest",
        "```",
        "- item",
        "  ```python",
        "  y = x + 1",
        "  ```",
    ])
    blocks = code_blocks(text)
    assert [(lang, start) for lang, start, _ in blocks] == \
        [("python", 3), ("text", 7), ("console", 10), ("python", 14)]
    assert blocks[0][2] == "def f():\n    return 1\n"
    assert blocks[3][2] == "y = x + 1\n"


def test_failure_names_file_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n\n```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"page\.md: the python block starting at line 8"):
        run_page(page, "page.md")
