"""tc.ifelse: a lazy conditional. Only the taken branch is computed.

Each branch becomes an inner graph reaching down to the graph's leaves,
except where it meets values the condition needs anyway; those are captured.
"""
import numpy as np

from .graph import toposort, user_source_loc
from .inner import InnerGraph
from .ops.base import Op
from .tensor import Tensor
from .types import TensorType


class IfElseInfo:
    def __init__(self, then_graph, else_graph, name):
        self.then_graph, self.else_graph, self.name = then_graph, else_graph, name

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


def _ifelse_impl(cond, *values, info):
    n_then = len(info.then_graph.captured)
    if bool(cond):
        outs = info.then_graph.run(list(values[:n_then]))
        branch = info.then_graph
    else:
        outs = info.else_graph.run(list(values[n_then:]))
        branch = info.else_graph
    return tuple(np.asarray(o, dtype=v.dtype) for o, v in zip(outs, branch.outputs))


def _ifelse_infer(inputs, info):
    types = []
    for a, b in zip(info.then_graph.outputs, info.else_graph.outputs):
        pattern = tuple(x and y for x, y in zip(a.broadcastable, b.broadcastable))
        types.append(TensorType(a.dtype, pattern))
    return types


ifelse_op = Op("ifelse", _ifelse_impl, _ifelse_infer, kind="control",
               doc="lazy conditional: runs only the taken branch's inner graph")


def ifelse(condition, then_branch, else_branch, name=None):
    """``then_branch`` if `condition` else ``else_branch``, computing only the one taken.

    Branches may be single values or equally long lists of values; each pair
    must have the same dtype and rank.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> a, b = tc.dscalar('a'), tc.dscalar('b')
    >>> f = tc.function([a, b], tc.ifelse(a < b, np.sqrt(a), np.log(b)))
    >>> float(f(4.0, 9.0))
    2.0
    """
    from .numpy_api import as_tensor, astype
    loc = user_source_loc()
    cond = as_tensor(condition)
    if cond.ndim != 0:
        raise TypeError(f"ifelse at {loc.describe()}: the condition must be a scalar, got {cond.type.short()}")
    single = not isinstance(then_branch, (list, tuple))
    thens = [as_tensor(t) for t in ([then_branch] if single else then_branch)]
    elses = [as_tensor(e) for e in ([else_branch] if single else else_branch)]
    if len(thens) != len(elses):
        raise ValueError(f"ifelse at {loc.describe()}: {len(thens)} then-values but {len(elses)} else-values")
    for i, (t, e) in enumerate(zip(thens, elses)):
        if t.variable.type.weak and not e.variable.type.weak:
            thens[i] = t = astype(t, e.dtype)
        elif e.variable.type.weak and not t.variable.type.weak:
            elses[i] = e = astype(e, t.dtype)
        elif t.variable.type.weak:
            thens[i], elses[i] = t, e = astype(t, t.dtype), astype(e, e.dtype)
        if t.dtype != e.dtype or t.ndim != e.ndim:
            raise TypeError(f"ifelse at {loc.describe()}: branch value {i} is {t.type.short()} in the "
                            f"then-branch but {e.type.short()} in the else-branch; they must match")
    cut = [cond.variable] + [o for node in toposort([cond.variable]) for o in node.outputs]
    then_graph = InnerGraph([], [t.variable for t in thens], name=f"{name or 'ifelse'}.then", cut=cut)
    else_graph = InnerGraph([], [e.variable for e in elses], name=f"{name or 'ifelse'}.else", cut=cut)
    info = IfElseInfo(then_graph, else_graph, name)
    node = ifelse_op.make_node([cond.variable] + then_graph.captured + else_graph.captured,
                               {"info": info}, loc=loc)
    outs = [Tensor(v) for v in node.outputs]
    return outs[0] if single else outs


def _attach_grad():
    from .control_grad import ifelse_grad
    ifelse_op.grad = ifelse_grad


_attach_grad()
