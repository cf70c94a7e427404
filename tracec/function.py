"""Compiled functions: `tc.compile` (trace per signature) and `tc.function`
(Theano style, from symbolic inputs and outputs). Both run a Program through
the backend the mode selects, then hand back owned results, apply argument
write-backs and shared-variable updates, in that order.
"""
import functools
import inspect
import warnings

import numpy as np

from .config import config
from .trace.graph import Variable, clone_replace
from .trace.interp import Interpreter
from .trace.program import Program
from .trace.pytree import Static, flatten, leaf_paths, unflatten
from .trace.shared import SharedVariable
from .trace.tensor import Tensor
from .trace.tracer import leaf_type, trace

MODES = ("FAST_RUN", "FAST_COMPILE", "DEBUG")


def make_backend(program, mode, profile=None, check=None):
    """The executor for `program` under `mode` (the optimizer and C backend slot in here).

    DEBUG runs node by node with NaN/Inf checks (tracec/debug.py); `profile` times
    every node; ``tc.config.debug_check_backend`` (or `check`) compares every
    node of the selected backend with the NumPy reference.
    """
    from .opt import as_mode, optimize
    opt_mode = as_mode(mode)  # a mode name, a tc.Mode (with optimizer includes/excludes) or None
    mode = opt_mode.name
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "DEBUG":
        from .debug import DebugInterpreter
        return DebugInterpreter(program)
    if config.debug_check_backend if check is None else check:
        from .debug import CheckedBackend
        return CheckedBackend(program, lambda p: make_backend(p, opt_mode, check=False))
    from .profiling import phase
    with phase("optimize"):  # timed when a profiled function is being compiled
        program = optimize(program, opt_mode)
    if mode == "FAST_RUN":
        from .cgen import executor  # native kernels; falls back (one warning) without a compiler
        if executor.available():
            if profile is not None:
                from .profiling import ProfilingCExecutor
                return ProfilingCExecutor(program, profile)
            return executor.CExecutor(program)
    if profile is not None:
        from .profiling import ProfilingInterpreter
        return ProfilingInterpreter(program, profile)
    return Interpreter(program)


def _may_alias(value, others):
    return isinstance(value, np.ndarray) and any(
        isinstance(o, np.ndarray) and np.may_share_memory(value, o) for o in others)


def _read_only(value):
    return isinstance(value, np.ndarray) and not value.flags.writeable


def _as_result(value, var):
    """A caller-owned result: 0-d values become NumPy scalars, as NumPy's reductions return."""
    if var.ndim == 0:
        return np.asarray(value, dtype=var.dtype)[()]
    return value


class Executable:
    """A Program bound to a backend; `run` does the whole call protocol."""

    def __init__(self, program, mode, profile=None):
        self.program = program
        self.mode = mode or config.mode
        self.profile = profile
        if profile is None:
            self.backend = make_backend(program, self.mode)
        else:
            from .profiling import phase
            profile.programs.append(program)
            with phase("build", profile):
                self.backend = make_backend(program, self.mode, profile)
            profile.executables.append(self)

    def run(self, input_values, write_targets=None):
        if self.profile is not None:
            return self.profile.timed_call(self._run, input_values, write_targets)
        return self._run(input_values, write_targets)

    def _run(self, input_values, write_targets=None):
        """Outputs for the explicit input values; applies write-backs and updates.

        `write_targets[i]` is the caller's array receiving the final value of
        explicit input i when the traced function mutated it.
        """
        program = self.program
        shared_values = [sv._value for sv in program.shared]
        roots = self.backend.run(list(input_values) + shared_values)
        n_out, n_upd = len(program.outputs), len(program.updates)
        outs, upd_vals, wb_vals = roots[:n_out], roots[n_out:n_out + n_upd], roots[n_out + n_upd:]
        protected = [v for v in input_values if isinstance(v, np.ndarray)] + shared_values
        results = []
        for value, var in zip(outs, program.outputs):
            if _may_alias(value, protected + upd_vals + wb_vals + results) or _read_only(value):
                value = value.copy()  # read-only: a graph constant (or a view of one)
            results.append(value)
        targets = [write_targets[i] for i, _ in program.writebacks] if program.writebacks else []
        wb_vals = [v.copy() if _may_alias(v, targets) else v for v in wb_vals]
        for target, value in zip(targets, wb_vals):
            np.copyto(target, value, casting="unsafe")
        stored = []
        for (sv, _), value in zip(program.updates, upd_vals):
            value = np.asarray(value, dtype=sv.leaf.dtype)
            if _may_alias(value, protected + results + targets + stored) or _read_only(value):
                value = value.copy()
            sv._value = value
            stored.append(value)
        return [_as_result(v, var) for v, var in zip(results, program.outputs)]


class Function:
    """A function compiled from symbolic inputs and outputs (``tc.function``)."""

    def __init__(self, inputs, outputs, updates=None, givens=None, mode=None, name=None,
                 on_unused_input="raise", allow_input_downcast=False, profile=None):
        if on_unused_input not in ("raise", "warn", "ignore"):
            raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
        self.name = name or "<tc.function>"
        self.allow_input_downcast = allow_input_downcast
        self.single = not isinstance(outputs, (list, tuple))
        out_list = [outputs] if self.single else list(outputs)
        in_vars = [_input_var(v, i) for i, v in enumerate(inputs)]
        out_vars = [_output_var(o, i) for i, o in enumerate(out_list)]
        upd = _update_pairs(updates)
        if givens:
            pairs = givens.items() if isinstance(givens, dict) else givens
            mapping = {}
            for old, new in pairs:
                old_v, new_v = symbolic_variable(old, "givens key"), symbolic_variable(new, "givens value")
                if (old_v.dtype, old_v.ndim) != (new_v.dtype, new_v.ndim):
                    raise TypeError(f"givens: cannot replace {old_v.type.short()} by {new_v.type.short()}")
                mapping[old_v] = new_v
            replaced = clone_replace(out_vars + [v for _, v in upd], mapping)
            out_vars, upd = replaced[:len(out_vars)], list(zip([s for s, _ in upd], replaced[len(out_vars):]))
        program = Program(in_vars, out_vars, upd, name=self.name)
        self._check_unused(program, on_unused_input)
        self.profile = _make_profile(self.name, profile)
        self.executable = Executable(program, mode, self.profile)
        self.input_names = [v.name or f"input {i}" for i, v in enumerate(in_vars)]
        self._native_call = None  # the native runner's fast_call, armed after the first call

    @property
    def program(self):
        return self.executable.program

    def _check_unused(self, program, policy):
        from .trace.graph import leaves
        used = {id(v) for v in leaves(program.roots(), stop=program.inputs)}
        for i, v in enumerate(program.inputs):
            if id(v) not in used and policy != "ignore":
                msg = (f"{self.name}: input {i} ({v.name or 'unnamed'}) is not used to compute the "
                       f"outputs; pass on_unused_input='ignore' (or 'warn') if that is intended")
                if policy == "raise":
                    raise ValueError(msg)
                warnings.warn(msg, stacklevel=4)

    def __call__(self, *args, **kwargs):
        native = self._native_call
        if native is not None and not kwargs:
            result = native(args)  # argument checks, the graph, updates and results, in C
            if result is not _NOMATCH:
                return result
        program = self.program
        if kwargs:
            missing = object()
            args = list(args) + [missing] * (len(program.inputs) - len(args))
            for key, value in kwargs.items():
                if key not in self.input_names:
                    raise TypeError(f"{self.name}: unexpected keyword argument {key!r}; inputs are "
                                    f"{self.input_names}")
                if args[self.input_names.index(key)] is not missing:
                    raise TypeError(f"{self.name}: got multiple values for input {key!r}")
                args[self.input_names.index(key)] = value
            absent = [n for n, a in zip(self.input_names, args) if a is missing]
            if absent:
                raise TypeError(f"{self.name} takes {len(program.inputs)} input(s) "
                                f"({', '.join(self.input_names)}); missing: {', '.join(absent)}")
        if len(args) != len(program.inputs):
            raise TypeError(f"{self.name} takes {len(program.inputs)} input(s) "
                            f"({', '.join(self.input_names)}) but {len(args)} were given")
        values = [var.type.check_value(a, f"{self.name}: argument {i} ({self.input_names[i]})",
                                       self.allow_input_downcast)
                  for i, (a, var) in enumerate(zip(args, program.inputs))]
        out = self.executable.run(values)
        if native is None and self.executable.profile is None:
            self._native_call = _arm_native(self.executable.backend, len(program.inputs), 0 if self.single else 2)
        return out[0] if self.single else out


def symbolic_variable(v, what, hint=""):
    """The graph Variable of a symbolic value, or a TypeError naming `what`."""
    if isinstance(v, Tensor):
        return v.variable
    if isinstance(v, Variable):
        return v
    raise TypeError(f"{what}: expected a symbolic variable (tc.vector(...), an expression, a "
                    f"shared variable), got {type(v).__name__}{hint}")


def _input_var(v, i):
    if isinstance(v, SharedVariable):
        raise TypeError(f"input {i}: {v!r} is a shared variable; shared variables are implicit "
                        "inputs and must not be listed")
    return symbolic_variable(v, f"input {i}")


def _output_var(o, i):
    if not isinstance(o, (Tensor, Variable)):
        from .trace.numpy_api import as_tensor
        o = as_tensor(o)
    return symbolic_variable(o, f"output {i}")


def _update_pairs(updates):
    if not updates:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    out = []
    for pair in pairs:
        shared, expr = pair
        if not isinstance(shared, SharedVariable):
            raise TypeError(f"updates: the first item of each pair must be a shared variable, got {shared!r}")
        from .trace.numpy_api import as_tensor
        var = as_tensor(expr).variable
        if var.dtype != shared.leaf.dtype or var.ndim != shared.leaf.ndim:
            raise TypeError(f"updates: the new value of {shared!r} has type {var.type.short()}; it must "
                            f"keep the shared variable's dtype and rank ({shared.leaf.type.short()}); "
                            f"use .astype({shared.leaf.dtype.name!r})")
        out.append((shared, var))
    if len({id(s) for s, _ in out}) != len(out):
        raise ValueError("updates: a shared variable appears twice")
    return out


def _overlap(a, b):
    if not (isinstance(b, np.ndarray) and np.may_share_memory(a, b)):
        return False
    try:
        return np.shares_memory(a, b, max_work=10_000)
    except np.exceptions.TooHardError:
        return True


def _check_no_overlap(name, inputs, values, pos):
    """A mutated argument must not share memory with another argument (a view of it):
    the trace treats them as independent, so NumPy's answer could not be kept."""
    for j, other in enumerate(values):
        if j != pos and _overlap(values[pos], other):
            raise ValueError(f"{name}: {inputs[pos].name} is modified in place and shares memory with "
                             f"{inputs[j].name} (one is a view of the other); pass the same array "
                             "object twice, or a .copy() of one of them")


def _make_profile(name, profile):
    """A Profile when asked for (profile=True), or by tc.config.profile when not said (None)."""
    if profile or (profile is None and config.profile):
        from .profiling import Profile
        return Profile(name)
    return None


def _fast_key(args):
    """Signature of a call whose arguments are distinct plain ndarrays, else None."""
    key = []
    for a in args:
        if type(a) is not np.ndarray:
            return None
        key.append((a.dtype, tuple([s == 1 for s in a.shape])))
    if len(args) > 1 and len(set(map(id, args))) != len(args):
        return None  # the same array twice: the general path handles aliasing
    return tuple(key)


class _Missing:
    pass


_NOMATCH = _Missing()  # replaced by the native runner's NOMATCH when the C backend is importable


def _native_fast_call(entry, n_args):
    """The native runner's fast_call for a cache entry called with `n_args` plain arrays, or None."""
    traced, executable = entry
    if executable.profile is not None or traced.output_statics or \
            list(traced.input_leaf_index) != list(range(n_args)):
        return None
    probes = [object() for _ in range(len(traced.program.outputs))]
    shaped = unflatten(traced.output_treedef, probes)
    if len(probes) == 1 and shaped is probes[0]:
        kind = 0
    elif type(shaped) is tuple and len(shaped) == len(probes) and all(a is b for a, b in zip(shaped, probes)):
        kind = 1
    else:
        return None
    return _arm_native(executable.backend, n_args, kind)


def _arm_native(backend, n_args, kind):
    """`backend`'s native fast_call for calls with `n_args` plain arrays (result `kind`), or None."""
    global _NOMATCH
    fast_call_for = getattr(backend, "fast_call_for", None)
    fast_call = fast_call_for(n_args, kind) if fast_call_for is not None else None
    if fast_call is not None:
        from .cgen.executor import NOMATCH
        _NOMATCH = NOMATCH
    return fast_call


def _leaf_key(value):
    """The part of the signature one argument leaf contributes (cheap: runs every call)."""
    if isinstance(value, np.ndarray):
        return (value.dtype, tuple(s == 1 for s in value.shape))
    if isinstance(value, np.generic):
        return (value.dtype,)
    return type(value)


class CompiledFunction:
    """A function traced once per argument signature (``tc.compile``).

    The signature is the dtype, rank and broadcastable pattern of each array
    argument, the kind of each scalar, the structure of nested arguments and
    the values of static arguments. Shapes are not part of it.
    """

    def __init__(self, fn, mode=None, static_argnums=(), static_argnames=(), name=None, profile=None):
        if not callable(fn):
            raise TypeError(f"tc.compile needs a function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.mode = mode
        self.name = name or getattr(fn, "__qualname__", getattr(fn, "__name__", "<function>"))
        self.static_argnums = tuple(static_argnums) if isinstance(static_argnums, (tuple, list)) \
            else (static_argnums,)
        self.static_argnames = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            params = []
        self._params = [p.name for p in params]
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        # negative static_argnums count from the last positional parameter (from the last
        # argument passed when the function takes *args or has no signature)
        self._n_positional = None if not params or any(
            p.kind == inspect.Parameter.VAR_POSITIONAL for p in params) else \
            sum(p.kind in positional for p in params)
        self._cache = {}
        self._fast = {}  # signature of plain distinct ndarray arguments -> cache entry
        self._native_call = None  # the last such entry's native Runner.fast_call, when it has one
        self._profile_flag = profile
        self.profile = _make_profile(self.name, profile)  # or made at the first trace under tc.config.profile

    def __get__(self, obj, objtype=None):
        # a method: the instance is a static argument (hashed, by identity unless it defines __hash__)
        return self if obj is None else functools.partial(self, Static(obj))

    def _split(self, args, kwargs):
        """Wrap static arguments so they go into the signature, not the trace."""
        n = len(args)
        width = max(n, self._n_positional or 0)
        resolved = {p % width for p in self.static_argnums if -width <= p < width} if width else set()
        static_pos = {p for p in resolved if p < n}
        static_pos |= {i for i, p in enumerate(self._params[:n]) if p in self.static_argnames}
        static_names = set(self.static_argnames) | {
            self._params[p] for p in resolved if p < len(self._params)}
        args = tuple(Static(a) if i in static_pos and not isinstance(a, Static) else a
                     for i, a in enumerate(args))
        kwargs = {k: Static(v) if k in static_names else v for k, v in kwargs.items()}
        return args, kwargs

    def __call__(self, *args, **kwargs):
        native = self._native_call
        if native is not None and not kwargs and not config._values["disable_compile"]:
            result = native(args)  # argument checks, the whole graph and the results, in C
            if result is not _NOMATCH:
                return result
        if not kwargs and not self.static_argnums and not self.static_argnames:
            entry = self._fast.get(_fast_key(args))
            if entry is not None and not config._values["disable_compile"]:
                result = self._call_entry(entry, args)
                self._native_call = _native_fast_call(entry, len(args))
                return result
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        from .trace.numpy_api import contains_tensor
        if config.disable_compile or contains_tensor(list(args)) or contains_tensor(list(kwargs.values())):
            args = [a.value if isinstance(a, Static) else a for a in args]
            return self.fn(*args, **kwargs)  # called while tracing another function: inline
        args, kwargs = self._split(args, kwargs)
        leaves, treedef = flatten((args, kwargs))
        seen, alias = {}, []
        for i, leaf in enumerate(leaves):
            alias.append(seen.setdefault(id(leaf), i) if isinstance(leaf, np.ndarray) else i)
        key = (treedef, tuple(map(_leaf_key, leaves)), tuple(alias))
        try:
            entry = self._cache.get(key)
        except TypeError as exc:
            raise TypeError(f"{self.name}: static arguments must be hashable ({exc})") from None
        if entry is None:
            paths = [self._pretty(p) for p in leaf_paths(treedef, "args")]
            types = tuple(leaf_type(leaf, f"{self.name}: {p}") for leaf, p in zip(leaves, paths))
            entry = self._trace(args, kwargs, types, alias, paths, key)
            self._cache[key] = entry
        fast = _fast_key(args) if not kwargs else None
        if fast is not None and len(leaves) == len(args) and not self.static_argnums \
                and not self.static_argnames:
            self._fast[fast] = entry  # later calls with the same plain arrays skip the general path
        return self._call_entry(entry, leaves)

    def _call_entry(self, entry, leaves):
        traced, executable = entry
        values = [leaves[i] for i in traced.input_leaf_index]
        targets = None
        if traced.program.writebacks:
            targets = values
            for pos, _ in traced.program.writebacks:
                if not values[pos].flags.writeable:
                    raise ValueError(f"{self.name}: {traced.program.inputs[pos].name} is modified in "
                                     "place by the function but the array passed is read-only")
                _check_no_overlap(self.name, traced.program.inputs, values, pos)
        results = executable.run(values, targets)
        out_leaves, it = [], iter(results)
        n = len(results) + len(traced.output_statics)
        for i in range(n):
            if i in traced.output_statics:
                value = traced.output_statics[i]
                out_leaves.append(value.copy() if isinstance(value, np.ndarray) else value)
            else:
                out_leaves.append(next(it))
        return unflatten(traced.output_treedef, out_leaves)

    def _pretty(self, path):
        # args[0][0] -> x ; args[1]['lr'] -> lr ; deeper paths keep their tail
        if path.startswith("args[0]["):
            rest = path[len("args[0]["):]
            idx, _, tail = rest.partition("]")
            pos = int(idx)
            name = self._params[pos] if pos < len(self._params) and not self._params[pos].startswith("*") \
                else f"argument {pos}"
            return name + tail
        if path.startswith("args[1]["):
            rest = path[len("args[1]["):]
            key, _, tail = rest.partition("]")
            return key.strip("'\"") + tail
        return path

    def _trace(self, args, kwargs, types, alias, names, key=None):
        from .debug import note_retrace
        from .profiling import phase
        self.profile = self.profile or _make_profile(self.name, self._profile_flag)
        why = note_retrace(self, list(self._cache), key) if self._cache and key is not None else None
        with phase("trace", self.profile):
            from .trace.loops import convert  # Python loops/ifs on traced values -> scan/ifelse
            traced = trace(convert(self.fn), args, kwargs, types, alias, names, self.name)
        if self.profile is not None:
            self.profile.traces += 1
        if len(self._cache) + 1 >= config.retrace_warn:
            warnings.warn(f"{self.name} has been traced {len(self._cache) + 1} times (once per new "
                          "argument dtype/rank/size-1 pattern or static value)"
                          + (f"; this time because {why}" if why else ""), stacklevel=4)
        return traced, Executable(traced.program, self.mode, self.profile)

    @property
    def programs(self):
        """The traced Programs, one per signature seen so far."""
        return [traced.program for traced, _ in self._cache.values()]

    def __repr__(self):
        return f"<tc.compile {self.name}: {len(self._cache)} signature(s)>"
