"""Elementwise ops: every real-valued NumPy ufunc, plus clip, where and cast.

Output dtypes come from asking NumPy itself (the ufunc applied to empty
arrays of the input dtypes, with Python scalars standing in for weak
inputs), so promotion is NumPy 2's (NEP 50) by construction.
"""
import numpy as np

from ..graph import Constant
from ..types import TensorType
from .base import Op

_WEAK_SAMPLE = {"b": True, "i": 1, "u": 1, "f": 1.0, "c": 1j}


def dtype_sample(var):
    """A stand-in value with var's dtype and promotion behaviour."""
    if var.type.weak:
        return var.value if isinstance(var, Constant) else _WEAK_SAMPLE[var.dtype.kind]
    return np.empty((0,), var.dtype)


def broadcast_pattern(inputs):
    """Broadcastable pattern of the broadcast of `inputs` (NumPy rules, right-aligned)."""
    ndim = max((v.ndim for v in inputs), default=0)
    pattern = []
    for axis in range(ndim):
        dims = [v.broadcastable[axis - ndim + v.ndim] for v in inputs if axis - ndim + v.ndim >= 0]
        pattern.append(all(dims))
    return tuple(pattern)


def _elemwise_infer(ufunc):
    def infer(inputs):
        with np.errstate(all="ignore"):
            out = ufunc(*[dtype_sample(v) for v in inputs])
        outs = out if isinstance(out, tuple) else (out,)
        weak = all(v.type.weak for v in inputs)
        pattern = broadcast_pattern(inputs)
        return [TensorType(np.asarray(o).dtype, pattern, weak) for o in outs]
    return infer


# The ufunc table: one row per op. The op name is the ufunc's NumPy name
# (np.mod is np.remainder, np.abs is np.absolute, np.divide is np.true_divide).
UFUNCS = [
    # arithmetic
    np.add, np.subtract, np.multiply, np.true_divide, np.floor_divide,
    np.remainder, np.fmod, np.divmod, np.power, np.float_power,
    np.negative, np.positive, np.absolute, np.fabs, np.sign, np.reciprocal,
    np.square, np.sqrt, np.cbrt, np.copysign, np.heaviside, np.gcd, np.lcm,
    np.modf, np.ldexp, np.frexp, np.nextafter, np.spacing,
    # exponentials and logarithms
    np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10, np.log1p,
    np.logaddexp, np.logaddexp2,
    # trigonometric and hyperbolic
    np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.arctan2,
    np.hypot, np.sinh, np.cosh, np.tanh, np.arcsinh, np.arccosh, np.arctanh,
    np.deg2rad, np.rad2deg,
    # rounding
    np.floor, np.ceil, np.rint, np.trunc,
    # extrema
    np.maximum, np.minimum, np.fmax, np.fmin,
    # comparisons
    np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
    # logical
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    # bitwise
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift, np.right_shift,
    # floating-point classification
    np.isnan, np.isinf, np.isfinite, np.signbit,
]

UFUNC_OPS = {u: Op(u.__name__, u, _elemwise_infer(u), kind="elemwise") for u in UFUNCS}


def _where_impl(cond, a, b):
    return np.where(cond, a, b)


def _where_infer(inputs):
    cond, a, b = inputs  # any condition dtype is accepted, by truthiness, as in NumPy
    out = np.where(np.empty((0,), bool), dtype_sample(a), dtype_sample(b))
    return [TensorType(out.dtype, broadcast_pattern(inputs), all(v.type.weak for v in inputs[1:]))]


where = Op("where", _where_impl, _where_infer, kind="elemwise")


def _clip_impl(x, *bounds, has_lo, has_hi):
    bounds = list(bounds)
    lo = bounds.pop(0) if has_lo else None
    hi = bounds.pop(0) if has_hi else None
    return np.clip(x, lo, hi)


def _clip_infer(inputs, has_lo, has_hi):
    x, *bounds = inputs
    samples = [dtype_sample(b) for b in bounds]
    lo = samples.pop(0) if has_lo else None
    hi = samples.pop(0) if has_hi else None
    if lo is None and hi is None:
        raise ValueError("clip needs at least one of a_min and a_max")
    out = np.clip(dtype_sample(x), lo, hi)
    return [TensorType(np.asarray(out).dtype, broadcast_pattern(inputs), all(v.type.weak for v in inputs))]


clip = Op("clip", _clip_impl, _clip_infer, kind="elemwise")


def _cast_impl(x, dtype):
    return np.asarray(x).astype(dtype, copy=False)


def _cast_infer(inputs, dtype):
    (x,) = inputs
    return [TensorType(dtype, x.broadcastable)]


cast = Op("cast", _cast_impl, _cast_infer, kind="elemwise",
          doc="x.astype(dtype); also makes a weak scalar strong")
