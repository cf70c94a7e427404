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

from ..config import config
from ..trace.graph import Constant, toposort
from ..trace.ops import OPS
from ..trace.program import Program

MAX_SWEEPS = 30          # sweeps per pass before giving up (with a warning)
MAX_RULE_CHAIN = 10      # rewrites applied in a row to one node position within a sweep
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


_CLIENTS = {}


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
def _const_key(c):
    if c.type.weak:
        return ("weak", type(c.value).__name__, repr(c.value))
    return (c.type, c.value.dtype.str, c.value.shape, c.value.tobytes())


def _merge_key(node):
    try:
        params_key = hash(node.params)
    except TypeError:
        return None
    return (node.op.name, tuple(map(id, node.inputs)), params_key)


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

    def rules_for(self, op_name):
        specific = self.by_op.get(op_name)
        return specific + self.generic if specific else self.generic

    def sweep(self, roots, stop):
        """Rewrite once over the graph; returns (new roots, changed)."""
        memo = {}          # id(old variable) -> new variable
        consts = {}        # constant key -> canonical Constant
        cache = {}         # merge key -> (params, final outputs of the first such node)
        changed = False
        nodes = toposort(roots, stop=stop)
        _CLIENTS.clear()
        for node in nodes:
            for v in node.inputs:
                _CLIENTS[id(v)] = _CLIENTS.get(id(v), 0) + 1
        for v in roots:
            _CLIENTS[id(v)] = _CLIENTS.get(id(v), 0) + 1
        for node in nodes:
            new_inputs = []
            for v in node.inputs:
                v2 = memo.get(id(v), v)
                if self.merge and isinstance(v2, Constant):
                    v2 = consts.setdefault(_const_key(v2), v2)
                new_inputs.append(v2)
            if any(a is not b for a, b in zip(new_inputs, node.inputs)):
                current = node.op.make_node(new_inputs, node.params, loc=node.loc)
            else:
                current = node
            key = _merge_key(current) if self.merge else None
            if key is not None:
                twin = cache.get(key)
                if twin is not None and twin[0] == current.params:
                    for old, new in zip(node.outputs, twin[1]):
                        memo[id(old)] = new
                        _CLIENTS[id(new)] = _CLIENTS.get(id(new), 0) + _CLIENTS.get(id(old), 0)
                    changed = True
                    continue
            outputs = list(current.outputs)
            for _ in range(MAX_RULE_CHAIN):
                replacement = self._rewrite(current)
                if replacement is None:
                    break
                changed = True
                outputs = replacement
                owner = outputs[0].owner
                if owner is None or len(owner.outputs) != len(outputs) or \
                        any(o is not w for o, w in zip(owner.outputs, outputs)):
                    break
                current = owner
            if key is not None and key not in cache:
                cache[key] = (node.params, outputs)
            for old, new in zip(node.outputs, outputs):
                memo[id(old)] = new
                if new is not old:
                    _CLIENTS[id(new)] = _CLIENTS.get(id(new), 0) + _CLIENTS.get(id(old), 0)
        new_roots = []
        for r in roots:
            r2 = memo.get(id(r), r)
            if self.merge and isinstance(r2, Constant):
                r2 = consts.setdefault(_const_key(r2), r2)
            new_roots.append(r2)
        changed = changed or any(a is not b for a, b in zip(new_roots, roots))
        return new_roots, changed

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
    roots = program.roots()
    before = count_nodes(roots, stop)
    limit = before * GROWTH_FACTOR + GROWTH_SLACK
    sweeper = Sweeper(name, rules, merge)
    sweeps = 0
    for sweeps in range(1, MAX_SWEEPS + 1):
        new_roots, changed = sweeper.sweep(roots, stop)
        if not changed:
            break
        size = count_nodes(new_roots, stop)
        if size > limit:
            warnings.warn(f"optimizer pass {name!r} grew the graph from {before} to {size} nodes; "
                          "stopping it there (the graph before this sweep is kept)", OptimizerWarning)
            break
        roots = new_roots
        if check is not None:
            check(with_roots(program, roots), name)
    else:
        warnings.warn(f"optimizer pass {name!r} did not reach a fixed point in {MAX_SWEEPS} "
                      "sweeps; stopping it there", OptimizerWarning)
    result = with_roots(program, roots)
    stats = {"pass": name, "seconds": time.perf_counter() - start, "nodes_before": before,
             "nodes_after": count_nodes(roots, stop), "sweeps": sweeps, "rewrites": sweeper.applied}
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
