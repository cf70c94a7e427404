"""The pass pipeline, modes, and `optimize`.

`PIPELINE` is the whole optimizer: an ordered list of ``(pass name, rules)``.
`rules` is either a list of node rewrites (applied to a fixed point by the
engine, merging equal nodes as it goes) or one function ``Program -> Program``
for the whole-graph passes. A rule can be named by its function name or by
the name of any pass it appears in; `Mode` and ``tc.config.optimizer_including
/ optimizer_excluding`` turn passes and single rules on and off by those names.
"""
import gc
import threading
import time
import warnings

from ..config import config
from ..trace.graph import Constant, SourceLoc, Variable, clone_replace
from ..trace.ops import OPS
from .basic import CONSTANT_FOLDING, DEAD_CODE
from .canonicalize import CANONICALIZE
from .control import optimize_inner_graphs, scan_keep_last
from .engine import run_pass, with_roots
from .fusion import fuse_elemwise, merge_kernels, reuse_buffers
from .lowering import LOWERING
from .scan_pushout import SCAN_PUSHOUT
from .scan_reuse import SCAN_REUSE
from .shapes import SHAPE, clear_cache as clear_shape_cache
from .specialize import SPECIALIZE
from .stabilize import STABILIZE
from .verify import verify

PIPELINE = [
    ("merge", []),                                          # equal nodes and constants once
    ("constant_folding", CONSTANT_FOLDING),                 # constant subgraphs -> constants
    ("dead_code", DEAD_CODE),                               # identity ops out; unreachable nodes are never kept
    ("scan_reuse", SCAN_REUSE),                             # backward loops read the forward loop's stacked steps
    ("scan_pushout", SCAN_PUSHOUT),                         # loop-invariant, per-sequence and summed work out of loops
    ("canonicalize", CANONICALIZE + CONSTANT_FOLDING),      # algebraic simplification
    ("stabilize", STABILIZE),                               # overflow-free forms
    ("lowering", LOWERING),                                 # ops NumPy would compute -> C reductions, kernels, BLAS
    ("specialize", SPECIALIZE),                             # gemm/gemv, powers to products
    ("shape", SHAPE + CANONICALIZE + CONSTANT_FOLDING),     # shape_i(f(x)) from x's shape
    ("scan_memory", scan_keep_last),                        # loops store only the steps read
    ("inner_graphs", optimize_inner_graphs),                # scan/ifelse bodies get these passes too
    ("fusion", fuse_elemwise),                              # elementwise chains -> one kernel
    ("multi_output", merge_kernels),                        # kernels sharing values -> one, several outputs
    ("inplace", reuse_buffers),                             # write into dead intermediates
]

MODE_PASSES = {
    "FAST_RUN": [name for name, _ in PIPELINE],
    # scan_memory in every mode: a long loop whose last step alone is read must not store them all
    "FAST_COMPILE": ["merge", "constant_folding", "dead_code", "scan_memory"],
    "DEBUG": ["merge", "constant_folding", "dead_code", "scan_memory"],
}


class Mode:
    """How a function is compiled: a mode name plus optimizer includes/excludes.

    Examples
    --------
    >>> import tracec as tc
    >>> tc.Mode('FAST_RUN').excluding('fusion', 'inplace')
    Mode('FAST_RUN', excluding=('fusion', 'inplace'))
    """

    def __init__(self, name=None, including=(), excluding=()):
        if name is not None and name not in MODE_PASSES:
            raise ValueError(f"unknown mode {name!r}; expected one of {', '.join(MODE_PASSES)}")
        self._name = name
        self.include = tuple(including)
        self.exclude = tuple(excluding)

    @property
    def name(self):
        """The mode name; a Mode made without one follows ``tc.config.mode``."""
        return self._name or config.mode

    def including(self, *names):
        """A copy that also runs the passes or rules with these names or tags."""
        return Mode(self._name, self.include + names, self.exclude)

    def excluding(self, *names):
        """A copy that skips the passes or rules with these names or tags."""
        return Mode(self._name, self.include, self.exclude + names)

    def __repr__(self):
        parts = [repr(self.name)]
        if self.include:
            parts.append(f"including={self.include}")
        if self.exclude:
            parts.append(f"excluding={self.exclude}")
        return f"Mode({', '.join(parts)})"

    def __eq__(self, other):
        return isinstance(other, Mode) and (self.name, self.include, self.exclude) == \
            (other.name, other.include, other.exclude)

    def __hash__(self):
        return hash((self.name, self.include, self.exclude))


def as_mode(mode):
    """A Mode for None (``tc.config.mode``), a mode name, or a Mode."""
    if mode is None:
        return Mode()
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str):
        return Mode(mode)
    raise TypeError(f"mode must be a mode name ({', '.join(MODE_PASSES)}) or a tc.Mode, got {mode!r}")


def _rule_tags(rule):
    """A rule is named by its function name and by the first pass that lists it."""
    home = next(name for name, rules in PIPELINE if isinstance(rules, list) and rule in rules)
    return {rule.__name__, home}


def known_names():
    """Every pass and rule name (cached: the pipeline is fixed once imported)."""
    if _KNOWN[0] != len(PIPELINE):
        _KNOWN[:] = [len(PIPELINE), _known_names()]
    return _KNOWN[1]


_KNOWN = [None, None]


def _known_names():
    names = set()
    for name, rules in PIPELINE:
        names.add(name)
        if isinstance(rules, list):
            names.update(r.__name__ for r in rules)
    return names


def plan(mode=None):
    """The passes `mode` runs, as ``[(pass name, rules or function)]``, after includes/excludes."""
    mode = as_mode(mode)
    key = (mode.name, mode.include + tuple(config.optimizer_including),
           mode.exclude + tuple(config.optimizer_excluding), len(PIPELINE))
    unknown = (set(key[1]) | set(key[2])) - known_names()
    if unknown:
        warnings.warn(f"optimizer: no pass or rewrite is named {', '.join(map(repr, sorted(unknown)))}; "
                      f"known names: {', '.join(sorted(known_names()))}", stacklevel=3)
    if key not in _PLANS:
        _PLANS[key] = _make_plan(mode.name, set(key[1]), set(key[2]))
    return list(_PLANS[key])


_PLANS = {}


def _make_plan(mode_name, include, exclude):
    base = set(MODE_PASSES[mode_name])
    selected = []
    for name, rules in PIPELINE:
        on = (name in base or name in include) and name not in exclude
        if not isinstance(rules, list):
            if on:
                selected.append((name, rules))
            continue
        chosen = [r for r in rules
                  if (on or _rule_tags(r) & include) and not _rule_tags(r) & exclude]
        if chosen or (on and name == "merge"):
            selected.append((name, chosen))
    return selected


def describe_pipeline(mode=None):
    """Text of the pipeline: each pass and its rules, with what `mode` skips marked."""
    chosen = {name: rules for name, rules in plan(mode)}
    lines = [f"optimizer pipeline for {as_mode(mode)!r}:"]
    for name, rules in PIPELINE:
        mark = "  " if name in chosen else "- "
        if isinstance(rules, list):
            active = chosen.get(name, [])
            names = [r.__name__ + ("" if r in active else " (off)") for r in rules]
            what = ", ".join(names) if names else "(merges equal nodes; every pass does while it runs)"
        else:
            what = f"whole-graph pass {rules.__name__}"
        lines.append(f"{mark}{name}: {what}")
    return "\n".join(lines)


def _leaf_inputs(program):
    """Inputs that are intermediate expressions (``tc.function([y], ...)`` with y = f(x))
    become plain leaves, so no rewrite looks through them."""
    mapping = {v: Variable(v.type, name=v.name) for v in program.inputs if v.owner is not None}
    if not mapping:
        return program
    new = with_roots(program, clone_replace(program.roots(), mapping))
    new.inputs = [mapping.get(v, v) for v in program.inputs]
    return new


_OPTIMIZER_LOC = SourceLoc("<optimizer>", 0, "copy of a constant result")


def _fresh_constant_results(program):
    """A result folded to an array constant is copied, so callers get an array of their own."""
    roots = program.roots()
    if not any(isinstance(r, Constant) and r.ndim > 0 for r in roots):
        return program
    fixed = [OPS["copy"].make_node([r], loc=_OPTIMIZER_LOC).outputs[0]
             if isinstance(r, Constant) and r.ndim > 0 else r for r in roots]
    return with_roots(program, fixed)


def optimize(program, mode=None):
    """The optimized Program for `mode`: same inputs (and shared variables), same results.

    The statistics of each pass (seconds, nodes before/after, sweeps, rewrites
    applied) are in ``result.opt_stats``; `profile_report` formats them.
    """
    steps = plan(mode)
    with _OPTIMIZING:  # the engine keeps per-sweep state in module globals: one optimization at a time
        collecting = gc.isenabled()
        gc.disable()  # the passes make many short-lived objects and no cycles: skip the collector's scans
        try:
            return _optimize(program, steps)
        finally:
            if collecting:
                gc.enable()


_OPTIMIZING = threading.RLock()  # re-entrant: inner graphs are optimized from inside a pass


def _optimize(program, steps):
    clear_shape_cache()
    program = _leaf_inputs(program)
    root_types = [v.type for v in program.roots()]
    check = (lambda p, name: verify(p, root_types, name)) if config.check_graph else None
    merge = any(name == "merge" for name, _ in steps)
    from ..profiling import phase
    stats = []
    for name, rules in steps:
        with phase(name):  # per-pass compile time of profile=True functions (free otherwise)
            if isinstance(rules, list):
                program, st = run_pass(program, name, rules, merge=merge, check=check)
            else:
                start = time.perf_counter()
                before = len(_nodes(program))
                program = rules(program, steps) if getattr(rules, "needs_steps", False) else rules(program)
                st = {"pass": name, "seconds": time.perf_counter() - start, "nodes_before": before,
                      "nodes_after": len(_nodes(program)), "sweeps": 1, "rewrites": {}}
        if check is not None:
            check(program, name)
        stats.append(st)
    program = _fresh_constant_results(program)
    program.opt_stats = stats
    return program


def _nodes(program):
    from ..trace.graph import toposort
    return toposort(program.roots(), stop=program.all_inputs())


def profile_report(program):
    """A table of an optimized program's per-pass statistics."""
    stats = getattr(program, "opt_stats", None)
    if stats is None:
        return "not an optimized program (use tc.opt.optimize)"
    lines = [f"{'pass':<18}{'ms':>9}{'nodes before':>14}{'after':>7}{'sweeps':>8}  rewrites"]
    for st in stats:
        rewrites = ", ".join(f"{k}×{v}" for k, v in sorted(st["rewrites"].items()))
        lines.append(f"{st['pass']:<18}{st['seconds'] * 1e3:>9.2f}{st['nodes_before']:>14}"
                     f"{st['nodes_after']:>7}{st['sweeps']:>8}  {rewrites}")
    return "\n".join(lines)


def stabilized(outputs, stop=()):
    """`outputs` rewritten by the merge and stabilize passes, treating `stop` as leaves.

    For differentiation: a gradient taken of the stabilized cost is built from
    the stable ops (softplus, sigmoid, logsumexp) and their derivative rules,
    so a naive ``np.log(p)`` on ``p = 1 / (1 + np.exp(-z))`` has a finite
    gradient at z = ±800. Variables in `stop` (the ``wrt`` of a gradient) stay
    in the graph unchanged.
    """
    from ..trace.graph import leaves
    from ..trace.program import Program
    outputs = list(outputs)
    mapping = {v: Variable(v.type, name=v.name) for v in stop if v.owner is not None}
    work = clone_replace(outputs, mapping) if mapping else outputs
    program = Program.__new__(Program)
    program.inputs = [v for v in leaves(work) if not isinstance(v, Constant)]
    program.outputs, program.updates, program.writebacks = work, [], []
    program.name, program.shared, program.shared_leaves = "<stabilize>", [], []
    program, _ = run_pass(program, "stabilize", STABILIZE, merge=True)
    back = {fresh: old for old, fresh in mapping.items()}
    return clone_replace(program.outputs, back) if back else program.outputs
