"""Shape inference: the shape of a node as an expression of its inputs' shapes.

Each rule fills the `shape` slot of an op-table entry:
``shape(node, input_shapes, b) -> one tuple of scalar variables per output``,
where ``input_shapes[k][d]`` is the length of dimension d of input k (the
constant 1 for broadcastable dimensions, ``shape_i`` otherwise) and `b` builds
nodes at the node's source line. The rewrite `shape_from_inputs` then replaces
``shape_i(f(x), i)`` by that expression, so ``np.zeros(f(x).shape)`` never
computes f(x). Like Theano's, the expressions assume the program is valid: the
shape of ``x + y`` for mismatched x and y is not an error.
"""
import weakref

from ..trace.graph import Constant
from ..trace.ops import OPS
from .canonicalize import shape_vars
from .engine import Builder, is_scalar_const, n_clients, n_shape_clients, on, producer, same_type

ONE = Constant(1)


def broadcast_dim(b, d1, d2):
    """The length of a broadcast dimension of lengths d1 and d2 (assumed compatible)."""
    if is_scalar_const(d1, 1) or d1 is d2:
        return d2
    if is_scalar_const(d2, 1):
        return d1
    return b("where", b("equal", d2, ONE), d1, d2)


def broadcast_shapes(b, shapes):
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        d = dims[0]
        for other in dims[1:]:
            d = broadcast_dim(b, d, other)
        out.append(d)
    return tuple(out)


def _product(b, dims):
    out = None
    for d in dims:
        if is_scalar_const(d, 1):
            continue
        out = d if out is None else b("multiply", out, d)
    return ONE if out is None else out


def _nonnegative(var, depth=0):
    """Is `var` surely >= 0 (so not reshape's -1)?"""
    if isinstance(var, Constant):
        return var.value >= 0
    node = var.owner
    if node is None or depth > 8:
        return False
    if node.op.name == "shape_i":
        return True
    if node.op.name in ("multiply", "add", "floor_divide", "maximum"):
        return all(_nonnegative(v, depth + 1) for v in node.inputs)
    if node.op.name == "where":
        return all(_nonnegative(v, depth + 1) for v in node.inputs[1:])
    return False


def elemwise_shape(node, shapes, b):
    return [broadcast_shapes(b, shapes)] * len(node.outputs)


def same_shape(node, shapes, b):
    return [shapes[0]]


def reduce_shape(node, shapes, b):
    axis, keepdims = node.params["axis"], node.params["keepdims"]
    if axis is None or isinstance(axis, int):  # argmax/argmin: one axis or all of them
        axis = tuple(range(len(shapes[0]))) if axis is None else (axis,)
    if keepdims:
        return [tuple(ONE if i in axis else d for i, d in enumerate(shapes[0]))]
    return [tuple(d for i, d in enumerate(shapes[0]) if i not in axis)]


def accumulate_shape(node, shapes, b):
    if node.params["axis"] is None:
        return [(_product(b, shapes[0]),)]
    return [shapes[0]]


def transpose_shape(node, shapes, b):
    return [tuple(shapes[0][a] for a in node.params["axes"])]


def expand_dims_shape(node, shapes, b):
    dims = list(shapes[0])
    for a in sorted(node.params["axes"]):
        dims.insert(a, ONE)
    return [tuple(dims)]


def squeeze_shape(node, shapes, b):
    return [tuple(d for i, d in enumerate(shapes[0]) if i not in node.params["axes"])]


def reshape_shape(node, shapes, b):
    dims = node.inputs[1:]
    unknown = [i for i, d in enumerate(dims) if is_scalar_const(d, -1)]
    if len(unknown) > 1 or not all(_nonnegative(d) for i, d in enumerate(dims) if i not in unknown):
        return None
    if unknown:
        known = _product(b, [d for i, d in enumerate(dims) if i != unknown[0]])
        dims = list(dims)
        dims[unknown[0]] = b("floor_divide", _product(b, shapes[0]), known)
    return [tuple(dims)]


def given_dims_shape(node, shapes, b):  # broadcast_to(x, *dims), alloc(fill, *dims)
    return [tuple(node.inputs[1:])]


def eye_shape(node, shapes, b):
    return [(node.inputs[0], node.inputs[1])]


def matmul_shape(node, shapes, b):
    sa, sb = shapes
    if len(sa) == 1 and len(sb) == 1:
        return [()]
    if len(sb) == 1:
        return [tuple(sa[:-1])]
    if len(sa) == 1:
        return [tuple(sb[:-2]) + (sb[-1],)]
    batch = broadcast_shapes(b, [sa[:-2], sb[:-2]])
    return [batch + (sa[-2], sb[-1])]


def dot_shape(node, shapes, b):
    sa, sb = shapes
    if not sa or not sb:
        return [broadcast_shapes(b, shapes)]
    rest = tuple(sb[:-2]) + tuple(sb[-1:]) if len(sb) >= 2 else ()
    return [tuple(sa[:-1]) + rest]


def gemm_shape(node, shapes, b):
    prod = matmul_shape(node, shapes[:2], b)[0]
    return [broadcast_shapes(b, [prod, shapes[2]])]


def concatenate_shape(node, shapes, b):
    axis = node.params["axis"]
    dims = list(shapes[0])
    total = shapes[0][axis]
    for s in shapes[1:]:
        total = b("add", total, s[axis])
    dims[axis] = total
    return [tuple(dims)]


def stack_shape(node, shapes, b):
    dims = list(shapes[0])
    dims.insert(node.params["axis"], Constant(len(shapes)))
    return [tuple(dims)]


SHAPE_RULES = {name: elemwise_shape for name, op in OPS.items() if op.kind == "elemwise"}
SHAPE_RULES.update({name: reduce_shape for name in
                    ("sum", "prod", "mean", "var", "std", "max", "min", "any", "all", "argmax",
                     "argmin", "logsumexp")})
SHAPE_RULES.update({
    "cumsum": accumulate_shape, "cumprod": accumulate_shape, "transpose": transpose_shape,
    "expand_dims": expand_dims_shape, "squeeze": squeeze_shape, "reshape": reshape_shape,
    "broadcast_to": given_dims_shape, "alloc": given_dims_shape, "eye": eye_shape,
    "matmul": matmul_shape, "dot": dot_shape, "gemm": gemm_shape, "gemv": gemm_shape,
    "concatenate": concatenate_shape, "stack": stack_shape, "setitem": same_shape,
    "flip": same_shape, "roll": same_shape, "copy": same_shape, "stop_gradient": same_shape,
})
for _name, _rule in SHAPE_RULES.items():
    if _name in OPS and OPS[_name].shape is None:
        OPS[_name].shape = _rule


_SHAPES = weakref.WeakKeyDictionary()  # variable -> its shape expression (valid forever: graphs are immutable)


def clear_cache():
    _SHAPES.clear()


def shape_of(var, b):
    """The shape of `var` as scalar variables, inferred back to the inputs where rules allow."""
    stack = [var]
    while stack:
        v = stack[-1]
        if v in _SHAPES:
            stack.pop()
            continue
        node = v.owner
        if node is None or node.op.shape is None:
            _SHAPES[v] = tuple(shape_vars(b, v))
            stack.pop()
            continue
        missing = [i for i in node.inputs if i not in _SHAPES]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        shapes = node.op.shape(node, [_SHAPES[i] for i in node.inputs], b)
        for k, out in enumerate(node.outputs):
            _SHAPES[out] = tuple(shapes[k]) if shapes is not None else tuple(shape_vars(b, out))
    return _SHAPES[var]


def _free(var, depth=0):
    """Is `var` a constant, a shape_i, or arithmetic on them without a broadcast choice (`where`)?"""
    node = var.owner
    if node is None or node.op.name == "shape_i":
        return True
    if node.op.name == "where" or depth > 6:
        return False
    return all(_free(v, depth + 1) for v in node.inputs)


# shape_i(f(x), i) -> the i-th dimension of f's shape, from x's shape (f itself is not computed)
@on("shape_i")
def shape_from_inputs(node):
    var = node.inputs[0]
    owner = producer(var)
    if owner is None or owner.op.shape is None:
        return None
    d = shape_of(var, Builder(node))[node.params["i"]]
    same = producer(d, "shape_i")
    if same is not None and same.inputs[0] is var:
        return None
    if _free(d) or n_clients(var) == n_shape_clients(var):  # else f(x) is computed anyway: keep it cheap
        return same_type(node, d)
    return None


SHAPE = [shape_from_inputs]
