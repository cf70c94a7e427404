"""Profiling compiled functions (``tc.profile``).

``tc.compile(f, profile=True)``, ``tc.function(..., profile=True)`` or
``tc.config.profile = True`` attach a `Profile` to the function (``f.profile``):
calls and their time, per node and per op calls, total and mean time and
share of the function's time, and the compile-time breakdown (trace, backend
build, and any phase a later stage reports through `phase` or `note`).
``f.profile.summary()`` prints a table; `report` prints every profile, and
runs at exit when ``tc.config.profile`` is set. `Profile.hints` names common
sources of slowness.

Per-node times are measured by running the graph node by node on the NumPy
interpreter; a native backend reports whole calls (and whatever per-node
times it can measure) through the same object.
"""
import atexit
import contextlib
import io
import os
import sys
import threading
import time
from collections import Counter

from .config import config
from .debug import HookedInterpreter
from .trace import interp

__all__ = ["Profile", "report", "phase", "note", "all_profiles"]

_PROFILES = []           # every Profile made in this process, for report()
_local = threading.local()


class _NodeStat:
    __slots__ = ("node", "calls", "total")

    def __init__(self, node):
        self.node, self.calls, self.total = node, 0, 0.0


class Profile:
    """Run-time and compile-time statistics of one compiled function."""

    def __init__(self, name):
        self.name = name
        self.calls = 0
        self.call_time = 0.0      # wall time of whole calls, seconds
        self.traces = 0
        self.nodes = {}           # id(node) -> _NodeStat
        self.compile_times = {}   # phase name -> [count, seconds]
        self.notes = {}           # e.g. 'C cache' -> Counter({'hit': 3, 'miss': 1})
        self.programs = []        # programs compiled for this function
        self.executables = []     # their executables (backend.program: the optimized program)
        _PROFILES.append(self)

    # -- recording ------------------------------------------------------------
    def timed_call(self, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.call_time += time.perf_counter() - start
            self.calls += 1

    def add_node_time(self, node, seconds):
        stat = self.nodes.get(id(node))
        if stat is None:
            stat = self.nodes[id(node)] = _NodeStat(node)
        stat.calls += 1
        stat.total += seconds

    def add_compile_time(self, name, seconds, count=1):
        entry = self.compile_times.setdefault(name, [0, 0.0])
        entry[0] += count
        entry[1] += seconds

    def reset(self):
        """Forget the run-time statistics (keeps compile times and traces)."""
        self.calls, self.call_time, self.nodes = 0, 0.0, {}

    # -- reading ----------------------------------------------------------------
    @property
    def node_time(self):
        return sum(s.total for s in self.nodes.values())

    @property
    def compile_time(self):
        return sum(t for name, (_, t) in self.compile_times.items() if "/" not in name)

    def by_op(self):
        """[(op name, calls, total seconds)], slowest first."""
        ops = {}
        for s in self.nodes.values():
            entry = ops.setdefault(s.node.op.name, [0, 0.0])
            entry[0] += s.calls
            entry[1] += s.total
        return sorted(((name, c, t) for name, (c, t) in ops.items()), key=lambda e: -e[2])

    def by_node(self):
        """[(node, calls, total seconds)], slowest first."""
        return sorted(((s.node, s.calls, s.total) for s in self.nodes.values()), key=lambda e: -e[2])

    def hints(self):
        """Common sources of slowness found in this function, in words."""
        return _hints(self)

    def optimized_programs(self):
        """The optimized programs of this function's signatures (with per-pass statistics)."""
        found = []
        for executable in self.executables:
            program = getattr(executable.backend, "program", None)
            if getattr(program, "opt_stats", None) is not None:
                found.append(program)
        return found

    def summary(self, file=None, top=15):
        """Print (to stdout or `file`) and return a table of the statistics."""
        text = _summary_text(self, top)
        (file or sys.stdout).write(text)
        return text

    def __repr__(self):
        return f"<Profile {self.name}: {self.calls} call(s), {self.call_time * 1e3:.3f} ms>"


def _ms(seconds):
    return f"{seconds * 1e3:10.3f}"


def _where(node):
    loc = node.loc
    return f"{os.path.basename(loc.filename)}:{loc.lineno}"


def _summary_text(p, top):
    out = io.StringIO()
    w = out.write
    w(f"Profile of {p.name}\n")
    mean = p.call_time / p.calls if p.calls else 0.0
    w(f"  {p.calls} call(s), {p.call_time * 1e3:.3f} ms in all, {mean * 1e6:.1f} us per call; "
      f"{p.traces} trace(s); compile {p.compile_time * 1e3:.3f} ms\n")
    if p.compile_times:
        w("\nCompile time (ms)\n")
        for name, (count, seconds) in p.compile_times.items():
            depth = name.count("/")
            label = "  " * depth + name.rsplit("/", 1)[-1]
            w(f"  {label:<38}{_ms(seconds)}  x{count}\n")
        for key, counter in p.notes.items():
            w(f"  {key}: " + ", ".join(f"{v} {k}" for k, v in counter.items()) + "\n")
    for program in p.optimized_programs():
        from .opt import profile_report
        w("\nOptimizer passes\n")
        w("".join(f"  {line}\n" for line in profile_report(program).splitlines()))
    base = p.call_time or p.node_time or 1.0
    if p.nodes:
        w("\nPer op (share of the function's time)\n")
        w(f"  {'op':<22}{'calls':>8}{'total ms':>11}{'mean us':>10}{'share':>8}\n")
        for name, calls, total in p.by_op()[:top]:
            w(f"  {name:<22}{calls:>8}{_ms(total)} {total / calls * 1e6:9.1f}{100 * total / base:7.1f}%\n")
        w("\nPer node\n")
        w(f"  {'op':<22}{'source':<28}{'calls':>7}{'total ms':>11}{'mean us':>10}{'share':>8}\n")
        for node, calls, total in p.by_node()[:top]:
            w(f"  {node.op.name:<22}{_where(node):<28}{calls:>7}{_ms(total)} {total / calls * 1e6:9.1f}"
              f"{100 * total / base:7.1f}%\n")
        if len(p.nodes) > top:
            w(f"  ... {len(p.nodes) - top} more node(s)\n")
        overhead = p.call_time - p.node_time
        if p.call_time:
            w(f"  (outside the nodes: {overhead * 1e3:.3f} ms, {100 * overhead / base:.1f}% - argument "
              f"checks, copies, updates)\n")
    hints = p.hints()
    if hints:
        w("\nHints\n")
        for h in hints:
            w(f"  - {h}\n")
    return out.getvalue()


def _float64_origins(programs):
    """Variables where float64 enters: float64 leaves, and nodes turning other dtypes into float64."""
    from .trace.graph import toposort
    origins, seen = [], set()
    for program in programs:
        for node in toposort(program.roots(), stop=program.all_inputs()):
            if not any(o.dtype == "float64" and not o.type.weak for o in node.outputs):
                continue
            f64_inputs = [v for v in node.inputs if v.dtype == "float64" and not v.type.weak]
            for v in f64_inputs:
                if v.owner is None and id(v) not in seen:
                    seen.add(id(v))
                    from .debug import describe_input
                    origins.append(f"{describe_input(v)} (used by {node.op.name} at {_where(node)})")
            if not f64_inputs and id(node) not in seen:
                seen.add(id(node))
                origins.append(f"{node.op.name} at {_where(node)} (its result is float64)")
    return origins


def _hints(p):
    hints = []
    if config.floatX == "float32":
        f64 = [s for s in p.nodes.values() if any(o.dtype == "float64" for o in s.node.outputs)]
        origins = _float64_origins(p.programs)
        if f64 or origins:
            share = sum(s.total for s in f64) / (p.node_time or 1.0)
            hints.append(f"tc.config.floatX is float32 but {len(f64) or 'some'} node(s) compute in "
                         f"float64 ({100 * share:.0f}% of the node time); float64 comes from "
                         + "; ".join(origins[:4]) + ("; ..." if len(origins) > 4 else "")
                         + ". Pass float32 arrays or use .astype(np.float32).")
    if p.traces >= 3 and 2 * p.traces >= p.calls:
        hints.append(f"{p.name} was traced {p.traces} times in {p.calls} call(s): its argument types "
                     f"change from call to call (set tc.config.explain_retrace = True to see which "
                     f"argument; pass consistent dtypes, or mark settings static)")
    if p.calls >= 5 and p.compile_time > p.call_time:
        hints.append(f"compiling took {p.compile_time * 1e3:.1f} ms, longer than all {p.calls} calls "
                     f"together ({p.call_time * 1e3:.1f} ms)")
    base = p.call_time or p.node_time or 1.0
    for s in p.nodes.values():
        if s.node.op.name == "scan" and s.total > 0.2 * base and p.calls:
            native = _native_loop(p, s.node)
            share = f"the loop (scan) at {_where(s.node)} takes {100 * s.total / base:.0f}% of the time"
            if native is None:
                hints.append(f"{share} and runs its step on the NumPy interpreter, one Python call per op "
                             f"per step; vectorize the loop body over the steps where you can")
            elif native.not_replayed:
                hints.append(f"{share}; its steps run natively but one node at a time, not replayed as "
                             f"recorded C calls, because {native.not_replayed}")
    for op_name, count in p.notes.get("NumPy fallback", Counter()).items():
        spent = sum(s.total for s in p.nodes.values() if s.node.op.name == op_name)
        hints.append(f"{count} {op_name} node(s) have no native kernel and run through NumPy "
                     f"({100 * spent / base:.0f}% of the time)")
    return hints


def _native_loop(p, node):
    """The native ScanStep running `node` in one of the profiled executables, or None."""
    def search(executor):
        runner = getattr(executor, "runner", None)
        for step in (runner.steps_list if runner is not None else []):
            if step.node is node:
                return step
        for inner in getattr(executor, "_inner", ()):
            found = search(inner)
            if found is not None:
                return found
        return None
    for executable in p.executables:
        found = search(executable.backend)
        if found is not None and hasattr(found, "not_replayed"):
            return found
    return None


class ProfilingInterpreter(HookedInterpreter):
    """The NumPy interpreter, timing every node into a Profile."""

    def __init__(self, program, profile):
        super().__init__(program)
        self.profile = profile

    def run_step(self, step, node, inputs):
        start = time.perf_counter()
        outputs = interp.run_node(node, inputs)
        self.profile.add_node_time(node, time.perf_counter() - start)
        return outputs


# -- compile phases ---------------------------------------------------------------

def _stack():
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


@contextlib.contextmanager
def phase(name, profile=None):
    """Time a compile phase into `profile`, or into the profile being compiled for.

    Stages call it without a profile (``with tc.profile.phase('optimize: fusion'):``);
    it costs nothing when no profiled function is being compiled. Nested phases
    are recorded as ``outer/inner``.
    """
    stack = _stack()
    current = profile or (stack[-1][0] if stack else None)
    if current is None:
        yield
        return
    parent = stack[-1][1] if stack and stack[-1][0] is current else ""
    full = f"{parent}/{name}" if parent else name
    stack.append((current, full))
    current.add_compile_time(full, 0.0, count=0)  # keeps the phases in the order they start
    start = time.perf_counter()
    try:
        yield
    finally:
        stack.pop()
        current.add_compile_time(full, time.perf_counter() - start)


def note(key, value):
    """Record an event of the current compilation, e.g. ``note('C cache', 'hit')``."""
    stack = _stack()
    if stack:
        stack[-1][0].notes.setdefault(key, Counter())[value] += 1


def all_profiles():
    return list(_PROFILES)


def report(file=None):
    """Print the summary of every profiled function that was called; returns the text."""
    parts = [p.summary(file=io.StringIO()) for p in _PROFILES if p.calls or p.traces]
    text = "\n".join(parts) if parts else "tracec profile: no profiled function was called\n"
    (file or sys.stdout).write(text)
    return text


def _report_at_exit():
    if config.profile and any(p.calls for p in _PROFILES):
        report(file=sys.stderr)


atexit.register(_report_at_exit)


def _c_executor_class():
    from .cgen.executor import CExecutor
    return CExecutor


class _LazyCExecutor(type):
    """Builds ProfilingCExecutor on first use, so importing tracec does not import the C backend."""

    _cls = None

    def __call__(cls, program, profile):
        if cls._cls is None:
            cls._cls = _make_profiling_c_executor(_c_executor_class())
        return cls._cls(program, profile)


class ProfilingCExecutor(metaclass=_LazyCExecutor):
    """The FAST_RUN executor (native kernels), timing every step into a Profile."""


def _make_profiling_c_executor(base):
    class Timed(base):
        def __init__(self, program, profile):
            super().__init__(program)
            self.profile = profile
            self.step_timer = profile.add_node_time
            for node, kernel, *_ in self.steps:
                if kernel is None and node.op.kind in ("elemwise", "fused", "inplace"):
                    note("NumPy fallback", node.op.name)

    Timed.__name__ = Timed.__qualname__ = "ProfilingCExecutor"
    return Timed
