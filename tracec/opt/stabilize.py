"""Numerical stability: rewrite expressions that overflow or lose precision in
floating point into the stable op that computes the same function.

They apply to every graph, gradient graphs included, since gradients are
ordinary graphs optimized like the rest.
"""
from .engine import Builder, is_scalar_const, on, producer, same_type


def _plus_one(var):
    """x when `var` is 1 + x or x + 1 (with a scalar constant 1) computed in floating point,
    else None: in an integer dtype 1 + x wraps (log(1 + INT_MAX) is nan, log1p's is not)."""
    node = producer(var, "add")
    if node is None or var.dtype.kind not in "fc":
        return None
    a, b = node.inputs
    if is_scalar_const(a, 1):
        return b
    if is_scalar_const(b, 1):
        return a
    return None


def _exp_arg(var):
    node = producer(var, "exp")
    return None if node is None else node.inputs[0]


def _neg_arg(var):
    node = producer(var, "negative")
    return None if node is None else node.inputs[0]


def _sigmoid_arg(var):
    node = producer(var, "sigmoid")
    return None if node is None else node.inputs[0]


# log(1 + x) -> log1p(x)
@on("log")
def log1p_from_log(node):
    x = _plus_one(node.inputs[0])
    return None if x is None else same_type(node, Builder(node)("log1p", x))


# exp(x) - 1 -> expm1(x)
@on("subtract")
def expm1_from_exp(node):
    a, c = node.inputs
    x = _exp_arg(a)
    if x is None or not is_scalar_const(c, 1):
        return None
    return same_type(node, Builder(node)("expm1", x))


# log1p(exp(x)) -> softplus(x)  (log(1 + exp(x)) gets here through log1p_from_log)
@on("log1p")
def softplus_from_log1p(node):
    x = _exp_arg(node.inputs[0])
    return None if x is None else same_type(node, Builder(node)("softplus", x))


# 1 / (1 + exp(-x)) -> sigmoid(x) ; reciprocal(1 + exp(-x)) -> sigmoid(x) ; exp(x) / (1 + exp(x)) -> sigmoid(x)
@on("divide", "reciprocal")
def sigmoid_from_exp(node):
    if node.op.name == "reciprocal":
        num, den = None, node.inputs[0]
    else:
        num, den = node.inputs
    e = _plus_one(den)
    t = None if e is None else _exp_arg(e)
    if t is None or t.dtype.kind != "f":
        return None  # integer x: NumPy's -x wraps (INT_MIN gives 1), exp(x) / (1 + exp(x)) is nan
    if num is None or is_scalar_const(num, 1):
        x = _neg_arg(t)
        return None if x is None else same_type(node, Builder(node)("sigmoid", x))
    if num is e:
        return same_type(node, Builder(node)("sigmoid", t))
    return None


# log(sigmoid(x)) -> -softplus(-x)
@on("log")
def log_sigmoid(node):
    x = _sigmoid_arg(node.inputs[0])
    if x is None:
        return None
    b = Builder(node)
    return same_type(node, b("negative", b("softplus", b("negative", x))))


# log(1 - sigmoid(x)) -> -softplus(x) ; log1p(-sigmoid(x)) -> -softplus(x)
@on("log", "log1p")
def log_one_minus_sigmoid(node):
    arg = node.inputs[0]
    if node.op.name == "log":
        sub = producer(arg, "subtract")
        if sub is None or not is_scalar_const(sub.inputs[0], 1):
            return None
        x = _sigmoid_arg(sub.inputs[1])
    else:
        neg = _neg_arg(arg)
        x = None if neg is None else _sigmoid_arg(neg)
    if x is None:
        return None
    b = Builder(node)
    return same_type(node, b("negative", b("softplus", x)))


def _sum_of_exp(var, keepdims=None):
    """(x, sum params) when `var` is sum(exp(x), axis, keepdims) without a dtype."""
    node = producer(var, "sum")
    if node is None or node.params.get("dtype") is not None:
        return None
    if keepdims is not None and node.params["keepdims"] != keepdims:
        return None
    x = _exp_arg(node.inputs[0])
    return None if x is None else (x, node.params)


# log(sum(exp(x))) -> logsumexp(x)  (shifted by max(x): no overflow)
@on("log")
def logsumexp_from_log(node):
    found = _sum_of_exp(node.inputs[0])
    if found is None:
        return None
    x, params = found
    return same_type(node, Builder(node)("logsumexp", x, axis=params["axis"], keepdims=params["keepdims"]))


# log(exp(x) / sum(exp(x), axis, keepdims=True)) -> x - logsumexp(x, axis, keepdims=True)
@on("log")
def log_softmax(node):
    div = producer(node.inputs[0], "divide")
    if div is None:
        return None
    num, den = div.inputs
    x = _exp_arg(num)
    found = _sum_of_exp(den, keepdims=True)
    if x is None or found is None or found[0] is not x:
        return None
    b = Builder(node)
    lse = b("logsumexp", x, axis=found[1]["axis"], keepdims=True)
    return same_type(node, b("subtract", x, lse))


STABILIZE = [log1p_from_log, expm1_from_exp, softplus_from_log1p, sigmoid_from_exp, log_sigmoid,
             log_one_minus_sigmoid, logsumexp_from_log, log_softmax]
