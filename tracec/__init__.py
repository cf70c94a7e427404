"""tracec: compile plain NumPy functions.

>>> import numpy as np, tracec as tc
>>> @tc.compile
... def f(x, y):
...     return np.exp(-x * x / 2) * y
>>> float(f(np.zeros(3), np.ones(3))[0])
1.0
"""
from .config import config
from .function import CompiledFunction, Function
from .grad import (DisconnectedInputError, GradientError, GradientNotDefinedError, Lop, Rop, grad,
                   hessian, jacobian, jvp, stop_gradient, value_and_grad, verify_grad, vjp)
from . import opt
from .opt import Mode
from . import debug, profiling as profile  # tc.debug.print/breakpoint, tc.profile.report
from .printing import debugprint
from .printing_dot import pydotprint
from .printing_html import htmlprint
from .symbolic import TYPED as _TYPED, matrix, scalar, tensor, tensor3, tensor4, vector
from .trace.graph import Constant, Node, SourceLoc, Variable
from .trace.ops import OPS
from .trace.ifelse import ifelse
from .trace.loops import LoopConversionError, converted_source
from .trace.program import MissingInputError
from .trace.scan import foldl, foldr, map, reduce, scan, until
from .trace.shared import SharedVariable
from .trace.tensor import Tensor, TracedValueError
from .trace.types import TensorType

globals().update(_TYPED)  # tc.ivector, tc.fmatrix, tc.dtensor4, ...

__version__ = "0.1.0"


def compile(fn=None, *, mode=None, static_argnums=(), static_argnames=(), name=None, profile=None,
            optimizer_including=(), optimizer_excluding=()):
    """Compile a NumPy function: trace it once per argument signature, then run the graph.

    Usable as ``@tc.compile`` or ``@tc.compile(static_argnums=1)``. The signature
    is the dtype, rank and size-1 (broadcastable) pattern of each array argument
    and the values of static arguments; a new shape never retraces.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> @tc.compile(static_argnames='axis')
    ... def norm(x, axis):
    ...     return np.sqrt((x * x).sum(axis=axis))
    >>> norm(np.array([[3., 4.]]), axis=1)
    array([5.])
    """
    if optimizer_including or optimizer_excluding:
        mode = Mode(mode) if mode is None or isinstance(mode, str) else mode
        mode = mode.including(*_names(optimizer_including)).excluding(*_names(optimizer_excluding))
    if fn is None:
        return lambda f: CompiledFunction(f, mode, static_argnums, static_argnames, name, profile)
    return CompiledFunction(fn, mode, static_argnums, static_argnames, name, profile)


def _names(value):
    return (value,) if isinstance(value, str) else tuple(value)


def function(inputs, outputs, updates=None, givens=None, mode=None, name=None,
             on_unused_input="raise", allow_input_downcast=False, profile=None):
    """Compile symbolic `outputs` as a function of symbolic `inputs` (Theano style).

    Parameters
    ----------
    inputs : list of symbolic variables
        Any variable may be an input, also an intermediate expression.
    outputs : variable or list of variables
        A single variable gives a function returning one value; a list, a list.
    updates : list of (shared variable, expression) pairs or dict
        New values of shared variables, applied after all outputs are computed.
    givens : list of (variable, replacement) pairs or dict
        Substitutions made in the graph before compiling.
    on_unused_input : {'raise', 'warn', 'ignore'}

    Examples
    --------
    >>> import tracec as tc
    >>> x, y = tc.dscalar('x'), tc.dscalar('y')
    >>> f = tc.function([x, y], x + y)
    >>> f(2, 3)
    np.float64(5.0)
    """
    return Function(inputs, outputs, updates, givens, mode, name, on_unused_input, allow_input_downcast,
                    profile)


def shared(value, name=None, borrow=False, broadcastable=None):
    """A persistent array shared by all functions (Theano's ``shared``).

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> state = tc.shared(0, name='state')
    >>> inc = tc.iscalar('inc')
    >>> acc = tc.function([inc], state, updates=[(state, state + inc)])
    >>> _ = acc(1); _ = acc(10)
    >>> int(state.get_value())
    11
    """
    return SharedVariable(value, name=name, borrow=borrow, broadcastable=broadcastable)
