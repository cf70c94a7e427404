"""Specialization: rewrite general forms into the specific ops backends run best.

Scaled matrix products with an addend become one `gemm` / `gemv` node (one
BLAS call in the C backend); small integer powers become multiplications.
"""
from .engine import Builder, n_clients, on, producer, same_type, scalar_value
from ..trace.graph import Constant


def _scaled(var):
    """(scale or None, base) for ``s * base`` / ``base * s`` with s a 0-d value, else (None, var)."""
    node = producer(var, "multiply")
    if node is not None and n_clients(var) == 1:
        a, b = node.inputs
        if a.ndim == 0 and b.ndim > 0:
            return a, b
        if b.ndim == 0 and a.ndim > 0:
            return b, a
    return None, var


def _product(var):
    """(alpha or None, A, B) when `var` is a used-once matrix product, possibly scaled."""
    alpha, base = _scaled(var)
    node = producer(base, "matmul", "dot")
    if node is None or n_clients(base) != 1:
        return None
    a, b = node.inputs
    if a.ndim != 2 or b.ndim not in (1, 2):
        return None
    if alpha is None:  # (alpha * A) @ B, as Python parses `alpha * A @ B`
        alpha, a2 = _scaled(a)
        # only when alpha * A keeps A's dtype: 2.0 * (A @ B) wraps where (2.0 * A) @ B does not
        if alpha is not None and a2.ndim == 2 and a2.dtype == a.dtype:
            a = a2
        else:
            alpha = None
    return alpha, a, b


def _negated(node, beta, c):
    """-beta for `... - beta * C` (beta None: -1), or None where -beta * C would not be exactly
    -(beta * C): an integer negation wraps (-INT_MIN) or fails (unsigned)."""
    if beta is None:
        return Constant(-1) if c.dtype.kind == "f" else None
    value = scalar_value(beta) if beta.type.weak else None
    if value is not None and not isinstance(value, bool):
        return Constant(-value)  # a Python number: negated exactly
    return Builder(node)("negative", beta) if beta.dtype.kind == "f" else None


# alpha * A @ B + beta * C -> gemm(A, B, C, alpha, beta) ; ... - beta * C ; A @ x + y -> gemv
@on("add", "subtract")
def gemm_from_add(node):
    if node.outputs[0].dtype.kind != "f":
        return None
    left, right = node.inputs
    found, other = _product(left), right
    if found is None and node.op.name == "add":
        found, other = _product(right), left
    if found is None:
        return None
    alpha, a, b = found
    beta, c = _scaled(other)
    if node.op.name == "subtract":
        beta = _negated(node, beta, c)
        if beta is None:
            return None
    beta = Constant(1) if beta is None else beta
    alpha = Constant(1) if alpha is None else alpha
    op = "gemv" if b.ndim == 1 else "gemm"
    return same_type(node, Builder(node)(op, a, b, c, alpha, beta))


def _power_by_squaring(b, x, n):
    result, square = None, x
    while n:
        if n & 1:
            result = square if result is None else b("multiply", result, square)
        n >>= 1
        if n:
            square = b("multiply", square, square)
    return result


# x**n -> x*x*...*x for integer n with 2 <= |n| <= 16 (x**2 is canonicalize's) (reciprocal for negative n, floats only)
@on("power")
def small_int_power(node):
    x, p = node.inputs
    e = scalar_value(p)
    if e is None or isinstance(e, (bool, complex)) or e != int(e) or not 2 <= abs(e) <= 16:
        return None
    n = int(e)
    b = Builder(node)
    if n < 0:
        if node.outputs[0].dtype.kind != "f":
            return None
        return same_type(node, b("reciprocal", _power_by_squaring(b, x, -n)))
    return same_type(node, _power_by_squaring(b, x, n))


SPECIALIZE = [gemm_from_add, small_int_power]
