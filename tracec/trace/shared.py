"""Shared variables: persistent arrays that every function reads and may update."""
import numpy as np

from . import context
from .graph import Variable
from .tensor import Tensor
from .types import TensorType


class SharedVariable(Tensor):
    """A persistent array shared by all functions that use it (``tc.shared``).

    Reading it in traced or symbolic code makes it an implicit input of the
    function; an in-place change inside a traced function (``W[...] -= lr * g``)
    or ``updates=[(W, expr)]`` in `tc.function` records an update, applied after
    all the function's outputs are computed.
    """

    __slots__ = ("_value", "_leaf")

    def __init__(self, value, name=None, borrow=False, broadcastable=None):
        if isinstance(value, Tensor):
            raise TypeError("tc.shared needs a concrete value (a NumPy array or number), not a traced array")
        arr = np.asarray(value) if borrow else np.array(value, copy=True)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"tc.shared: expected a numeric array, got dtype {arr.dtype} ({value!r:.60})")
        pattern = (False,) * arr.ndim if broadcastable is None else tuple(broadcastable)
        leaf = Variable(TensorType(arr.dtype, pattern), name=name, shared=self)
        super().__init__(leaf, mutable=True)
        self._leaf = leaf
        self._value = leaf.type.check_value(arr, f"tc.shared {name or ''}".strip())

    def _state(self, ctx):
        state = ctx.shared.get(self)
        if state is None:
            state = ctx.shared[self] = [self._leaf, 0]
        return state

    @property
    def variable(self):
        ctx = context.current()
        return self._leaf if ctx is None else self._state(ctx)[0]

    @property
    def _version(self):
        ctx = context.current()
        return 0 if ctx is None else self._state(ctx)[1]

    @_version.setter
    def _version(self, value):
        pass  # versions live in the trace context (see _assign)

    def _assign(self, new_var):
        ctx = context.current()
        if ctx is None:
            raise TypeError(f"the shared variable {self._label()} cannot be changed in place in "
                            "symbolic code: use tc.function(..., updates=[(W, new_value)]) or "
                            "W.set_value(...)")
        state = self._state(ctx)
        state[0], state[1] = new_var, state[1] + 1

    def _label(self):
        return repr(self._leaf.name) if self._leaf.name else "(unnamed)"

    @property
    def name(self):
        return self._leaf.name

    @property
    def leaf(self):
        """The graph variable standing for this storage."""
        return self._leaf

    def get_value(self, borrow=False):
        """The current value (a copy unless ``borrow=True``)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        """Replace the value; the dtype and number of dimensions are fixed."""
        what = f"set_value of shared variable {self._label()}"
        if isinstance(value, Tensor):  # a traced value: an update of the function being traced
            if context.current() is None:
                raise TypeError(f"{what}: got a symbolic value, but set_value stores a concrete array; "
                                f"to change the variable when a function runs, pass "
                                f"updates=[(W, new_value)] to tc.function")
            self[...] = value  # like W[...] = value in the traced function
            return
        arr = self._leaf.type.check_value(value, what, allow_downcast=None)
        if not borrow and (arr is value or (isinstance(value, np.ndarray) and np.shares_memory(arr, value))):
            arr = arr.copy()
        self._value = arr

    def __repr__(self):
        return f"SharedVariable({self._label()}, {self._leaf.type.short()})"
