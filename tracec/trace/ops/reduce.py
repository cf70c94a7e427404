"""Reductions and scans along axes: sum, prod, mean, var, std, max, min,
argmax, argmin, any, all, cumsum, cumprod.

`axis` is normalized when the node is built: a tuple of non-negative ints,
or None for every axis. Output dtypes come from NumPy applied to a tiny
array of the input dtype (int32 sums to int64, ints average to float64...).
"""
import warnings

import numpy as np

from ..types import TensorType
from .base import Op


def normalize_axes(axis, ndim, what="axis"):
    """`axis` (None, int or tuple) -> sorted tuple of non-negative ints; raises AxisError."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"{what} {a} is out of bounds for array of dimension {ndim}")
        a = a % ndim
        if a in out:
            raise ValueError(f"duplicate value in 'axis': {a}")
        out.append(a)
    return tuple(sorted(out))


def _reduce_type(x, fn, axis, keepdims, **kw):
    sample = np.ones((1,) * x.ndim, x.dtype)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # e.g. ddof >= size on the stand-in sample
        out = np.asarray(fn(sample, axis=axis, keepdims=keepdims, **kw))
    pattern = tuple(True if a in axis else b for a, b in enumerate(x.broadcastable)) if keepdims \
        else tuple(b for a, b in enumerate(x.broadcastable) if a not in axis)
    return TensorType(out.dtype, pattern)


def _reduction(name, fn, **defaults):
    def impl(x, axis, keepdims, **kw):
        return fn(x, axis=axis, keepdims=keepdims, **kw)

    def infer(inputs, axis, keepdims, **kw):
        return [_reduce_type(inputs[0], fn, axis, keepdims, **kw)]
    return Op(name, impl, infer, kind="reduce")


# Reduction table: op name -> NumPy function. Extra params (dtype, ddof) are
# passed through to NumPy unchanged.
REDUCTIONS = {name: _reduction(name, fn) for name, fn in [
    ("sum", np.sum), ("prod", np.prod), ("mean", np.mean), ("var", np.var), ("std", np.std),
    ("max", np.max), ("min", np.min), ("any", np.any), ("all", np.all),
]}


def _arg_reduction(name, fn):
    # axis is one int or None (flattened), as in NumPy
    def impl(x, axis, keepdims):
        return fn(x, axis=axis, keepdims=keepdims)

    def infer(inputs, axis, keepdims):
        (x,) = inputs
        if axis is None:
            pattern = (True,) * x.ndim if keepdims else ()
        else:
            pattern = _reduce_type(x, np.sum, (axis,), keepdims).broadcastable
        return [TensorType(np.intp, pattern)]
    return Op(name, impl, infer, kind="reduce")


REDUCTIONS["argmax"] = _arg_reduction("argmax", np.argmax)
REDUCTIONS["argmin"] = _arg_reduction("argmin", np.argmin)


def _accumulation(name, fn):
    # axis None flattens first, as in NumPy
    def impl(x, axis, dtype):
        return fn(x, axis=axis, dtype=dtype)

    def infer(inputs, axis, dtype):
        (x,) = inputs
        out = fn(np.ones((1,) * max(x.ndim, 1), x.dtype), axis=0 if axis is None else axis, dtype=dtype)
        pattern = (all(x.broadcastable),) if axis is None else x.broadcastable
        return [TensorType(out.dtype, pattern)]
    return Op(name, impl, infer, kind="reduce")


REDUCTIONS["cumsum"] = _accumulation("cumsum", np.cumsum)
REDUCTIONS["cumprod"] = _accumulation("cumprod", np.cumprod)
