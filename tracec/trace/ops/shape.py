"""Shape ops: shape_i, reshape, transpose, expand_dims, squeeze, broadcast_to,
concatenate, stack, split, flip, roll, tile, repeat.

Sizes that may be traced (reshape targets, broadcast_to shapes) are inputs:
0-d integer variables, constant or not. Everything else is a static param.
"""
import numpy as np

from ..graph import Constant
from ..types import TensorType
from .base import Op


def _check_int_scalars(dims, what):
    for d in dims:
        if d.ndim != 0 or d.dtype.kind not in "iub":
            raise TypeError(f"{what}: sizes must be integer scalars, got {d.type.short()}")


def is_const(var, value):
    """True when `var` is a constant equal to `value`."""
    return isinstance(var, Constant) and np.ndim(var.value) == 0 and var.value == value


def _shape_i_infer(inputs, i):
    if not 0 <= i < inputs[0].ndim:
        raise IndexError(f"shape index {i} out of range for a {inputs[0].ndim}-d array")
    return [TensorType(np.int64, (), weak=True)]


shape_i = Op("shape_i", lambda x, i: np.shape(x)[i], _shape_i_infer, kind="shape",
             doc="x.shape[i] as a (weak, like a Python int) int64 scalar")


def _reshape_impl(x, *dims):
    return np.reshape(x, tuple(int(d) for d in dims))


def _reshape_infer(inputs):
    x, *dims = inputs
    _check_int_scalars(dims, "reshape")
    if sum(is_const(d, -1) for d in dims) > 1:
        raise ValueError("reshape: can only specify one unknown dimension (-1)")
    return [TensorType(x.dtype, tuple(is_const(d, 1) for d in dims))]


reshape = Op("reshape", _reshape_impl, _reshape_infer, kind="shape")


def _transpose_infer(inputs, axes):
    (x,) = inputs
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} don't match an array of {x.ndim} dimensions")
    return [TensorType(x.dtype, tuple(x.broadcastable[a] for a in axes))]


transpose = Op("transpose", lambda x, axes: np.transpose(x, axes), _transpose_infer, kind="shape")


def _expand_dims_infer(inputs, axes):
    (x,) = inputs
    pattern = list(x.broadcastable)
    for a in sorted(axes):
        pattern.insert(a, True)
    return [TensorType(x.dtype, tuple(pattern))]


expand_dims = Op("expand_dims", lambda x, axes: np.expand_dims(x, axes), _expand_dims_infer,
                 kind="shape", doc="axes: positions in the output, normalized")


def _squeeze_impl(x, axes, only_known):
    if only_known:
        # np.squeeze(x) without an axis: dims not known to be 1 when tracing must not be 1 now
        extra = [a for a, s in enumerate(np.shape(x)) if s == 1 and a not in axes]
        if extra:
            raise ValueError(f"squeeze() without an axis: dimension(s) {extra} of shape {np.shape(x)} "
                             "have length 1 but were not known to when the function was traced, so "
                             "the result would have a different rank; pass axis=... explicitly")
    return np.squeeze(x, axis=axes)


def _squeeze_infer(inputs, axes, only_known):
    (x,) = inputs
    return [TensorType(x.dtype, tuple(b for a, b in enumerate(x.broadcastable) if a not in axes))]


squeeze = Op("squeeze", _squeeze_impl, _squeeze_infer, kind="shape")


def _broadcast_to_impl(x, *dims):
    return np.broadcast_to(x, tuple(int(d) for d in dims))


def _broadcast_to_infer(inputs):
    x, *dims = inputs
    _check_int_scalars(dims, "broadcast_to")
    if len(dims) < x.ndim:
        raise ValueError(f"broadcast_to: cannot broadcast a {x.ndim}-d array to {len(dims)} dimensions")
    return [TensorType(x.dtype, tuple(is_const(d, 1) for d in dims))]


broadcast_to = Op("broadcast_to", _broadcast_to_impl, _broadcast_to_infer, kind="shape")


def _join_dtype(inputs):
    return np.concatenate([np.empty((0,), v.dtype) for v in inputs]).dtype


def _concatenate_infer(inputs, axis):
    ndims = {v.ndim for v in inputs}
    if len(ndims) != 1:
        raise ValueError(f"concatenate: all the input arrays must have the same number of "
                         f"dimensions, got {[v.ndim for v in inputs]}")
    pattern = [all(v.broadcastable[a] for v in inputs) for a in range(inputs[0].ndim)]
    pattern[axis] = len(inputs) == 1 and inputs[0].broadcastable[axis]
    return [TensorType(_join_dtype(inputs), tuple(pattern))]


concatenate = Op("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                 _concatenate_infer, kind="shape")


def _stack_infer(inputs, axis):
    if len({v.ndim for v in inputs}) != 1:
        raise ValueError("stack: all input arrays must have the same number of dimensions")
    pattern = [all(v.broadcastable[a] for v in inputs) for a in range(inputs[0].ndim)]
    pattern.insert(axis, len(inputs) == 1)
    return [TensorType(_join_dtype(inputs), tuple(pattern))]


stack = Op("stack", lambda *xs, axis: np.stack(xs, axis=axis), _stack_infer, kind="shape")


def _split_impl(x, sections, axis, equal):
    fn = np.split if equal else np.array_split
    return tuple(fn(x, sections, axis=axis))


def _split_infer(inputs, sections, axis, equal):
    (x,) = inputs
    count = sections if isinstance(sections, int) else len(sections) + 1
    pattern = list(x.broadcastable)
    pattern[axis] = False
    return [TensorType(x.dtype, tuple(pattern))] * count


split = Op("split", _split_impl, _split_infer, kind="shape",
           doc="np.split / np.array_split with static sections (int or tuple of indices)")


def _same_type(inputs, **params):
    return [inputs[0].type.with_weak(False)]


flip = Op("flip", lambda x, axes: np.flip(x, axes), _same_type, kind="shape")


def _roll_impl(x, shift, axis):
    return np.roll(x, shift, axis=axis)


def _roll_infer(inputs, axis):
    x, shift = inputs
    if shift.dtype.kind not in "iu":
        raise TypeError(f"roll: shift must be integer, got {shift.dtype}")
    if axis is None:
        return [x.type.with_weak(False)]
    return [x.type]


roll = Op("roll", _roll_impl, _roll_infer, kind="shape")


def _tile_infer(inputs, reps):
    (x,) = inputs
    n = max(len(reps), x.ndim)
    reps = (1,) * (n - len(reps)) + tuple(reps)
    pattern = (True,) * (n - x.ndim) + x.broadcastable
    return [TensorType(x.dtype, tuple(b and r == 1 for b, r in zip(pattern, reps)))]


tile = Op("tile", lambda x, reps: np.tile(x, reps), _tile_infer, kind="shape")


def _repeat_impl(x, repeats, axis):
    return np.repeat(x, repeats, axis=axis)


def _repeat_infer(inputs, axis):
    x, repeats = inputs
    if repeats.dtype.kind not in "iu" or repeats.ndim > 1:
        raise TypeError(f"repeat: repeats must be an integer scalar or 1-d array, got {repeats.type.short()}")
    if axis is None:
        return [TensorType(x.dtype, (False,))]
    pattern = list(x.broadcastable)
    pattern[axis] = is_const(repeats, 1) and pattern[axis]
    return [TensorType(x.dtype, tuple(pattern))]


repeat = Op("repeat", _repeat_impl, _repeat_infer, kind="shape")


def _sum_to_impl(g, *dims):
    g = np.asarray(g)
    target = tuple(int(d) for d in dims)
    if g.shape == target:
        return g
    # (dtype=: NumPy's sum widens int32 and bool; sum_to keeps its input's dtype, as its type says)
    if g.ndim > len(target):
        g = g.sum(axis=tuple(range(g.ndim - len(target))), dtype=g.dtype)
    axes = tuple(a for a, (s, t) in enumerate(zip(g.shape, target)) if t == 1 and s != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True, dtype=g.dtype)
    if g.shape != target:
        raise ValueError(f"sum_to: cannot reduce shape {g.shape} to {target}")
    return g


def _sum_to_infer(inputs):
    g, *dims = inputs
    _check_int_scalars(dims, "sum_to")
    if len(dims) > g.ndim:
        raise ValueError(f"sum_to: cannot reduce a {g.ndim}-d array to {len(dims)} dimensions")
    return [TensorType(g.dtype, tuple(is_const(d, 1) for d in dims))]


sum_to = Op("sum_to", _sum_to_impl, _sum_to_infer, kind="shape",
            doc="g summed over the dimensions where the run-time target shape has length 1 "
                "(undoes broadcasting that the types could not see)")
