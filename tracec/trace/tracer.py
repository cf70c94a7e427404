"""Tracing: run a Python function on proxy arrays and record a Program.

Arguments become input variables (aliased arguments share one), shared
variables read during the call become implicit inputs, in-place changes to
arguments become write-backs and in-place changes to shared variables become
updates.
"""
import numpy as np

from .context import TraceContext
from .graph import Variable
from .numpy_shape import numpy_patched
from .program import Program
from .pytree import Static, flatten, unflatten
from .tensor import Tensor
from .types import TensorType


class TracedFunction:
    """The result of tracing: the Program plus how to map Python values in and out."""

    def __init__(self, program, input_leaf_index, output_treedef, output_statics, mutable_inputs):
        self.program = program
        self.input_leaf_index = input_leaf_index  # for each program input: its position among the argument leaves
        self.output_treedef = output_treedef
        self.output_statics = output_statics      # non-traced output leaves, by position
        self.mutable_inputs = mutable_inputs


def trace(fn, args, kwargs, leaf_types, alias, leaf_names, name):
    """Trace `fn` on the leaves of (args, kwargs) with the given types.

    `alias[i]` is the first leaf position holding the same object as leaf i;
    those leaves get one shared proxy, so mutation through either is seen by both.
    """
    leaves, treedef = flatten((args, kwargs))
    proxies, inputs, input_leaf_index = [], [], []
    for i, (ty, first) in enumerate(zip(leaf_types, alias)):
        if first != i:
            proxies.append(proxies[first])
            continue
        var = Variable(ty, name=leaf_names[i])
        inputs.append(var)
        input_leaf_index.append(i)
        mutable = isinstance(leaves[i], np.ndarray)
        proxies.append(Tensor(var, mutable=mutable))
    with TraceContext() as ctx, numpy_patched():
        call_args, call_kwargs = unflatten(treedef, proxies)
        result = fn(*call_args, **call_kwargs)
        out_leaves, out_treedef = flatten(result)
        outputs, statics = [], {}
        for i, leaf in enumerate(out_leaves):
            if isinstance(leaf, Tensor):
                outputs.append(leaf.variable)
            else:
                statics[i] = leaf
        updates = [(sv, state[0]) for sv, state in ctx.shared.items() if state[0] is not sv.leaf]
        writebacks = []
        for pos, leaf_i in enumerate(input_leaf_index):
            final = proxies[leaf_i].variable
            if final is not inputs[pos]:
                writebacks.append((pos, final))
    program = Program(inputs, outputs, updates, writebacks, name=name)
    return TracedFunction(program, input_leaf_index, out_treedef, statics,
                          [isinstance(leaves[i], np.ndarray) for i in input_leaf_index])


def leaf_type(value, where):
    """The TensorType `tc.compile` gives an argument leaf, or a clear TypeError."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"{where}: arrays of dtype {value.dtype} cannot be traced; pass numeric "
                            "arrays, or mark the argument static (static_argnums/static_argnames)")
        return TensorType.of_value(value)
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"{where}: a {type(value).__name__} cannot be traced")
        return TensorType(value.dtype, ())
    if type(value) in (bool, int, float, complex):
        return TensorType.of_value(value)
    if isinstance(value, Tensor):
        raise TypeError(f"{where}: a traced array from another trace was passed in")
    raise TypeError(f"{where}: expected an array or a number, got {type(value).__name__} "
                    f"{value!r:.80}; mark it static with static_argnums/static_argnames if it is "
                    "a setting rather than data")


__all__ = ["trace", "leaf_type", "TracedFunction", "Static"]
