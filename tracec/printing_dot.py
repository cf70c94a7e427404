"""tc.pydotprint: Graphviz drawings of graphs.

The DOT text is generated here (no dependency); rendering it to PNG or SVG
needs the optional `graphviz` Python package and Graphviz's `dot` program:
``pip install tracec[graphviz]`` and ``apt-get install graphviz`` (or
``brew install graphviz``, ``conda install graphviz``).
"""
import os

from .printing import graph_model, with_loc

FORMATS = ("png", "svg", "pdf", "dot")

# what each kind of node looks like: inputs green ellipses, shared variables blue
# cylinders, constants grey notes, outputs blue, updates orange, write-backs pink
STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "composite": 'shape=box, style="rounded,filled,bold", fillcolor="#ffe9b3", peripheries=2',
    "input": 'shape=ellipse, style=filled, fillcolor="#b9e8b0"',
    "shared": 'shape=cylinder, style=filled, fillcolor="#a8d8f0"',
    "constant": 'shape=note, style=filled, fillcolor="#e4e4e4", fontsize=9',
    "outer": 'shape=ellipse, style="filled,dashed", fillcolor="#f4f4f4"',
    "var": 'shape=ellipse, style=filled, fillcolor="#fafad2", fontsize=9',
    "output": 'shape=invhouse, style=filled, fillcolor="#9ec5ff"',
    "update": 'shape=cylinder, style="filled,dashed", fillcolor="#ffc680"',
    "writeback": 'shape=invhouse, style="filled,dashed", fillcolor="#f7b6d2"',
}
LEGEND = [("input", "input"), ("shared", "shared variable"), ("constant", "constant"),
          ("op", "operation"), ("composite", "op with an inner graph"), ("output", "output"),
          ("update", "shared-variable update"), ("writeback", "argument write-back")]


def _q(text):
    """A DOT string literal."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shorten(text, width=40):
    return text if len(text) <= width else text[:width - 1] + "…"


def dot_source(obj, compact=True, graph="traced", legend=False, print_loc=True):
    """The DOT text of the drawing `pydotprint` makes (needs nothing installed)."""
    model = graph_model(obj, graph, compact)
    lines = ["digraph tracec {", '  rankdir=TB; compound=true; newrank=true;',
             '  node [fontname="Helvetica", fontsize=10]; edge [fontname="Helvetica", fontsize=8];']
    children = {}
    for g in model["graphs"]:
        children.setdefault(g["parent"], []).append(g)
    owner_graph = {n["id"]: n["graph"] for n in model["nodes"]}
    by_graph = {}
    for n in model["nodes"]:
        by_graph.setdefault(n["graph"], []).append(n)
    top = children.get(None, [])

    def emit_graph(g, indent, cluster):
        pad = "  " * indent
        if cluster:
            lines.append(f"{pad}subgraph cluster_{g['id']} {{")
            lines.append(f'{pad}  label={_q(g["label"])}; style="rounded,dashed"; color="#888888"; '
                         f'fontname="Helvetica"; fontsize=10;')
        for n in by_graph.get(g["id"], []):
            lines.append(f"{pad}  {_node_stmt(n, print_loc)}")
        for n in by_graph.get(g["id"], []):
            for child_graph in (c for c in model["graphs"] if c["parent"] == n["id"]):
                emit_graph(child_graph, indent + 1, True)
        if cluster:
            lines.append(f"{pad}}}")

    for g in top:
        emit_graph(g, 0, len(top) > 1 and bool(g["label"]))
    for e in model["edges"]:
        attrs = []
        if e["label"] and compact:
            attrs.append(f"label={_q(e['label'])}")
        if e["kind"] == "update":
            attrs.append('style=dashed, color="#d07000"')
        lines.append(f"  {e['src']} -> {e['dst']}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    for n in model["nodes"]:  # an op holding inner graphs points at each of them
        for child in n.get("inner", []):
            first = next((m["id"] for m in model["nodes"] if m["graph"] == child), None)
            if first is not None and owner_graph[first] == child:
                lines.append(f'  {n["id"]} -> {first} [style=dotted, color="#999999", arrowhead=none, '
                             f'lhead=cluster_{child}, constraint=false];')
    if legend:
        lines.append('  subgraph cluster_legend { label="legend"; style=dashed; color="#bbbbbb"; '
                     'fontname="Helvetica"; fontsize=9;')
        for kind, text in LEGEND:
            lines.append(f"    legend_{kind} [label={_q(text)}, {STYLES[kind]}];")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_stmt(n, print_loc):
    kind = n["kind"]
    style = STYLES["composite" if kind == "op" and n.get("inner") else kind]
    if kind == "op":
        label = with_loc(_shorten(n["label"]), n["where"], print_loc, sep="\n")
        tooltip = f"{n['label']}: {n['type']}\n{n['loc']}"
    elif kind in ("output", "update", "writeback"):
        label, tooltip = n["label"], f"{n['label']}: {n['type']}"
    else:
        label = _shorten(n["label"] or n["type"])
        tooltip = f"{kind} {n['label']}: {n['type']}"
    return f"{n['id']} [label={_q(label)}, tooltip={_q(tooltip)}, {style}];"


def pydotprint(obj, outfile=None, format=None, compact=True, graph="traced", legend=False, print_loc=True):
    """Draw a graph with Graphviz: a PNG, SVG or PDF file, or the DOT text.

    Inputs are green ellipses, shared variables blue cylinders, constants grey
    notes, outputs blue, shared-variable updates orange (dashed edges),
    argument write-backs pink; ops holding inner graphs (scan steps, ifelse
    branches, fused kernels) are double-bordered and their inner graphs drawn
    in dashed boxes.

    Parameters
    ----------
    obj : variable, list of variables, tc.function, tc.compile function or Program
    outfile : str or path, optional
        Where to write. Needed for 'png', 'svg' and 'pdf'; with 'dot' and no
        file only the text is returned.
    format : {'png', 'svg', 'pdf', 'dot'}, optional
        Taken from `outfile`'s extension when not given, else 'png'. 'dot'
        writes the Graphviz source and needs nothing installed; the others
        need the `graphviz` Python package and the `dot` program.
    compact : bool
        True: values are edges labelled with their type. False: every
        intermediate value is drawn as a node too.
    graph : {'traced', 'optimized'}
        For compiled functions: the graph as traced, or as the backend runs it.
    legend : bool
        Add a legend of the node kinds.
    print_loc : bool
        Show the ``file:line`` that built each op under its name (its tooltip
        has the location either way).

    Returns
    -------
    str
        The DOT source.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x = tc.dvector('x')
    >>> text = tc.pydotprint(np.exp(x) * 2, format='dot')
    >>> text.startswith('digraph')
    True
    """
    if format is None:
        ext = os.path.splitext(str(outfile))[1].lstrip(".").lower() if outfile else ""
        format = ext if ext in FORMATS else "png"
    if format not in FORMATS:
        raise ValueError(f"pydotprint: format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    source = dot_source(obj, compact=compact, graph=graph, legend=legend, print_loc=print_loc)
    if format == "dot":
        if outfile is not None:
            with open(outfile, "w", encoding="utf-8") as fh:
                fh.write(source)
        return source
    if outfile is None:
        raise ValueError(f"pydotprint: give an outfile to write the {format} drawing to (or use format='dot')")
    data = render(source, format)
    with open(outfile, "wb") as fh:
        fh.write(data)
    return source


def render(source, format):
    """Bytes of the DOT `source` rendered by Graphviz, or a clear error saying what to install."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("pydotprint needs the `graphviz` Python package to draw png/svg/pdf: "
                          "pip install 'tracec[graphviz]' (and Graphviz's `dot` program: apt-get install "
                          "graphviz); format='dot' writes the source without it") from None
    try:
        return graphviz.Source(source).pipe(format=format)
    except graphviz.ExecutableNotFound:
        raise RuntimeError("pydotprint: Graphviz's `dot` program was not found on PATH; install it "
                           "(apt-get install graphviz, brew install graphviz or conda install graphviz), "
                           "or use format='dot'") from None
