"""The IR: variables, constants and the nodes (applications of ops) between them.

A graph is immutable: every operation makes new nodes. Each node records the
user's source location, so later error messages, the debug mode and the
optimizer's fused nodes can always point at the user's own line.
"""
import contextlib
import linecache
import os
import sys
import threading
from collections import namedtuple

import numpy as np

from .types import TensorType, PY_SCALAR_DTYPES

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_SKIP_DIRS = (_PACKAGE_DIR + os.sep, _NUMPY_DIR + os.sep)


class SourceLoc(namedtuple("SourceLoc", "filename lineno function note", defaults=("",))):
    """Where the user built a node: file, line and enclosing function.

    `note` says how the node relates to that line when it was not written
    there directly, e.g. "gradient of exp" for nodes built by autodiff.
    """

    def __str__(self):
        return f"{self.filename}:{self.lineno} in {self.function}"

    @property
    def code(self):
        return linecache.getline(self.filename, self.lineno).strip()

    def describe(self):
        code = self.code
        note = f" ({self.note})" if self.note else ""
        return f"{self}" + (f": `{code}`" if code else "") + note


UNKNOWN_LOC = SourceLoc("<unknown>", 0, "<unknown>")
_override = threading.local()


@contextlib.contextmanager
def built_for(loc, note):
    """Nodes built inside this block get `loc` (with `note`) instead of the caller's line.

    Used when tracec itself builds nodes on behalf of a user node, e.g. the
    gradient of a node is attributed to the forward line it differentiates.
    """
    stack = getattr(_override, "stack", None)
    if stack is None:
        stack = _override.stack = []
    stack.append(loc._replace(note=note))
    try:
        yield
    finally:
        stack.pop()


def user_source_loc():
    """The innermost stack frame outside tracec and NumPy: the user's line."""
    stack = getattr(_override, "stack", None)
    if stack:
        return stack[-1]
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_SKIP_DIRS) or "/tests/" in filename:
            return SourceLoc(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return UNKNOWN_LOC


class Variable:
    """A value in the graph: the output `index` of node `owner`, or a leaf.

    Leaves (``owner is None``) are graph inputs; a leaf with ``shared`` set is
    the storage of a `tc.shared` variable and becomes an implicit input.
    """

    __slots__ = ("type", "owner", "index", "name", "shared", "__weakref__")

    def __init__(self, type, owner=None, index=0, name=None, shared=None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.shared = shared

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return self.type.ndim

    @property
    def broadcastable(self):
        return self.type.broadcastable

    def __repr__(self):
        label = self.name or (self.owner.op.name if self.owner else "input")
        return f"<Variable {label} {self.type.short()}>"


class Constant(Variable):
    """A leaf with a fixed value. Weak constants keep their Python scalar value."""

    __slots__ = ("value",)

    def __init__(self, value, name=None):
        if type(value) in PY_SCALAR_DTYPES:
            ty = TensorType(PY_SCALAR_DTYPES[type(value)], (), weak=True)
        else:
            value = np.array(value)  # own copy: later mutation of the source cannot leak in
            value.setflags(write=False)
            ty = TensorType(value.dtype, tuple(s == 1 for s in value.shape))
        super().__init__(ty, name=name)
        self.value = value

    def signature(self):
        """Hashable identity of the value, used to merge equal constants."""
        if self.type.weak:
            return (type(self.value), self.value)
        return (self.value.dtype.str, self.value.shape, self.value.tobytes())

    def __repr__(self):
        return f"<Constant {np.array2string(np.asarray(self.value), threshold=6)} {self.type.short()}>"


class Node:
    """One application of an op to input variables, with static `params`."""

    __slots__ = ("op", "inputs", "params", "outputs", "loc")

    def __init__(self, op, inputs, params, output_types, loc):
        self.op = op
        self.inputs = tuple(inputs)
        self.params = params
        self.loc = loc
        self.outputs = tuple(Variable(t, self, i) for i, t in enumerate(output_types))

    def __repr__(self):
        return f"<Node {self.op.name} at {self.loc}>"


def toposort(outputs, stop=(), stop_ids=None):
    """Nodes needed to compute `outputs`, inputs before users (each node's inputs in order).

    The walk does not go past variables in `stop` (they act as inputs).
    `stop_ids` replaces `stop` for a caller that already holds the ids of
    those variables in a set or dict (the optimizer, for the variables it has
    rewritten). Iterative, so ten-thousand-node graphs do not hit the
    recursion limit.
    """
    if stop_ids is not None and stop:
        raise TypeError("toposort: give `stop` (variables) or `stop_ids` (their ids), not both")
    stop = set(map(id, stop)) if stop_ids is None else stop_ids
    order, seen = [], set()
    for out in outputs:
        if out.owner is None or id(out) in stop or id(out.owner) in seen:
            continue
        stack = [(out.owner, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for inp in reversed(node.inputs):
                if inp.owner is not None and id(inp) not in stop and id(inp.owner) not in seen:
                    stack.append((inp.owner, False))
    return order


def leaves(outputs, stop=()):
    """Leaf variables (inputs, shared storage, constants) the outputs depend on, in order."""
    stop_ids = set(map(id, stop))
    found, seen = [], set()

    def visit(var):
        if id(var) not in seen:
            seen.add(id(var))
            found.append(var)

    for out in outputs:
        if out.owner is None or id(out) in stop_ids:
            visit(out)
    for node in toposort(outputs, stop):
        for inp in node.inputs:
            if inp.owner is None or id(inp) in stop_ids:
                visit(inp)
    return found


def clone_replace(outputs, replace):
    """Rebuild `outputs` with variables substituted per the `replace` dict.

    Nodes are re-applied through their op, so types are re-inferred and a
    replacement of an incompatible type raises where the node is rebuilt.
    """
    memo = {id(k): v for k, v in replace.items()}
    for node in toposort(outputs, stop=list(replace)):
        new_inputs = [memo.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            continue
        new = node.op.make_node(new_inputs, node.params, loc=node.loc)
        for old, fresh in zip(node.outputs, new.outputs):
            memo[id(old)] = fresh
    return [memo.get(id(o), o) for o in outputs]
