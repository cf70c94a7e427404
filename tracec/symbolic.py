"""Theano-style declarations of symbolic inputs: tc.vector('x'), tc.fmatrix(), tc.tensor(...)."""
import numpy as np

from .config import float_x
from .trace.graph import Variable
from .trace.tensor import Tensor
from .trace.types import TensorType


def tensor(dtype=None, broadcastable=(), name=None, shape=None):
    """A symbolic input of the given dtype and broadcastable pattern.

    Parameters
    ----------
    dtype : dtype or None
        None means ``tc.config.floatX``.
    broadcastable : tuple of bool
        One entry per dimension; True for a dimension that is always 1.
    shape : tuple of int or None, optional
        Alternative to `broadcastable`: ``None`` entries are unknown sizes,
        1 marks a broadcastable dimension (other sizes are not part of the type).

    Examples
    --------
    >>> import tracec as tc
    >>> row = tc.tensor('float64', broadcastable=(True, False), name='row')
    >>> row.type
    TensorType(float64, (True, False))
    """
    if shape is not None:
        broadcastable = tuple(s == 1 for s in shape)
    dtype = float_x() if dtype is None else np.dtype(dtype)
    return Tensor(Variable(TensorType(dtype, broadcastable), name=name), mutable=True)


def _maker(ndim, fixed_dtype=None):
    def make(name=None, dtype=None):
        return tensor(fixed_dtype or dtype, (False,) * ndim, name)
    return make


scalar, vector, matrix, tensor3, tensor4 = (_maker(n) for n in range(5))
RANKS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}
PREFIXES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}
# tc.bscalar ... tc.dtensor4: the typed shortcuts, one per (prefix, rank)
TYPED = {p + r: _maker(n, np.dtype(d)) for p, d in PREFIXES.items() for r, n in RANKS.items()}
for _name, _fn in TYPED.items():
    _fn.__name__ = _name
    _fn.__doc__ = f"A symbolic {PREFIXES[_name[0]]} {_name[1:]} input."
