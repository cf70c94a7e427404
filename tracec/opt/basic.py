"""Constant folding and dead-code rules (the FAST_COMPILE passes, with merge).

Merging equal subexpressions and equal constants is done by the engine itself
(every sweep hash-conses nodes); dead code never survives a sweep either, as a
sweep rebuilds only what the program's roots reach. The rules here fold
constant subgraphs by running the op table's own NumPy implementations, and
drop ops that only pass their input through.
"""
import warnings

import numpy as np

from ..trace.graph import Constant
from ..trace.interp import run_node
from .engine import on, same_type

NO_FOLD_KINDS = {"control", "fused", "inplace"}  # loops, kernels and buffer reuse stay runtime work
NO_FOLD_OPS = {"copy"}
FOLD_MAX_GROWTH = 64  # fold a result bigger than its inputs only up to this many elements


def make_constant(value, type):
    """A Constant holding `value` with exactly `type`, or None when that is impossible."""
    if type.weak:
        value = np.asarray(value).item() if isinstance(value, (np.ndarray, np.generic)) else value
        c = Constant(value)
        return c if c.type == type else None
    arr = np.asarray(value)
    if arr.dtype != type.dtype or arr.ndim != type.ndim:
        return None
    if any(b and s != 1 for b, s in zip(type.broadcastable, arr.shape)):
        return None
    c = Constant(arr)
    c.type = type  # may know fewer size-1 dims than the value has: that is still true
    return c


# op(constants...) -> constant
def fold_constants(node):
    op = node.op
    if op.kind in NO_FOLD_KINDS or op.name in NO_FOLD_OPS or not node.inputs:
        return None
    if not all(isinstance(v, Constant) for v in node.inputs):
        return None
    values = [v.value for v in node.inputs]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = run_node(node, values)
    except Exception:  # noqa: BLE001 -- the error is raised at run time, naming the user's line
        return None
    biggest = max(np.size(v) for v in values)
    if any(np.size(o) > max(biggest, FOLD_MAX_GROWTH) for o in outs):
        return None  # np.zeros((1000, 1000)) stays an allocation, not an 8 MB constant
    consts = [make_constant(o, var.type) for o, var in zip(outs, node.outputs)]
    return None if any(c is None for c in consts) else consts


# positive(x) -> x ; stop_gradient(x) -> x (identity once gradients are taken)
@on("positive", "stop_gradient")
def remove_identity(node):
    return same_type(node, node.inputs[0])


CONSTANT_FOLDING = [fold_constants]
DEAD_CODE = [remove_identity]
