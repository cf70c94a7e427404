"""Whole-graph passes for control flow: optimize the inner graphs of scan and
ifelse with the outer mode's passes, and store only the steps of a scan
output that are read (``result[-1]`` keeps one step, not all of them)."""
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
    """k when `var` (a stacked scan output) is only read as var[-1] ... var[-k] (1 when it
    is not read at all); else None."""
    if id(var) in root_ids:
        return None
    k = 0
    for node in uses.get(id(var), []):
        if node.op.name == "shape_i" and node.params["i"] > 0:
            continue  # the size of a step does not depend on how many steps are stored
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
    another loop's outputs (a gradient's reverse scan) reads the rebuilt one."""
    memo, changed = {}, False
    for node in toposort(program.roots()):
        inputs = [memo.get(id(v), v) for v in node.inputs]
        new = rebuild(node, inputs)
        if new is None and any(a is not b for a, b in zip(inputs, node.inputs)):
            new = node.op.make_node(inputs, node.params, loc=node.loc)
        if new is not None:
            changed = True
            memo.update((id(old), fresh) for old, fresh in zip(node.outputs, new.outputs))
    return with_roots(program, [memo.get(id(v), v) for v in program.roots()]) if changed else program


def scan_keep_last(program):
    """# scan output only read as out[-k:] -> the loop stores k steps"""
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
