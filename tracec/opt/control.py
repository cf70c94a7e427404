"""Whole-graph passes for control flow: optimize the inner graphs of scan and
ifelse with the outer mode's passes, and store only the steps of a scan
output that are read (``result[-1]`` keeps one step, not all of them)."""
from ..trace.graph import clone_replace, toposort
from ..trace.inner import InnerGraph
from .engine import with_roots


def _consumers(program):
    uses = {}
    for node in toposort(program.roots()):
        for v in node.inputs:
            uses.setdefault(id(v), []).append(node)
    return uses


def _last_steps_read(var, uses, root_ids):
    """k when `var` (a stacked scan output) is only read as var[-1] ... var[-k]; else None."""
    if id(var) in root_ids:
        return None
    k = 0
    for node in uses.get(id(var), []):
        spec = node.params.get("spec") if node.op.name == "getitem" else None
        if not spec or node.inputs[0] is not var or len(node.inputs) != 1:
            return None
        first = spec[0]
        if first[0] != "int" or not isinstance(first[1], int) or first[1] >= 0:
            return None
        k = max(k, -first[1])
    return k or None


def _rebuild(program, mapping):
    return with_roots(program, clone_replace(program.roots(), mapping)) if mapping else program


def scan_keep_last(program):
    """# scan output only read as out[-k:] -> the loop stores k steps"""
    uses = _consumers(program)
    root_ids = {id(v) for v in program.roots()}
    mapping = {}
    for node in toposort(program.roots()):
        if node.op.name != "scan":
            continue
        info = node.params["info"]
        n_stacked = info.n_states - info.n_updates + info.n_plain_outputs
        keep = [_last_steps_read(out, uses, root_ids) for out in node.outputs[:n_stacked]]
        if all(k is None for k in keep) or tuple(keep) == info.keep:
            continue
        new = node.op.make_node(node.inputs, {"info": info.with_keep(keep)}, loc=node.loc)
        mapping.update(zip(node.outputs, new.outputs))
    return _rebuild(program, mapping)


def optimize_inner_graphs(program, steps):
    """# scan and ifelse inner graphs -> optimized by the same passes as the outer graph"""
    from .pipeline import _optimize
    mapping = {}
    for node in toposort(program.roots()):
        info = node.params.get("info") if node.op.name in ("scan", "ifelse") else None
        if info is None or getattr(info, "inner_optimized", False):
            continue
        new_info = _with_optimized_inner(info, lambda p: _optimize(p, steps))
        new = node.op.make_node(node.inputs, {"info": new_info}, loc=node.loc)
        mapping.update(zip(node.outputs, new.outputs))
    return _rebuild(program, mapping)


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
