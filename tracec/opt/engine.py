"""The rewrite engine: apply a list of rewrites to a Program until nothing changes.

A rewrite is a pure function ``rule(node) -> replacement | None``: it looks at
one node (and, through ``var.owner``, at what feeds it) and returns the
variable(s) that compute the same value, or None. The engine walks the graph
inputs-first, rebuilds each node whose inputs were replaced, merges it with an
equal node already seen (hash-consing: the `merge` pass), then tries the rules
of the node's op. A sweep that changed something is followed by another, until
a sweep changes nothing (the fixed point), a sweep cap is hit, or the graph
grows past a bound; the last two stop the pass with a warning, never with a
wrong graph.
"""
import time
import warnings
import weakref

from ..config import config
from ..trace.graph import Constant, Node, toposort
from ..trace.ops import OPS
from ..trace.program import Program

MAX_SWEEPS = 30          # sweeps per pass before giving up (with a warning)
MAX_NESTING = 25         # replacements of replacements visited within one sweep
GROWTH_FACTOR = 2.0      # a pass may not more than double the graph (+ GROWTH_SLACK nodes)
GROWTH_SLACK = 200


class RewriteError(AssertionError):
    """A rewrite returned a replacement of the wrong type (a bug in the rewrite)."""


class OptimizerWarning(UserWarning):
    """A pass stopped early (sweep cap or node-growth guard); the graph is still correct."""


# -- helpers for writing rules ----------------------------------------------------
class Builder:
    """Builds replacement nodes at the user's source line of the node being replaced.

    ``b = Builder(node); b("log1p", x)`` is ``OPS["log1p"](x)`` with ``loc=node.loc``.
    """

    __slots__ = ("loc",)

    def __init__(self, node):
        self.loc = node.loc

    def __call__(self, op_name, *inputs, **params):
        node = OPS[op_name].make_node(list(inputs), params, loc=self.loc)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs


def on(*op_names):
    """Mark a rule as looking only at nodes of these ops (so the engine skips the others)."""
    def mark(rule):
        rule.ops = op_names
        return rule
    return mark


def n_clients(var):
    """How many nodes (or program roots) use `var` in the graph being rewritten.

    Counted on the graph as the current sweep started (replacements inherit the
    count of what they replace); a variable made during the sweep counts as 1.
    """
    return _CLIENTS.get(id(var), 1)


def n_shape_clients(var):
    """How many of `var`'s users only read its shape (``shape_i`` nodes); see `n_clients`."""
    return _SHAPE_CLIENTS.get(id(var), 0)


_CLIENTS = {}
_SHAPE_CLIENTS = {}


def producer(var, *op_names):
    """The node computing `var` when its op is one of `op_names`, else None."""
    node = var.owner
    if node is not None and (not op_names or node.op.name in op_names):
        return node
    return None


def scalar_value(var):
    """The value of a constant with a single element (any rank), else None."""
    if isinstance(var, Constant):
        value = var.value
        if var.type.weak:
            return value
        if value.size == 1:
            return value.reshape(())[()].item()
    return None


def is_scalar_const(var, value):
    """Is `var` a single-element constant equal to `value` (and no wider than a scalar)?"""
    v = scalar_value(var)
    return v is not None and v == value


def same_type(node, replacement):
    """`replacement` if it has exactly the type of `node`'s output, else None."""
    return replacement if replacement.type == node.outputs[0].type else None


# -- the engine ---------------------------------------------------------------------
_CONST_KEYS = weakref.WeakKeyDictionary()


def _const_key(c):
    """Identity of a constant's value (bitwise: -0.0 and 0.0 differ), cached per constant."""
    key = _CONST_KEYS.get(c)
    if key is None:
        if c.type.weak:
            key = ("weak", type(c.value).__name__, repr(c.value))
        else:
            key = (c.type, c.value.dtype.str, c.value.shape, c.value.tobytes())
        _CONST_KEYS[c] = key
    return key


def _merge_key(node):
    params = node.params
    if not params:
        return (node.op.name, tuple(map(id, node.inputs)))
    h = params.__dict__.get("_merge_hash")  # Params are immutable: hash them once
    if h is None:
        try:
            h = hash(params)
        except TypeError:
            return None
        params.__dict__["_merge_hash"] = h
    return (node.op.name, tuple(map(id, node.inputs)), h)


def rebuild(node, new_inputs):
    """`node` applied to `new_inputs`; the type rule runs again only when input types changed."""
    for a, b in zip(new_inputs, node.inputs):
        if a is b:
            continue
        ca, cb = isinstance(a, Constant), isinstance(b, Constant)
        if a.type != b.type or ca != cb or (ca and _const_key(a) != _const_key(b)):
            return node.op.make_node(new_inputs, node.params, loc=node.loc)
    return Node(node.op, new_inputs, node.params, [o.type for o in node.outputs], node.loc)


class _SweepState:
    """The bookkeeping of one sweep: old -> new variables, merged nodes, canonical constants."""

    def __init__(self, sweeper):
        self.sweeper = sweeper
        self.merge = sweeper.merge
        # id(variable of the old graph or of a replacement) -> final variable; final
        # variables are keys too (of themselves), so memo holds every visited value
        self.memo = {}
        self.consts = {}     # constant key -> canonical Constant
        self.cache = {}      # merge key -> (params, final outputs of the first such node)
        self.keep = []       # every variable whose id is recorded stays alive: ids stay unique
        self.changed = False
        self.complete = True

    def visit(self, node, depth):
        """Give node's outputs their final variables in `memo`."""
        memo, merge = self.memo, self.merge
        current = node
        for k, v in enumerate(node.inputs):
            v2 = memo.get(id(v), v)
            if merge and v2.owner is None and isinstance(v2, Constant):
                v2 = self.consts.setdefault(_const_key(v2), v2)
            if v2 is not v:
                new_inputs = [memo.get(id(w), w) for w in node.inputs]
                if merge:
                    new_inputs = [self.consts.setdefault(_const_key(w), w) if isinstance(w, Constant) else w
                                  for w in new_inputs]
                current = rebuild(node, new_inputs)
                break
        key = _merge_key(current) if merge else None
        if key is not None:
            twin = self.cache.get(key)
            if twin is not None and twin[0] == current.params:
                self._map(node, twin[1])
                self.changed = True
                return
        outputs = current.outputs
        tried = self.sweeper.tried
        if id(current) not in tried:
            replacement = self.sweeper._rewrite(current)
            if replacement is None:
                tried[id(current)] = current
            else:
                self.changed = True
                if depth < MAX_NESTING:
                    for new in toposort(replacement, stop_ids=memo):  # its nodes not visited yet
                        self.visit(new, depth + 1)
                    replacement = [memo.get(id(v), v) for v in replacement]
                else:
                    self.complete = False
                outputs = replacement
        if key is not None and key not in self.cache:
            self.cache[key] = (node.params, outputs)
        self._map(node, outputs)

    def _map(self, node, outputs):
        clients, memo = _CLIENTS, self.memo
        self.keep.append(outputs)
        for old, new in zip(node.outputs, outputs):
            memo[id(old)] = new
            memo.setdefault(id(new), new)  # an old variable already rewritten keeps its mapping
            if new is not old:
                clients[id(new)] = clients.get(id(new), 0) + clients.get(id(old), 0)


class Sweeper:
    """One pass: its rules grouped by op name, applied sweep after sweep."""

    def __init__(self, name, rules, merge=True):
        self.name = name
        self.merge = merge
        self.by_op = {}   # op name -> rules; key None: rules for every op
        for rule in rules:
            for op_name in getattr(rule, "ops", None) or (None,):
                self.by_op.setdefault(op_name, []).append(rule)
        self.generic = self.by_op.pop(None, [])
        self.applied = {}  # rule name -> count
        self.tried = {}    # id(node) -> node: every rule failed on it (nodes never change)

    def rules_for(self, op_name):
        specific = self.by_op.get(op_name)
        return specific + self.generic if specific else self.generic

    def sweep(self, roots, stop):
        """Rewrite once over the graph; returns (new roots, changed, complete, nodes in the old graph).

        Nodes are visited inputs first. A replacement's new nodes are visited
        (merged, rewritten) right away, so one sweep normally reaches the fixed
        point; `complete` is False when nesting went deeper than MAX_NESTING and
        another sweep is needed.
        """
        nodes = toposort(roots, stop=stop)
        clients, shape_clients = _CLIENTS, _SHAPE_CLIENTS
        clients.clear()
        shape_clients.clear()
        for node in nodes:
            for v in node.inputs:
                clients[id(v)] = clients.get(id(v), 0) + 1
            if node.op.name == "shape_i":
                v = node.inputs[0]
                shape_clients[id(v)] = shape_clients.get(id(v), 0) + 1
        for v in roots:
            clients[id(v)] = clients.get(id(v), 0) + 1
        state = _SweepState(self)
        for node in nodes:
            state.visit(node, 0)
        memo, merge, consts = state.memo, self.merge, state.consts
        new_roots = []
        for r in roots:
            r2 = memo.get(id(r), r)
            if merge and isinstance(r2, Constant):
                r2 = consts.setdefault(_const_key(r2), r2)
            new_roots.append(r2)
        changed = state.changed or any(a is not b for a, b in zip(new_roots, roots))
        return new_roots, changed, state.complete, len(nodes)

    def _rewrite(self, node):
        """The first rule's replacement for `node` (a list, one per output), or None."""
        for rule in self.rules_for(node.op.name):
            try:
                out = rule(node)
            except (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError):
                out = None  # the replacement could not be built (e.g. a constant out of range)
            if out is None:
                continue
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            if len(out) != len(node.outputs):
                raise RewriteError(f"rewrite {rule.__name__} returned {len(out)} values for "
                                   f"{node.op.name} with {len(node.outputs)} outputs")
            bad = [(o, r) for o, r in zip(node.outputs, out) if r is not None and o.type != r.type]
            if bad:
                if config.check_graph:
                    o, r = bad[0]
                    raise RewriteError(f"rewrite {rule.__name__} replaced {node.op.name} "
                                       f"({o.type.short()}, built at {node.loc}) by a value of "
                                       f"type {r.type.short()}")
                continue
            if all(r is None or r is o for o, r in zip(node.outputs, out)):
                continue
            out = [o if r is None else r for o, r in zip(node.outputs, out)]
            self.applied[rule.__name__] = self.applied.get(rule.__name__, 0) + 1
            return out
        return None


def count_nodes(roots, stop):
    return len(toposort(roots, stop=stop))


def run_pass(program, name, rules, merge=True, check=None):
    """Apply `rules` to `program` to a fixed point; returns (program, stats)."""
    start = time.perf_counter()
    stop = program.all_inputs()
    roots = previous = program.roots()
    sweeper = Sweeper(name, rules, merge)
    before = after = limit = None
    sweeps = 0
    while True:
        new_roots, changed, complete, size = sweeper.sweep(roots, stop)
        sweeps += 1
        if before is None:
            before, limit = size, size * GROWTH_FACTOR + GROWTH_SLACK
        if size > limit:
            warnings.warn(f"optimizer pass {name!r} grew the graph from {before} to {size} nodes; "
                          "stopping it there (the graph before that sweep is kept)", OptimizerWarning)
            roots, after = previous, None
            break
        after = size
        if not changed:
            break
        previous, roots, after = roots, new_roots, None
        if check is not None:
            check(with_roots(program, roots), name)
        if complete and len(roots) and count_nodes(roots, stop) <= limit:
            break  # new nodes were visited as they were made: this is the fixed point
        if sweeps >= MAX_SWEEPS:
            warnings.warn(f"optimizer pass {name!r} did not reach a fixed point in {MAX_SWEEPS} "
                          "sweeps; stopping it there", OptimizerWarning)
            break
    result = with_roots(program, roots)
    stats = {"pass": name, "seconds": time.perf_counter() - start, "nodes_before": before,
             "nodes_after": count_nodes(roots, stop) if after is None else after,
             "sweeps": sweeps, "rewrites": sweeper.applied}
    return result, stats


def with_roots(program, roots):
    """`program` with its roots (outputs, update and write-back values) replaced.

    The input interface (explicit inputs, then every shared variable the
    original read) is kept, so a backend built on the result takes the same
    argument list as one built on the original.
    """
    n_out, n_upd = len(program.outputs), len(program.updates)
    new = Program.__new__(Program)
    new.inputs = list(program.inputs)
    new.outputs = list(roots[:n_out])
    new.updates = [(s, v) for (s, _), v in zip(program.updates, roots[n_out:n_out + n_upd])]
    new.writebacks = [(i, v) for (i, _), v in zip(program.writebacks, roots[n_out + n_upd:])]
    new.name = program.name
    new.shared = list(program.shared)
    new.shared_leaves = list(program.shared_leaves)
    return new
