"""Derivative rules (vector-Jacobian products) of the op table, one entry per op.

A rule receives the node, its inputs and outputs as Tensors and the gradient
of each output (same type as the output), and returns one gradient per input,
or None for "no gradient" (integer inputs, sizes, conditions). Rules are
written with the NumPy calls users write, so they build ordinary graph nodes
and can be differentiated again. They may return a gradient in the output's
broadcast shape: the backward driver (`autodiff.match_type`) sums it back to
the input's shape and casts it to the input's dtype, in one place.

Most entries are elementwise and take ``(g, ans, *inputs)``; the others take
``(node, inputs, outputs, grads)`` and are listed in `NODE_RULES`. The ops in
`NON_DIFFERENTIABLE` have zero gradients (piecewise constant, or integer and
boolean results). Adding a rule for a new op is setting ``OPS[name].grad``.
"""
import math
import string

import numpy as np

from . import numpy_shape
from .graph import Constant
from .ops import OPS
from .ops.linalg import parse_einsum
from .tensor import Tensor


def _t(var):
    return Tensor(var, mutable=False)


def _is_nonzero_constant(t):
    v = t.variable
    return isinstance(v, Constant) and np.ndim(v.value) == 0 and v.value != 0


def _power(g, ans, x, y):
    # d/dx is 0 where y == 0 (also at x == 0); d/dy treats log(0) as 0, as JAX does
    if _is_nonzero_constant(y):
        gx = g * (y * x ** (y - 1))
    else:  # where y == 0: 0 * x ** 1, so no 0 ** -1 either
        gx = g * (y * x ** np.where(y == 0, 1, y - 1))
    return gx, g * ans * np.log(np.where(x == 0, 1, x))


def _pick(g, ans, x, y):
    # maximum/minimum/fmax/fmin: the chosen operand gets g; ties split it evenly (as in JAX)
    tie = x == y
    return (g * np.where(tie, 0.5, x == ans).astype(g.dtype),
            g * np.where(tie, 0.5, y == ans).astype(g.dtype))


LN2, LN10 = math.log(2.0), math.log(10.0)

# elementwise ops with one output: name -> (g, ans, *inputs) -> gradient per input
ELEMWISE_RULES = {
    "add": lambda g, ans, x, y: (g, g),
    "subtract": lambda g, ans, x, y: (g, -g),
    "multiply": lambda g, ans, x, y: (g * y, g * x),
    "divide": lambda g, ans, x, y: (g / y, -g * ans / y),
    "remainder": lambda g, ans, x, y: (g, -g * np.floor_divide(x, y)),
    "fmod": lambda g, ans, x, y: (g, -g * np.trunc(x / y)),
    "power": _power,
    "float_power": _power,
    "negative": lambda g, ans, x: (-g,),
    "positive": lambda g, ans, x: (g,),
    "absolute": lambda g, ans, x: (g * np.sign(x),),
    "fabs": lambda g, ans, x: (g * np.sign(x),),
    "reciprocal": lambda g, ans, x: (-g * ans * ans,),
    "square": lambda g, ans, x: (g * (2 * x),),
    "sqrt": lambda g, ans, x: (g / (2 * ans),),
    "cbrt": lambda g, ans, x: (g / (3 * ans * ans),),
    "copysign": lambda g, ans, x, y: (np.where(np.signbit(x) == np.signbit(y), g, -g), None),
    "ldexp": lambda g, ans, x, n: (np.ldexp(g, n), None),
    "exp": lambda g, ans, x: (g * ans,),
    "exp2": lambda g, ans, x: (g * ans * LN2,),
    "expm1": lambda g, ans, x: (g * (ans + 1),),
    "log": lambda g, ans, x: (g / x,),
    "log2": lambda g, ans, x: (g / (x * LN2),),
    "log10": lambda g, ans, x: (g / (x * LN10),),
    "log1p": lambda g, ans, x: (g / (x + 1),),
    "logaddexp": lambda g, ans, x, y: (g * np.exp(x - ans), g * np.exp(y - ans)),
    "logaddexp2": lambda g, ans, x, y: (g * np.exp2(x - ans), g * np.exp2(y - ans)),
    "sin": lambda g, ans, x: (g * np.cos(x),),
    "cos": lambda g, ans, x: (-g * np.sin(x),),
    "tan": lambda g, ans, x: (g * (1 + ans * ans),),
    "arcsin": lambda g, ans, x: (g / np.sqrt(1 - x * x),),
    "arccos": lambda g, ans, x: (-g / np.sqrt(1 - x * x),),
    "arctan": lambda g, ans, x: (g / (1 + x * x),),
    "arctan2": lambda g, ans, y, x: (g * x / (x * x + y * y), -g * y / (x * x + y * y)),
    "hypot": lambda g, ans, x, y: (g * x / ans, g * y / ans),
    "sinh": lambda g, ans, x: (g * np.cosh(x),),
    "cosh": lambda g, ans, x: (g * np.sinh(x),),
    "tanh": lambda g, ans, x: (g * (1 - ans * ans),),
    "arcsinh": lambda g, ans, x: (g / np.sqrt(x * x + 1),),
    "arccosh": lambda g, ans, x: (g / np.sqrt(x * x - 1),),
    "arctanh": lambda g, ans, x: (g / (1 - x * x),),
    "deg2rad": lambda g, ans, x: (g * (math.pi / 180),),
    "rad2deg": lambda g, ans, x: (g * (180 / math.pi),),
    "maximum": _pick,
    "minimum": _pick,
    "fmax": _pick,
    "fmin": _pick,
    "cast": lambda g, ans, x: (g,),
    "copy": lambda g, ans, x: (g,),
    "softplus": lambda g, ans, x: (g * _t(OPS["sigmoid"](x.variable)),),
    "sigmoid": lambda g, ans, x: (g * ans * (1 - ans),),
    "stop_gradient": lambda g, ans, x: (None,),  # the driver does not even go past it
}

# ops whose gradient is zero everywhere it exists, or whose inputs are integers
NON_DIFFERENTIABLE = [
    "floor_divide", "sign", "heaviside", "gcd", "lcm", "nextafter", "spacing",
    "floor", "ceil", "rint", "trunc",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift",
    "isnan", "isinf", "isfinite", "signbit",
    "argmax", "argmin", "any", "all", "shape_i", "nonzero", "arange", "eye",
]


# -- helpers for the rules below ----------------------------------------------------
def _keepdims(g, params):
    """An output gradient of a reduction with the reduced axes put back (as length 1)."""
    axis = params["axis"]
    return g if params["keepdims"] or not axis else np.expand_dims(g, axis)


def _count(x, axis):
    """Number of elements reduced over `axis` (a Python int or a traced scalar)."""
    n = 1
    shape = np.shape(x)
    for a in axis:
        n = n * shape[a]
    return n


def _reverse_cumsum(g, axis):
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


def _others_product(x, axis):
    """For each element, the product of the other elements along `axis` (exact with zeros)."""
    kept = [a for a in range(x.ndim) if a not in axis]
    perm = kept + list(axis)
    xt = x if perm == list(range(x.ndim)) else np.transpose(x, tuple(perm))
    shape = np.shape(xt)
    flat = np.reshape(xt, tuple(shape[:len(kept)]) + (-1,))
    one = np.ones_like(flat[..., :1])
    left = np.cumprod(np.concatenate([one, flat[..., :-1]], axis=-1), axis=-1)
    rev = flat[..., ::-1]
    right = np.cumprod(np.concatenate([one, rev[..., :-1]], axis=-1), axis=-1)[..., ::-1]
    return _permuted(np.reshape(left * right, shape), perm)


def _permuted(x, source_axes):
    """`x` transposed so that axis k is the one whose source is k (no node when already so)."""
    perm = tuple(int(i) for i in np.argsort(source_axes))
    return x if perm == tuple(range(len(perm))) else np.transpose(x, perm)


def _tensordot_grads(a, b, g, axes):
    ax_a, ax_b = list(axes[0]), list(axes[1])
    kept_a = [i for i in range(a.ndim) if i not in ax_a]
    kept_b = [i for i in range(b.ndim) if i not in ax_b]
    na = len(kept_a)
    ga = np.tensordot(g, b, axes=(list(range(na, g.ndim)), kept_b))
    src_a = kept_a + [ax_a[ax_b.index(j)] for j in sorted(ax_b)]  # the a-axis of each ga axis
    gb = np.tensordot(a, g, axes=(kept_a, list(range(na))))
    src_b = [ax_b[ax_a.index(i)] for i in sorted(ax_a)] + kept_b
    return [_permuted(ga, src_a), _permuted(gb, src_b)]


def _einsum_grad(term, others, rhs, g, x):
    """Gradient of one einsum operand: an einsum of g with the other operands."""
    avail = set(rhs) | set("".join(t for t, _ in others))
    uniq = "".join(dict.fromkeys(term))
    produce = "".join(c for c in uniq if c in avail)
    gx = np.einsum(",".join([rhs] + [t for t, _ in others]) + "->" + produce, g, *[v for _, v in others])
    shape = np.shape(x)
    size = {c: shape[term.index(c)] for c in uniq}
    if len(produce) < len(uniq):  # letters summed only in this operand: broadcast along them
        for pos, c in enumerate(uniq):
            if c not in avail:
                gx = np.expand_dims(gx, pos)
        gx = np.broadcast_to(gx, tuple(size[c] for c in uniq))
    if len(uniq) < len(term):  # a repeated letter takes a diagonal: put the gradient back on it
        fresh = iter(c for c in string.ascii_letters if c not in term + rhs)
        out, eyes, seen = "", [], set()
        for c in term:
            if c in seen:
                f = next(fresh)
                eyes.append((c + f, numpy_shape._eye(size[c], dtype=gx.dtype)))
                out += f
            else:
                seen.add(c)
                out += c
        gx = np.einsum(",".join([uniq] + [e for e, _ in eyes]) + "->" + out, gx, *[m for _, m in eyes])
    return gx


def _slice_along(axis, item):
    return (slice(None),) * axis + (item,)


def _index_vars(dyn):
    return [d.variable for d in dyn]


# -- rules that need the node (params, several outputs) ----------------------------
def _where(node, inputs, outputs, grads):
    c, _, _ = inputs
    g = grads[0]
    return [None, np.where(c, g, 0), np.where(c, 0, g)]


def _clip(node, inputs, outputs, grads):
    # clip(x, lo, hi) = minimum(maximum(x, lo), hi), as in NumPy (also when lo > hi);
    # at a tie the gradient goes to x
    x, *bounds = inputs
    g, has_lo, has_hi = grads[0], node.params["has_lo"], node.params["has_hi"]
    lo = bounds[0] if has_lo else None
    hi = bounds[-1] if has_hi else None
    out, taken = [None] * len(inputs), None
    if has_hi:
        taken = (np.maximum(x, lo) if has_lo else x) > hi
        out[-1] = np.where(taken, g, 0)
    if has_lo:
        below = x < lo if taken is None else (x < lo) & ~taken
        out[1] = np.where(below, g, 0)
        taken = below if taken is None else taken | below
    out[0] = np.where(taken, 0, g)
    return out


def _divmod(node, inputs, outputs, grads):
    g_rem = grads[1]
    return [g_rem, -g_rem * outputs[0]]


def _modf(node, inputs, outputs, grads):
    return [grads[0]]  # the integral part is piecewise constant


def _frexp(node, inputs, outputs, grads):
    return [np.ldexp(grads[0], -outputs[1])]  # mantissa = x * 2**-exponent


def _sum(node, inputs, outputs, grads):
    return [_keepdims(grads[0], node.params)]  # broadcast back by the driver


def _mean(node, inputs, outputs, grads):
    return [_keepdims(grads[0], node.params) / _count(inputs[0], node.params["axis"])]


def _var(node, inputs, outputs, grads):
    x, p = inputs[0], node.params
    centered = x - np.mean(x, axis=p["axis"], keepdims=True)
    return [_keepdims(grads[0], p) * centered * (2 / (_count(x, p["axis"]) - p["ddof"]))]


def _std(node, inputs, outputs, grads):
    x, p = inputs[0], node.params
    centered = x - np.mean(x, axis=p["axis"], keepdims=True)
    scale = (_count(x, p["axis"]) - p["ddof"]) * _keepdims(outputs[0], p)
    return [_keepdims(grads[0], p) * centered / scale]


def _prod(node, inputs, outputs, grads):
    return [_keepdims(grads[0], node.params) * _others_product(inputs[0], node.params["axis"])]


def _max_min(node, inputs, outputs, grads):
    # every maximal element gets an equal share (as JAX does)
    p = node.params
    hit = (inputs[0] == _keepdims(outputs[0], p)).astype(grads[0].dtype)
    return [_keepdims(grads[0], p) * hit / np.sum(hit, axis=p["axis"], keepdims=True)]


def _logsumexp(node, inputs, outputs, grads):
    p = node.params
    return [_keepdims(grads[0], p) * np.exp(inputs[0] - _keepdims(outputs[0], p))]


def _cumsum(node, inputs, outputs, grads):
    x, g, axis = inputs[0], grads[0], node.params["axis"]
    if axis is None:
        return [np.reshape(_reverse_cumsum(g, 0), np.shape(x))]
    return [_reverse_cumsum(g, axis)]


def _cumprod_exact(x, g, axis):
    """sum over j >= i of g_j * prod_{k <= j, k != i} x_k along `axis`, exact with zeros:
    prod_{k<i} x_k times S_i, where S_i = g_i + x_{i+1} S_{i+1} is a reverse scan."""
    from .scan import scan
    xt, gt = np.moveaxis(x, axis, 0), np.moveaxis(g, axis, 0)
    one = np.ones_like(xt[:1])
    before = np.cumprod(np.concatenate([one, xt[:-1]]), axis=0)
    after = np.concatenate([xt[1:], one])
    s, _ = scan(lambda gi, xn, acc: gi + xn * acc, sequences=[gt, after],
                outputs_info=np.zeros_like(xt[0]), go_backwards=True, name="cumprod gradient")
    return np.moveaxis(before * s[::-1], 0, axis)


def _cumprod(node, inputs, outputs, grads):
    # sum over later outputs of g * out / x; where x has a zero, the exact (slower) scan form
    from .ifelse import ifelse
    x, axis, g = inputs[0], node.params["axis"], grads[0]
    flat = axis is None
    if flat:
        x, axis = np.reshape(x, -1), 0
    fast = _reverse_cumsum(g * outputs[0], axis) / x
    grad = ifelse(np.any(x == 0), _cumprod_exact(x, g, axis), fast)
    return [np.reshape(grad, np.shape(inputs[0])) if flat else grad]


def _sum_to(node, inputs, outputs, grads):
    g = inputs[0]
    return [np.broadcast_to(grads[0], np.shape(g))] + [None] * (len(inputs) - 1)


def _matmul(node, inputs, outputs, grads):
    a, b = inputs
    g = grads[0]
    if a.ndim == 1 and b.ndim == 1:
        return [g * b, g * a]
    a2 = np.expand_dims(a, 0) if a.ndim == 1 else a
    b2 = np.expand_dims(b, 1) if b.ndim == 1 else b
    g2 = np.expand_dims(g, -2) if a.ndim == 1 else g
    g2 = np.expand_dims(g2, -1) if b.ndim == 1 else g2
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2
    return [np.squeeze(ga, axis=-2) if a.ndim == 1 else ga,  # batch dims: summed by the driver
            np.squeeze(gb, axis=-1) if b.ndim == 1 else gb]


def _gemm(node, inputs, outputs, grads):
    # alpha * (a @ b) + beta * c, made by the optimizer
    a, b, c, alpha, beta = inputs
    g = grads[0]
    ga, gb = _matmul(None, [a, b], None, [g * alpha])
    return [ga, gb, g * beta, np.sum(g * (a @ b)), np.sum(g * c)]


def _dot(node, inputs, outputs, grads):
    a, b = inputs
    if a.ndim == 0 or b.ndim == 0:
        return [grads[0] * b, grads[0] * a]
    return _tensordot_grads(a, b, grads[0], ((a.ndim - 1,), (max(b.ndim - 2, 0),)))


def _tensordot(node, inputs, outputs, grads):
    return _tensordot_grads(inputs[0], inputs[1], grads[0], node.params["axes"])


def _outer(node, inputs, outputs, grads):
    a, b = inputs
    g = grads[0]
    return [np.reshape(g @ np.ravel(b), np.shape(a)), np.reshape(np.ravel(a) @ g, np.shape(b))]


def _einsum(node, inputs, outputs, grads):
    terms, rhs = parse_einsum(node.params["subscripts"], [v.ndim for v in inputs])
    pairs = list(zip(terms, inputs))
    return [_einsum_grad(t, pairs[:i] + pairs[i + 1:], rhs, grads[0], x) for i, (t, x) in enumerate(pairs)]


def _reshape(node, inputs, outputs, grads):
    return [np.reshape(grads[0], np.shape(inputs[0]))] + [None] * (len(inputs) - 1)


def _transpose(node, inputs, outputs, grads):
    return [_permuted(grads[0], node.params["axes"])]


def _expand_dims(node, inputs, outputs, grads):
    return [np.squeeze(grads[0], axis=node.params["axes"])]


def _squeeze(node, inputs, outputs, grads):
    return [np.expand_dims(grads[0], node.params["axes"])]


def _broadcast_to(node, inputs, outputs, grads):
    return [grads[0]] + [None] * (len(inputs) - 1)  # summed back by the driver


def _concatenate(node, inputs, outputs, grads):
    axis, start, out = node.params["axis"], 0, []
    for x in inputs:
        stop = start + np.shape(x)[axis]
        out.append(grads[0][_slice_along(axis, slice(start, stop))])
        start = stop
    return out


def _stack(node, inputs, outputs, grads):
    return [grads[0][_slice_along(node.params["axis"], i)] for i in range(len(inputs))]


def _split(node, inputs, outputs, grads):
    return [np.concatenate(grads, axis=node.params["axis"])]


def _flip(node, inputs, outputs, grads):
    return [np.flip(grads[0], node.params["axes"])]


def _roll(node, inputs, outputs, grads):
    back = OPS["roll"](grads[0].variable, (-inputs[1]).variable, axis=node.params["axis"])
    return [_t(back), None]


def _tile(node, inputs, outputs, grads):
    x, reps = inputs[0], node.params["reps"]
    n = max(len(reps), x.ndim)
    reps = (1,) * (n - len(reps)) + tuple(reps)
    sizes = (1,) * (n - x.ndim) + tuple(np.shape(x))
    interleaved = tuple(d for pair in zip(reps, sizes) for d in pair)
    summed = np.sum(np.reshape(grads[0], interleaved), axis=tuple(range(0, 2 * n, 2)))
    return [np.reshape(summed, np.shape(x))]


def _repeat(node, inputs, outputs, grads):
    x, repeats = inputs
    axis = node.params["axis"]
    flat = np.reshape(x, -1) if axis is None else x
    ax = 0 if axis is None else axis
    source = np.repeat(numpy_shape._arange(np.shape(flat)[ax]), repeats)  # input index of each output
    gx = np.zeros_like(flat, dtype=grads[0].dtype)
    np.add.at(gx, _slice_along(ax, source), grads[0])
    return [np.reshape(gx, np.shape(x)) if axis is None else gx, None]


def _getitem(node, inputs, outputs, grads):
    # a gather's gradient is a scatter-add into zeros (plain assignment when no index repeats)
    x, *dyn = inputs
    spec = node.params["spec"]
    mode = "add" if any(e[0] == "array" for e in spec) else "set"
    zeros = np.zeros_like(x, dtype=grads[0].dtype)
    gx = OPS["setitem"](zeros.variable, grads[0].variable, *_index_vars(dyn), spec=spec, mode=mode)
    return [_t(gx)] + [None] * len(dyn)


def _setitem(node, inputs, outputs, grads):
    _, _, *dyn = inputs
    g, spec = grads[0], node.params["spec"]
    g_value = _t(OPS["getitem"](g.variable, *_index_vars(dyn), spec=spec))
    if node.params["mode"] == "add":
        return [g, g_value] + [None] * len(dyn)
    g_x = OPS["setitem"](g.variable, Constant(0), *_index_vars(dyn), spec=spec, mode="set")
    if any(entry[0] in ("array", "mask") for entry in spec):
        g_value = g_value * _written_last(inputs[0], spec, dyn)
    return [_t(g_x), g_value] + [None] * len(dyn)


def _written_last(x, spec, dyn):
    """Mask over x[key]: True where that element's write is the one that stays (with
    repeated indices, NumPy keeps the last write; the others get no gradient)."""
    index = _index_vars(dyn)
    selected = _t(OPS["getitem"](x.variable, *index, spec=spec))
    order = np.reshape(np.arange(np.size(selected)), np.shape(selected))
    last = _t(OPS["setitem"](np.full_like(x, -1, dtype=np.int64).variable, order.variable, *index,
                             spec=spec, mode="set"))
    return _t(OPS["getitem"](last.variable, *index, spec=spec)) == order


def _alloc(node, inputs, outputs, grads):
    return [grads[0]] + [None] * (len(inputs) - 1)  # the fill value: summed by the driver


def _linspace(node, inputs, outputs, grads):
    start, stop, num = inputs
    t = numpy_shape._linspace(0.0, 1.0, num, endpoint=node.params["endpoint"])
    g_stop = np.sum(grads[0] * t)
    return [np.sum(grads[0]) - g_stop, g_stop, None]


NODE_RULES = {
    "where": _where, "clip": _clip, "divmod": _divmod, "modf": _modf, "frexp": _frexp,
    "sum": _sum, "mean": _mean, "var": _var, "std": _std, "prod": _prod,
    "max": _max_min, "min": _max_min, "logsumexp": _logsumexp, "gemm": _gemm, "gemv": _gemm, "cumsum": _cumsum, "cumprod": _cumprod,
    "matmul": _matmul, "dot": _dot, "tensordot": _tensordot, "outer": _outer, "einsum": _einsum,
    "reshape": _reshape, "transpose": _transpose, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "broadcast_to": _broadcast_to, "concatenate": _concatenate, "stack": _stack, "split": _split,
    "flip": _flip, "roll": _roll, "tile": _tile, "repeat": _repeat, "sum_to": _sum_to,
    "getitem": _getitem, "setitem": _setitem, "alloc": _alloc, "linspace": _linspace,
}


def _elemwise(fn):
    def rule(node, inputs, outputs, grads):
        return list(fn(grads[0], outputs[0], *inputs))
    rule.__name__ = rule.__qualname__ = f"elemwise_rule[{fn.__name__}]"
    return rule


def zero_rule(node, inputs, outputs, grads):
    """The rule of a non-differentiable op: no gradient for any input."""
    return [None] * len(inputs)


def install():
    """Fill ``OPS[name].grad`` for every op with a rule here (keeps rules set by users)."""
    for name, fn in ELEMWISE_RULES.items():
        if name in OPS and OPS[name].grad is None:
            OPS[name].grad = _elemwise(fn)
    for name, fn in NODE_RULES.items():
        if name in OPS and OPS[name].grad is None:
            OPS[name].grad = fn
    for name in NON_DIFFERENTIABLE:
        if name in OPS and OPS[name].grad is None:
            OPS[name].grad = zero_rule


install()
