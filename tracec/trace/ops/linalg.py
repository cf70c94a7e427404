"""Products: matmul, dot, tensordot, outer, einsum (NumPy semantics, incl. 1-d operands)."""
import numpy as np

from ..types import TensorType
from .base import Op


def _sample(var):
    return np.ones((1,) * var.ndim, var.dtype)


def _matmul_infer(inputs):
    a, b = inputs
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (0-d operands "
                         "are not allowed; use * for scaling)")
    dtype = np.matmul(_sample(a), _sample(b)).dtype
    ab, bb = list(a.broadcastable), list(b.broadcastable)
    a_row = [] if a.ndim == 1 else [ab[-2]]
    b_col = [] if b.ndim == 1 else [bb[-1]]
    batch_a, batch_b = ab[:-2], bb[:-2]
    n = max(len(batch_a), len(batch_b))
    batch_a = [True] * (n - len(batch_a)) + batch_a
    batch_b = [True] * (n - len(batch_b)) + batch_b
    batch = [x and y for x, y in zip(batch_a, batch_b)]
    return [TensorType(dtype, tuple(batch + a_row + b_col))]


matmul = Op("matmul", np.matmul, _matmul_infer, kind="linalg")


def _dot_infer(inputs):
    a, b = inputs
    dtype = np.dot(_sample(a), _sample(b)).dtype
    if a.ndim == 0 or b.ndim == 0:
        from .elemwise import broadcast_pattern
        return [TensorType(dtype, broadcast_pattern(inputs))]
    b_rest = b.broadcastable[:-2] + b.broadcastable[-1:] if b.ndim >= 2 else ()
    return [TensorType(dtype, a.broadcastable[:-1] + b_rest)]


dot = Op("dot", np.dot, _dot_infer, kind="linalg")


def normalize_tensordot_axes(axes, a_ndim, b_ndim):
    """`axes` (int or pair of sequences) -> pair of tuples of ints, negative ones in range
    made non-negative. Out-of-range and repeated axes are left for `_tensordot_infer` to
    refuse, so the error names the user's line."""
    if isinstance(axes, (int, np.integer)):
        axes = max(int(axes), 0)  # NumPy: a negative count contracts nothing
        return tuple(range(a_ndim - axes, a_ndim)), tuple(range(axes))
    a_axes, b_axes = axes
    a_axes = (a_axes,) if isinstance(a_axes, (int, np.integer)) else tuple(a_axes)
    b_axes = (b_axes,) if isinstance(b_axes, (int, np.integer)) else tuple(b_axes)
    if len(a_axes) != len(b_axes):
        raise ValueError("tensordot: shape-mismatch for sum (the two axes lists differ in length)")
    return _nonnegative(a_axes, a_ndim), _nonnegative(b_axes, b_ndim)


def _nonnegative(axes, ndim):
    return tuple(int(x) + ndim if -ndim <= int(x) < 0 else int(x) for x in axes)


def _check_tensordot_axes(axes, ndim, which):
    """IndexError for an axis outside 0..ndim-1 (as NumPy), ValueError for a repeated one."""
    for axis in axes:
        if not 0 <= axis < ndim:
            raise IndexError(f"tensordot: axis {axis} of the {which} operand is out of range "
                             f"for an array of {ndim} dimensions")
    if len(set(axes)) != len(axes):
        raise ValueError(f"tensordot: duplicate axes are not allowed ({which} operand: {list(axes)})")


def _tensordot_infer(inputs, axes):
    a, b = inputs
    _check_tensordot_axes(axes[0], a.ndim, "first")
    _check_tensordot_axes(axes[1], b.ndim, "second")
    dtype = np.tensordot(_sample(a), _sample(b), axes=axes).dtype
    keep_a = [x for i, x in enumerate(a.broadcastable) if i not in axes[0]]
    keep_b = [x for i, x in enumerate(b.broadcastable) if i not in axes[1]]
    return [TensorType(dtype, tuple(keep_a + keep_b))]


tensordot = Op("tensordot", lambda a, b, axes: np.tensordot(a, b, axes=axes),
               _tensordot_infer, kind="linalg")


def _outer_infer(inputs):
    a, b = inputs
    dtype = np.outer(_sample(a), _sample(b)).dtype
    return [TensorType(dtype, (all(a.broadcastable), all(b.broadcastable)))]


outer = Op("outer", np.outer, _outer_infer, kind="linalg")


def parse_einsum(subscripts, ndims):
    """Explicit form of an einsum spec: (input letter strings, output letters)."""
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("einsum with '...' (ellipsis) is not supported yet; "
                                  "write the batch dimensions out explicitly")
    lhs, _, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: {len(terms)} operand terms in {subscripts!r} but {len(ndims)} operands")
    for term, nd in zip(terms, ndims):
        if len(term) != nd:
            raise ValueError(f"einsum: term {term!r} has {len(term)} letters for an operand "
                             f"with {nd} dimensions")
    if "->" not in spec:
        counts = {}
        for ch in lhs.replace(",", ""):
            counts[ch] = counts.get(ch, 0) + 1
        rhs = "".join(sorted(ch for ch, c in counts.items() if c == 1))
    return tuple(terms), rhs


def _einsum_infer(inputs, subscripts):
    terms, rhs = parse_einsum(subscripts, [v.ndim for v in inputs])
    dtype = np.einsum(subscripts, *[_sample(v) for v in inputs]).dtype
    pattern = []
    for letter in rhs:
        flags = [v.broadcastable[t.index(letter)] for t, v in zip(terms, inputs) if letter in t]
        if not flags:
            raise ValueError(f"einsum: output letter {letter!r} does not appear in the inputs")
        pattern.append(all(flags))
    return [TensorType(dtype, tuple(pattern))]


einsum = Op("einsum", lambda *ops, subscripts: np.einsum(subscripts, *ops),
            _einsum_infer, kind="linalg")
