"""tc.htmlprint: an interactive view of a graph in one self-contained HTML file.

The page (template: tracec/templates/graph_view.html) draws the graph as SVG
with its own small layered layout, zooms with the mouse wheel, pans by
dragging, shows each node's type and source line on hover, and opens or
closes the inner graphs of scan, ifelse and fused nodes on a click. It loads
nothing from the network: the graph is embedded as JSON.
"""
import html
import json
import os

from .printing import graph_model

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "graph_view.html")


def htmlprint(obj, outfile=None, title=None, compact=True, graph="traced"):
    """Write an interactive HTML view of a graph; return the HTML text.

    Parameters
    ----------
    obj : variable, list of variables, tc.function, tc.compile function or Program
    outfile : str or path, optional
        Where to write the page (open it in any browser).
    title : str, optional
        Shown in the page's title bar; by default the function's name.
    compact : bool
        True: values are edges (hover one for its type). False: every
        intermediate value is a node too.
    graph : {'traced', 'optimized'}
        For compiled functions: the graph as traced, or as the backend runs it.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x = tc.dvector('x')
    >>> page = tc.htmlprint(np.exp(x) * 2)
    >>> '<svg' in page and 'http-equiv' not in page
    True
    """
    model = graph_model(obj, graph, compact)
    if title is None:
        title = getattr(obj, "name", None) or "tracec graph"
    data = json.dumps(model, separators=(",", ":")).replace("</", "<\\/")  # cannot end the <script>
    with open(TEMPLATE, encoding="utf-8") as fh:
        page = fh.read()
    page = page.replace("__TITLE__", html.escape(str(title))).replace("__DATA__", data)
    if outfile is not None:
        with open(outfile, "w", encoding="utf-8") as fh:
            fh.write(page)
    return page
