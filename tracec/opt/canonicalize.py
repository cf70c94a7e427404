"""Canonicalization and algebraic simplification.

Each rule keeps the exact type (dtype, rank, broadcastable pattern,
weak-ness) of what it replaces; the engine refuses a replacement that does
not. Two rules follow Theano rather than IEEE arithmetic, on purpose:
``x - x -> 0`` and ``x / x -> 1`` also where x is inf or nan (and 0 for the
division), where NumPy gives nan.
"""
import numpy as np

from ..trace.graph import Constant
from .engine import Builder, n_clients, on, producer, same_type, scalar_value, is_scalar_const


def _other(node, value):
    """For a binary node with a scalar constant `value` on one side: the other side."""
    a, b = node.inputs
    if is_scalar_const(b, value):
        return a
    if is_scalar_const(a, value):
        return b
    return None


def shape_vars(b, x):
    """The shape of `x` as scalar variables: 1 for broadcastable dims, shape_i otherwise."""
    return [Constant(1) if bc else b("shape_i", x, i=i) for i, bc in enumerate(x.broadcastable)]


def filled_like(node, x, value):
    """An array of `value` with the shape of `x` and the type of node's output."""
    out = node.outputs[0].type
    if out.weak:
        return same_type(node, Constant(out.dtype.type(value).item()))
    b = Builder(node)
    return same_type(node, b("alloc", Constant(value), *shape_vars(b, x), dtype=out.dtype))


# x * 1 -> x ; 1 * x -> x
@on("multiply")
def mul_by_one(node):
    x = _other(node, 1)
    return None if x is None else same_type(node, x)


# x + 0 -> x ; 0 + x -> x
@on("add")
def add_zero(node):
    x = _other(node, 0)
    return None if x is None else same_type(node, x)


# x - 0 -> x ; x / 1 -> x
@on("subtract", "divide")
def sub_zero_div_one(node):
    x, c = node.inputs
    if is_scalar_const(c, 0 if node.op.name == "subtract" else 1):
        return same_type(node, x)
    return None


# x - x -> zeros with x's shape
@on("subtract")
def sub_self(node):
    x, y = node.inputs
    if x is y and node.outputs[0].dtype.kind in "iuf":
        return filled_like(node, x, 0)
    return None


# x / x -> ones with x's shape (nan at x = 0 in NumPy; 1 here, as in Theano)
@on("divide")
def div_self(node):
    x, y = node.inputs
    return filled_like(node, x, 1) if x is y else None


# -(-x) -> x
@on("negative")
def neg_neg(node):
    inner = producer(node.inputs[0], "negative")
    return None if inner is None else same_type(node, inner.inputs[0])


# x + (-y) -> x - y ; (-y) + x -> x - y ; x - (-y) -> x + y
@on("add", "subtract")
def add_neg(node):
    a, b = node.inputs
    neg_b = producer(b, "negative")
    if neg_b is not None:
        op = "subtract" if node.op.name == "add" else "add"
        return same_type(node, Builder(node)(op, a, neg_b.inputs[0]))
    neg_a = producer(a, "negative")
    if node.op.name == "add" and neg_a is not None:
        return same_type(node, Builder(node)("subtract", b, neg_a.inputs[0]))
    return None


# transpose(transpose(x, p), q) -> transpose(x, p∘q) ; transpose(x, identity) -> x
@on("transpose")
def transpose_chain(node):
    axes = node.params["axes"]
    x = node.inputs[0]
    inner = producer(x, "transpose")
    if inner is not None:
        first = inner.params["axes"]
        axes = tuple(first[a] for a in axes)
        x = inner.inputs[0]
    if axes == tuple(range(len(axes))):
        return same_type(node, x)
    if inner is not None:
        return same_type(node, Builder(node)("transpose", x, axes=axes))
    return None


def _is_own_shape(dims, x):
    if len(dims) != x.ndim:
        return False
    for i, d in enumerate(dims):
        if is_scalar_const(d, 1) and x.broadcastable[i]:
            continue
        sh = producer(d, "shape_i")
        if sh is None or sh.inputs[0] is not x or sh.params["i"] != i:
            return False
    return True


# reshape(reshape(x, s1), s2) -> reshape(x, s2) ; reshape(x, x.shape) -> x
@on("reshape")
def reshape_chain(node):
    x, *dims = node.inputs
    if _is_own_shape(dims, x):
        return same_type(node, x)
    inner = producer(x, "reshape")
    if inner is not None:
        return same_type(node, Builder(node)("reshape", inner.inputs[0], *dims))
    return None


# broadcast_to(x, x.shape) -> x
@on("broadcast_to")
def useless_broadcast(node):
    x, *dims = node.inputs
    return same_type(node, x) if _is_own_shape(dims, x) else None


# cast(x, x.dtype) -> x ; cast(cast(x, wider), d) -> cast(x, d)
@on("cast")
def useless_cast(node):
    x = node.inputs[0]
    if x.type == node.outputs[0].type:
        return x
    inner = producer(x, "cast")
    if inner is not None and not inner.inputs[0].type.weak and \
            np.can_cast(inner.inputs[0].dtype, x.dtype, "safe"):
        return same_type(node, Builder(node)("cast", inner.inputs[0], dtype=node.params["dtype"]))
    return None


def _same_chain(var, node):
    """The producer of `var` when it is the same op as `node` with the same output dtype."""
    inner = producer(var, node.op.name)
    if inner is not None and inner.outputs[0].dtype == node.outputs[0].dtype and n_clients(var) == 1:
        return inner
    return None


def _combine(op_name, c1, c2):
    v1, v2 = c1.value, c2.value
    if c1.type.weak and c2.type.weak:
        return Constant(v1 + v2 if op_name == "add" else v1 * v2)
    fn = np.add if op_name == "add" else np.multiply
    return Constant(np.asarray(fn(v1, v2)))


def _single_const(var):
    return isinstance(var, Constant) and scalar_value(var) is not None


# (x + c1) + c2 -> x + (c1+c2) ; (x * c1) * c2 -> x * (c1*c2) ; (x + c) + y -> (x + y) + c
@on("add", "multiply")
def collect_constants(node):
    if node.outputs[0].dtype.kind not in "iufc":
        return None
    a, b = node.inputs
    if _single_const(a) and not _single_const(b):
        a, b = b, a
    inner = _same_chain(a, node)
    if inner is None:
        return None
    x, c1 = inner.inputs
    if _single_const(x) and not _single_const(c1):
        x, c1 = c1, x
    if not _single_const(c1) or _single_const(x):
        return None
    bld = Builder(node)
    if _single_const(b):
        return same_type(node, bld(node.op.name, x, _combine(node.op.name, c1, b)))
    return same_type(node, bld(node.op.name, bld(node.op.name, x, b), c1))


# sum(c * x) -> c * sum(x)  (c a scalar; floats only, where the order of rounding may change)
@on("sum")
def sum_of_scaled(node):
    if node.params.get("dtype") is not None:
        return None
    prod = producer(node.inputs[0], "multiply")
    if prod is None:
        return None
    a, b = prod.inputs
    if b.ndim == 0 and a.ndim != 0:
        a, b = b, a
    if a.ndim != 0 or b.ndim == 0 or b.dtype != prod.outputs[0].dtype or b.dtype.kind != "f":
        return None
    bld = Builder(node)
    return same_type(node, bld("multiply", a, bld("sum", b, **node.params)))


# log(exp(x)) -> x
@on("log")
def log_exp(node):
    inner = producer(node.inputs[0], "exp")
    return None if inner is None else same_type(node, inner.inputs[0])


# x**1 -> x ; x**2 -> x*x ; x**0.5 -> sqrt(x) ; x**-1 -> reciprocal(x) ; x**-0.5 -> 1/sqrt(x)
@on("power")
def power_special(node):
    x, p = node.inputs
    e = scalar_value(p)
    if e is None or isinstance(e, (bool, complex)):
        return None
    b = Builder(node)
    if e == 1:
        return same_type(node, x)
    if e == 2:
        return same_type(node, b("multiply", x, x))
    if node.outputs[0].dtype.kind != "f" or x.dtype != node.outputs[0].dtype:
        return None
    if e == 0.5:
        return same_type(node, b("sqrt", x))
    if e == -1:
        return same_type(node, b("reciprocal", x))
    if e == -0.5:
        return same_type(node, b("reciprocal", b("sqrt", x)))
    return None


CANONICALIZE = [mul_by_one, add_zero, sub_zero_div_one, sub_self, div_self, neg_neg, add_neg,
                transpose_chain, reshape_chain, useless_broadcast, useless_cast,
                collect_constants, sum_of_scaled, log_exp, power_special]
