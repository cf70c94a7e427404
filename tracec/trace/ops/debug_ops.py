"""Ops with a side effect at run time: `debug_print` and `debug_breakpoint`.

Both pass their values through unchanged, so they stay in the graph only as
long as the user goes on computing with what they return (as Theano's
``Print``). They carry ``side_effects = True``: rewrites must never remove them
as identities, fold them into constants or merge two of them.
"""
import builtins
import keyword
import sys

import numpy as np

from .base import Op


def _format_value(value):
    if isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=20, edgeitems=3)
        return f"{text}  ({value.dtype}, shape {value.shape})"
    return repr(value)


def _print_impl(x, message):
    builtins.print(f"{message}: {_format_value(x)}", file=sys.stdout, flush=True)
    return x


debug_print = Op("debug_print", _print_impl, lambda inputs, message: [inputs[0].type], kind="debug",
                 doc="prints its input at run time and passes it through: tc.debug.print(x, message)")
debug_print.side_effects = True
debug_print.grad = lambda node, inputs, outputs, grads: [grads[0]]  # identity; the gradient does not print


_FRAMES = {}  # names -> function whose frame holds the watched values as local variables


def _frame_function(names):
    """A function with the watched values as arguments, so pdb shows them as locals."""
    fn = _FRAMES.get(names)
    if fn is None:
        source = (f"def tracec_breakpoint({', '.join(names)}):\n"
                  f"    __import__('pdb').set_trace()  # the values you watched are local variables here\n"
                  f"    return None\n")
        namespace = {}
        exec(compile(source, "<tc.debug.breakpoint>", "exec"), namespace)
        fn = _FRAMES[names] = namespace["tracec_breakpoint"]
    return fn


def _breakpoint_impl(cond, *values, names, where):
    if bool(cond):
        listing = "\n".join(f"  {n} = {_format_value(v)}" for n, v in zip(names, values))
        builtins.print(f"tc.debug.breakpoint at {where}: the condition holds.\n{listing}\n"
                       f"(they are local variables in pdb: `p {names[0]}`; `c` continues)",
                       file=sys.stdout, flush=True)
        _frame_function(names)(*values)
    return values if len(values) > 1 else values[0]


debug_breakpoint = Op("debug_breakpoint", _breakpoint_impl,
                      lambda inputs, names, where: [v.type for v in inputs[1:]], kind="debug",
                      doc="stops in pdb when its condition holds: tc.debug.breakpoint(cond, *vars)")
debug_breakpoint.side_effects = True
debug_breakpoint.grad = lambda node, inputs, outputs, grads: [None] + list(grads)


def identifier(name, taken):
    """`name` made a valid, unused Python identifier (for the breakpoint frame)."""
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in str(name or "")) or "value"
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "v_" + text
    base, k = text, 1
    while text in taken:
        k += 1
        text = f"{base}_{k}"
    taken.add(text)
    return text
