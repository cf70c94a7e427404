"""Elementwise fusion and in-place buffer reuse: the two whole-graph passes.

Both need to know every consumer of a value, so they are functions of the
whole Program rather than node rewrites; they run once, after the node
rewrites reached their fixed point.

Fusion groups connected elementwise nodes (optionally ending in one
reduction) into one `fused_elemwise` node whose inner graph keeps each
node's source line: a run-time error inside names the user's line that built
the failing operation, and ``node.params['inner'].locs`` lists them all. An
intermediate used outside the group ends the group there (it must be stored
anyway), so fusion never computes a value twice.

In-place: an elementwise node whose input is a fresh buffer nobody else
reads (made by an earlier node of this program, used only here, not a
result) writes its result into that buffer (`inplace_elemwise`). Caller
arrays, shared storage and constants are never fresh, so never written.
"""
import numpy as np

from ..trace.graph import Constant, Variable, toposort
from ..trace.ops import OPS
from ..trace.ops.special import FusedGraph
from .engine import with_roots

FUSE_REDUCTIONS = {"sum", "prod", "max", "min", "any", "all"}


def _clients(nodes, roots):
    clients = {}
    for node in nodes:
        for v in node.inputs:
            clients.setdefault(id(v), []).append(node)
    for v in roots:
        clients.setdefault(id(v), []).append(None)  # None: a program result
    return clients


def _fusible(node):
    return node.op.kind == "elemwise" and len(node.outputs) == 1 and not node.outputs[0].type.weak


def _grow(root, clients, taken):
    """The cluster of fusible nodes feeding `root` whose results stay inside it."""
    cluster = {id(root): root}
    queue = [root]
    while queue:
        node = queue.pop()
        for v in node.inputs:
            p = v.owner
            if p is None or id(p) in cluster or id(p) in taken or not _fusible(p):
                continue
            # a producer whose other readers are not (yet) in the cluster is looked at
            # again when one of them joins, since it is then an input of that one
            if all(c is not None and id(c) in cluster for c in clients.get(id(v), [None])):
                cluster[id(p)] = p
                queue.append(p)
    return cluster


def _inner_graph(cluster, position):
    """A FusedGraph for the cluster's nodes, and the outer inputs it reads."""
    members = sorted(cluster.values(), key=lambda n: position[id(n)])
    outer_inputs, inner_of = [], {}
    for node in members:
        for v in node.inputs:
            if (v.owner is not None and id(v.owner) in cluster) or id(v) in inner_of:
                continue
            if isinstance(v, Constant):
                continue  # constants stay inside the kernel
            inner_of[id(v)] = Variable(v.type, name=v.name)
            outer_inputs.append(v)
    inner_nodes = []
    for node in members:
        ins = [inner_of.get(id(v), v) for v in node.inputs]
        new = node.op.make_node(ins, node.params, loc=node.loc)
        inner_nodes.append(new)
        inner_of[id(node.outputs[0])] = new.outputs[0]
    inputs = [inner_of[id(v)] for v in outer_inputs]
    return FusedGraph(inputs, inner_nodes[-1].outputs[0], inner_nodes), outer_inputs


def fuse_elemwise(program):
    """Replace clusters of two or more elementwise nodes by `fused_elemwise` nodes."""
    stop = program.all_inputs()
    roots = program.roots()
    order = toposort(roots, stop=stop)
    clients = _clients(order, roots)
    taken, clusters = set(), {}
    for node in reversed(order):  # results first: each cluster grows towards the inputs
        if id(node) in taken:
            continue
        if _fusible(node):
            cluster = _grow(node, clients, taken)
        elif node.op.name in FUSE_REDUCTIONS and node.inputs[0].owner is not None and \
                _fusible(node.inputs[0].owner) and len(clients.get(id(node.inputs[0]), ())) == 1 and \
                id(node.inputs[0].owner) not in taken:
            cluster = _grow(node, clients, taken)
        else:
            continue
        if len(cluster) >= 2:
            taken.update(cluster)
            clusters[id(node)] = cluster
    if not clusters:
        return program
    memo = {}
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        if id(node) in taken and id(node) not in clusters:
            continue  # inside a cluster: computed by its fused node
        if id(node) in clusters:
            inner, outer = _inner_graph(clusters[id(node)], position)
            ins = [memo.get(id(v), v) for v in outer]
            new = OPS["fused_elemwise"].make_node(ins, {"inner": inner}, loc=node.loc)
        else:
            ins = [memo.get(id(v), v) for v in node.inputs]
            if all(a is b for a, b in zip(ins, node.inputs)):
                continue
            new = node.op.make_node(ins, node.params, loc=node.loc)
        for old, fresh in zip(node.outputs, new.outputs):
            memo[id(old)] = fresh
    return with_roots(program, [memo.get(id(v), v) for v in roots])


# ops whose result is always a new array that they own (np.asarray-style ops may return an input)
FRESH_OPS = {name for name, op in OPS.items() if isinstance(op.impl, np.ufunc)} | {
    "where", "clip", "softplus", "sigmoid", "gemm", "gemv", "matmul", "dot", "outer", "tensordot",
    "alloc", "inplace_elemwise"}


def _writable_result(var):
    node = var.owner
    if node is None or var.type.weak:
        return False
    if node.op.name == "fused_elemwise":
        return node.params["inner"].nodes[-1].op.name in FRESH_OPS
    return node.op.name in FRESH_OPS


def _inplace_capable(node):
    """Can `node` write its result into one of its inputs (an `out=` argument)?"""
    if len(node.outputs) != 1 or node.outputs[0].type.weak:
        return False
    if isinstance(node.op.impl, np.ufunc):  # np.matmul is a (generalized) ufunc too: not elementwise
        return node.op.name != "cast" and node.op.kind == "elemwise"
    if node.op.name == "fused_elemwise":
        last = node.params["inner"].nodes[-1]
        return isinstance(last.op.impl, np.ufunc) and last.op.kind == "elemwise"
    return False


def reuse_buffers(program):
    """Let elementwise nodes write into dead intermediate buffers (`inplace_elemwise`)."""
    stop = program.all_inputs()
    roots = program.roots()
    order = toposort(roots, stop=stop)
    clients = _clients(order, roots)
    memo = {}
    for node in order:
        ins = [memo.get(id(v), v) for v in node.inputs]
        dest = None
        if _inplace_capable(node):
            out_type = node.outputs[0].type
            for k, v in enumerate(node.inputs):
                if len(clients.get(id(v), ())) == 1 and _writable_result(v) and \
                        v.dtype == out_type.dtype and v.ndim == out_type.ndim:
                    dest = k
                    break
        if dest is not None:
            new = OPS["inplace_elemwise"].make_node(
                ins, {"op": node.op.name, "params": node.params, "dest": dest}, loc=node.loc)
        elif any(a is not b for a, b in zip(ins, node.inputs)):
            new = node.op.make_node(ins, node.params, loc=node.loc)
        else:
            continue
        for old, fresh in zip(node.outputs, new.outputs):
            memo[id(old)] = fresh
    return with_roots(program, [memo.get(id(v), v) for v in roots])
