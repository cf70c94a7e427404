"""NumPy's shape functions and array creation on traced arrays.

Creation functions (np.zeros, np.arange, ...) do not dispatch on their
arguments in NumPy, so while a function is traced `numpy_patched()` routes
them here; with no traced argument they call NumPy unchanged.
"""
import builtins
import contextlib
import functools
import operator
import threading

import numpy as np

from . import ops
from .graph import Constant
from .ops.reduce import normalize_axes
from .tensor import Tensor, View
from .numpy_api import (HANDLED, as_tensor, contains_tensor, implements, int_scalar_var,
                        _wrap, astype, copy)

__all__ = ["shape", "size", "ndim", "reshape", "transpose", "swapaxes", "moveaxis", "flatten",
           "ravel", "squeeze", "expand_dims", "broadcast_to", "concatenate", "stack", "hstack",
           "vstack", "split", "array_split", "flip", "fliplr", "flipud", "roll", "tile", "repeat",
           "zeros_like", "ones_like", "empty_like", "full_like", "atleast_1d", "atleast_2d"]


@implements(np.shape)
def shape(a):
    a = as_tensor(a)
    return tuple(1 if b else Tensor(ops.OPS["shape_i"](a.variable, i=i), mutable=False)
                 for i, b in enumerate(a.broadcastable))


@implements(np.size)
def size(a, axis=None):
    dims = shape(a)
    if axis is not None:
        return dims[axis]
    return functools.reduce(operator.mul, dims, 1)


@implements(np.ndim)
def ndim(a):
    return as_tensor(a).ndim


def _shape_vars(dims, what="shape"):
    if isinstance(dims, (Tensor, int, np.integer)):
        dims = (dims,)
    return [int_scalar_var(d, f"{what} entry") for d in dims]


def _view(base, out, what, rebuild=None, write=None):
    return Tensor(out, mutable=True, view=View(base, rebuild, write, what))


@implements(np.reshape)
def reshape(a, *dims, shape=None, order="C", newshape=None, copy=None):
    a = as_tensor(a)
    if order != "C":
        raise NotImplementedError(f"reshape with order={order!r}: only C order is supported")
    given = shape if shape is not None else newshape  # np.reshape(a, shape=...) (newshape: NumPy < 2.1)
    shape = dims if given is None else (given,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dims = _shape_vars(shape, "reshape")
    out = ops.OPS["reshape"](a.variable, *dims)
    if copy:
        return Tensor(out)
    return _view(a, out, "reshape")  # a view or a copy in NumPy: ambiguous, so no write-through


@implements(np.transpose)
def transpose(a, *axes):
    a = as_tensor(a)
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    axes = tuple(range(a.ndim))[::-1] if not axes else tuple(int(x) % builtins.max(a.ndim, 1) for x in axes)
    if len(axes) != a.ndim or sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"axes {axes} don't match an array of {a.ndim} dimensions")
    inverse = tuple(int(i) for i in np.argsort(axes))
    return _view(a, ops.OPS["transpose"](a.variable, axes=axes), "transpose",
                 lambda b: ops.OPS["transpose"](b, axes=axes),
                 lambda b, new: ops.OPS["transpose"](new, axes=inverse))


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    a = as_tensor(a)
    i, j = (normalize_axes(x, a.ndim)[0] for x in (axis1, axis2))
    perm = list(range(a.ndim))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, tuple(perm))


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    a = as_tensor(a)
    src = [normalize_axes(s, a.ndim)[0] for s in np.atleast_1d(source)]
    dst = [normalize_axes(d, a.ndim)[0] for d in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(a.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, tuple(order))


def flatten(a, order="C"):
    return reshape(a, -1, order=order, copy=True)


@implements(np.ravel)
def ravel(a, order="C"):
    return reshape(a, -1, order=order)


@implements(np.squeeze)
def squeeze(a, axis=None):
    a = as_tensor(a)
    if axis is None:
        axes = tuple(i for i, b in enumerate(a.broadcastable) if b)
    else:
        axes = normalize_axes(axis, a.ndim)
    out = ops.OPS["squeeze"](a.variable, axes=axes, only_known=axis is None)
    return _view(a, out, "squeeze", lambda b: ops.OPS["squeeze"](b, axes=axes, only_known=False),
                 lambda b, new: ops.OPS["expand_dims"](new, axes=axes))


@implements(np.expand_dims)
def expand_dims(a, axis):
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1))
    return _view(a, ops.OPS["expand_dims"](a.variable, axes=axes), "expand_dims",
                 lambda b: ops.OPS["expand_dims"](b, axes=axes),
                 lambda b, new: ops.OPS["squeeze"](new, axes=axes, only_known=False))


@implements(np.broadcast_to)
def broadcast_to(array, shape, subok=False):
    a = as_tensor(array)
    dims = _shape_vars(shape, "broadcast_to")
    out = ops.OPS["broadcast_to"](a.variable, *dims)
    return _view(a, out, "np.broadcast_to (a read-only view in NumPy too)",
                 lambda b: ops.OPS["broadcast_to"](b, *dims))


def _no_out(name, out, dtype=None, casting="same_kind"):
    if out is not None:
        raise NotImplementedError(f"np.{name}: out= is not supported on traced arrays")
    if casting != "same_kind":
        raise NotImplementedError(f"np.{name}: casting= is not supported on traced arrays")


def _joined(name, arrays, dtype):
    tensors = [as_tensor(x) for x in arrays]
    if not tensors:
        raise ValueError("need at least one array to concatenate")
    if dtype is not None:
        bad = [t.dtype for t in tensors if not np.can_cast(t.dtype, dtype, "same_kind")]
        if bad:
            raise TypeError(f"np.{name}: cannot cast array data from {bad[0]} to {np.dtype(dtype)} "
                            "according to the rule 'same_kind'")
        tensors = [astype(t, dtype) for t in tensors]
    return tensors


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("concatenate", out, casting=casting)
    tensors = _joined("concatenate", arrays, dtype)
    if axis is None:
        tensors, axis = [reshape(t, -1) for t in tensors], 0
    if tensors[0].ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    axis = normalize_axes(axis, tensors[0].ndim)[0]
    return Tensor(ops.OPS["concatenate"](*[t.variable for t in tensors], axis=axis))


@implements(np.stack)
def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("stack", out, casting=casting)
    tensors = _joined("stack", arrays, dtype)
    axis = normalize_axes(axis, tensors[0].ndim + 1)[0]
    return Tensor(ops.OPS["stack"](*[t.variable for t in tensors], axis=axis))


@implements(np.atleast_1d)
def atleast_1d(*arys):
    out = [reshape(a, 1) if as_tensor(a).ndim == 0 else as_tensor(a) for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_2d)
def atleast_2d(*arys):
    out = []
    for a in arys:
        a = as_tensor(a)
        out.append(reshape(a, 1, 1) if a.ndim == 0 else expand_dims(a, 0) if a.ndim == 1 else a)
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.vstack)
def vstack(tup, *, dtype=None, casting="same_kind"):
    return concatenate([atleast_2d(t) for t in tup], axis=0, dtype=dtype, casting=casting)


@implements(np.hstack)
def hstack(tup, *, dtype=None, casting="same_kind"):
    arrs = [atleast_1d(t) for t in tup]
    return concatenate(arrs, axis=0 if arrs[0].ndim == 1 else 1, dtype=dtype, casting=casting)


def _split(a, indices_or_sections, axis, equal):
    a = as_tensor(a)
    axis = normalize_axes(axis, a.ndim)[0]
    if isinstance(indices_or_sections, Tensor) or (
            isinstance(indices_or_sections, (list, tuple)) and contains_tensor(indices_or_sections)):
        raise NotImplementedError("split points must be Python ints (the number of pieces must "
                                  "be known when tracing)")
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
    else:
        sections = tuple(int(i) for i in indices_or_sections)
    outs = ops.OPS["split"](a.variable, sections=sections, axis=axis, equal=equal)
    return list(_wrap(outs if isinstance(outs, tuple) else (outs,)))


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, equal=True)


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    return _split(ary, indices_or_sections, axis, equal=False)


@implements(np.flip)
def flip(m, axis=None):
    m = as_tensor(m)
    axes = normalize_axes(axis, m.ndim)
    flipped = lambda v: ops.OPS["flip"](v, axes=axes)  # noqa: E731
    return _view(m, flipped(m.variable), "flip", flipped, lambda b, new: flipped(new))


@implements(np.fliplr)
def fliplr(m):
    return flip(m, 1)


@implements(np.flipud)
def flipud(m):
    return flip(m, 0)


@implements(np.roll)
def roll(a, shift, axis=None):
    a = as_tensor(a)
    # tuple axes pair with tuple shifts in order, and may repeat: normalize each, don't sort
    axis = None if axis is None else (tuple(normalize_axes(x, a.ndim)[0] for x in axis)
                                      if isinstance(axis, (tuple, list)) else normalize_axes(axis, a.ndim)[0])
    return Tensor(ops.OPS["roll"](a.variable, as_tensor(shift).variable, axis=axis))


@implements(np.tile)
def tile(A, reps):
    if contains_tensor(reps):
        raise NotImplementedError("np.tile with traced repetition counts; pass Python ints")
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    return Tensor(ops.OPS["tile"](as_tensor(A).variable, reps=reps))


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    a = as_tensor(a)
    axis = None if axis is None else normalize_axes(axis, a.ndim)[0]
    return Tensor(ops.OPS["repeat"](a.variable, as_tensor(repeats).variable, axis=axis))


# -- creation ---------------------------------------------------------------------
def _alloc(dims, fill, dtype):
    return Tensor(ops.OPS["alloc"](as_tensor(fill).variable, *_shape_vars(dims), dtype=np.dtype(dtype)),
                  mutable=True)


def _like_shape(a, shape):
    return shape if shape is not None else globals()["shape"](a)


@implements(np.zeros_like)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    a = as_tensor(a)
    return _alloc(_like_shape(a, shape), 0, dtype or a.dtype)


@implements(np.ones_like)
def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    a = as_tensor(a)
    return _alloc(_like_shape(a, shape), 1, dtype or a.dtype)


@implements(np.empty_like)
def empty_like(prototype, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return zeros_like(prototype, dtype, order, subok, shape)  # deterministic "uninitialized" memory


@implements(np.full_like)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    a = as_tensor(a)
    return _alloc(_like_shape(a, shape), fill_value, dtype or a.dtype)


def _zeros(shape, dtype=float, order="C", **kw):
    return _alloc(shape, 0, dtype)


def _ones(shape, dtype=None, order="C", **kw):
    return _alloc(shape, 1, dtype or float)


def _full(shape, fill_value, dtype=None, order="C", **kw):
    if dtype is None:
        dtype = as_tensor(fill_value).dtype
    return _alloc(shape, fill_value, dtype)


def _arange(*args, dtype=None, **kw):
    if "start" in kw or "stop" in kw or "step" in kw:
        args = (kw.pop("start", 0), kw.pop("stop"), kw.pop("step", 1)) if "stop" in kw else \
            (kw.pop("start"),)
    if len(args) == 1:
        args = (0, args[0], 1)
    elif len(args) == 2:
        args = (args[0], args[1], 1)
    vars_ = [as_tensor(x).variable for x in args]
    return Tensor(ops.OPS["arange"](*vars_, dtype=None if dtype is None else np.dtype(dtype)),
                  mutable=True)


def _eye(N, M=None, k=0, dtype=float, order="C", **kw):
    n = int_scalar_var(N, "eye N")
    m = n if M is None else int_scalar_var(M, "eye M")
    return Tensor(ops.OPS["eye"](n, m, int_scalar_var(k, "eye k"), dtype=np.dtype(dtype)), mutable=True)


def _identity(n, dtype=None, **kw):
    return _eye(n, dtype=dtype or float)


def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, **kw):
    if retstep or axis != 0:
        raise NotImplementedError("np.linspace: retstep= and axis= are not supported with traced values")
    s, e = as_tensor(start), as_tensor(stop)
    if s.ndim or e.ndim:
        raise NotImplementedError("np.linspace with array start/stop on traced values")
    return Tensor(ops.OPS["linspace"](s.variable, e.variable, int_scalar_var(num, "linspace num"),
                                      endpoint=bool(endpoint),
                                      dtype=None if dtype is None else np.dtype(dtype)), mutable=True)


def _array(obj, dtype=None, copy=True, **kw):
    t = as_tensor(obj)
    if (dtype is not None and np.dtype(dtype) != t.dtype) or t.type.weak:
        return astype(t, t.dtype if dtype is None else dtype)  # np.asarray(3) is a strong int64 array
    return globals()["copy"](t) if copy else t


def _asarray(a, dtype=None, **kw):
    return _array(a, dtype, copy=False)


# numpy function name -> traced version, used only when an argument is traced
_CREATION = {"zeros": _zeros, "ones": _ones, "empty": _zeros, "full": _full, "arange": _arange,
             "eye": _eye, "identity": _identity, "linspace": _linspace, "array": _array,
             "asarray": _asarray, "asanyarray": _asarray, "ascontiguousarray": _asarray}
_ORIGINALS = {name: getattr(np, name) for name in _CREATION}
HANDLED_CREATION = _CREATION
_patch_lock = threading.Lock()
_patch_depth = 0


def _dispatching(name):
    original, traced = _ORIGINALS[name], _CREATION[name]

    @functools.wraps(original)
    def create(*args, **kwargs):
        if contains_tensor(args) or builtins.any(contains_tensor(v) for v in kwargs.values()):
            return traced(*args, **kwargs)
        return original(*args, **kwargs)
    return create


# Allocations in the user's own traced code are traced even with concrete sizes, so
# `out = np.zeros((3, 3)); out[i] = traced_value` works. The loop converter routes the
# user's calls here (`user_callable`); library code (numpy.random, scipy...) still gets
# real ndarrays from these functions.
_BUFFERS = ("zeros", "ones", "empty", "full")


def user_callable(f):
    """What a call to `f` from user code being traced should run."""
    for name in _BUFFERS:
        if f is _ORIGINALS[name] or f is _PATCHED.get(name):
            return _CREATION[name]
    return f


_PATCHED = {name: _dispatching(name) for name in _CREATION}


@contextlib.contextmanager
def numpy_patched():
    """Route NumPy's creation functions to traced versions when given traced sizes."""
    global _patch_depth
    with _patch_lock:
        if _patch_depth == 0:
            for name, fn in _PATCHED.items():
                setattr(np, name, fn)
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                for name, fn in _ORIGINALS.items():
                    setattr(np, name, fn)


HANDLED[np.copy] = copy
