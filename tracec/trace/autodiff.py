"""Reverse-mode differentiation of graphs (the backward driver).

`backward` walks the nodes between the variables to differentiate and the
seeds (cost, or known output gradients) in reverse topological order. For each
node it sums the gradient contributions of its outputs, calls the op's rule
(`OPS[name].grad`, see `grad_rules`) and hands each input its contribution,
after `match_type`: the one place where broadcasting is undone (summing over
the dimensions an input was broadcast along) and dtypes are restored. Rules
build nodes with the same NumPy calls users write, so gradients are ordinary
graphs: compiled like any other and differentiable again.

Only float values carry gradients; integer and boolean values (indices,
comparisons, shapes) never do. Nodes are only visited when they lie on a path
from a variable in `wrt` to a seed, so the gradient graph holds no dead
forward computation.
"""
import warnings

import numpy as np

from . import grad_rules
from .graph import Constant, Variable, built_for, toposort
from .numpy_shape import numpy_patched
from .tensor import Tensor


class GradientNotDefinedError(NotImplementedError):
    """A gradient was requested through an op that has no derivative rule."""


class DisconnectedInputError(ValueError):
    """A variable in `wrt` does not influence the cost (``disconnected_inputs='raise'``)."""


def carries_grad(var):
    """Does this value take part in differentiation (a real floating-point value)?"""
    return var.dtype.kind == "f"


def describe(var, what="the variable"):
    """A readable name for a variable in error messages."""
    if var.name:
        return f"{what} {var.name!r} ({var.type.short()})"
    if var.owner is not None:
        return f"{what} computed by {var.owner.op.name} at {var.owner.loc.describe()} ({var.type.short()})"
    return f"{what} (unnamed {var.type.short()})"


def _as_var(x):
    if isinstance(x, Tensor):
        return x.variable
    if isinstance(x, Variable):
        return x
    from .numpy_api import as_tensor
    return as_tensor(x).variable


def match_type(grad, var):
    """`grad` reshaped and cast to `var`'s type: undo broadcasting, restore the dtype.

    Sums over leading dimensions `var` does not have and over dimensions where
    `var` is broadcastable (length 1) but `grad` is not; broadcasts a gradient
    that is smaller than `var` (a rule may return a broadcastable shorthand).
    """
    g = Tensor(_as_var(grad), mutable=False)
    if g.ndim > var.ndim:
        g = np.sum(g, axis=tuple(range(g.ndim - var.ndim)))
    axes = tuple(a for a, (vb, gb) in enumerate(zip(var.broadcastable, g.broadcastable)) if vb and not gb)
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    if g.ndim < var.ndim or any(gb and not vb for vb, gb in zip(var.broadcastable, g.broadcastable)):
        g = np.broadcast_to(g, np.shape(Tensor(var, mutable=False)))
    if g.dtype != var.dtype or g.type.weak:
        g = g.astype(var.dtype)
    return g.variable


def _add_all(terms):
    total = Tensor(terms[0], mutable=False)
    for t in terms[1:]:
        total = total + Tensor(t, mutable=False)
    return total.variable


def _sum_to_runtime_shape(grad, var):
    """For an input leaf whose declared type may hide a length-1 dimension that
    broadcast at run time (tc.dmatrix given a (1, n) array), sum the gradient to
    the value's actual shape; a no-op when the shapes already agree."""
    if var.owner is not None or var.ndim == 0 or all(var.broadcastable):
        return grad
    from .ops import OPS
    dims = [Constant(1) if b else OPS["shape_i"](var, i=i) for i, b in enumerate(var.broadcastable)]
    return OPS["sum_to"](grad, *dims)


def _zeros_like(var):
    return np.zeros_like(Tensor(var, mutable=False)).variable


def backward(seeds, wrt, consider_constant=(), disconnected_inputs="raise", what="tc.grad",
             declared_types=True):
    """Gradients of the seeded outputs with respect to each variable of `wrt`.

    Parameters
    ----------
    seeds : list of (Variable, gradient)
        The outputs to differentiate and their gradients (a cost and 1, or
        known gradients); gradients may be Variables, Tensors or arrays.
    wrt : list of Variable
    consider_constant : list of Variable
        Gradients do not flow past these (as if they were constants).
    disconnected_inputs : {'raise', 'warn', 'ignore'}
    declared_types : bool
        The `wrt` leaves have declared types (``tc.dmatrix``) that may hide a
        length-1 dimension broadcasting at run time: their gradients are summed
        to the run-time shape. False when the types come from actual values.
        What to do when a variable of `wrt` does not influence any seed.

    Returns
    -------
    list of Variable
        One per `wrt`, of its type (integer variables get float zeros).
    """
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    grad_rules.install()  # rules of ops registered after this module was imported (scan, ifelse)
    with numpy_patched():
        return _backward(seeds, wrt, consider_constant, disconnected_inputs, what, declared_types)


def _backward(seeds, wrt, consider_constant, disconnected_inputs, what, declared_types):
    blocked = {id(v) for v in consider_constant}
    seed_vars = [v for v, _ in seeds]
    nodes = toposort(seed_vars)

    # variables the seeds depend on (backwards, not past constants or stop_gradient)
    reaches_seed = {id(v) for v in seed_vars}
    for node in reversed(nodes):
        if node.op.name == "stop_gradient":
            continue
        if any(id(o) in reaches_seed and id(o) not in blocked for o in node.outputs):
            reaches_seed.update(id(i) for i in node.inputs)
    # variables that depend on wrt (forwards)
    depends = {id(w) for w in wrt if id(w) not in blocked}
    for node in nodes:
        if node.op.name != "stop_gradient" and any(id(i) in depends for i in node.inputs):
            depends.update(id(o) for o in node.outputs if id(o) not in blocked)
    relevant = depends & reaches_seed

    grads = {}  # id(var) -> list of gradient contributions (Variables of var's type)
    for var, g in seeds:
        if carries_grad(var) and id(var) in relevant:
            grads.setdefault(id(var), []).append(match_type(g, var))

    wrt_ids = {id(w) for w in wrt}
    for node in reversed(nodes):
        out_grads = [_add_all(grads[id(o)]) if id(o) in grads else None for o in node.outputs]
        if all(g is None for g in out_grads):
            continue
        wanted = [id(i) in relevant and carries_grad(i) and not isinstance(i, Constant)
                  and (i.owner is not None or id(i) in wrt_ids) for i in node.inputs]
        if not any(wanted):
            continue
        rule = node.op.grad
        if rule is None:
            raise GradientNotDefinedError(
                f"{what}: the op {node.op.name!r} has no gradient rule; it was used at "
                f"{node.loc.describe()}. Wrap its input in tc.stop_gradient(...) if no gradient "
                f"should flow there, or define one by setting tc.OPS[{node.op.name!r}].grad")
        # nodes of this gradient are attributed to the forward line they differentiate
        with built_for(node.loc, f"gradient of {node.op.name}"):
            out_grads = [g if g is not None or not carries_grad(o) else _zeros_like(o)
                         for o, g in zip(node.outputs, out_grads)]
            wrap = lambda v: None if v is None else Tensor(v, mutable=False)  # noqa: E731
            # a rule that can skip work (a loop's gradient) is told which inputs need a gradient
            extra = {"wanted": wanted} if getattr(rule, "takes_wanted", False) else {}
            in_grads = rule(node, [wrap(i) for i in node.inputs], [wrap(o) for o in node.outputs],
                            [wrap(g) for g in out_grads], **extra)
            if len(in_grads) != len(node.inputs):
                raise ValueError(f"the gradient rule of {node.op.name!r} returned {len(in_grads)} "
                                 f"gradients for {len(node.inputs)} inputs")
            for inp, want, g in zip(node.inputs, wanted, in_grads):
                if want and g is not None:
                    grads.setdefault(id(inp), []).append(match_type(g, inp))
        for o in node.outputs:  # free memory of big graphs as we go
            if id(o) not in wrt_ids:
                grads.pop(id(o), None)

    results = []
    for i, w in enumerate(wrt):
        if id(w) in grads:
            total = _add_all(grads[id(w)])
            results.append(_sum_to_runtime_shape(total, w) if declared_types else total)
            continue
        if id(w) not in reaches_seed or id(w) in blocked:
            msg = (f"{what}: the cost does not depend on {describe(w, f'wrt[{i}],')}"
                   f"{' (it is in consider_constant)' if id(w) in blocked else ''}; pass "
                   f"disconnected_inputs='ignore' (or 'warn') to get a zero gradient for it")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(msg)
            if disconnected_inputs == "warn":
                warnings.warn(msg, stacklevel=4)
        wt = Tensor(w, mutable=False)
        dtype = w.dtype if carries_grad(w) else np.dtype(_float_x())
        results.append(np.zeros_like(wt, dtype=dtype).variable)
    return results


def _float_x():
    from ..config import float_x
    return float_x()
