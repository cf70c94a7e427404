"""The graph verifier: run after every pass when ``tc.config.check_graph`` is on.

It checks what every backend relies on: each node's recorded output types are
what its op's type rule gives for its inputs; each node has a source line;
constants hold values of their type; the graph reads only the program's
inputs, shared storage and constants; results keep the types they had before
optimization; in-place nodes only write into buffers nothing else reads.
"""
import numpy as np

from ..trace.graph import Constant, SourceLoc, toposort


class GraphError(AssertionError):
    """An optimizer pass broke an invariant of the graph (a tracec bug)."""


def _check_constant(c, where):
    if c.type.weak:
        return
    value = c.value
    if not isinstance(value, np.ndarray) or value.dtype != c.type.dtype or value.ndim != c.type.ndim:
        raise GraphError(f"{where}: constant {c!r} holds a value that does not match its type")
    if any(b and s != 1 for b, s in zip(c.type.broadcastable, value.shape)):
        raise GraphError(f"{where}: constant {c!r} is declared broadcastable in a dimension of "
                         f"length other than 1 (shape {value.shape})")


def check_nodes(nodes, allowed_leaves, where):
    """Type rule, source line and leaves of each node; `allowed_leaves` holds ids."""
    for node in nodes:
        if not isinstance(node.loc, SourceLoc):
            raise GraphError(f"{where}: node {node.op.name} has no source location")
        for v in node.inputs:
            if isinstance(v, Constant):
                _check_constant(v, where)
            elif v.owner is None and id(v) not in allowed_leaves:
                raise GraphError(f"{where}: node {node.op.name} at {node.loc} reads {v!r}, which is "
                                 "not an input of the program")
        try:
            types = node.op.infer(list(node.inputs), **node.params)
        except Exception as exc:  # noqa: BLE001
            raise GraphError(f"{where}: node {node.op.name} at {node.loc} no longer type-checks: "
                             f"{exc}") from exc
        recorded = [o.type for o in node.outputs]
        if list(types) != recorded:
            raise GraphError(f"{where}: node {node.op.name} at {node.loc} records types "
                             f"{[t.short() for t in recorded]} but its type rule gives "
                             f"{[t.short() for t in types]}")
        if node.op.name == "fused_elemwise":
            inner = node.params["inner"]
            check_nodes(inner.nodes, {id(v) for v in inner.inputs}, f"{where} (fused kernel)")
            check_fused(inner, f"{where}: fused_elemwise at {node.loc}")


def check_fused(inner, where):
    """A kernel's nodes come in a topological order, its outputs are distinct values its nodes
    compute, a reduction only ends a single-output kernel, and all outputs have one rank."""
    made = set()
    for k, n in enumerate(inner.nodes):
        for v in n.inputs:
            if v.owner is not None and id(v) not in made:
                raise GraphError(f"{where}: inner node {n.op.name} reads a value computed after it "
                                 "or outside the kernel")
        if n.op.kind not in ("elemwise", "reduce") or len(n.outputs) != 1:
            raise GraphError(f"{where}: inner node {n.op.name} is not a single-output elementwise op")
        if n.op.kind == "reduce" and (k != len(inner.nodes) - 1 or len(inner.outputs) != 1):
            raise GraphError(f"{where}: a reduction may only end a single-output kernel")
        made.add(id(n.outputs[0]))
    ids = [id(v) for v in inner.outputs]
    if not ids or len(set(ids)) != len(ids) or not set(ids) <= made:
        raise GraphError(f"{where}: the kernel's outputs must be distinct values it computes")
    if len({v.ndim for v in inner.outputs}) > 1:
        raise GraphError(f"{where}: the outputs of a multi-output kernel have different ranks")


def verify(program, root_types, where):
    """Raise GraphError when `program` (after pass `where`) breaks an invariant."""
    inputs = program.all_inputs()
    roots = program.roots()
    nodes = toposort(roots, stop=inputs)
    check_nodes(nodes, {id(v) for v in inputs}, f"after pass {where!r}")
    for i, (v, t) in enumerate(zip(roots, root_types)):
        if v.type != t:
            raise GraphError(f"after pass {where!r}: result {i} changed type from {t.short()} to "
                             f"{v.type.short()}")
        if v.owner is None and not isinstance(v, Constant) and id(v) not in {id(x) for x in inputs}:
            raise GraphError(f"after pass {where!r}: result {i} is a variable that is not an input")
    readers = {}
    for node in nodes:
        for v in node.inputs:
            readers[id(v)] = readers.get(id(v), 0) + 1
    for v in roots:
        readers[id(v)] = readers.get(id(v), 0) + 1
    for node in nodes:
        if node.op.name == "inplace_elemwise":
            dest = node.inputs[node.params["dest"]]
            if dest.owner is None or readers[id(dest)] != 1:
                raise GraphError(f"after pass {where!r}: {node.op.name} at {node.loc} writes into "
                                 f"a buffer that is an input, a constant, a result or read elsewhere")
