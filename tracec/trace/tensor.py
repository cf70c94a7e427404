"""The proxy array: what user code holds while it is traced.

A `Tensor` is a mutable handle on an immutable graph `Variable`. NumPy code
works on it through operator overloads, `__array_ufunc__` and
`__array_function__`; in-place idioms (`x[i] = v`, `x += 1`) rebind the handle
to a new variable, so the graph stays functional while the Python code keeps
NumPy's meaning. Views remember their base: a write through a view updates the
base, and a view read after its base changed is recomputed from it.
"""
import numpy as np

from .graph import Constant, Variable
from .types import PY_SCALAR_DTYPES


class TracedValueError(TypeError):
    """A traced value was used where Python needs a concrete one."""


def _built_at(var):
    return f" (at {var.owner.loc.describe()})" if var.owner is not None else ""


class View:
    """How a view tensor relates to its base.

    `rebuild(base_var)` recomputes the view from the base; `write(base_var,
    new_view_var)` returns the base with the view's region replaced, or is
    None when NumPy itself would not write through (or might not: reshape).
    """

    __slots__ = ("base", "rebuild", "write", "what")

    def __init__(self, base, rebuild, write, what):
        self.base, self.rebuild, self.write, self.what = base, rebuild, write, what


class Tensor:
    """A traced array. Behaves like an ndarray inside `tc.compile` functions
    and in symbolic (Theano-style) code; see the user guide for what is supported."""

    __array_priority__ = 1000
    __slots__ = ("_var", "_mutable", "_view", "_base_version", "_version", "__weakref__")

    def __init__(self, var, mutable=None, view=None):
        if not isinstance(var, Variable):
            raise TypeError(f"Tensor wraps a graph Variable, got {type(var).__name__}")
        self._var = var
        self._mutable = var.ndim > 0 if mutable is None else mutable
        self._view = view
        self._base_version = view.base._version if view is not None else 0
        self._version = 0

    # -- the current graph value -------------------------------------------
    @property
    def variable(self):
        """The graph Variable this array holds now."""
        view = self._view
        if view is not None:
            base_var = view.base.variable
            if view.base._version != self._base_version:
                if view.rebuild is None:
                    raise ValueError(
                        f"this array was taken from another with {view.what}{_built_at(self._var)}, and that array was "
                        f"modified afterwards; NumPy may or may not show the change here (view or "
                        f"copy). Call .copy() when you take it, or reshape after the modification")
                self._var = view.rebuild(base_var)
                self._base_version = view.base._version
                self._version += 1
        return self._var

    def _assign(self, new_var):
        """Make this array hold `new_var` (an in-place change), writing through views."""
        view = self._view
        if view is not None:
            if view.write is None:
                raise NotImplementedError(
                    f"in-place assignment to an array made by {view.what} is not supported "
                    f"(NumPy may return a copy there); assign into the original array instead")
            view.base._assign(view.write(view.base.variable, new_var))
            self._base_version = view.base._version
        self._var = new_var
        self._version += 1

    # -- array attributes --------------------------------------------------
    @property
    def dtype(self):
        return self.variable.dtype

    @property
    def ndim(self):
        return self.variable.ndim

    @property
    def type(self):
        return self.variable.type

    @property
    def broadcastable(self):
        return self.variable.broadcastable

    @property
    def name(self):
        return self.variable.name

    @property
    def shape(self):
        from . import numpy_shape
        return numpy_shape.shape(self)

    @property
    def size(self):
        from . import numpy_shape
        return numpy_shape.size(self)

    @property
    def T(self):
        return self.transpose()

    @property
    def mT(self):
        return self.swapaxes(-1, -2)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    # -- refusals that explain themselves -----------------------------------
    def _where(self):
        node = self.variable.owner
        return f" (built at {node.loc.describe()})" if node is not None else \
            f" (the input {self.variable.name!r})" if self.variable.name else ""

    def __bool__(self):
        raise TracedValueError(
            f"the truth value of a traced array is not known while tracing{self._where()}. "
            "Python `if`/`while`/`and`/`or` need a concrete value: use np.where(cond, a, b) "
            "for values, or pass the argument as static (static_argnums/static_argnames)")

    def _no_concrete(self, what):
        raise TracedValueError(
            f"{what} of a traced array is not known while tracing{self._where()}; "
            "keep the value an array (e.g. x.shape[0] is traced, use it in np.* calls), or "
            "pass the argument as static (static_argnums/static_argnames)")

    def __index__(self):
        self._no_concrete("the integer value")

    def __int__(self):
        self._no_concrete("the integer value")

    def __float__(self):
        self._no_concrete("the float value")

    def __complex__(self):
        self._no_concrete("the complex value")

    def __len__(self):
        self._no_concrete("len()")

    def __iter__(self):
        self._no_concrete("iteration over the first axis (its length)")

    def item(self, *args):
        self._no_concrete(".item()")

    def tolist(self):
        self._no_concrete(".tolist()")

    def __array__(self, dtype=None, copy=None):
        raise TracedValueError(
            f"a traced array cannot be converted to a NumPy array{self._where()}: it has no "
            "value until the compiled function runs. This happens when a library that is not "
            "traced (or np.asarray/np.array outside tc.compile) receives it; use NumPy functions "
            "and array methods on traced values")

    def __hash__(self):
        return id(self)

    def __repr__(self):
        v = self.variable
        label = v.name or (v.owner.op.name if v.owner else "input")
        return f"Tensor({label}, {v.type.short()})"

    # -- NumPy protocols ---------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import numpy_api
        return numpy_api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import numpy_api
        return numpy_api.array_function(func, args, kwargs)

    # -- indexing ----------------------------------------------------------
    def __getitem__(self, key):
        from . import numpy_api
        return numpy_api.getitem(self, key)

    def __setitem__(self, key, value):
        from . import numpy_api
        numpy_api.setitem(self, key, value)

    # -- methods (same signatures as ndarray's) ------------------------------
    def _api(name):
        def method(self, *args, **kwargs):
            from . import numpy_api, numpy_shape
            impl = getattr(numpy_shape, name, None) or getattr(numpy_api, name)
            return impl(self, *args, **kwargs)
        method.__name__ = name
        method.__doc__ = f"Traced ``ndarray.{name}``."
        return method

    for _name in ("sum", "prod", "mean", "var", "std", "max", "min", "argmax", "argmin", "any",
                  "all", "cumsum", "cumprod", "reshape", "transpose", "swapaxes", "flatten",
                  "ravel", "squeeze", "astype", "copy", "clip", "dot", "repeat", "nonzero",
                  "fill", "round", "conj", "take"):
        locals()[_name] = _api(_name)
    del _name, _api


def _operator(ufunc, reflected=False):
    def op(self, other):
        from . import numpy_api
        if not numpy_api.is_operand(other):
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return numpy_api.ufunc_call(ufunc, *args, operator=True)
    return op


def _inplace(ufunc):
    def op(self, other):
        from . import numpy_api
        if not numpy_api.is_operand(other):
            return NotImplemented
        return numpy_api.inplace_ufunc(ufunc, self, other)
    return op


def _unary(ufunc):
    def op(self):
        from . import numpy_api
        return numpy_api.ufunc_call(ufunc, self, operator=True)
    return op


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
           "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
           "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
           "lshift": np.left_shift, "rshift": np.right_shift}
for _n, _u in _BINARY.items():
    setattr(Tensor, f"__{_n}__", _operator(_u))
    setattr(Tensor, f"__r{_n}__", _operator(_u, reflected=True))
    setattr(Tensor, f"__i{_n}__", _inplace(_u))
for _n, _u in {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
               "eq": np.equal, "ne": np.not_equal}.items():
    setattr(Tensor, f"__{_n}__", _operator(_u))
for _n, _u in {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}.items():
    setattr(Tensor, f"__{_n}__", _unary(_u))


def _matmul(self, other):
    from . import numpy_api
    return numpy_api.matmul(self, other) if numpy_api.is_operand(other) else NotImplemented


def _rmatmul(self, other):
    from . import numpy_api
    return numpy_api.matmul(other, self) if numpy_api.is_operand(other) else NotImplemented


def _imatmul(self, other):
    from . import numpy_api
    return numpy_api.inplace_result(self, numpy_api.matmul(self, other), "matmul")


def _divmod(self, other):
    from . import numpy_api
    return numpy_api.ufunc_call(np.divmod, self, other, operator=True)


def _rdivmod(self, other):
    from . import numpy_api
    return numpy_api.ufunc_call(np.divmod, other, self, operator=True)


Tensor.__matmul__, Tensor.__rmatmul__, Tensor.__imatmul__ = _matmul, _rmatmul, _imatmul
Tensor.__divmod__, Tensor.__rdivmod__ = _divmod, _rdivmod


def constant(value):
    """A Tensor holding a constant (Python scalars stay weak)."""
    if type(value) not in PY_SCALAR_DTYPES:
        value = np.asarray(value)
    return Tensor(Constant(value), mutable=False)
