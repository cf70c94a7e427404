"""Readable text of graphs: tc.debugprint."""
import string
import sys

from .trace.graph import Constant, Variable
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


def _roots(obj):
    """(label, variables) sections for what `debugprint` was given."""
    from .function import CompiledFunction, Function
    if isinstance(obj, CompiledFunction):
        programs = obj.programs
        if not programs:
            return [(f"{obj.name}: not traced yet (call it once)", [])]
        return [(f"{obj.name} [{', '.join(f'{v.name}: {v.type.short()}' for v in p.inputs)}]",
                 _program_roots(p)) for p in programs]
    if isinstance(obj, Function):
        return [(obj.name, _program_roots(obj.program))]
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


def _label(var):
    if isinstance(var, Constant):
        text = repr(var.value) if var.type.weak else \
            __import__("numpy").array2string(var.value, threshold=5, separator=",").replace("\n", "")
        return f"{text}"
    if var.owner is None:
        kind = "shared " if var.shared is not None else ""
        return f"{kind}{var.name or '<input>'}"
    node = var.owner
    params = ",".join(f"{k}={v}" for k, v in sorted(node.params.items()))
    out = f".{var.index}" if len(node.outputs) > 1 else ""
    return f"{node.op.name}{'{' + params + '}' if params else ''}{out}"


def debugprint(obj, depth=None, print_type=False, file=None):
    """Print and return a text tree of a variable, a list of them, or a compiled function.

    Every node gets an id; a node used twice is printed in full once and
    referred to by its id afterwards.

    Examples
    --------
    >>> import tracec as tc, numpy as np
    >>> x = tc.vector('x')
    >>> import io
    >>> text = tc.debugprint(np.exp(x) + np.exp(x), file=io.StringIO())
    """
    ids = _ids()
    names = {}
    lines = []

    def walk(var, lead, branch, level):
        key = id(var.owner) if var.owner is not None else id(var)
        seen = key in names
        if not seen:
            names[key] = next(ids)
        typ = f" <{var.type.short()}>" if print_type else ""
        loc = ""
        if var.owner is not None and not seen:
            loc = f"  {var.owner.loc.filename.rsplit('/', 1)[-1]}:{var.owner.loc.lineno}"
        more = " ..." if seen and var.owner is not None else ""
        lines.append(f"{lead}{_label(var)} [id {names[key]}]{typ}{more}{loc}")
        if seen or var.owner is None or (depth is not None and level >= depth):
            return
        children = var.owner.inputs
        for j, inp in enumerate(children):
            last = j == len(children) - 1
            walk(inp, branch + ("└─ " if last else "├─ "), branch + ("   " if last else "│  "), level + 1)

    for header, roots in _roots(obj):
        if header:
            lines.append(header)
        for entry in roots:
            label, var = entry if isinstance(entry, tuple) else ("", entry)
            if label:
                lines.append(f"{label}:")
            walk(var, "", "", 0)
    text = "\n".join(lines) + "\n"
    (file or sys.stdout).write(text)
    return text
