"""Lowering: ops the native backend would hand to NumPy, rewritten into the ops it
runs itself (C reductions, C kernels, BLAS), computing what the op's NumPy
implementation computes.

`sum_to` becomes `sum` where the types and shapes say which axes are summed;
`mean`, `var` and `std` become sums and a division, in NumPy's order of
operations and dtypes; `outer` a broadcast multiplication; `tensordot` a
matrix product between reshapes; `logsumexp` a max and a sum of exponentials.
On the NumPy interpreter the rewritten graphs give the op's results bit for
bit; the C reductions may add in another order than NumPy where the reduced
axis is not the innermost, so there float results agree to rounding.
"""
import numpy as np

from ..trace.graph import Constant
from ..trace.ops.sizes import known_int
from .canonicalize import shape_vars
from .engine import Builder, is_scalar_const, on, producer, same_type
from .shapes import shape_of

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)


def _same_dim(d1, d2, b):
    """Are the scalar sizes d1 and d2 surely equal? Compared as expressions of the lengths of
    the program's leaves (shape inference through the producers), equal when they match."""
    return d1 is d2 or _canonical(d1, b) == _canonical(d2, b)


def _canonical(d, b, depth=0):
    """A hashable form of the size `d`: an int when known, ('dim', leaf id, axis) for a length of
    a leaf, (op, params, forms of the inputs) for arithmetic and broadcasting on those."""
    known = known_int(d)
    if known is not None:
        return known
    node = d.owner
    if node is None or depth > 12:
        return ("var", id(d))
    if node.op.name == "shape_i":
        v, i = node.inputs[0], node.params["i"]
        if v.owner is None or v.owner.op.shape is None:
            return ("dim", id(v), i)
        inferred = shape_of(v, b)[i]
        return ("dim", id(v), i) if producer(inferred, "shape_i") is node else _canonical(inferred, b, depth + 1)
    args = tuple(_canonical(v, b, depth + 1) for v in node.inputs)
    if node.op.name == "where" and args[1] == args[2]:
        return args[1]  # broadcasting a length with itself
    return (node.op.name, tuple(sorted(node.params.items())), args)


def _transposed(b, x, perm):
    return x if list(perm) == list(range(x.ndim)) else b("transpose", x, axes=tuple(perm))


def _product(b, dims):
    """The product of scalar sizes (a weak int, as `shape_i` gives them); 1 for none."""
    out = None
    for d in dims:
        if not is_scalar_const(d, 1):
            out = d if out is None else b("multiply", out, d)
    return Constant(1) if out is None else out


# -- sum_to -------------------------------------------------------------------------
def _summed_axes(node):
    """(leading axes, axes summed with keepdims) of sum_to(g, *dims), or None when an axis
    is summed or not only depending on run-time sizes."""
    g, *dims = node.inputs
    lead = g.ndim - len(dims)
    b, shape, ones = Builder(node), None, []
    for i, d in enumerate(dims):
        j = lead + i
        if is_scalar_const(d, 1):
            if not g.broadcastable[j]:
                ones.append(i)
            continue
        shape = shape_of(g, b) if shape is None else shape
        if g.broadcastable[j] or not _same_dim(shape[j], d, b):
            return None
    return tuple(range(lead)), tuple(ones)


# sum_to(g, *dims) -> sum(sum(g, leading axes), axes where dims are 1, keepdims) ; -> g when nothing is summed
@on("sum_to")
def sum_to_as_sum(node):
    g = node.inputs[0]
    found = _summed_axes(node)
    if found is None:
        return None
    lead, ones = found
    if (lead or ones) and np.sum(np.ones(1, g.dtype)).dtype != g.dtype:
        return None  # NumPy's sum widens it (int32, bool): sum_to's type does not hold anyway
    b = Builder(node)
    out = g
    if lead:  # as sum_to's implementation: the leading axes first, then the length-1 ones
        out = b("sum", out, axis=lead, keepdims=False, dtype=None)
    if ones:
        out = b("sum", out, axis=ones, keepdims=True, dtype=None)
    return same_type(node, out)


# sum_to(g, *dims) with more axes than dims, the rest undecidable -> sum_to(sum(g, leading axes), *dims)
@on("sum_to")
def sum_to_leading_axes(node):
    g, *dims = node.inputs
    lead = g.ndim - len(dims)
    if lead <= 0 or _summed_axes(node) is not None or np.sum(np.ones(1, g.dtype)).dtype != g.dtype:
        return None  # nothing leading, decidable (sum_to_as_sum's case), or a widening sum
    b = Builder(node)
    summed = b("sum", g, axis=tuple(range(lead)), keepdims=False, dtype=None)
    # what is left returns its input when no length-1 target dimension differs (known at run time)
    return same_type(node, b("sum_to", summed, *dims))


# -- mean, var, std -----------------------------------------------------------------
def _count(b, x, axes):
    """The number of elements `axes` of x hold, as a 0-d int64 (NumPy's intp count, not weak)."""
    n = None
    for a in axes:
        if x.broadcastable[a]:
            continue
        d = b("cast", b("shape_i", x, i=a), dtype=_INT64)
        n = d if n is None else b("multiply", n, d)
    return Constant(np.int64(1)) if n is None else n


def _divided(b, total, count, dtype):
    """total / count as NumPy's mean and var divide: in the dtype promotion gives (float64 for a
    float32 total over an int64 count), stored in `dtype`."""
    q = b("divide", total, count)
    return q if q.dtype == dtype else b("cast", q, dtype=dtype)


def _accumulates(node):
    """The float dtype NumPy's mean/var/std of `node` accumulate and return, or None where the
    rewrite does not apply (complex, float16, a dtype= other than the default's)."""
    x, out = node.inputs[0], node.outputs[0]
    if x.dtype.kind not in "biuf" or out.dtype not in _FLOATS or out.type.weak:
        return None
    if x.dtype.kind in "iu" and x.dtype.itemsize > 4:
        # int64 values past 2**53 round in float64, and then the sum depends on the order of the
        # additions (NumPy's buffered pairwise sum, the C reduction's rows): left to NumPy.
        # Smaller integers convert exactly, and their float64 sums are exact below 2**22 terms
        return None
    natural = _FLOAT64 if x.dtype.kind in "biu" else x.dtype
    asked = node.params.get("dtype")
    if out.dtype != natural or asked is not None and np.dtype(asked) != natural:
        return None  # mixed dtypes (np.var(float64, dtype=float32)): NumPy's own steps
    return natural


def _sum_dtype(x):
    return _FLOAT64 if x.dtype.kind in "biu" else None  # NumPy sums integers as float64 here


# mean(x, axis) -> sum(x, axis) / n  (float32: divided in float64 and rounded once, as NumPy)
@on("mean")
def mean_as_sum(node):
    x, p = node.inputs[0], node.params
    dtype = _accumulates(node)
    if dtype is None:
        return None
    b = Builder(node)
    total = b("sum", x, axis=p["axis"], keepdims=p["keepdims"], dtype=_sum_dtype(x))
    return same_type(node, _divided(b, total, _count(b, x, p["axis"]), dtype))


def _ddof(node):
    """ddof as a Python number (a weak constant, as NumPy's rcount - ddof takes it), or None."""
    ddof = node.params.get("ddof", 0)
    if not isinstance(ddof, (int, float, np.integer, np.floating)) or not np.isfinite(ddof):
        return None
    return ddof.item() if isinstance(ddof, np.generic) else ddof


# var(x, axis, ddof) -> sum((x - mean(x))**2, axis) / max(n - ddof, 0) ; std -> sqrt(var)  (NumPy's two passes)
@on("var", "std")
def var_as_sums(node):
    x, p = node.inputs[0], node.params
    dtype, ddof = _accumulates(node), _ddof(node)
    if dtype is None or ddof is None:
        return None
    b = Builder(node)
    n = _count(b, x, p["axis"])
    total = b("sum", x, axis=p["axis"], keepdims=True, dtype=_sum_dtype(x))
    centered = b("subtract", x, _divided(b, total, n, dtype))
    squares = b("sum", b("multiply", centered, centered), axis=p["axis"], keepdims=p["keepdims"], dtype=None)
    dof = n if ddof == 0 else b("maximum", b("subtract", n, Constant(ddof)), Constant(0))
    out = _divided(b, squares, dof, dtype)
    return same_type(node, b("sqrt", out) if node.op.name == "std" else out)


# -- outer, tensordot -----------------------------------------------------------------
def _flat(b, x):
    """x.ravel() (a view or copy, as NumPy's), typed as np.outer's operand."""
    if x.ndim == 1:
        return x
    return b("reshape", x, Constant(1 if all(x.broadcastable) else -1))


# outer(a, b) -> ravel(a)[:, None] * ravel(b)[None, :]  (np.outer's definition: one C kernel)
@on("outer")
def outer_as_multiply(node):
    a, c = node.inputs
    if a.type.weak or c.type.weak:
        return None
    b = Builder(node)
    col = b("expand_dims", _flat(b, a), axes=(1,))
    row = b("expand_dims", _flat(b, c), axes=(0,))
    return same_type(node, b("multiply", col, row))


def _as_matrix(b, x, rows, cols):
    """x (its axes already ordered rows, then cols) reshaped to (prod(rows), prod(cols))."""
    if x.ndim == 2 and len(rows) == 1 and len(cols) == 1:
        return x
    return b("reshape", x, _product(b, rows), _product(b, cols))


def _contraction_checked(node):
    """Will the matrix product raise where tensordot does, for contracted lengths that differ?
    It compares only the products of the lengths: with two or more contracted axes each pair
    must be known equal."""
    a, c = node.inputs
    ax_a, ax_c = node.params["axes"]
    if len(ax_a) <= 1:
        return True
    b = Builder(node)
    sa, sc = shape_of(a, b), shape_of(c, b)
    return all(a.broadcastable[i] == c.broadcastable[j] and _same_dim(sa[i], sc[j], b) for i, j in zip(ax_a, ax_c))


# tensordot(a, b, axes) -> reshape(transpose(a) to (M, K)) @ reshape(transpose(b) to (K, N)), reshaped back
@on("tensordot")
def tensordot_as_matmul(node):
    a, c = node.inputs
    out = node.outputs[0]
    if out.dtype not in _FLOATS or any(v.dtype != out.dtype or v.type.weak for v in (a, c)):
        return None  # BLAS: one float dtype throughout
    if not _contraction_checked(node):
        return None
    ax_a, ax_c = node.params["axes"]
    kept_a = [i for i in range(a.ndim) if i not in ax_a]
    kept_c = [i for i in range(c.ndim) if i not in ax_c]
    b = Builder(node)
    da, dc = shape_vars(b, a), shape_vars(b, c)
    left = _as_matrix(b, _transposed(b, a, kept_a + list(ax_a)), [da[i] for i in kept_a], [da[i] for i in ax_a])
    right = _as_matrix(b, _transposed(b, c, list(ax_c) + kept_c), [dc[i] for i in ax_c], [dc[i] for i in kept_c])
    product = b("matmul", left, right)
    if len(kept_a) == 1 and len(kept_c) == 1 and product.type == out.type:
        return product
    return same_type(node, b("reshape", product, *[da[i] for i in kept_a], *[dc[i] for i in kept_c]))


# -- logsumexp ------------------------------------------------------------------------
def _shifted(b, x, shift):
    """x - shift, with exp() of it unchanged but without the overflow flags the op hides with
    np.errstate: x - shift past the float range (values far below a large max), and
    exp(x - 0) in rows whose max is NaN or +inf (their result is that max)."""
    half = Constant(float(np.finfo(x.dtype).max / 2))
    # exp(below -half) is 0: x clamped to shift - half keeps x - shift in range where shift > 0
    # (max(shift, 0): `where` computes both branches, and -max - half would overflow)
    above = b("subtract", b("maximum", shift, Constant(0)), half)
    low = b("where", b("greater", shift, Constant(0)), above, Constant(-np.inf))
    return b("minimum", b("subtract", b("maximum", x, low), shift), Constant(0))


# logsumexp(x) -> log(sum(exp(x - m'))) + m' for rows whose max m is finite (m' = m), else m
# (m = max(x, initial=-inf), -inf for nothing): the op's shifted form, from C reductions and kernels
@on("logsumexp")
def logsumexp_as_reductions(node):
    x, p, out = node.inputs[0], node.params, node.outputs[0]
    if out.dtype not in _FLOATS or x.dtype.kind not in "iuf":
        return None
    axes = p["axis"]
    b = Builder(node)
    xf = x if x.dtype == out.dtype else b("cast", x, dtype=out.dtype)  # the op shifts in exp's dtype
    m = b("max", xf, axis=axes, keepdims=True, initial=-np.inf)
    finite = b("isfinite", m)
    shift = b("where", finite, m, Constant(0))
    total = b("sum", b("exp", _shifted(b, xf, shift)), axis=axes, keepdims=True, dtype=None)
    # rows of -inf (or of nothing), NaN or +inf: m is the op's result (log(0) would flag 'divide')
    lse = b("add", b("log", b("where", finite, total, Constant(1))), shift)
    result = b("where", finite, lse, m)
    if not p["keepdims"] and axes:
        result = b("squeeze", result, axes=tuple(axes), only_known=False)
    return same_type(node, result)


LOWERING = [sum_to_as_sum, sum_to_leading_axes, mean_as_sum, var_as_sums, outer_as_multiply, tensordot_as_matmul,
            logsumexp_as_reductions]
