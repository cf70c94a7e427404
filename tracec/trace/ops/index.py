"""Indexing: x[key] (getitem) and the functional form of x[key] = v (setitem).

A key is stored as a static `spec`, one entry per key item, with traced parts
(integer scalars, slice bounds, index arrays, masks) passed as inputs:
  ('int', k)                  integer index; k is an int, or DYN for an input
  ('slice', start, stop, step) each an int, None or DYN
  ('newaxis',)
  ('array',)                  integer index array (input)
  ('mask',)                   boolean mask (input)
Ellipsis is expanded when the key is parsed, so specs are always explicit.
"""
import numpy as np

from ..types import TensorType
from .base import Op

DYN = "?"  # marks a key part that comes from the node's inputs


def rebuild_key(spec, dyn):
    """The NumPy key tuple for `spec`, taking traced parts from `dyn` in order."""
    dyn = iter(dyn)
    pick = lambda v: next(dyn) if v == DYN else v  # noqa: E731
    key = []
    for entry in spec:
        kind = entry[0]
        if kind == "int":
            key.append(int(pick(entry[1])))
        elif kind == "slice":
            bounds = [pick(v) for v in entry[1:]]
            key.append(slice(*[None if b is None else int(b) for b in bounds]))
        elif kind == "newaxis":
            key.append(None)
        else:
            key.append(next(dyn))
    return tuple(key)


def _dyn_count(entry):
    if entry[0] in ("array", "mask"):
        return 1
    return sum(v == DYN for v in entry[1:])


def _slice_keeps_unit(entry):
    """Does this slice of a length-1 dimension surely have length 1?"""
    if DYN in entry[1:]:
        return False
    return len(range(1)[slice(*entry[1:])]) == 1


def indexed_type(x, spec, dyn_inputs):
    """Type of x[key]; checks the key against x's rank and the index dtypes."""
    consumed = sum(1 for e in spec if e[0] in ("int", "slice", "array"))
    consumed += sum(dyn.ndim for e, dyn in _with_inputs(spec, dyn_inputs) if e[0] == "mask")
    if consumed > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, "
                         f"but {consumed} were indexed")
    for entry, dyn in _with_inputs(spec, dyn_inputs):
        if entry[0] == "mask" and dyn.dtype != np.bool_:
            raise IndexError(f"boolean mask must be bool, got {dyn.dtype}")
        if entry[0] in ("int", "slice", "array") and dyn is not None and dyn.dtype.kind not in "iu":
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) "
                             f"and integer or boolean arrays are valid indices, got {dyn.dtype}")
    out, advanced, adv_pos, last_adv, contiguous = [], [], None, None, True
    axis = 0
    for i, (entry, dyn) in enumerate(_with_inputs(spec, dyn_inputs)):
        kind = entry[0]
        if kind == "newaxis":
            out.append(True)
        elif kind == "slice":
            out.append(x.broadcastable[axis] and _slice_keeps_unit(entry))
            axis += 1
        else:
            if kind == "int" and entry[1] != DYN:
                pattern = ()
            elif kind == "mask":
                pattern = (False,)
            else:
                pattern = dyn.broadcastable
            if adv_pos is None:
                adv_pos = len(out)
            elif last_adv != i - 1:
                contiguous = False
            last_adv = i
            advanced.append(pattern)
            axis += dyn.ndim if kind == "mask" else 1
    out.extend(x.broadcastable[axis:])
    if advanced:
        ndim = max(len(p) for p in advanced)
        adv = []
        for a in range(ndim):
            dims = [p[a - ndim + len(p)] for p in advanced if a - ndim + len(p) >= 0]
            adv.append(all(dims))
        # NumPy: a single int with only basic items is not "advanced"; positions still match
        where = adv_pos if contiguous else 0
        out[where:where] = adv
    return TensorType(x.dtype, tuple(out))


def _with_inputs(spec, dyn_inputs):
    """Pairs (entry, input or None); slices with traced bounds pair with their first input."""
    it = iter(dyn_inputs)
    for entry in spec:
        n = _dyn_count(entry)
        parts = [next(it) for _ in range(n)]
        yield entry, (parts[0] if parts and entry[0] in ("int", "array", "mask") else None)


def _getitem_impl(x, *dyn, spec):
    return np.asarray(x)[rebuild_key(spec, dyn)]


def _getitem_infer(inputs, spec):
    x, *dyn = inputs
    return [indexed_type(x, spec, dyn)]


getitem = Op("getitem", _getitem_impl, _getitem_infer, kind="index")


def _setitem_impl(x, value, *dyn, spec, mode):
    out = np.array(x, copy=True)
    key = rebuild_key(spec, dyn)
    if mode == "set":
        out[key] = value
    else:  # scatter-add: repeated indices accumulate (np.add.at)
        np.add.at(out, key, value)
    return out


def _setitem_infer(inputs, spec, mode):
    x, value, *dyn = inputs
    target = indexed_type(x, spec, dyn)
    if value.ndim > target.ndim and not all(value.broadcastable[:value.ndim - target.ndim]):
        raise ValueError(f"could not broadcast a {value.ndim}-d value into a {target.ndim}-d selection")
    return [x.type.with_weak(False)]


setitem = Op("setitem", _setitem_impl, _setitem_infer, kind="index",
             doc="copy of x with x[key] = value (mode 'set') or np.add.at (mode 'add')")


def _nonzero_infer(inputs):
    (x,) = inputs
    return [TensorType(np.intp, (False,))] * max(x.ndim, 1)


nonzero = Op("nonzero", lambda x: np.nonzero(x), _nonzero_infer, kind="index")
