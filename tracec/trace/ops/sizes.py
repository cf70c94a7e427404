"""Sizes known when tracing, and the shape errors they make certain.

Types hold a dtype and a broadcastable pattern, not sizes, so the shape of a
value is in general only known when the function runs. Where the graph
itself fixes a size -- a constant array, a reshape / broadcast_to / eye /
arange with literal sizes, a dimension the type knows to be 1, and whatever
follows from those by broadcasting, slicing, reductions, products and joins --
it is known when the node is built. An operation those sizes make certain to
fail raises the exception NumPy would raise (ValueError, or IndexError for an
index out of bounds), naming the shapes and the user's line, when tracing
rather than at the first call.

A rule ``rule(inputs, shapes, types, **params)`` gets the input variables,
their known shapes (a tuple per input: an int per dimension, None where not
known) and the output types; it returns the known shape of each output (None
for one that is unknown) or raises. `Op.make_node` calls it through the op's
`sizes` slot, only when an input has a known size (or, for ops that read
sizes from their inputs, is a constant or a ``shape_i``), so graphs without
known sizes pay one cheap check per node.
"""
import math

import numpy as np

from ..graph import Constant
from .base import KNOWN_SIZES, OPS
from .index import DYN


# -- known shapes of values ---------------------------------------------------------
def known_shape(var):
    """The sizes of `var` known now: an int per dimension, None where not known."""
    if isinstance(var, Constant):
        return np.shape(var.value)
    shape = KNOWN_SIZES.get(var) if KNOWN_SIZES else None
    return shape if shape is not None else tuple(1 if b else None for b in var.broadcastable)


def known_size(var):
    """`known_int(var)` when it is a valid size (>= 0), else None (NumPy's error comes at run time)."""
    value = known_int(var)
    return value if value is not None and value >= 0 else None


def known_int(var):
    """The value of an integer size input when known now (a constant, or the length of a
    dimension whose size is known), else None."""
    if isinstance(var, Constant):
        value = var.value
        return int(value) if np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iub" else None
    node = var.owner
    if node is not None and node.op.name == "shape_i":
        return known_shape(node.inputs[0])[node.params["i"]]
    return None


def fmt(shape):
    """``(3, ?)``: a shape with '?' for sizes not known when tracing."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _note(shapes):
    return " ('?': a size not known when tracing)" if any(d is None for s in shapes for d in s) else ""


def _informative(shape, type_):
    """Does `shape` know more than the type does (a size other than the type's 1s)?"""
    return any(d is not None and not b for d, b in zip(shape, type_.broadcastable))


def _has_known(inputs, reads_values):
    for v in inputs:
        if isinstance(v, Constant):
            if v.ndim or reads_values:
                return True
        elif KNOWN_SIZES and v in KNOWN_SIZES:
            return True
        elif reads_values and v.owner is not None and v.owner.op.name == "shape_i":
            return True
    return False


def _installed(rule, reads_values=False):
    """The function `Op.make_node` calls: the rule, run only where some size is known."""
    def sizes(inputs, types, params):
        if not _has_known(inputs, reads_values):
            return None
        try:
            out = rule(inputs, [known_shape(v) for v in inputs], types, **params)
        except (TypeError, ZeroDivisionError, OverflowError):
            return None  # parameters the rule does not take: NumPy decides at run time
        if out is None:
            return None
        return [s if s is not None and len(s) == t.ndim and _informative(s, t) else None
                for s, t in zip(out, types)]
    sizes.rule = rule
    return sizes


# -- broadcasting ---------------------------------------------------------------------
def broadcast(shapes, what="operands could not be broadcast together with shapes"):
    """The known broadcast of `shapes`; ValueError when two known sizes cannot broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        sizes = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        big = {d for d in sizes if d is not None and d != 1}
        if len(big) > 1:
            raise ValueError(f"{what} {' '.join(fmt(s) for s in shapes)}{_note(shapes)}")
        out.append(big.pop() if big else (None if None in sizes else 1))
    return tuple(out)


def elemwise_sizes(inputs, shapes, types, **params):
    return [broadcast(shapes)] * len(types)


def same_sizes(inputs, shapes, types, **params):
    return [shapes[0]]


# -- reductions -------------------------------------------------------------------------
def reduce_sizes(inputs, shapes, types, axis, keepdims, **params):
    shape = shapes[0]
    if axis is None or isinstance(axis, int):  # argmax/argmin: one axis or all of them
        axis = tuple(range(len(shape))) if axis is None else (axis % max(len(shape), 1),)
    if keepdims:
        return [tuple(1 if i in axis else d for i, d in enumerate(shape))]
    return [tuple(d for i, d in enumerate(shape) if i not in axis)]


def accumulate_sizes(inputs, shapes, types, axis, dtype):
    if axis is None:
        return [(_product(shapes[0]),)]
    return [shapes[0]]


def _product(dims):
    return None if None in dims else math.prod(dims)


# -- shape ops ----------------------------------------------------------------------
def transpose_sizes(inputs, shapes, types, axes):
    return [tuple(shapes[0][a] for a in axes)]


def expand_dims_sizes(inputs, shapes, types, axes):
    dims = list(shapes[0])
    for a in sorted(axes):
        dims.insert(a, 1)
    return [tuple(dims)]


def squeeze_sizes(inputs, shapes, types, axes, only_known):
    bad = [a for a in axes if shapes[0][a] not in (None, 1)]
    if bad:
        raise ValueError(f"cannot select an axis to squeeze out which has size not equal to one "
                         f"(axis {bad[0]} of shape {fmt(shapes[0])})")
    return [tuple(d for i, d in enumerate(shapes[0]) if i not in axes)]


def reshape_sizes(inputs, shapes, types):
    target = [known_int(d) for d in inputs[1:]]
    if any(d is not None and d < -1 for d in target) or target.count(-1) > 1:
        return None  # NumPy's error, at run time
    size = _product(shapes[0])
    if -1 in target:
        rest = _product([d for d in target if d != -1])
        if size is None or rest is None or rest == 0:
            return [tuple(None if d == -1 else d for d in target)]
        if size % rest:
            raise ValueError(f"cannot reshape array of size {size} into shape {fmt(target)}")
        return [tuple(size // rest if d == -1 else d for d in target)]
    total = _product(target)
    if size is not None and total is not None and size != total:
        raise ValueError(f"cannot reshape array of size {size} into shape {fmt(target)}")
    return [tuple(target)]


def broadcast_to_sizes(inputs, shapes, types):
    target = [known_size(d) for d in inputs[1:]]
    shape = shapes[0]
    out = list(target)
    for k, s in enumerate(shape):
        t = target[len(target) - len(shape) + k]
        if s is not None and s != 1 and t is not None and s != t:
            raise ValueError(f"operands could not be broadcast together with remapped shapes "
                             f"[original->remapped]: {fmt(shape)} and requested shape {fmt(target)}")
        if t is None and s is not None and s != 1:
            out[len(target) - len(shape) + k] = s  # the only size it can broadcast to
    return [tuple(out)]


def given_sizes(inputs, shapes, types, **params):  # alloc(fill, *dims), sum_to(g, *dims)
    return [tuple(known_size(d) for d in inputs[1:])]


def eye_sizes(inputs, shapes, types, dtype):
    return [(known_size(inputs[0]), known_size(inputs[1]))]


def arange_sizes(inputs, shapes, types, dtype):
    values = [np.asarray(v.value).item() if isinstance(v, Constant) else known_int(v) for v in inputs]
    if None in values:
        return None
    start, stop, step = values
    if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)):
        return None  # NumPy's own error, at run time
    return [(max(math.ceil((stop - start) / step), 0),)]  # NumPy's length formula


def linspace_sizes(inputs, shapes, types, endpoint, dtype):
    return [(known_size(inputs[2]),)]


def _axis_sizes(what, shapes, axis):
    """Sizes of every dimension but `axis` that all `shapes` must share exactly."""
    out = list(shapes[0])
    for d in range(len(out)):
        if d == axis:
            continue
        for i, s in enumerate(shapes):
            if s[d] is None:
                continue
            if out[d] is None:
                out[d] = s[d]
            elif out[d] != s[d]:
                first = next(k for k, t in enumerate(shapes) if t[d] is not None)
                raise ValueError(f"{what}, but along dimension {d}, the array at index {first} has size "
                                 f"{out[d]} and the array at index {i} has size {s[d]} (shapes "
                                 f"{', '.join(fmt(t) for t in shapes)}){_note(shapes)}")
    return out


def concatenate_sizes(inputs, shapes, types, axis):
    out = _axis_sizes("all the input array dimensions except for the concatenation axis must "
                      "match exactly", shapes, axis)
    lengths = [s[axis] for s in shapes]
    out[axis] = None if None in lengths else sum(lengths)
    return [tuple(out)]


def stack_sizes(inputs, shapes, types, axis):
    out = _axis_sizes("all input arrays must have the same shape", shapes, -1)
    out.insert(axis, len(shapes))
    return [tuple(out)]


def split_sizes(inputs, shapes, types, sections, axis, equal):
    size = shapes[0][axis]
    if size is None or sections == 0:
        return None
    if isinstance(sections, int):
        if equal and size % sections:
            raise ValueError(f"array split does not result in an equal division: {size} into "
                             f"{sections} along axis {axis} of shape {fmt(shapes[0])}")
        lengths = [size // sections + (k < size % sections) for k in range(sections)]
    else:
        bounds = [0] + list(sections) + [size]
        lengths = [len(range(size)[a:b]) for a, b in zip(bounds, bounds[1:])]
    return [shapes[0][:axis] + (n,) + shapes[0][axis + 1:] for n in lengths]


def tile_sizes(inputs, shapes, types, reps):
    n = max(len(reps), len(shapes[0]))
    reps = (1,) * (n - len(reps)) + tuple(reps)
    shape = (1,) * (n - len(shapes[0])) + tuple(shapes[0])
    return [tuple(0 if r == 0 else None if s is None else s * r for s, r in zip(shape, reps))]


def repeat_sizes(inputs, shapes, types, axis):
    r = known_size(inputs[1])
    if r is None:
        return None
    if axis is None:
        size = _product(shapes[0])
        return [(None if size is None else size * r,)]
    return [tuple(None if d is None else d * r if i == axis else d for i, d in enumerate(shapes[0]))]


# -- products -----------------------------------------------------------------------
def _inner_mismatch(a, b, ka, kb):
    return ka is not None and kb is not None and ka != kb


def matmul_sizes(inputs, shapes, types):
    sa, sb = shapes
    ka, kb = sa[-1], (sb[-2] if len(sb) >= 2 else sb[0])
    if _inner_mismatch(sa, sb, ka, kb):
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
                         f"signature (n?,k),(k,m?)->(n?,m?) (size {kb} is different from {ka}): shapes "
                         f"{fmt(sa)} and {fmt(sb)}{_note(shapes)}")
    if len(sa) == 1 and len(sb) == 1:
        return [()]
    if len(sb) == 1:
        return [tuple(sa[:-1])]
    if len(sa) == 1:
        return [tuple(sb[:-2]) + (sb[-1],)]
    return [broadcast([sa[:-2], sb[:-2]]) + (sa[-2], sb[-1])]


def dot_sizes(inputs, shapes, types):
    sa, sb = shapes
    if not sa or not sb:
        return [broadcast(shapes)]
    ia = len(sa) - 1
    ib = len(sb) - 2 if len(sb) >= 2 else 0
    if _inner_mismatch(sa, sb, sa[ia], sb[ib]):
        raise ValueError(f"shapes {fmt(sa)} and {fmt(sb)} not aligned: {sa[ia]} (dim {ia}) != "
                         f"{sb[ib]} (dim {ib}){_note(shapes)}")
    rest = tuple(sb[:-2]) + tuple(sb[-1:]) if len(sb) >= 2 else ()
    return [tuple(sa[:-1]) + rest]


def gemm_sizes(inputs, shapes, types):
    (prod,) = matmul_sizes(inputs[:2], shapes[:2], types)
    return [broadcast([prod, shapes[2]])]


def outer_sizes(inputs, shapes, types):
    return [(_product(shapes[0]), _product(shapes[1]))]


def tensordot_sizes(inputs, shapes, types, axes):
    sa, sb = shapes
    for i, j in zip(*axes):
        if _inner_mismatch(sa, sb, sa[i], sb[j]):
            raise ValueError(f"tensordot: shape-mismatch for sum: axis {i} of shape {fmt(sa)} has size "
                             f"{sa[i]}, axis {j} of shape {fmt(sb)} has size {sb[j]}{_note(shapes)}")
    return [tuple(d for i, d in enumerate(sa) if i not in axes[0])
            + tuple(d for j, d in enumerate(sb) if j not in axes[1])]


# -- indexing -----------------------------------------------------------------------
def _selection(shape, spec):
    """Known shape of x[key] for a basic key (ints, slices, newaxis), else None."""
    out, axis = [], 0
    for entry in spec:
        kind = entry[0]
        if kind == "newaxis":
            out.append(1)
        elif kind == "int":
            k, size = entry[1], shape[axis]
            if k != DYN and size is not None and not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for axis {axis} with size {size} "
                                 f"(shape {fmt(shape)})")
            axis += 1
        elif kind == "slice":
            size = shape[axis]
            known = size is not None and DYN not in entry[1:]
            out.append(len(range(size)[slice(*entry[1:])]) if known else None)
            axis += 1
        else:
            return None  # advanced indexing: the types say what is known
    return tuple(out) + tuple(shape[axis:])


def getitem_sizes(inputs, shapes, types, spec):
    return [_selection(shapes[0], spec)]


def setitem_sizes(inputs, shapes, types, spec, mode):
    target = _selection(shapes[0], spec)
    value = shapes[1]
    if target is not None and len(value) <= len(target):
        for v, t in zip(value[::-1], target[::-1]):
            if v is not None and v != 1 and t is not None and v != t:
                raise ValueError(f"could not broadcast input array from shape {fmt(value)} into shape "
                                 f"{fmt(target)}{_note([value, target])}")
    return [shapes[0]]


# -- the table ------------------------------------------------------------------------
SIZE_RULES = {name: elemwise_sizes for name, op in OPS.items() if op.kind == "elemwise"}
SIZE_RULES["cast"] = same_sizes
SIZE_RULES.update({name: reduce_sizes for name in
                   ("sum", "prod", "mean", "var", "std", "max", "min", "any", "all", "argmax", "argmin",
                    "logsumexp")})
SIZE_RULES.update({
    "cumsum": accumulate_sizes, "cumprod": accumulate_sizes, "transpose": transpose_sizes,
    "expand_dims": expand_dims_sizes, "squeeze": squeeze_sizes, "flip": same_sizes, "roll": same_sizes,
    "copy": same_sizes, "stop_gradient": same_sizes, "concatenate": concatenate_sizes,
    "stack": stack_sizes, "split": split_sizes, "tile": tile_sizes, "matmul": matmul_sizes,
    "dot": dot_sizes, "gemm": gemm_sizes, "gemv": gemm_sizes, "outer": outer_sizes,
    "tensordot": tensordot_sizes, "getitem": getitem_sizes, "setitem": setitem_sizes,
})
VALUE_RULES = {  # ops whose sizes are values of their inputs
    "reshape": reshape_sizes, "broadcast_to": broadcast_to_sizes, "alloc": given_sizes,
    "sum_to": given_sizes, "eye": eye_sizes, "arange": arange_sizes, "linspace": linspace_sizes,
    "repeat": repeat_sizes,
}
for _name, _rule in SIZE_RULES.items():
    OPS[_name].sizes = _installed(_rule)
for _name, _rule in VALUE_RULES.items():
    OPS[_name].sizes = _installed(_rule, reads_values=True)
