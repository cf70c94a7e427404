"""Readable text of graphs: tc.debugprint, and the graph walking shared by the
drawings (`printing_dot.pydotprint`, `printing_html.htmlprint`)."""
import os
import string
import sys

import numpy as np

from .trace.graph import Constant, Variable
from .trace.program import Program
from .trace.tensor import Tensor


def _ids():
    """A, B, ..., Z, BA, BB, ... (Theano's style of node ids)."""
    n = 0
    while True:
        digits, k = "", n
        while True:
            digits = string.ascii_uppercase[k % 26] + digits
            k //= 26
            if k == 0:
                break
        yield digits
        n += 1


# -- what to draw ----------------------------------------------------------------

GRAPHS = ("traced", "optimized")


def _check_graph(graph):
    if graph not in GRAPHS:
        raise ValueError(f"graph must be 'traced' (as your code built it) or 'optimized' (as it "
                         f"runs), got {graph!r}")


def _run_program(executable, graph):
    """The traced Program of an Executable, or the one its backend runs (optimized)."""
    if graph == "optimized":
        backend = executable.backend
        return getattr(backend, "program", None) or executable.program
    return executable.program


def programs_of(obj, graph="traced"):
    """[(header, Program)] for a compiled function, a Program, or None for variables."""
    from .function import CompiledFunction, Function
    _check_graph(graph)
    if isinstance(obj, CompiledFunction):
        return [(f"{obj.name} [{', '.join(f'{v.name}: {v.type.short()}' for v in traced.program.inputs)}]",
                 _run_program(ex, graph)) for traced, ex in obj._cache.values()]
    if isinstance(obj, Function):
        return [(obj.name, _run_program(obj.executable, graph))]
    if isinstance(obj, Program):
        return [(obj.name, obj)]
    return None


def _roots(obj, graph="traced"):
    """(label, variables) sections for what a printer was given."""
    from .function import CompiledFunction
    programs = programs_of(obj, graph)
    if programs is not None:
        if isinstance(obj, CompiledFunction) and not programs:
            return [(f"{obj.name}: not traced yet (call it once)", [])]
        return [(header, _program_roots(p)) for header, p in programs]
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    out = []
    for item in items:
        if isinstance(item, Tensor):
            out.append(("", item.variable))
        elif isinstance(item, Variable):
            out.append(("", item))
        else:
            raise TypeError(f"debugprint: expected a variable, a list of them or a compiled function, "
                            f"got {type(item).__name__}")
    return [(None, out)]


def _program_roots(program):
    roots = [(f"output {i}", v) for i, v in enumerate(program.outputs)]
    roots += [(f"update {sv._label()}", v) for sv, v in program.updates]
    roots += [(f"write-back {program.inputs[i].name}", v) for i, v in program.writebacks]
    return roots


def role_of(program, var):
    """'input', 'shared', 'constant' or None: how a leaf enters `program`."""
    if isinstance(var, Constant):
        return "constant"
    if var.owner is None:
        return "shared" if var.shared is not None else "input"
    return None


# -- inner graphs (scan steps, ifelse branches, fused kernels, jacobian programs) --

class Inner:
    """An inner graph of a node: its label, its input variables and its output variables."""

    def __init__(self, label, inputs, outputs, captured=()):
        self.label, self.inputs, self.outputs = label, list(inputs), list(outputs)
        self.captured = list(captured)  # those inputs that are outer values the inner graph reads


def _as_inner(label, obj):
    from .trace.inner import InnerGraph
    if isinstance(obj, InnerGraph):
        return Inner(obj.program.name or label, obj.program.all_inputs(), obj.outputs, obj.captured)
    if isinstance(obj, Program):
        return Inner(label, obj.all_inputs(), obj.roots())
    ins = getattr(obj, "inputs", None)
    outs = getattr(obj, "outputs", None)
    if outs is None and isinstance(getattr(obj, "output", None), Variable):
        outs = [obj.output]
    if isinstance(ins, (list, tuple)) and isinstance(outs, (list, tuple)) and outs and \
            all(isinstance(v, Variable) for v in list(ins) + list(outs)):
        return Inner(label, ins, outs)
    return None


def inner_graphs(node):
    """The inner graphs a node's parameters hold, found by shape: a fused node's
    kernel, a scan's step, an ifelse's branches, a jacobian's programs."""
    found = []
    for key, value in sorted(node.params.items()):
        inner = _as_inner(key, value)
        if inner is not None:
            found.append(inner)
            continue
        for attr, sub in getattr(value, "__dict__", {}).items():
            inner = _as_inner(attr, sub)
            if inner is not None:
                found.append(inner)
    return found


# -- labels ----------------------------------------------------------------------

def constant_text(var, threshold=5):
    if var.type.weak:
        return repr(var.value)
    return np.array2string(var.value, threshold=threshold, separator=",").replace("\n", "")


def _params_text(node):
    parts = []
    for k, v in sorted(node.params.items()):
        if _as_inner(k, v) is not None or getattr(v, "__dict__", None) is not None and \
                any(_as_inner(a, s) for a, s in vars(v).items()):
            continue  # inner graphs are printed as graphs, not as parameters
        parts.append(f"{k}={v}")
    return ",".join(parts)


def _output_suffix(var, sep=""):
    """``.k`` for output k of a node with several outputs, else ''."""
    owner = var.owner
    return f"{sep}.{var.index}" if owner is not None and len(owner.outputs) > 1 else ""


def _label(var):
    if isinstance(var, Constant):
        return constant_text(var)
    if var.owner is None:
        kind = "shared " if var.shared is not None else ""
        return f"{kind}{var.name or '<input>'}"
    return node_label(var.owner) + _output_suffix(var)


def _value_label(var):
    """What an edge carrying `var` is labelled with: its type (and which output it is)."""
    return var.type.short() + _output_suffix(var, " ")


def node_label(node):
    params = _params_text(node)
    return f"{node.op.name}{'{' + params + '}' if params else ''}"


def short_loc(loc):
    return f"{os.path.basename(loc.filename)}:{loc.lineno}"


def with_loc(text, where, print_loc, sep="  "):
    """`text` followed by `where` (an op's ``file:line``) when `print_loc` is on and there is one."""
    return f"{text}{sep}{where}" if print_loc and where else text


# -- debugprint --------------------------------------------------------------------

def debugprint(obj, depth=None, print_type=False, file=None, graph="traced", print_loc=True):
    """Print and return a text tree of a variable, a list of them, or a compiled function.

    Every node gets an id; a node used twice is printed in full once and
    referred to by its id afterwards (``[id B] ...``). Each node shows the
    file and line that built it. Nodes holding inner graphs (scan steps,
    ifelse branches, fused kernels) are followed by those graphs under
    "Inner graphs".

    Parameters
    ----------
    obj : variable, list of variables, tc.function, tc.compile function or Program
    depth : int, optional
        Levels of inputs shown below each root (None: all).
    print_type : bool
        Show each value's type (``float64[?]``; ``~`` marks a Python scalar).
    file : file-like, optional
        Where to print (stdout by default).
    graph : {'traced', 'optimized'}
        For compiled functions: the graph as traced, or as the backend runs it.
    print_loc : bool
        Show the ``file:line`` that built each node.

    Returns
    -------
    str
        The printed text.

    Examples
    --------
    >>> import tracec as tc, numpy as np
    >>> x = tc.vector('x')
    >>> import io
    >>> text = tc.debugprint(np.exp(x) + np.exp(x), file=io.StringIO())
    """
    printer = _TreePrinter(depth, print_type, print_loc)
    for header, roots in _roots(obj, graph):
        if header:
            printer.lines.append(header)
        for entry in roots:
            label, var = entry if isinstance(entry, tuple) else ("", entry)
            if label:
                printer.lines.append(f"{label}:")
            printer.walk(var)
    printer.print_inner_graphs()
    text = "\n".join(printer.lines) + "\n"
    (file or sys.stdout).write(text)
    return text


class _TreePrinter:
    def __init__(self, depth, print_type, print_loc):
        self.depth, self.print_type, self.print_loc = depth, print_type, print_loc
        self.ids = _ids()
        self.names = {}
        self.lines = []
        self.composites = []  # nodes with inner graphs, in order of appearance
        self.stop = set()     # ids of an inner graph's inputs: printed as leaves

    def _id(self, var):
        key = id(var.owner) if var.owner is not None else id(var)
        seen = key in self.names
        if not seen:
            self.names[key] = next(self.ids)
        return self.names[key], seen

    def walk(self, root):
        stack = [(root, "", "", 0)]  # iterative: deep graphs do not hit the recursion limit
        while stack:
            var, lead, branch, level = stack.pop()
            ident, seen = self._id(var)
            is_leaf = var.owner is None or id(var) in self.stop
            typ = f" <{var.type.short()}>" if self.print_type else ""
            where = short_loc(var.owner.loc) if not is_leaf and not seen else ""
            more = " ..." if seen and not is_leaf else ""
            label = _label(var) if not (is_leaf and var.owner is not None) else f"outer {_label(var)}"
            self.lines.append(with_loc(f"{lead}{label} [id {ident}]{typ}{more}", where, self.print_loc))
            if seen or is_leaf:
                continue
            if inner_graphs(var.owner):
                self.composites.append(var.owner)
            if self.depth is not None and level >= self.depth:
                continue
            children = var.owner.inputs
            for j in reversed(range(len(children))):
                last = j == len(children) - 1
                stack.append((children[j], branch + ("└─ " if last else "├─ "),
                              branch + ("   " if last else "│  "), level + 1))

    def print_inner_graphs(self):
        done = set()
        first = True
        while self.composites:
            node = self.composites.pop(0)
            if id(node) in done:
                continue
            done.add(id(node))
            if first:
                self.lines.append("")
                self.lines.append("Inner graphs:")
                first = False
            ident = self.names[id(node)]
            self.lines.append("")
            self.lines.append(with_loc(f"{node_label(node)} [id {ident}]", short_loc(node.loc), self.print_loc))
            for inner in inner_graphs(node):
                saved = self.stop
                self.stop = saved | {id(v) for v in inner.inputs}
                for k, out in enumerate(inner.outputs):
                    self.lines.append(f" {inner.label} output {k}:")
                    self.walk(out)
                self.stop = saved


# -- a drawable model of graphs (used by pydotprint and htmlprint) -------------------

def graph_model(obj, graph="traced", compact=True):
    """Nodes, edges and (nested) graphs of what `obj` computes, ready to draw.

    Returns ``{"graphs": [...], "nodes": [...], "edges": [...]}``. Node kinds:
    'op' (an operation; 'inner' lists its inner graphs), 'input', 'shared',
    'constant', 'outer' (an outer value read by an inner graph), 'var' (an
    intermediate value, only when `compact` is False), and the roots 'output',
    'update' and 'writeback'. Edges carry the value's type. Each inner graph
    (scan step, ifelse branch, fused kernel) is a graph whose 'parent' is the
    op node holding it.
    """
    return _ModelBuilder(compact).build(_roots(obj, graph))


class _ModelBuilder:
    def __init__(self, compact):
        self.compact = compact
        self.graphs, self.nodes, self.edges = [], [], []
        self.ids = {}
        self.captured = set()

    def build(self, sections):
        for header, roots in sections:
            gid = self._graph(header or "", None)
            entries = [e if isinstance(e, tuple) else ("", e) for e in roots]
            self._fill(gid, [(label or f"output {k}", var) for k, (label, var) in enumerate(entries)], {})
        return {"graphs": self.graphs, "nodes": self.nodes, "edges": self.edges}

    def _graph(self, label, parent):
        gid = f"g{len(self.graphs)}"
        self.graphs.append({"id": gid, "label": label, "parent": parent})
        return gid

    def _node(self, gid, key, **fields):
        nid = self.ids.get((gid, key))
        if nid is None:
            nid = self.ids[(gid, key)] = f"n{len(self.nodes)}"
            self.nodes.append(dict(id=nid, graph=gid, **fields))
        return nid

    def _leaf(self, gid, var, stop):
        if isinstance(var, Constant):
            kind = "constant"
        elif var.owner is not None or id(var) in self.captured:  # an outer value an inner graph reads
            kind = "outer"
        else:
            kind = "shared" if var.shared is not None else "input"
        label = _label(var) if kind != "shared" else (var.name or "<shared>")
        return self._node(gid, id(var), kind=kind, label=label, type=var.type.short(), loc="", where="")

    def _source(self, gid, var, stop):
        """The model node a value comes from (for an edge to its user)."""
        if var.owner is None or id(var) in stop:
            return self._leaf(gid, var, stop)
        op_id = self.ids[(gid, id(var.owner))]
        if self.compact:
            return op_id
        key = ("var", id(var))
        if (gid, key) not in self.ids:
            nid = self._node(gid, key, kind="var", label=var.name or "", type=var.type.short(), loc="",
                             where="")
            self.edges.append({"src": op_id, "dst": nid, "label": _value_label(var), "kind": "data"})
        return self.ids[(gid, key)]

    def _fill(self, gid, roots, stop):
        from .trace.graph import toposort
        nodes = toposort([v for _, v in roots], stop=list(stop.values()))
        for node in nodes:
            inner = inner_graphs(node)
            nid = self._node(gid, id(node), kind="op", label=node_label(node), op=node.op.name,
                             type=", ".join(o.type.short() for o in node.outputs),
                             loc=node.loc.describe(), where=short_loc(node.loc), inner=[])
            for k, var in enumerate(node.inputs):
                src = self._source(gid, var, stop)
                label = _value_label(var) if self.compact or var.owner is None else ""
                self.edges.append({"src": src, "dst": nid, "label": label, "kind": "data", "pos": k})
            for sub in inner:
                title = sub.label if sub.label.startswith(node.op.name) else f"{node.op.name} {sub.label}"
                child = self._graph(title, nid)
                self.captured.update(id(v) for v in sub.captured)
                self.nodes[int(nid[1:])]["inner"].append(child)
                self._fill(child, [(f"{sub.label} output {k}", v) for k, v in enumerate(sub.outputs)],
                           {id(v): v for v in sub.inputs})
        for label, var in roots:
            kind = "update" if label.startswith("update") else \
                "writeback" if label.startswith("write-back") else "output"
            rid = self._node(gid, ("root", label), kind=kind, label=label, type=var.type.short(), loc="",
                             where="")
            src = self._source(gid, var, stop)
            self.edges.append({"src": src, "dst": rid, "label": _value_label(var),
                               "kind": "update" if kind != "output" else "data"})
