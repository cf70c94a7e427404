"""The FAST_RUN executor: a Program run node by node, elementwise nodes and
fused groups through native kernels, every other node through its NumPy
implementation (the same `run_node` the reference interpreter uses).

Errors and floating-point conditions inside a kernel are not reported from C:
the node is run again through NumPy, which then raises or warns exactly as
the interpreter would, naming the op and the user's source line.
"""
import os
import warnings
from sys import getrefcount
from time import perf_counter

import numpy as np

from ..config import config
from ..trace.graph import Constant, toposort
from ..trace.interp import run_node
from ..trace.ops.base import with_context
from . import build
from .kernel import lower, render, signature
from .render import CRenderer

try:
    from ._runtime import Kernel, KernelStatus
    _RUNTIME_ERROR = None
except ImportError as exc:  # not built (a source tree without `pip install -e .`)
    Kernel = KernelStatus = None
    _RUNTIME_ERROR = exc

_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_FPE_CATEGORIES = ((1, "divide"), (2, "over"), (4, "under"), (8, "invalid"))
_warned = set()
_modules = {}  # (source, compiler, flags, cache dir) -> module path: each source is hashed once per process


class BackendWarning(RuntimeWarning):
    """The C backend cannot run (no runtime, no compiler); the NumPy interpreter runs instead."""


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, BackendWarning, stacklevel=5)


def available():
    """Whether FAST_RUN can use native code: the runtime is built and a C compiler exists."""
    if _RUNTIME_ERROR is not None:
        _warn_once("runtime", f"tracec: the C backend's runtime is not built ({_RUNTIME_ERROR}); compiled "
                              "functions run on the NumPy interpreter. Reinstall with `pip install -e .`")
        return False
    return build.find_compiler() is not None


def _module_paths(kernels, compile=True):
    """{kernel name: module path} for `kernels` [(name, source)] in the cache, or compiled if `compile`.

    Missing kernels are compiled together: one module per CPU core at most
    (compiled in parallel), so a new graph costs a compile or two, not one
    per kernel. A module that fails to compile (a tracec bug) is retried
    kernel by kernel, and the failing kernels' nodes run through NumPy.
    """
    conf = (config.cc, config.c_flags, config.cache_dir)
    found, missing = {}, []
    for name, source in dict(kernels).items():
        path = _modules.get((name,) + conf)
        if path is None:
            missing.append((name, source))
        else:
            found[name] = path
    if not missing:
        return found
    n = min(len(missing), os.cpu_count() or 1)
    chunks = [missing[i::n] for i in range(n)]
    sources = ["\n".join(src for _, src in chunk) for chunk in chunks]
    if not compile:
        paths = build.lookup_many(sources)
    else:
        try:
            paths = build.build_many(sources)
        except build.CompileError:
            chunks = [[kernel] for kernel in missing]
            paths = []
            for (name, source), in chunks:
                try:
                    paths.append(build.build(source))
                except build.CompileError as exc:
                    _warn_once(name, f"tracec: generated C failed to compile (a tracec bug; the node runs "
                                     f"through NumPy):\n{exc}")
                    paths.append(None)
    for chunk, path in zip(chunks, paths):
        if path is not None:
            for name, _ in chunk:
                _modules[(name,) + conf] = found[name] = path
    return found


class CExecutor:
    """Runs `program` with native kernels for its elementwise nodes.

    Kernels found in the cache are used from the first call. Missing ones are
    compiled after ``tc.config.c_compile_after`` calls (a function called once
    is not worth a compile), or at once for a call on large arrays; until then
    those nodes run their NumPy implementation.
    """

    def __init__(self, program):
        self.program = program
        inputs = program.all_inputs()
        roots = program.roots()
        self.nodes = toposort(roots, stop=inputs)
        renderer = CRenderer()
        self.specs = {id(n): s for n in self.nodes if (s := lower(n, renderer)) is not None}
        self._lowered = [n for n in self.nodes if id(n) in self.specs]
        self._kernels = [render(self.specs[id(n)], renderer) for n in self._lowered]  # (name, source)
        self.kernels = {}
        self.calls = 0
        self._compile_after = config.c_compile_after
        self._install(compile=self._compile_after == 0)

    def _install(self, compile):
        """Load the kernels available (compiling the missing ones if `compile`), then plan the steps."""
        paths = _module_paths(self._kernels, compile)
        for node, (name, _) in zip(self._lowered, self._kernels):
            if name not in paths or id(node) in self.kernels:
                continue
            spec = self.specs[id(node)]
            self.kernels[id(node)] = Kernel(paths[name], name, signature(spec), [v.dtype for v in spec.args],
                                            [v.broadcastable for v in spec.args], spec.output.dtype,
                                            spec.output.ndim)
        self.pending = not compile and len(self.kernels) < len(self._lowered)
        self._plan()

    @property
    def n_kernels(self):
        """How many nodes run native kernels now."""
        return len(self.kernels)

    def _plan(self):
        program = self.program
        inputs, roots = program.all_inputs(), program.roots()
        slot = {}
        for v in inputs:
            slot.setdefault(id(v), len(slot))
        self.constants = []

        def const_slot(key, value):
            if key not in slot:
                slot[key] = len(slot)
                self.constants.append((slot[key], value))
            return slot[key]

        steps = []
        for node in self.nodes:
            for v in node.inputs:
                if isinstance(v, Constant):
                    const_slot(id(v), v.value)
            ins = [slot[id(v)] for v in node.inputs]
            for v in node.outputs:
                slot[id(v)] = len(slot)
            outs = [slot[id(v)] for v in node.outputs]
            kernel = self.kernels.get(id(node))
            if kernel is None:
                steps.append((node, None, ins, None, outs))
                continue
            spec = self.specs[id(node)]
            args = [ins[src] if kind == "input" else const_slot(("kernel", id(a)), src)
                    for a, (kind, src) in zip(spec.args, spec.sources)]
            dest = ins[node.params["dest"]] if node.op.name == "inplace_elemwise" else None
            steps.append((node, kernel, ins, (args, dest), outs))
        for v in roots:
            if isinstance(v, Constant):
                const_slot(id(v), v.value)
        self.n_slots = len(slot)
        self.root_slots = [slot[id(v)] for v in roots]
        self._input_positions = [slot[id(v)] for v in inputs]
        # free each intermediate after its last use
        last_use = {}
        for i, (node, kernel, ins, call, outs) in enumerate(steps):
            for s in ins + (call[0] if call else []):
                last_use[s] = i
        keep = set(self.root_slots) | {s for s, _ in self.constants}
        frees = [[] for _ in steps]
        for s, i in last_use.items():
            if s not in keep:
                frees[i].append(s)
        self.steps = [step + (f,) for step, f in zip(steps, frees)]
        self._buffers = [None] * len(self.steps)
        # Python ints (weak) feeding a kernel: NumPy raises OverflowError when one does not fit
        # the array's dtype, while C would wrap; such calls go through NumPy instead
        self._weak_ints = [[i for v, i in zip(node.inputs, ins) if v.type.weak and v.dtype.kind in "iu"]
                           if kernel is not None else [] for node, kernel, ins, *_ in self.steps]

    def _maybe_compile(self, input_values, threshold):
        self.calls += 1
        if self.calls > self._compile_after or any(
                getattr(v, "size", 0) >= threshold for v in input_values):
            self._install(compile=True)

    step_timer = None  # callable(node, seconds) timing every step (profile=True)

    def run(self, input_values):
        """Values of ``program.roots()`` for the values of ``program.all_inputs()``."""
        values = config._values
        nthreads = values["c_threads"] or _CPUS
        threshold = values["c_parallel_threshold"]
        if self.pending:
            self._maybe_compile(input_values, threshold)
        store = [None] * self.n_slots
        for pos, value in zip(self._input_positions, input_values):
            store[pos] = value
        for pos, value in self.constants:
            store[pos] = value
        buffers = self._buffers
        weak_ints = self._weak_ints
        timer = self.step_timer
        for step, (node, kernel, ins, call, outs, frees) in enumerate(self.steps):
            if timer is not None:
                start = perf_counter()
            if kernel is None or (weak_ints[step] and any(not -128 <= store[i] < 128 for i in weak_ints[step])):
                results = run_node(node, [store[i] for i in ins])
                for i, r in zip(outs, results):
                    store[i] = r
            else:
                args, dest = call
                if dest is None:
                    # last call's output, when nobody else holds it any more (3: list, local,
                    # argument): its pages are mapped already, a fresh array's are not
                    out = buffers[step]
                    if out is not None and getrefcount(out) != 3:
                        out = None
                else:
                    out = store[dest]
                try:
                    result = kernel([store[i] for i in args], nthreads, threshold, out)
                except KernelStatus as status:
                    result = _recover(node, [store[i] for i in ins], status)
                store[outs[0]] = result
                if dest is None:
                    buffers[step] = result
                out = None
            if timer is not None:
                timer(node, perf_counter() - start)
            for i in frees:
                store[i] = None
        return [store[i] for i in self.root_slots]

    def describe(self):
        """Which nodes run native code and which run NumPy."""
        lines = []
        for node, kernel, *_ in self.steps:
            where = f"C kernel {os.path.basename(os.path.dirname(kernel.path))[:12]}" if kernel else "NumPy"
            lines.append(f"{node.op.name:<20} {where:<22} {node.loc}")
        return "\n".join(lines)

    def sources(self):
        """The generated C of each lowered node, with its comments (nodes, source lines)."""
        return [source for _, source in self._kernels]


def _recover(node, values, status):
    """Result of a kernel call that raised floating-point flags or an error.

    Flags NumPy would ignore (np.errstate) keep the native result; otherwise
    the node runs through NumPy, which warns or raises as the interpreter does.
    """
    bits = status.status
    if bits & ~0xF == 0 and status.output is not None:
        err = np.geterr()
        if all(err[name] == "ignore" for bit, name in _FPE_CATEGORIES if bits & bit):
            return status.output
    result = run_node(node, values)[0]
    if bits & ~0xF:  # an error NumPy did not raise: report it rather than return garbage
        raise with_context(RuntimeError(status.message), f"{node.op.name} at {node.loc.describe()}")
    return result
