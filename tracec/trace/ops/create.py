"""Array creation with sizes that may be traced: alloc (zeros/ones/empty/full),
arange, eye, linspace."""
import numpy as np

from ..types import TensorType
from .base import Op
from .elemwise import dtype_sample
from .shape import _check_int_scalars, is_const


def _sizes(dims):
    sizes = tuple(int(d) for d in dims)
    if any(s < 0 for s in sizes):
        raise ValueError(f"negative dimensions are not allowed (shape {sizes})")
    return sizes


def _alloc_impl(fill, *dims, dtype):
    return np.full(_sizes(dims), fill, dtype=dtype)


def _alloc_infer(inputs, dtype):
    fill, *dims = inputs
    _check_int_scalars(dims, "array creation")
    if fill.ndim != 0:
        raise ValueError("alloc: the fill value must be a scalar")
    return [TensorType(dtype, tuple(is_const(d, 1) for d in dims))]


alloc = Op("alloc", _alloc_impl, _alloc_infer, kind="create",
           doc="np.full(shape, fill, dtype); zeros/ones/empty and their _like forms build on it")


def _arange_impl(start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=dtype)


def _arange_infer(inputs, dtype):
    for v in inputs:
        if v.ndim != 0:
            raise TypeError("arange: start, stop and step must be scalars")
    if dtype is None:
        dtype = np.arange(*[dtype_sample(v) if v.type.weak else np.ones((), v.dtype)[()]
                            for v in inputs]).dtype
    return [TensorType(dtype, (False,))]


arange = Op("arange", _arange_impl, _arange_infer, kind="create")


def _eye_impl(n, m, k, dtype):
    return np.eye(int(n), int(m), int(k), dtype=dtype)


def _eye_infer(inputs, dtype):
    _check_int_scalars(inputs, "eye")
    return [TensorType(dtype, (is_const(inputs[0], 1), is_const(inputs[1], 1)))]


eye = Op("eye", _eye_impl, _eye_infer, kind="create")


def _linspace_impl(start, stop, num, endpoint, dtype):
    return np.linspace(start, stop, int(num), endpoint=endpoint, dtype=dtype)


def _linspace_infer(inputs, endpoint, dtype):
    start, stop, num = inputs
    _check_int_scalars([num], "linspace")
    if dtype is None:
        dtype = np.linspace(dtype_sample(start) if start.type.weak else np.ones((), start.dtype),
                            dtype_sample(stop) if stop.type.weak else np.ones((), stop.dtype), 2).dtype
    return [TensorType(dtype, (is_const(num, 1),))]


linspace = Op("linspace", _linspace_impl, _linspace_infer, kind="create")
