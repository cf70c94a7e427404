"""Elementwise fusion and in-place buffer reuse: whole-graph passes.

They need to know every consumer of a value, so they are functions of the
whole Program rather than node rewrites; they run once, after the node
rewrites reached their fixed point.

`fuse_elemwise` groups connected elementwise nodes (optionally ending in one
reduction) into one `fused_elemwise` node whose inner graph keeps each node's
source line: a run-time error inside names the user's line that built the
failing operation, and ``node.params['inner'].locs`` lists them all. There an
intermediate used outside the group ends the group (it must be stored anyway).

`merge_kernels` then makes multi-output kernels: kernels (and lone
elementwise nodes) where one reads the other's output, or that read the same
array (``np.sin(x), np.cos(x)``), merge into one node with several outputs; an
intermediate read both inside and outside becomes one of them. Every node
stays in exactly one kernel, so nothing is computed twice. Two rules keep it
sound:

* no cycles: each kernel has a *time*, its place in one topological order of
  the kernels (at first each node's position in the graph). Two kernels merge
  only at a time after everything the result reads from outside and before
  everything that reads its outputs, so a kernel never both feeds and reads
  an outside node.
* one shape: every output of a multi-output kernel has the shape of the
  broadcast of all its inputs (the C ABI). Shapes are not types, so this is
  decided on *shape sources*: the values whose broadcast gives a value's
  shape, leaving out those whose every dimension is known to be 1. Kernels
  merge only when their sources and ranks are the same.

Both passes keep each kernel within MAX_KERNEL_ARRAYS arrays (the inputs, the
constants and the outputs of its C loop): a larger group is split.

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
# arrays one kernel may take: its inputs, its constants (passed as 0-d arrays, not inlined in
# the C source: cgen/kernel.py collect_args) and its outputs. The C runtime's MAX_KERNEL_ARGS
# (cgen/_native.pyx; tests check they agree): a larger kernel would silently run NumPy.
MAX_KERNEL_ARRAYS = 64


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
    """The cluster of fusible nodes feeding `root` whose results stay inside it, taking no more
    than MAX_KERNEL_ARRAYS arrays (its one output and what it reads from outside)."""
    cluster = {id(root): root}
    reads = _reads_with(set(), root)  # ids of the values (constants too) read from outside
    queue = [root]
    while queue:
        node = queue.pop()
        for v in node.inputs:
            p = v.owner
            if p is None or id(p) in cluster or id(p) in taken or not _fusible(p):
                continue
            # a producer whose other readers are not (yet) in the cluster is looked at
            # again when one of them joins, since it is then an input of that one
            if not all(c is not None and id(c) in cluster for c in clients.get(id(v), [None])):
                continue
            grown = _reads_with(reads, p)
            # room for p and for the producers only p reads, which nothing else could fuse with
            # (left out, they would run alone); else p starts a kernel of its own with them
            if len(_reads_with(grown, *_leaf_producers(p, clients, taken))) + 1 > MAX_KERNEL_ARRAYS:
                continue
            reads = grown
            cluster[id(p)] = p
            queue.append(p)
    return cluster


def _reads_with(reads, *nodes):
    """What a cluster reading `reads` (ids) reads once `nodes`, producers of some of them, join."""
    made = {id(n.outputs[0]) for n in nodes}
    return (reads - made) | {id(w) for n in nodes for w in n.inputs if id(w) not in made}


def _leaf_producers(node, clients, taken):
    """Fusible producers read by `node` alone that have no fusible producer of their own."""
    def free(v):
        return v.owner is not None and id(v.owner) not in taken and _fusible(v.owner)
    return [v.owner for v in {id(v): v for v in node.inputs}.values()
            if free(v) and all(c is node for c in clients.get(id(v), [None]))
            and not any(free(w) for w in v.owner.inputs)]


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
    return FusedGraph(inputs, [inner_nodes[-1].outputs[0]], inner_nodes), outer_inputs


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


# -- multi-output kernels -------------------------------------------------------------
MAX_MERGE_TRIES = 8  # kernels one shared value tries to join (bounds the work on a wide fan-out)
MAX_UNITS = 32       # kernels and lone nodes merged into one (bounds the checks of each merge)
_INF = float("inf")


def _sets_shape(var):
    """Can `var` decide a broadcast shape (some dimension not known to be 1)?"""
    return not all(var.type.broadcastable)


def _mergeable(node):
    """A lone elementwise node, or a kernel without a reduction: what `merge_kernels` merges."""
    if _fusible(node):
        return True
    return node.op.name == "fused_elemwise" and not any(v.type.weak for v in node.outputs) and \
        all(n.op.kind == "elemwise" for n in node.params["inner"].nodes)


def _shape_sources(order):
    """id(mergeable node) -> frozenset of ids of the values whose broadcast is its outputs' shape."""
    sources, of_value = {}, {}
    for node in order:
        if not _mergeable(node):
            continue
        found = set()
        for v in node.inputs:
            inherited = of_value.get(id(v))
            if inherited is not None:
                found |= inherited
            elif _sets_shape(v):
                found.add(id(v))
        if node.op.name == "fused_elemwise":  # constants inside a kernel broadcast too
            found.update(id(c) for n in node.params["inner"].nodes for c in n.inputs
                         if isinstance(c, Constant) and _sets_shape(c))
        sources[id(node)] = frozenset(found)
        for out in node.outputs:
            of_value[id(out)] = sources[id(node)]
    return sources


class _Kernels:
    """Kernels being merged: union-find over node positions; each set has a time."""

    def __init__(self, order, clients):
        self.order, self.clients = order, clients
        self.pos = {id(n): i for i, n in enumerate(order)}
        self.parent = list(range(len(order)))
        self.time = list(range(len(order)))  # of each set's representative
        self.members = {}                    # representative -> positions (unsorted), for sets of 2 or more
        self.sources = _shape_sources(order)

    def find(self, i):
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def time_of(self, node):
        """When the kernel computing `node` runs (None: a program result, read last)."""
        return _INF if node is None else self.time[self.find(self.pos[id(node)])]

    def size(self, g):
        """How many kernels and lone nodes the kernel with representative g holds."""
        return len(self.members.get(g, (g,)))

    def key(self, i):
        """(shape sources, rank) of the kernel with representative i: merged kernels share it."""
        node = self.order[i]
        return self.sources.get(id(node)), node.outputs[0].ndim

    def merge_all(self):
        """Merge kernels reading a common array, or one the other's output."""
        seen = set()
        for node in self.order:
            for v in node.inputs:
                if id(v) not in seen:
                    seen.add(id(v))
                    self._merge_readers(v)

    def _merge_readers(self, v):
        if isinstance(v, Constant) or not _sets_shape(v):
            return  # a shared scalar or constant saves no memory traffic
        candidates = []
        if v.owner is not None and _mergeable(v.owner):
            candidates.append(self.pos[id(v.owner)])
        readers = self.clients.get(id(v), ())
        candidates += [self.pos[id(c)] for c in readers if c is not None and _mergeable(c)]
        seen, kernels = set(), []
        for i in candidates:
            g = self.find(i)
            if g in seen:
                continue
            seen.add(g)
            for k, a in enumerate(kernels):
                merged = self._merge(self.find(a), g)
                if merged is not None:
                    kernels[k] = merged
                    if self.size(merged) >= MAX_UNITS:
                        del kernels[k]  # full: later readers start another kernel
                    break
            else:
                if len(kernels) < MAX_MERGE_TRIES:
                    kernels.append(g)

    def _merge(self, a, b):
        """Representative of the union of kernels a and b, or None where that is not sound."""
        if a == b:
            return a
        if self.key(a) != self.key(b) or self.size(a) + self.size(b) > MAX_UNITS:
            return None
        if self.time[a] > self.time[b]:
            a, b = b, a
        both = (a, b)
        ma, mb = self.members.get(a, [a]), self.members.get(b, [b])
        if self.n_arrays(ma + mb) > MAX_KERNEL_ARRAYS:
            return None
        # at b's time a's outside readers must come later; at a's time b's outside inputs earlier
        options = [(self._readers_after, ma, self.time[b]), (self._inputs_before, mb, self.time[a])]
        if len(ma) > len(mb):
            options.reverse()  # the cheaper check first
        for check, members, t in options:
            if check(members, both, t):
                return self._union(a, b, t)
        return None

    def n_arrays(self, members):
        """Arrays the kernel of these members would take (as `_merged_kernel` builds it): the
        values it reads from outside, the constants inside it, and the outputs read outside."""
        inside = {id(self.order[i]) for i in members}
        reads, n_outputs = set(), 0
        for i in members:
            node = self.order[i]
            reads.update(id(v) for v in node.inputs if v.owner is None or id(v.owner) not in inside)
            if node.op.name == "fused_elemwise":
                reads.update(id(c) for n in node.params["inner"].nodes for c in n.inputs
                             if isinstance(c, Constant))
            n_outputs += sum(any(c is None or id(c) not in inside for c in self.clients.get(id(out), ()))
                             for out in node.outputs)
        return len(reads) + n_outputs

    def _readers_after(self, members, both, t):
        for i in members:
            for out in self.order[i].outputs:
                for c in self.clients.get(id(out), ()):
                    if (c is None or self.find(self.pos[id(c)]) not in both) and self.time_of(c) <= t:
                        return False
        return True

    def _inputs_before(self, members, both, t):
        for i in members:
            for v in self.order[i].inputs:
                p = v.owner
                if p is not None and self.find(self.pos[id(p)]) not in both and self.time_of(p) >= t:
                    return False
        return True

    def _union(self, a, b, t):
        ma, mb = self.members.pop(a, [a]), self.members.pop(b, [b])
        if len(ma) < len(mb):
            a, b, ma, mb = b, a, mb, ma
        ma.extend(mb)  # the smaller list into the larger: linear-logarithmic overall
        self.parent[b] = a
        self.time[a] = t
        self.members[a] = ma
        return a


def _merged_kernel(nodes, clients, memo):
    """One fused_elemwise node computing `nodes` (lone nodes and kernels, in graph order):
    returns (the outer values it replaces, the new node)."""
    inside = {id(n) for n in nodes}
    inner_of, outer_inputs, inner_nodes, replaced, results = {}, [], [], [], []

    def inner_value(v):
        if isinstance(v, Constant):
            return v  # constants stay inside the kernel
        if id(v) not in inner_of:  # an outer input (values of earlier members are mapped already)
            inner_of[id(v)] = Variable(v.type, name=v.name)
            outer_inputs.append(v)
        return inner_of[id(v)]

    for node in nodes:
        ins = [inner_value(v) for v in node.inputs]
        if node.op.name == "fused_elemwise":
            inner = node.params["inner"]
            local = {id(w): x for w, x in zip(inner.inputs, ins)}
            for n in inner.nodes:
                new = n.op.make_node([local.get(id(w), w) for w in n.inputs], n.params, loc=n.loc)
                inner_nodes.append(new)
                local[id(n.outputs[0])] = new.outputs[0]
            values = [local[id(w)] for w in inner.outputs]
        else:
            new = node.op.make_node(ins, node.params, loc=node.loc)
            inner_nodes.append(new)
            values = list(new.outputs)
        for out, value in zip(node.outputs, values):
            inner_of[id(out)] = value
            if any(c is None or id(c) not in inside for c in clients.get(id(out), ())):
                replaced.append(out)  # read outside the kernel: one of its outputs
                results.append(value)
    graph = FusedGraph([inner_of[id(v)] for v in outer_inputs], results, inner_nodes)
    ins = [memo.get(id(v), v) for v in outer_inputs]
    return replaced, OPS["fused_elemwise"].make_node(ins, {"inner": graph}, loc=nodes[-1].loc)


def merge_kernels(program, steps=()):
    """Merge kernels that share inputs or intermediates into multi-output `fused_elemwise` nodes.

    Part of fusion: runs only where the `fusion` pass does.
    """
    if not any(name == "fusion" for name, _ in steps):
        return program
    roots = program.roots()
    order = toposort(roots, stop=program.all_inputs())
    clients = _clients(order, roots)
    kernels = _Kernels(order, clients)
    kernels.merge_all()
    if not kernels.members:
        return program
    # each kernel (or lone node) in the order of its time: a topological order of the new graph
    memo = {}
    for g in sorted({kernels.find(i) for i in range(len(order))}, key=lambda g: kernels.time[g]):
        members = kernels.members.get(g)
        if members is None:
            node = order[g]
            ins = [memo.get(id(v), v) for v in node.inputs]
            if all(a is b for a, b in zip(ins, node.inputs)):
                continue
            replaced, new = node.outputs, node.op.make_node(ins, node.params, loc=node.loc)
        else:
            replaced, new = _merged_kernel([order[i] for i in sorted(members)], clients, memo)
        for old, fresh in zip(replaced, new.outputs):
            memo[id(old)] = fresh
    return with_roots(program, [memo.get(id(v), v) for v in roots])


merge_kernels.needs_steps = True

# ops whose result is always a new array that they own (np.asarray-style ops may return an input)
FRESH_OPS = {name for name, op in OPS.items() if isinstance(op.impl, np.ufunc)} | {
    "where", "clip", "softplus", "sigmoid", "gemm", "gemv", "matmul", "dot", "outer", "tensordot",
    "alloc", "inplace_elemwise"}


def _writable_result(var):
    node = var.owner
    if node is None or var.type.weak:
        return False
    if node.op.name == "fused_elemwise":
        return node.params["inner"].outputs[var.index].owner.op.name in FRESH_OPS
    return node.op.name in FRESH_OPS


def _inplace_capable(node):
    """Can `node` write its result into one of its inputs (an `out=` argument)?

    Multi-output kernels cannot: their NumPy form computes the outputs one
    after the other, so an input buffer may still be read after one is written.
    """
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
