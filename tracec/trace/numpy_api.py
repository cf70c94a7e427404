"""NumPy's API on traced arrays: ufuncs, indexing, reductions and products.

`HANDLED` maps a NumPy function to its traced implementation (with NumPy's
own signature); `Tensor.__array_function__` dispatches through it, and the
array methods call the same functions. Shape functions and array creation
live in `numpy_shape`.
"""
import builtins
import numbers

import numpy as np

from . import ops
from .graph import Constant
from .ops.elemwise import UFUNC_OPS
from .ops.index import DYN
from .ops.linalg import normalize_tensordot_axes, parse_einsum
from .ops.reduce import normalize_axes
from .tensor import Tensor, View, constant
from .types import PY_SCALAR_DTYPES

HANDLED = {}  # NumPy function -> traced implementation


def implements(*funcs):
    def register(impl):
        for f in funcs:
            HANDLED[f] = impl
        return impl
    return register


def array_function(func, args, kwargs):
    impl = HANDLED.get(func)
    if impl is None:
        module = getattr(func, "__module__", None) or "numpy"
        qualified = "np" + module[len("numpy"):] if module.startswith("numpy") else module
        raise NotImplementedError(
            f"{qualified}.{func.__name__} is not supported on traced arrays yet; the supported NumPy "
            f"functions are listed by `python -m tracec numpy`")
    return impl(*args, **kwargs)


# -- conversion ---------------------------------------------------------------
def contains_tensor(obj):
    if isinstance(obj, Tensor):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(contains_tensor(o) for o in obj)
    return False


def is_operand(x):
    return isinstance(x, (Tensor, np.ndarray, np.generic, numbers.Number, list, tuple))


def as_tensor(x):
    """A Tensor for `x`: tensors pass through, Python scalars become weak constants,
    arrays and nested lists (possibly holding tensors) become constants or stacks."""
    if isinstance(x, Tensor):
        return x
    if type(x) in PY_SCALAR_DTYPES:
        return constant(x)
    if isinstance(x, (list, tuple)) and contains_tensor(x):
        from .numpy_shape import stack
        return stack([as_tensor(e) for e in x])
    if isinstance(x, (np.ndarray, np.generic, list, tuple, numbers.Number)):
        value = np.asarray(x)
        if value.dtype.kind in "OSUVMm":
            raise TypeError(f"cannot use a value of dtype {value.dtype} in traced code: {x!r}")
        return constant(value)
    raise TypeError(f"expected an array, a number or a traced array, got {type(x).__name__}: {x!r}")


def int_scalar_var(v, what):
    """A 0-d integer Variable for a size/index given as a Python int or traced scalar."""
    if isinstance(v, Tensor):
        if v.ndim != 0 or v.dtype.kind not in "iub":
            raise TypeError(f"{what} must be an integer scalar, got a traced {v.type.short()}")
        return v.variable
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        raise TypeError(f"{what} must be an integer, got {type(v).__name__} {v!r}")
    return Constant(int(v))


def _wrap(outs):
    if isinstance(outs, tuple):
        return tuple(Tensor(o) for o in outs)
    return Tensor(outs)


def _where_built(t):
    return t._where() if isinstance(t, Tensor) else ""


# -- ufuncs ---------------------------------------------------------------------
_BOOL_CLOSED = {np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.equal, np.not_equal, np.less,
                np.less_equal, np.greater, np.greater_equal}  # Python bool ops that stay bool


def ufunc_call(ufunc, *args, operator=False, dtype=None):
    """Apply a NumPy ufunc to traced operands.

    Python operators on weak (Python-scalar) operands stay weak, as Python
    arithmetic does; a NumPy call on them returns a strong NumPy scalar.
    """
    op = UFUNC_OPS.get(ufunc)
    if op is None:
        raise NotImplementedError(f"np.{ufunc.__name__} is not supported on traced arrays yet")
    tensors = [as_tensor(a) for a in args]
    if dtype is not None:
        tensors = [astype(t, dtype) for t in tensors]
    if operator and ufunc not in _BOOL_CLOSED and builtins.all(t.type.weak and t.dtype == np.bool_
                                                               for t in tensors):
        # Python arithmetic on bools gives ints (True + True == 2): weak bool + 0 is a weak int
        tensors = [Tensor(UFUNC_OPS[np.add](t.variable, Constant(0))) for t in tensors]
    outs = op(*[t.variable for t in tensors])
    outs = outs if isinstance(outs, tuple) else (outs,)
    if not operator:
        outs = tuple(ops.OPS["cast"](o, dtype=o.dtype) if o.type.weak else o for o in outs)
    result = tuple(Tensor(o) for o in outs)
    return result[0] if len(result) == 1 else result


def inplace_result(target, result, name):
    """`target op= ...`: write `result` into `target` with NumPy's casting rule."""
    if not target._mutable:
        return result  # Python and NumPy scalars are immutable: `s += 1` rebinds
    if result.dtype != target.dtype and not np.can_cast(result.dtype, target.dtype, "same_kind"):
        raise TypeError(f"Cannot cast ufunc '{name}' output from {result.dtype} to {target.dtype} "
                        f"with casting rule 'same_kind'{_where_built(result)}")
    setitem(target, Ellipsis, result)
    return target


def inplace_ufunc(ufunc, target, other):
    return inplace_result(target, ufunc_call(ufunc, target, other, operator=True), ufunc.__name__)


_UFUNC_REDUCE = {np.add: "sum", np.multiply: "prod", np.maximum: "max", np.minimum: "min",
                 np.logical_and: "all", np.logical_or: "any"}


def array_ufunc(ufunc, method, inputs, kwargs):
    out = kwargs.pop("out", None)
    dtype = kwargs.pop("dtype", None)
    # NumPy hands reduce/accumulate's axis (default 0) and keepdims over as keywords
    axis = kwargs.pop("axis", 0) if method in ("reduce", "accumulate") else None
    keepdims = kwargs.pop("keepdims", False) if method == "reduce" else False
    if kwargs:
        raise NotImplementedError(f"np.{ufunc.__name__}: keyword(s) {sorted(kwargs)} are not "
                                  "supported on traced arrays")
    if method == "__call__":
        result = matmul(*inputs) if ufunc is np.matmul else ufunc_call(ufunc, *inputs, dtype=dtype)
    elif method == "reduce" and ufunc in _UFUNC_REDUCE:
        name = _UFUNC_REDUCE[ufunc]
        if dtype is not None and name not in ("sum", "prod"):
            raise NotImplementedError(f"np.{ufunc.__name__}.reduce: dtype= is not supported on traced arrays")
        extra = {"dtype": dtype} if dtype is not None else {}
        result = REDUCERS[name](inputs[0], axis=axis, keepdims=keepdims, **extra)
    elif method == "accumulate" and ufunc in (np.add, np.multiply):
        result = (cumsum if ufunc is np.add else cumprod)(inputs[0], axis=axis, dtype=dtype)
    elif method == "at" and ufunc is np.add:
        target, key, values = inputs
        _assign_at(target, key, values, mode="add")
        return None
    else:
        raise NotImplementedError(f"np.{ufunc.__name__}.{method} is not supported on traced arrays")
    if out is not None:
        results = result if isinstance(result, tuple) else (result,)
        for target, r in zip(out, results):
            if not isinstance(target, Tensor):
                raise TypeError("out= must be an array created inside the traced function "
                                "(a NumPy array cannot hold a traced value)")
            inplace_result(target, r, ufunc.__name__)
        return out[0] if len(out) == 1 else out
    return result


# -- indexing --------------------------------------------------------------------
def _index_item(k):
    """Normalize one key item: tensors and arrays stay arrays, ints stay ints."""
    if k is None or k is Ellipsis or isinstance(k, slice):
        return k
    if isinstance(k, (bool, np.bool_)):
        raise NotImplementedError("indexing with a Python bool (x[True]) is not supported")
    if isinstance(k, (numbers.Integral, np.integer)):
        return int(k)
    if isinstance(k, (list, tuple)) and not contains_tensor(k) and np.size(k) == 0:
        return as_tensor(np.asarray(k, dtype=np.intp))  # x[[]]: NumPy takes an empty list as integers
    if isinstance(k, (Tensor, list, tuple, np.ndarray)):
        return as_tensor(k)
    raise IndexError("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
                     f"integer or boolean arrays are valid indices, got {type(k).__name__} {k!r}")


def parse_key(key, ndim):
    """(spec, dynamic input Variables) for a NumPy key on an array of `ndim` dims."""
    items = [_index_item(k) for k in (key if isinstance(key, tuple) else (key,))]
    if builtins.sum(k is Ellipsis for k in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = builtins.sum(0 if k is None or k is Ellipsis else
               k.ndim if isinstance(k, Tensor) and k.dtype == np.bool_ else 1 for k in items)
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items[i:i + 1] = [slice(None)] * builtins.max(ndim - used, 0)
    spec, dyn = [], []
    for k in items:
        if k is None:
            spec.append(("newaxis",))
        elif isinstance(k, int):
            spec.append(("int", k))
        elif isinstance(k, slice):
            parts = []
            for b in (k.start, k.stop, k.step):
                if isinstance(b, Tensor):
                    dyn.append(int_scalar_var(b, "a slice bound"))
                    parts.append(DYN)
                elif b is None:
                    parts.append(None)
                elif isinstance(b, (numbers.Integral, np.integer)) and not isinstance(b, bool):
                    parts.append(int(b))
                else:
                    raise TypeError(f"slice indices must be integers or None, got {b!r}")
            if parts[2] == 0:
                raise ValueError("slice step cannot be zero")
            spec.append(("slice", *parts))
        elif k.dtype == np.bool_:
            spec.append(("mask",))
            dyn.append(k.variable)
        elif k.dtype.kind in "iu":
            spec.append(("int", DYN) if k.ndim == 0 else ("array",))
            dyn.append(k.variable)
        else:
            raise IndexError("arrays used as indices must be of integer (or boolean) type, "
                             f"got {k.dtype}")
    return tuple(spec), dyn


def getitem(x, key):
    x = as_tensor(x)
    spec, dyn = parse_key(key, x.ndim)
    out = ops.OPS["getitem"](x.variable, *dyn, spec=spec)
    basic = builtins.all(e[0] in ("int", "slice", "newaxis") for e in spec)
    # NumPy gives a scalar only for all-integer keys; x[...] (also on a 0-d array) is a view
    has_ellipsis = builtins.any(k is Ellipsis for k in (key if isinstance(key, tuple) else (key,)))
    if not basic or (out.ndim == 0 and not has_ellipsis and builtins.all(e[0] == "int" for e in spec)):
        return Tensor(out)  # a copy in NumPy (advanced indexing) or a scalar
    view = View(x, lambda b: ops.OPS["getitem"](b, *dyn, spec=spec),
                lambda b, new: ops.OPS["setitem"](b, new, *dyn, spec=spec, mode="set"), "slicing")
    return Tensor(out, mutable=True, view=view)


def _assign_at(target, key, value, mode):
    if not isinstance(target, Tensor):
        raise TypeError("cannot store a traced value into a NumPy array; create the array inside "
                        "the traced function (e.g. np.zeros(...)) or pass it as an argument")
    if target.ndim == 0 and not target._mutable:
        raise TypeError(f"a {target.dtype} scalar does not support item assignment")
    spec, dyn = parse_key(key, target.ndim)
    value = as_tensor(value)
    target._assign(ops.OPS["setitem"](target.variable, value.variable, *dyn, spec=spec, mode=mode))


def setitem(target, key, value):
    _assign_at(target, key, value, mode="set")


def fill(a, value):
    setitem(a, Ellipsis, value)


@implements(np.take)
def take(a, indices, axis=None, out=None, mode=None):
    if out is not None or mode is not None:
        raise NotImplementedError("np.take: out= and mode= are not supported on traced arrays")
    from .numpy_shape import reshape
    a = as_tensor(a)
    if axis is None:
        return getitem(reshape(a, -1), as_tensor(indices))
    axis = normalize_axes(axis, a.ndim)[0]
    return getitem(a, (slice(None),) * axis + (as_tensor(indices),))


@implements(np.nonzero)
def nonzero(a):
    outs = ops.OPS["nonzero"](as_tensor(a).variable)
    return _wrap(outs if isinstance(outs, tuple) else (outs,))  # a tuple also for 1-d input


# -- reductions --------------------------------------------------------------------
def _unsupported(fname, kw):
    bad = {k for k, v in kw.items() if v is not np._NoValue}
    if bad:
        raise NotImplementedError(f"np.{fname}: keyword(s) {sorted(bad)} are not supported on traced arrays")


def _finish(result, out, name):
    if out is None:
        return result
    if isinstance(out, tuple):
        (out,) = out
    return inplace_result(out, result, name)


def _reduce(name, a, axis, out, keepdims, **params):
    a = as_tensor(a)
    axes = normalize_axes(axis, a.ndim)
    result = Tensor(ops.OPS[name](a.variable, axis=axes, keepdims=bool(keepdims), **params))
    return _finish(result, out, name)


def _dtype_param(dtype):
    return None if dtype is None else np.dtype(dtype)


@implements(np.sum)
def sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _unsupported("sum", kw)
    return _reduce("sum", a, axis, out, keepdims, dtype=_dtype_param(dtype))


@implements(np.prod)
def prod(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _unsupported("prod", kw)
    return _reduce("prod", a, axis, out, keepdims, dtype=_dtype_param(dtype))


@implements(np.mean)
def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _unsupported("mean", kw)
    return _reduce("mean", a, axis, out, keepdims, dtype=_dtype_param(dtype))


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _unsupported("var", kw)
    return _reduce("var", a, axis, out, keepdims, dtype=_dtype_param(dtype), ddof=ddof)


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _unsupported("std", kw)
    return _reduce("std", a, axis, out, keepdims, dtype=_dtype_param(dtype), ddof=ddof)


def _extremum(name):
    def reduce(a, axis=None, out=None, keepdims=False, **kw):
        _unsupported(name, kw)
        return _reduce(name, a, axis, out, keepdims)
    reduce.__name__ = name
    return reduce


max = implements(np.max, np.amax)(_extremum("max"))
min = implements(np.min, np.amin)(_extremum("min"))
any = implements(np.any)(_extremum("any"))
all = implements(np.all)(_extremum("all"))


def _arg_extremum(name):
    def reduce(a, axis=None, out=None, *, keepdims=False):
        a = as_tensor(a)
        axis = None if axis is None else normalize_axes(axis, a.ndim)[0]
        return _finish(Tensor(ops.OPS[name](a.variable, axis=axis, keepdims=bool(keepdims))), out, name)
    reduce.__name__ = name
    return reduce


argmax = implements(np.argmax)(_arg_extremum("argmax"))
argmin = implements(np.argmin)(_arg_extremum("argmin"))


def _accumulate(name):
    def accumulate(a, axis=None, dtype=None, out=None):
        a = as_tensor(a)
        axis = None if axis is None else normalize_axes(axis, a.ndim)[0]
        result = Tensor(ops.OPS[name](a.variable, axis=axis, dtype=_dtype_param(dtype)))
        return _finish(result, out, name)
    accumulate.__name__ = name
    return accumulate


cumsum = implements(np.cumsum)(_accumulate("cumsum"))
cumprod = implements(np.cumprod)(_accumulate("cumprod"))

REDUCERS = {"sum": sum, "prod": prod, "max": max, "min": min, "any": any, "all": all}


# -- products -------------------------------------------------------------------
def matmul(a, b):
    return Tensor(ops.OPS["matmul"](as_tensor(a).variable, as_tensor(b).variable))


@implements(np.dot)
def dot(a, b, out=None):
    return _finish(Tensor(ops.OPS["dot"](as_tensor(a).variable, as_tensor(b).variable)), out, "dot")


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    a, b = as_tensor(a), as_tensor(b)
    axes = normalize_tensordot_axes(axes, a.ndim, b.ndim)
    return Tensor(ops.OPS["tensordot"](a.variable, b.variable, axes=axes))


@implements(np.outer)
def outer(a, b, out=None):
    return _finish(Tensor(ops.OPS["outer"](as_tensor(a).variable, as_tensor(b).variable)), out, "outer")


@implements(np.einsum)
def einsum(subscripts, *operands, out=None, dtype=None, optimize=False, **kw):
    if not isinstance(subscripts, str):
        raise NotImplementedError("np.einsum: only the subscripts-string form is supported")
    if kw or dtype is not None:
        raise NotImplementedError(f"np.einsum: keywords {sorted(kw) + (['dtype'] if dtype else [])} "
                                  "are not supported on traced arrays")
    tensors = [as_tensor(o) for o in operands]
    terms, rhs = parse_einsum(subscripts, [t.ndim for t in tensors])
    explicit = ",".join(terms) + "->" + rhs
    return _finish(Tensor(ops.OPS["einsum"](*[t.variable for t in tensors], subscripts=explicit)), out, "einsum")


@implements(np.where)
def where(condition, x=None, y=None):
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    c, a, b = as_tensor(condition), as_tensor(x), as_tensor(y)
    return Tensor(ops.OPS["where"](c.variable, a.variable, b.variable))


@implements(np.clip)
def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=None, max=None, **kw):
    lo = min if a_min is np._NoValue else a_min
    hi = max if a_max is np._NoValue else a_max
    if kw:
        raise NotImplementedError(f"np.clip: keyword(s) {sorted(kw)} are not supported on traced arrays")
    bounds = [as_tensor(b).variable for b in (lo, hi) if b is not None]
    result = Tensor(ops.OPS["clip"](as_tensor(a).variable, *bounds, has_lo=lo is not None, has_hi=hi is not None))
    return _finish(result, out, "clip")


@implements(np.round, np.around)
def round(a, decimals=0, out=None):
    a = as_tensor(a)
    if a.dtype.kind in "iub" and decimals >= 0:
        return _finish(copy(a), out, "round")
    if decimals == 0:
        result = ufunc_call(np.rint, a)
    else:
        scale = 10.0 ** decimals
        result = ufunc_call(np.true_divide, ufunc_call(np.rint, ufunc_call(np.multiply, a, scale)), scale)
    return _finish(result, out, "round")


@implements(np.conj, np.conjugate)
def conj(a):
    a = as_tensor(a)
    if a.dtype.kind == "c":
        raise NotImplementedError("complex conjugate of traced arrays")
    return copy(a)


@implements(np.copy)
def copy(a, order="K", subok=False):
    # graph values are immutable, so a fresh handle is an independent copy
    return Tensor(as_tensor(a).variable, mutable=True)


@implements(np.astype)
def astype(x, dtype, order="K", casting="unsafe", subok=True, copy=True):
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if casting != "unsafe" and not np.can_cast(x.dtype, dtype, casting):
        raise TypeError(f"Cannot cast array data from {x.dtype} to {dtype} according to the rule {casting!r}")
    return Tensor(ops.OPS["cast"](x.variable, dtype=dtype))

