"""The FAST_RUN executor: plans a Program into a native `Runner` (_native.pyx)
whose steps call C kernels for elementwise nodes and fused groups, and the
NumPy implementation (the same `run_node` the reference interpreter uses) for
the rest, without Python between native steps.

Errors and floating-point conditions inside a kernel are not reported from C:
the runner runs the node again through NumPy, which then raises or warns
exactly as the interpreter would, naming the op and the user's source line.
"""
import os
import warnings

import numpy as np

from ..config import config
from ..trace.graph import Constant, toposort
from ..trace.ops.index import rebuild_key
from . import build
from .kernel import lower, render, signature
from .reduce_kernel import ReduceSpec, lower_reduce, render_reduce
from .reduce_kernel import signature as reduce_signature
from .render import CRenderer

try:
    from ._native import (MAX_KERNEL_ARGS, NOMATCH, GemmStep, IfElseStep, IndexStep, KernelStep, Runner, ScanStep,
                         Step, load, set_blas)
    _RUNTIME_ERROR = None
except ImportError as exc:  # not built (a source tree without `pip install -e .`)
    MAX_KERNEL_ARGS, NOMATCH, GemmStep, IfElseStep, IndexStep, KernelStep, Runner, ScanStep, Step, load, \
        set_blas = (0,) + (None,) * 10
    _RUNTIME_ERROR = exc

_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
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


_PRODUCTS = ("gemm", "gemv", "matmul", "dot")


# ops whose NumPy implementation returns a view, or only moves or fills memory at memcpy speed
_VIEWS = {"broadcast_to", "expand_dims", "reshape", "squeeze", "transpose", "flip", "getitem", "shape_i",
          "stop_gradient", "split", "debug_print", "debug_breakpoint"}
_COPIES = {"alloc", "arange", "concatenate", "copy", "eye", "linspace", "repeat", "roll", "setitem", "stack",
           "tile"}


def how_op_runs(op):
    """How FAST_RUN executes `op`: 'C kernel', 'C reduction', 'BLAS', 'native loop', 'view',
    'copy' (NumPy moving memory) or 'NumPy' (NumPy computing)."""
    from .reduce_kernel import REDUCTIONS
    if op.name in ("fused_elemwise", "inplace_elemwise") or getattr(op, "c_expr", None) is not None:
        return "C kernel"
    if op.name in REDUCTIONS:
        return "C reduction"
    if op.name in _PRODUCTS:
        return "BLAS"
    if op.name in ("scan", "ifelse"):
        return "native loop" if op.name == "scan" else "native branch"
    return "view" if op.name in _VIEWS else "copy" if op.name in _COPIES else "NumPy"


def _is_reduction(spec):
    return isinstance(spec, ReduceSpec)

_blas_state = []


def _blas_product(node):
    """Can BLAS run this product: float32 or float64 throughout, 1-d or 2-d operands, or stacks of
    matrices for matmul?"""
    out = node.outputs[0]
    a, b = node.inputs[:2]
    operands = [a, b] + ([node.inputs[2]] if node.op.name in ("gemm", "gemv") else [])
    ranks = a.ndim in (1, 2) and b.ndim in (1, 2) or node.op.name == "matmul" and min(a.ndim, b.ndim) >= 2
    return out.dtype in (np.float32, np.float64) and all(v.dtype == out.dtype for v in operands) \
        and ranks and not any(v.type.weak for v in operands)


def _blas_ready():
    """Give the runtime the BLAS NumPy loaded (once); False when there is none."""
    if not _blas_state:
        from .blas import find
        found, _ = find()
        if found is not None:
            set_blas(*found.fields())
        _blas_state.append(found is not None)
    return _blas_state[0]


def _narrow_int(var):
    """Is `var` an integer array a Python int in int64's range might not fit (int8..int32, unsigned)?"""
    return not var.type.weak and var.dtype.kind in "iu" and (var.dtype.itemsize < 8 or var.dtype.kind == "u")


def _scan_setup(n_steps, values, info):
    from ..trace.scan import scan_setup
    return scan_setup(n_steps, values, info)[:4]


class KernelInfo:
    """Where a native step's kernel lives (for describe() and tests)."""

    def __init__(self, path, name):
        self.path, self.name = path, name


class CExecutor:
    """Runs `program` through a native `Runner` (tracec/cgen/_native.pyx).

    Kernels found in the cache are used from the first call. Missing ones are
    compiled after ``tc.config.c_compile_after`` calls (a function called once
    is not worth a compile), or at once for a call on large arrays; until then
    those nodes run their NumPy implementation.
    """

    def __init__(self, program, compile=None):
        self.program = program
        inputs = program.all_inputs()
        roots = program.roots()
        self.nodes = toposort(roots, stop=inputs)
        renderer = CRenderer()
        self.specs = {id(n): s for n in self.nodes
                      if (s := lower(n, renderer, multi_output=True) or lower_reduce(n, renderer)) is not None
                      and len(s.args) + len(s.outputs) <= MAX_KERNEL_ARGS}  # more: the runtime cannot call it
        self._lowered = [n for n in self.nodes if id(n) in self.specs]
        self._kernels = [(render_reduce if _is_reduction(self.specs[id(n)]) else render)(self.specs[id(n)], renderer)
                         for n in self._lowered]  # (name, source)
        self.kernels = {}  # id(node) -> KernelInfo
        self._addresses = {}
        self.calls = 0
        self._compile_after = config.c_compile_after
        self._fast = None  # arguments of Runner.enable_fast_call, once a caller asked for it
        self._install(compile=self._compile_after == 0 if compile is None else compile)

    def _install(self, compile):
        """Load the kernels available (compiling the missing ones if `compile`), then plan the steps."""
        paths = _module_paths(self._kernels, compile)
        if paths:
            build.passive_openmp_threads()
        for node, (name, _) in zip(self._lowered, self._kernels):
            if name not in paths or id(node) in self.kernels:
                continue
            spec = self.specs[id(node)]
            _, address, sig = load(paths[name], name)
            expected = (reduce_signature if _is_reduction(spec) else signature)(spec)
            if sig != expected:
                raise OSError(f"{paths[name]} holds kernel {sig!r}, expected {expected!r}")
            self.kernels[id(node)] = KernelInfo(paths[name], name)
            self._addresses[id(node)] = address
        self._compiling = compile
        self._inner = []  # executors of scan loop bodies
        self._plan()
        self.pending = not compile and (len(self.kernels) < len(self._lowered) or
                                        any(inner.pending for inner in self._inner))

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
        constants = []

        def const_slot(key, value):
            if key not in slot:
                slot[key] = len(slot)
                constants.append((slot[key], value))
            return slot[key]

        plans = []  # (node, ins, outs, kernel args or None)
        for node in self.nodes:
            for v in node.inputs:
                if isinstance(v, Constant):
                    const_slot(id(v), v.value)
            ins = [slot[id(v)] for v in node.inputs]
            for v in node.outputs:
                slot[id(v)] = len(slot)
            outs = [slot[id(v)] for v in node.outputs]
            args = None
            if id(node) in self.kernels:
                spec = self.specs[id(node)]
                args = [ins[src] if kind == "input" else const_slot(("kernel", id(a)), src)
                        for a, (kind, src) in zip(spec.args, spec.sources)]
            plans.append((node, ins, outs, args))
        for v in roots:
            if isinstance(v, Constant):
                const_slot(id(v), v.value)
        root_slots = [slot[id(v)] for v in roots]
        # free each intermediate after its last use
        last_use = {}
        for i, (_, ins, _, args) in enumerate(plans):
            for s in ins + (args or []):
                last_use[s] = i
        keep = set(root_slots) | {s for s, _ in constants}
        frees = [[] for _ in plans]
        for s, i in last_use.items():
            if s not in keep:
                frees[i].append(s)
        steps = [self._step(node, ins, outs, args, free)
                 for (node, ins, outs, args), free in zip(plans, frees)]
        template = [None] * len(slot)
        for s, value in constants:
            template[s] = value
        self.steps = [(node, self.kernels.get(id(node))) for node, *_ in plans]
        self._native = {id(step.node) for step in steps if step.native}
        self.runner = Runner(steps, template, [slot[id(v)] for v in inputs], root_slots, config._values, _CPUS)
        self.runner.timer = self.step_timer
        if self._fast is not None:
            self.enable_fast_call(*self._fast)

    def _step(self, node, ins, outs, args, frees):
        if node.op.name == "scan":
            # a loop body of C kernels only is replayed without Python per step: lone ufuncs too
            with config.change(c_single_ops=True):
                inner = CExecutor(node.params["info"].inner.program, compile=self._compiling)
            self._inner.append(inner)
            return ScanStep(node, ins, outs, frees, inner.runner, _scan_setup)
        if node.op.name == "ifelse":
            info = node.params["info"]
            branches = [CExecutor(g.program, compile=self._compiling) for g in (info.then_graph, info.else_graph)]
            self._inner.extend(branches)
            return IfElseStep(node, ins, outs, frees, branches[0].runner, branches[1].runner)
        if node.op.name == "getitem" and len(node.inputs) == 1:
            return IndexStep(node, ins, outs, frees, rebuild_key(node.params["spec"], ()))
        if node.op.name in _PRODUCTS and _blas_product(node) and _blas_ready():
            a, b, c, alpha, beta = (ins + [-1, -1, -1])[:5]
            return GemmStep(node, ins, outs, frees, a, b, c, alpha, beta, node.outputs[0].dtype,
                            node.outputs[0].ndim)
        spec = self.specs.get(id(node))
        if args is None:
            return Step(node, ins, outs, frees)
        dest = ins[node.params["dest"]] if node.op.name == "inplace_elemwise" else -1
        # Python ints (weak) feeding a kernel: NumPy raises OverflowError when one does not fit
        # the array's dtype, while C would wrap; such calls go through NumPy instead
        weak = [s for v, s in zip(node.inputs, ins) if v.type.weak and v.dtype.kind in "iu"]
        if not any(_narrow_int(v) for v in spec.args + spec.outputs + [o for n in spec.nodes for o in n.outputs]):
            weak = []  # no integer array narrower than a Python int: every int in int64's range fits
        if _is_reduction(spec):
            return KernelStep(node, ins, outs, frees, self._addresses[id(node)], args,
                              [v.dtype for v in spec.args], [v.broadcastable for v in spec.args],
                              [spec.output.dtype], spec.ndim, -1, weak, spec.axes, spec.keepdims)
        return KernelStep(node, ins, outs, frees, self._addresses[id(node)], args,
                          [v.dtype for v in spec.args], [v.broadcastable for v in spec.args],
                          [v.dtype for v in spec.outputs], spec.outputs[0].ndim, dest, weak)

    def _maybe_compile(self, input_values, threshold):
        self.calls += 1
        if self.calls > self._compile_after or any(
                getattr(v, "size", 0) >= threshold for v in input_values):
            self._install(compile=True)

    @property
    def step_timer(self):
        """callable(node, seconds) timing every step (profile=True), or None."""
        return self.__dict__.get("_step_timer")

    @step_timer.setter
    def step_timer(self, timer):
        self.__dict__["_step_timer"] = timer
        if "runner" in self.__dict__:
            self.runner.timer = timer

    def run(self, input_values):
        """Values of ``program.roots()`` for the values of ``program.all_inputs()``."""
        if self.pending:
            self._maybe_compile(input_values, config._values["c_parallel_threshold"])
        return self.runner.run(input_values)

    def fast_call_for(self, n_args, result_kind):
        """`Runner.fast_call` for calls passing the first `n_args` inputs as plain ndarrays, or None.

        Only programs whose results and updates are fresh arrays made by native
        steps qualify: the general protocol's alias checks and copies are then
        no-ops. Kernels still pending compilation: None (the general path compiles).
        """
        program = self.program
        if self.pending or len(program.inputs) != n_args:
            return None
        roots = program.roots()
        if len({id(v) for v in roots}) != len(roots):
            return None
        # a single write-back is copied into the caller's array whatever made it
        checked = roots if len(program.writebacks) > 1 else roots[:len(roots) - len(program.writebacks)]
        if not all(v.owner is not None and id(v.owner) in self._native for v in checked):
            return None
        self._fast = ([(v.dtype, v.broadcastable) for v in program.inputs],
                      [sv for sv in program.shared], [sv for sv, _ in program.updates],
                      [sv.leaf.dtype for sv, _ in program.updates], [v.dtype for v in roots], result_kind,
                      [pos for pos, _ in program.writebacks])
        self.enable_fast_call(*self._fast)
        return self.runner.fast_call

    def enable_fast_call(self, *args):
        self.runner.enable_fast_call(*args)

    def describe(self):
        """Which nodes run native code and which run NumPy."""
        lines = []
        for node, kernel in self.steps:
            where = f"C kernel {os.path.basename(os.path.dirname(kernel.path))[:12]}" if kernel else "NumPy"
            lines.append(f"{node.op.name:<20} {where:<22} {node.loc}")
        return "\n".join(lines)

    def sources(self):
        """The generated C of each lowered node, with its comments (nodes, source lines)."""
        return [source for _, source in self._kernels]
