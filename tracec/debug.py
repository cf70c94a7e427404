"""Debugging tools (``tc.debug``): the DEBUG mode, the backend check, run-time
printing and breakpoints, and explanations of retraces.

The definition of a compiled function is separate from its execution; these
tools close the gap by always pointing at the user's own source line, which
every graph node records (``node.loc``).

- ``mode='DEBUG'`` (or ``tc.config.mode = 'DEBUG'``) runs the graph node by node
  with the NumPy implementations and checks every output for NaN, infinities
  and (optionally) huge values; the first bad node raises a `BadValueError`
  (a `FloatingPointError`) naming the op, the shapes and the user's line.
- ``tc.config.debug_check_backend = True`` runs each node also on the NumPy
  reference interpreter and reports the first node whose compiled output
  differs (`BackendMismatchError`). It checks the backend the mode selects; it
  becomes meaningful once that backend is native code (the C backend).
- `print` and `breakpoint` are ops: they act when the compiled function runs.
"""
import builtins
import logging
import os
import sys

import numpy as np

from .config import config
from .trace import interp
from .trace.graph import Constant, user_source_loc
from .trace.interp import Interpreter, describe_values
from .trace.inner import inner_graphs_run_by
from .trace.ops import OPS
from .trace.ops.debug_ops import _format_value, identifier
from .trace.program import Program

__all__ = ["print", "breakpoint", "BadValueError", "NaNError", "InfError", "BigValueError",
           "BackendMismatchError", "DebugInterpreter", "CheckedBackend"]

log = logging.getLogger("tracec")


# -- run-time printing and breakpoints ------------------------------------------

def _is_traced(x):
    from .trace.numpy_api import contains_tensor
    return contains_tensor(x) if isinstance(x, (list, tuple)) else contains_tensor([x])


def print(x, message=None):
    """Print `x` each time the compiled function runs, and return it unchanged.

    Use the returned value: the print happens when what you compute from it
    is computed (as Theano's ``Print``). Outside a trace (plain NumPy values,
    or ``tc.config.disable_compile = True``) it prints at once.

    Parameters
    ----------
    x : traced array or array
    message : str, optional
        Printed before the value; by default the file and line of the call.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> @tc.compile
    ... def f(x):
    ...     y = tc.debug.print(np.log(x), "log x")
    ...     return y * 2
    >>> f(np.array([1.0, 2.0]))
    log x: [0.         0.69314718]  (float64, shape (2,))
    array([0.        , 1.38629436])
    """
    loc = user_source_loc()
    if message is None:
        message = f"{os.path.basename(loc.filename)}:{loc.lineno}"
    if not _is_traced(x):
        builtins.print(f"{message}: {_format_value(x)}", file=sys.stdout, flush=True)
        return x
    from .trace.numpy_api import as_tensor
    from .trace.tensor import Tensor
    node = OPS["debug_print"].make_node([as_tensor(x).variable], {"message": str(message)}, loc=loc)
    return Tensor(node.outputs[0])


def breakpoint(cond, *values):
    """Stop in pdb when `cond` holds at run time, with `values` as local variables there.

    Returns `values` unchanged (one value, or a tuple of them); compute on with
    what it returns, or the breakpoint is not part of the graph. `cond` must be
    a scalar (reduce with ``np.any(...)``). The variables in pdb are named
    after the Python variables you passed (``x``, ``h``), else ``value0``...

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> @tc.compile
    ... def f(x):
    ...     h = np.log(x)
    ...     h = tc.debug.breakpoint(np.any(np.isnan(h)), h)  # stops only if a NaN appears
    ...     return h.sum()
    >>> float(f(np.ones(3)))
    0.0
    """
    if not values:
        raise TypeError("tc.debug.breakpoint(cond, *values) needs at least one value to watch and pass "
                        "through; write `x, h = tc.debug.breakpoint(cond, x, h)` and go on with x and h")
    loc = user_source_loc()
    caller = sys._getframe(1).f_locals
    taken = set()
    names = []
    for i, v in enumerate(values):
        found = next((k for k, obj in caller.items() if obj is v and not k.startswith("_")), None)
        names.append(identifier(found or getattr(getattr(v, "variable", None), "name", None)
                                or f"value{i}", taken))
    if not _is_traced([cond, *values]):  # plain NumPy (disable_compile): decide now
        if bool(np.asarray(cond)):
            OPS["debug_breakpoint"].impl(True, *values, names=tuple(names), where=loc.describe())
        return values if len(values) > 1 else values[0]
    from .trace.numpy_api import as_tensor
    from .trace.tensor import Tensor
    cond_t = as_tensor(cond)
    if cond_t.ndim != 0:
        raise TypeError(f"tc.debug.breakpoint at {loc.describe()}: the condition must be a scalar, got "
                        f"{cond_t.type.short()}; reduce it with np.any(...) or np.all(...)")
    node = OPS["debug_breakpoint"].make_node(
        [cond_t.variable] + [as_tensor(v).variable for v in values],
        {"names": tuple(names), "where": loc.describe()}, loc=loc)
    outs = [Tensor(o) for o in node.outputs]
    return tuple(outs) if len(outs) > 1 else outs[0]


# -- DEBUG mode: NaN / Inf / big-value checks ------------------------------------

class BadValueError(FloatingPointError):
    """A node produced NaN, infinite or huge values in DEBUG mode.

    Attributes: `node` (the graph node, whose ``loc`` is the user's line),
    `output` (which output of the node) and `index` (the first bad element).
    """

    what = "bad values"
    flag = None

    def __init__(self, message, node=None, output=0, index=None):
        super().__init__(message)
        self.node, self.output, self.index = node, output, index


class NaNError(BadValueError):
    what, flag = "NaN", "nan_is_error"

    @staticmethod
    def adjective():
        return "NaN"


class InfError(BadValueError):
    what, flag = "infinite values", "inf_is_error"

    @staticmethod
    def adjective():
        return "infinite"


class BigValueError(BadValueError):
    what, flag = "huge values", "big_is_error"

    @staticmethod
    def adjective():
        return f"larger than {config.big_threshold:g} in magnitude"


class BackendMismatchError(AssertionError):
    """With ``tc.config.debug_check_backend``: a node's compiled output differs from NumPy's."""

    def __init__(self, message, node=None):
        super().__init__(message)
        self.node = node


def describe_node(node):
    """'log, built at file:line in f: `code`'; nodes built by tc.grad carry the forward
    line they differentiate, with a note ("(gradient of exp)")."""
    return f"{node.op.name}, built at {node.loc.describe()}"


def describe_input(var):
    """Where an input value of a node comes from, in the user's terms."""
    if isinstance(var, Constant):
        return f"the constant {_format_value(var.value) if not var.type.weak else repr(var.value)}"
    if var.owner is None:
        if var.shared is not None:
            return f"the shared variable {var.name or '(unnamed)'!r}"
        return f"the argument {var.name!r}" if var.name else "an unnamed input"
    return f"the output of {var.owner.op.name} at {var.owner.loc}"


def _bad_mask(value, cls):
    if cls is NaNError:
        return np.isnan(value)
    if cls is InfError:
        return np.isinf(value)
    with np.errstate(invalid="ignore"):
        return np.abs(value) > config.big_threshold


def _checks():
    return [cls for cls in (NaNError, InfError, BigValueError) if getattr(config, cls.flag)]


def _is_float(value):
    return np.asarray(value).dtype.kind in "fc"


def _at(value, index, shape):
    """`value` at the output's `index`, following broadcasting; None when it does not broadcast."""
    arr = np.asarray(value)
    try:
        return np.broadcast_to(arr, shape)[index]
    except ValueError:
        return None


def check_node_outputs(node, inputs, outputs, checks=None):
    """Raise the first `BadValueError` the outputs of `node` deserve (see the flags)."""
    checks = _checks() if checks is None else checks
    for k, out in enumerate(outputs):
        if not _is_float(out):
            continue
        arr = np.asarray(out)
        for cls in checks:
            mask = _bad_mask(arr, cls)
            if not mask.any():
                continue
            first = tuple(int(i) for i in np.argwhere(mask)[0]) if arr.ndim else ()
            raise cls(_bad_value_message(node, inputs, arr, k, mask, first, cls), node, k, first)


def _bad_value_message(node, inputs, out, k, mask, first, cls):
    count = int(mask.sum())
    which = f"output {k} of " if len(node.outputs) > 1 else ""
    lines = [f"{cls.what} in {which}{describe_node(node)}"]
    lines.append(f"  inputs : {describe_values(inputs) or '(none)'}")
    lines.append(f"  output : {describe_values([out])}")
    if out.ndim:
        lines.append(f"  {count} of {out.size} values are {cls.adjective()} ({', '.join(_sample(out, mask))}), "
                     f"first at index {first}")
    else:
        lines.append(f"  the value is {out[()].item()!r}")
    if node.op.kind == "elemwise" and out.ndim is not None:
        there = [_at(v, first, out.shape) for v in inputs]
        if all(t is not None for t in there):
            lines.append(f"  input values at {first}: " + ", ".join(repr(np.asarray(t).item()) for t in there))
    for i, (var, value) in enumerate(zip(node.inputs, inputs)):
        if _is_float(value) and _bad_mask(np.asarray(value), cls).any():
            lines.append(f"  input {i} is already {cls.adjective()} there or elsewhere: it is "
                         f"{describe_input(var)}")
    lines.append(f"  (mode DEBUG checks every node's output; tc.config.{cls.flag} = False turns this "
                 f"check off)")
    return "\n".join(lines)


def _sample(out, mask):
    flat = out[mask]
    values = sorted({repr(v.item()) for v in flat[:1000]})
    return values[:3] + (["..."] if len(values) > 3 else [])


class HookedInterpreter(Interpreter):
    """The reference interpreter; subclasses hook around every node (`run_step`)."""


class DebugInterpreter(HookedInterpreter):
    """The executor of mode DEBUG: runs node by node and checks every output,
    also inside loop bodies and conditional branches."""

    def run(self, input_values):
        with inner_graphs_run_by(DebugInterpreter):
            return super().run(input_values)

    def run_step(self, step, node, inputs):
        with np.errstate(all="ignore"):  # reported below, with the user's line
            outputs = interp.run_node(node, inputs)
        check_node_outputs(node, inputs, outputs)
        return outputs


# -- backend check: compare every node with the NumPy reference -------------------

def _tolerance(dtype):
    return {"e": (1e-2, 1e-3), "f": (1e-4, 1e-5), "d": (1e-7, 1e-9)}.get(np.dtype(dtype).char, (1e-7, 1e-9))


def compare_values(reference, got):
    """None when `got` matches the reference value, else a description of the difference."""
    ref, val = np.asarray(reference), np.asarray(got)
    if ref.shape != val.shape or ref.dtype != val.dtype:
        return f"reference {ref.dtype}{list(ref.shape)}, compiled {val.dtype}{list(val.shape)}"
    if ref.dtype.kind in "fc":
        rtol, atol = _tolerance(ref.dtype)
        with np.errstate(invalid="ignore"):
            close = np.isclose(val, ref, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = val == ref
    close = np.asarray(close)
    if close.all():
        return None
    bad = ~close
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if ref.ndim else ()
    text = (f"{int(bad.sum())} of {ref.size} values differ, first at index {first}: reference "
            f"{ref[first]!r}, compiled {val[first]!r}")
    if ref.dtype.kind in "fc":
        with np.errstate(invalid="ignore"):
            text += f" (largest difference {np.nanmax(np.abs(val - ref)[bad])!r})"
    return text


class CheckedBackend:
    """Runs `program` with the backend under test and checks it against the NumPy reference.

    `make_executor(program)` builds the executor under test (anything with
    ``run(values) -> root values``). Each call runs the reference interpreter
    keeping every node's value, then every node alone through an executor
    built for that node (fed the reference inputs), then the whole program;
    the first node whose output differs raises `BackendMismatchError`. With
    the NumPy interpreter as the backend this checks nothing new: it is the
    tool for finding code-generation bugs in native backends.
    """

    def __init__(self, program, make_executor):
        self.program = program
        self.make_executor = make_executor
        self.reference = HookedInterpreter(program)
        self.reference.keep_values = True
        self.executor = make_executor(program)
        self._node_executors = {}
        slots = {}
        for node, ins, outs, _ in self.reference.steps:
            for v, s in zip(node.outputs, outs):
                slots[id(v)] = s
        self._slots = slots

    def _node_executor(self, node):
        ex = self._node_executors.get(id(node))
        if ex is None:
            inputs = []
            for v in node.inputs:
                if not isinstance(v, Constant) and all(v is not u for u in inputs):
                    inputs.append(v)
            ex = self._node_executors[id(node)] = (inputs, self.make_executor(
                Program(inputs, list(node.outputs), name=f"{node.op.name} at {node.loc}")))
        return ex

    def run(self, input_values):
        expected = self.reference.run(input_values)
        store = self.reference.store
        for step, (node, ins, outs, _) in enumerate(self.reference.steps):
            if getattr(node.op, "side_effects", False):
                continue  # printing twice would only confuse; the whole-program run covers it
            inputs, ex = self._node_executor(node)
            slot_of = {id(v): s for v, s in zip(node.inputs, ins)}
            got = ex.run([store[slot_of[id(v)]] for v in inputs])
            for k, (want, have) in enumerate(zip([store[s] for s in outs], got)):
                diff = compare_values(want, have)
                if diff:
                    raise BackendMismatchError(self._message(node, step, k, diff, ins, store), node)
        results = self.executor.run(input_values)
        for k, (var, want, have) in enumerate(zip(self.program.roots(), expected, results)):
            diff = compare_values(want, have)
            if diff:
                where = describe_node(var.owner) if var.owner is not None else "an input"
                raise BackendMismatchError(
                    f"backend check: every node agrees with the NumPy reference on its own, but the "
                    f"compiled program's result {k} ({where}) differs: {diff} (a bug in how the "
                    f"backend joins nodes, e.g. fusion or buffer reuse)", var.owner)
        return results

    def _message(self, node, step, k, diff, ins, store):
        which = f"output {k} of " if len(node.outputs) > 1 else ""
        return (f"backend check: the compiled code differs from the NumPy reference at node {step + 1} "
                f"of {len(self.reference.steps)}, {which}{describe_node(node)}\n"
                f"  inputs : {describe_values([store[i] for i in ins]) or '(none)'}\n"
                f"  {diff}\n"
                f"  (tc.config.debug_check_backend = True compares every node; earlier nodes agree)")


# -- retracing -------------------------------------------------------------------

def _describe_leaf_key(leaf_key):
    """A leaf's signature entry (see function._leaf_key) in words."""
    if isinstance(leaf_key, type):
        return f"a Python {leaf_key.__name__}"
    if len(leaf_key) == 1:
        return f"a NumPy {np.dtype(leaf_key[0])} scalar"
    dtype, pattern = leaf_key
    dims = ",".join("1" if b else "?" for b in pattern)
    return f"{np.dtype(dtype)}[{dims}] ({len(pattern)}-d)"


def signature_items(key, pretty=lambda p: p):
    """{argument path: description} of a `tc.compile` signature key (treedef, leaf keys, aliases)."""
    treedef, leaf_keys, alias = key
    items = {}
    leaf_iter = iter(zip(leaf_keys, alias))
    counter = [0]

    def walk(d, path):
        kind = d[0]
        if kind == "leaf":
            leaf_key, first = next(leaf_iter)
            text = _describe_leaf_key(leaf_key)
            if first != counter[0]:
                text += " (the same array object as another argument)"
            counter[0] += 1
            items[pretty(path)] = text
        elif kind == "static":
            items[pretty(path)] = f"static value {d[1]!r:.60}"
        elif kind == "none":
            items[pretty(path)] = "None"
        elif kind in ("tuple", "list", "namedtuple"):
            if not d[-1]:
                items[pretty(path)] = f"an empty {kind}"
            for i, c in enumerate(d[-1]):
                walk(c, f"{path}[{i}]")
        elif kind == "dict":
            if not d[1]:
                items[pretty(path)] = "an empty dict"
            for k, c in zip(d[1], d[2]):
                walk(c, f"{path}[{k!r}]")

    walk(treedef, "args")
    return items


def explain_signature_change(old_keys, new_key, pretty=lambda p: p):
    """Which arguments differ between `new_key` and the closest earlier signature."""
    new = signature_items(new_key, pretty)
    best = None
    for old_key in reversed(list(old_keys)):  # on a tie, the latest signature
        old = signature_items(old_key, pretty)
        changes = []
        for path in list(old) + [p for p in new if p not in old]:
            a, b = old.get(path, "absent"), new.get(path, "absent")
            if a != b:
                changes.append(f"{path}: {a} -> {b}")
        if best is None or len(changes) < len(best):
            best = changes
    if not best:
        return "no argument type changed (a signature the cache could not match)"
    return "; ".join(best)


def note_retrace(function, old_keys, new_key):
    """The explanation of a new trace of `function`; logged when tc.config.explain_retrace is set."""
    why = explain_signature_change(old_keys, new_key, getattr(function, "_pretty", lambda p: p))
    text = (f"tracec: tracing {function.name} again (trace {len(old_keys) + 1}) because {why}; a "
            f"function is traced once per argument dtype, rank, size-1 pattern and static value")
    if config.explain_retrace:
        log.warning(text)
    return why
