"""Whole-graph passes for control flow: optimize the inner graphs of scan and
ifelse with the outer mode's passes, drop the loop states and outputs nobody
reads, and store only the steps of a scan output that are read (``result[-1]``
keeps one step, not all of them)."""
import numpy as np

from ..trace.graph import toposort
from ..trace.inner import InnerGraph
from .engine import with_roots


def _consumers(program):
    uses = {}
    for node in toposort(program.roots()):
        for v in node.inputs:
            uses.setdefault(id(v), []).append(node)
    return uses


def _last_steps_read(var, uses, root_ids):
    """k when `var` (a stacked scan output) is only read as var[-1] ... var[-k] or by
    scan_last (1 when it is not read at all); else None."""
    if id(var) in root_ids:
        return None
    k = 0
    for node in uses.get(id(var), []):
        if node.op.name == "shape_i" and node.params["i"] > 0:
            continue  # the size of a step does not depend on how many steps are stored
        if node.op.name == "scan_last" and node.inputs[0] is var and node.inputs[1] is not var:
            k = max(k, 1)  # a converted loop's final value: the last step, or none ran
            continue
        spec = node.params.get("spec") if node.op.name == "getitem" else None
        if not spec or node.inputs[0] is not var or len(node.inputs) != 1:
            return None
        first = spec[0]
        if first[0] != "int" or not isinstance(first[1], int) or first[1] >= 0:
            return None
        k = max(k, -first[1])
    return max(k, 1)


def _rebuild(program, rebuild):
    """`program` with the nodes for which ``rebuild(node, new inputs)`` gives a new node
    replaced; nodes downstream are re-applied to the new values, so a loop that reads
    another loop's outputs (a gradient's reverse scan) reads the rebuilt one. `rebuild`
    may also return (new node, per old output the new one's index or None: unused)."""
    memo, changed = {}, False
    for node in toposort(program.roots()):
        inputs = [memo.get(id(v), v) for v in node.inputs]
        new = rebuild(node, inputs)
        new, where = new if isinstance(new, tuple) else (new, range(len(node.outputs)))
        if new is None and any(a is not b for a, b in zip(inputs, node.inputs)):
            new = node.op.make_node(inputs, node.params, loc=node.loc)
        if new is not None:
            changed = True
            memo.update((id(old), new.outputs[i]) for old, i in zip(node.outputs, where) if i is not None)
    return with_roots(program, [memo.get(id(v), v) for v in program.roots()]) if changed else program


def _inner_reads(inner, outputs):
    """Ids of the inner inputs that the inner outputs `outputs` depend on."""
    inputs = {id(v) for v in inner.inner_inputs}
    found = {id(v) for v in outputs if id(v) in inputs}
    for node in toposort(outputs, stop=inner.inner_inputs):
        found.update(id(v) for v in node.inputs if id(v) in inputs)
    return found


def _live_outputs(info, used):
    """Per recurrent state and plain output of a scan: is it needed? `used[j]` tells
    whether stacked output j is read outside; a state is also needed when a needed
    output of the step reads it."""
    inner, n_rec = info.inner, info.n_states - info.n_updates
    starts = np.cumsum([0, sum(len(t) for t in info.seq_taps)] + [len(t) for t in info.state_taps])
    state_inputs = [{id(v) for v in inner.inner_inputs[starts[j + 1]:starts[j + 2]]}
                    for j in range(info.n_states)]
    live = list(used)
    while True:
        outs = [v for j, v in enumerate(inner.outputs[:n_rec]) if live[j]]
        outs += inner.outputs[n_rec:info.n_states]  # final-only states (shared variables) stay
        outs += [v for p, v in enumerate(inner.outputs[info.n_states:info.n_states + info.n_plain_outputs])
                 if live[n_rec + p]]
        outs += inner.outputs[info.n_states + info.n_plain_outputs:]  # the tc.until condition
        reads = _inner_reads(inner, outs)
        more = [live[j] or bool(state_inputs[j] & reads) for j in range(n_rec)] + live[n_rec:]
        if more == live:
            return live
        live = more


def _without_dead_outputs(node, inputs, live):
    """The scan node with only its live recurrent states and plain outputs (see _live_outputs)."""
    import copy
    info = node.params["info"]
    inner, n_rec = info.inner, info.n_states - info.n_updates
    n_seq = len(info.seq_taps)
    n_seq_in = sum(len(t) for t in info.seq_taps)
    keep_state = live[:n_rec] + [True] * info.n_updates
    starts = np.cumsum([n_seq_in] + [len(t) for t in info.state_taps])
    inner_inputs = list(inner.inner_inputs[:n_seq_in])
    for j, kept in enumerate(keep_state):
        if kept:
            inner_inputs += inner.inner_inputs[starts[j]:starts[j + 1]]
    inner_inputs += inner.inner_inputs[starts[-1]:]
    plain = inner.outputs[info.n_states:info.n_states + info.n_plain_outputs]
    outputs = [v for v, kept in zip(inner.outputs[:info.n_states], keep_state) if kept]
    outputs += [v for v, kept in zip(plain, live[n_rec:]) if kept]
    outputs += inner.outputs[info.n_states + info.n_plain_outputs:]
    new_inner = InnerGraph(inner_inputs, outputs, name=inner.program.name)
    new_info = copy.copy(info)
    new_info.inner, new_info.keep = new_inner, None
    new_info.state_taps = tuple(t for t, kept in zip(info.state_taps, keep_state) if kept)
    new_info.n_plain_outputs = sum(live[n_rec:])
    outer_captured = dict(zip(map(id, inner.captured), inputs[len(inputs) - len(inner.captured):]))
    first_nonseq = 1 + n_seq + info.n_states
    outer = inputs[:1 + n_seq] + [v for v, kept in zip(inputs[1 + n_seq:first_nonseq], keep_state) if kept]
    outer += inputs[first_nonseq:first_nonseq + info.n_nonseq]
    outer += [outer_captured[id(v)] for v in new_inner.captured]
    new = node.op.make_node(outer, {"info": new_info}, loc=node.loc)
    where, k = [], 0
    for kept in live + [True] * info.n_updates:  # stacked outputs, then final-only states
        where.append(k if kept else None)
        k += kept
    return new, where


def scan_drop_unused(program):
    """# scan state or output nobody reads (a loop counter, a finished tag) -> not computed"""
    uses = _consumers(program)
    root_ids = {id(v) for v in program.roots()}

    def rebuild(node, inputs):
        info = node.params["info"] if node.op.name == "scan" else None
        if info is None or info.checkpoint:
            return None
        n_stacked = info.n_states - info.n_updates + info.n_plain_outputs
        used = [id(v) in root_ids or bool(uses.get(id(v))) for v in node.outputs[:n_stacked]]
        live = _live_outputs(info, used)
        if all(live):
            return None
        return _without_dead_outputs(node, inputs, live)

    return _rebuild(program, rebuild)


def scan_keep_last(program):
    """# scan output only read as out[-k], or by scan_last -> the loop stores k steps"""
    program = scan_drop_unused(program)
    uses = _consumers(program)
    root_ids = {id(v) for v in program.roots()}

    def rebuild(node, inputs):
        if node.op.name != "scan":
            return None
        info = node.params["info"]
        n_stacked = info.n_states - info.n_updates + info.n_plain_outputs
        keep = [_last_steps_read(out, uses, root_ids) for out in node.outputs[:n_stacked]]
        if all(k is None for k in keep) or tuple(keep) == info.keep:
            return None
        return node.op.make_node(inputs, {"info": info.with_keep(keep)}, loc=node.loc)

    return _rebuild(program, rebuild)


def optimize_inner_graphs(program, steps):
    """# scan and ifelse inner graphs -> optimized by the same passes as the outer graph"""
    from .pipeline import _optimize

    def rebuild(node, inputs):
        info = node.params.get("info") if node.op.name in ("scan", "ifelse") else None
        if info is None or getattr(info, "inner_optimized", False):
            return None
        new_info = _with_optimized_inner(info, lambda p: _optimize(p, steps))
        return node.op.make_node(inputs, {"info": new_info}, loc=node.loc)

    return _rebuild(program, rebuild)


optimize_inner_graphs.needs_steps = True


def _optimized(graph, run):
    program = run(graph.program)
    fresh = InnerGraph.__new__(InnerGraph)
    fresh.inner_inputs, fresh.captured = graph.inner_inputs, graph.captured
    fresh.outputs, fresh.program, fresh._interpreter = program.outputs, program, None
    return fresh


def _with_optimized_inner(info, run):
    import copy
    new = copy.copy(info)
    if hasattr(info, "inner"):
        new.inner = _optimized(info.inner, run)
    else:
        new.then_graph, new.else_graph = _optimized(info.then_graph, run), _optimized(info.else_graph, run)
    new.inner_optimized = True
    return new
