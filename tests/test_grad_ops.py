"""Every differentiable op of the table against central finite differences (float64),
first and second order, over several broadcast shapes.

`CASES` holds, per op name, functions that exercise it and how to draw their
arguments; `test_every_rule_is_exercised` keeps it in step with the op table.
"""
import numpy as np
import pytest

import tracec as tc
from tracec.trace import grad_rules
from tracec.trace.graph import toposort
from tracec.trace.ops import OPS
from tracec.trace.tensor import Tensor


@pytest.fixture(autouse=True, scope="module")
def reference_interpreter():
    """The rules are checked on the NumPy reference interpreter (FAST_COMPILE: quick to
    build); `test_first_order_default_mode` runs a sample through the default mode too."""
    with tc.config.change(mode="FAST_COMPILE"):
        yield


def normal(*shape):
    return ("normal", shape)


def positive(*shape):
    return ("positive", shape)


def negative(*shape):
    return ("negative", shape)


def unit(*shape):  # inside (-1, 1)
    return ("unit", shape)


def above1(*shape):
    return ("above1", shape)


def draw(spec, rng):
    kind, shape = spec
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "negative":
        return -rng.uniform(0.5, 2.0, shape)
    if kind == "unit":
        return rng.uniform(-0.8, 0.8, shape)
    if kind == "above1":
        return rng.uniform(1.2, 3.0, shape)
    raise ValueError(kind)


def op(name, **params):
    """Call an op of the table directly on traced values (for ops without a NumPy spelling)."""
    def call(*xs):
        return Tensor(OPS[name](*[x.variable for x in xs], **params))
    return call


UNARY = {  # op name -> (function, argument domain)
    "negative": (np.negative, normal), "positive": (np.positive, normal),
    "absolute": (np.abs, normal), "fabs": (np.fabs, normal), "reciprocal": (np.reciprocal, positive),
    "square": (np.square, normal), "sqrt": (np.sqrt, positive), "cbrt": (np.cbrt, positive),
    "exp": (np.exp, normal), "exp2": (np.exp2, normal), "expm1": (np.expm1, normal),
    "log": (np.log, positive), "log2": (np.log2, positive), "log10": (np.log10, positive),
    "log1p": (np.log1p, positive), "sin": (np.sin, normal), "cos": (np.cos, normal),
    "tan": (np.tan, unit), "arcsin": (np.arcsin, unit), "arccos": (np.arccos, unit),
    "arctan": (np.arctan, normal), "sinh": (np.sinh, normal), "cosh": (np.cosh, normal),
    "tanh": (np.tanh, normal), "arcsinh": (np.arcsinh, normal), "arccosh": (np.arccosh, above1),
    "arctanh": (np.arctanh, unit), "deg2rad": (np.deg2rad, normal), "rad2deg": (np.rad2deg, normal),
    "softplus": (op("softplus"), normal), "sigmoid": (op("sigmoid"), normal), "copy": (op("copy"), normal),
}

BINARY = {  # op name -> (function, domain of x, domain of y)
    "add": (np.add, normal, normal), "subtract": (np.subtract, normal, normal),
    "multiply": (np.multiply, normal, normal), "divide": (np.divide, normal, positive),
    "remainder": (np.remainder, positive, positive), "fmod": (np.fmod, normal, positive),
    "power": (np.power, positive, normal), "float_power": (np.float_power, positive, normal),
    "logaddexp": (np.logaddexp, normal, normal), "logaddexp2": (np.logaddexp2, normal, normal),
    "arctan2": (np.arctan2, normal, normal), "hypot": (np.hypot, normal, normal),
    "maximum": (np.maximum, normal, normal), "minimum": (np.minimum, normal, normal),
    "fmax": (np.fmax, normal, normal), "fmin": (np.fmin, normal, normal),
}

UNARY_SHAPES = [(), (5,), (2, 3)]
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 1, 4), (3, 1))]

def _const(value):
    return Tensor(tc.Constant(np.float64(value)))


IDX = np.array([2, 0, 2, 1])  # repeated indices: the scatter-add must accumulate


def _setitem(x, v):
    y = x.copy()
    y[1:3] = v
    return y


def _setitem_fancy(x, v):
    y = x * 1.0
    y[[0, 2]] = v
    return y


def _scatter_add(x, v):
    y = x * 1.0
    np.add.at(y, IDX, v)
    return y


def _split(x):
    a, b, c = np.split(x, [1, 3], axis=1)
    return a * 2 + c.sum(axis=1, keepdims=True), b


def _rows_fold(x, h0):  # a converted Python loop: its final value is scan_last of the scan
    h = h0
    for row in x:
        h = np.tanh(h * row + 0.5)
    return h


def _last_row_grad(g, stacked):
    return Tensor(OPS["scan_last_grad"](g.variable, stacked.variable)) * 3.0


OTHER = [  # (op name, function, argument specs)
    ("divmod", lambda x, y: np.divmod(x, y)[1], [positive(3, 4), positive(4)]),
    ("modf", lambda x: np.modf(x)[0] * 3, [normal(5)]),
    ("frexp", lambda x: np.frexp(x)[0], [normal(2, 3)]),
    ("ldexp", lambda x: np.ldexp(x, np.array([1, -2, 3])), [normal(2, 3)]),
    ("copysign", lambda x, y: np.copysign(x, y), [normal(3, 4), normal(4)]),
    ("power", lambda x: x ** 3, [normal(2, 3)]),
    ("power", lambda x: 2.0 ** x, [normal(4)]),
    ("where", lambda c, x, y: np.where(c > 0, x, y), [normal(3, 4), normal(4), normal(3, 1)]),
    ("clip", lambda x: np.clip(x, -0.5, 0.7), [normal(3, 4)]),
    ("clip", lambda x, lo, hi: np.clip(x, lo, hi), [normal(3, 4), normal(1, 4), normal(3, 1)]),
    ("cast", lambda x: x.astype(np.float64) * x, [normal(3)]),
    ("sum", lambda x: np.sum(x), [normal(3, 4)]),
    ("sum", lambda x: np.sum(x, axis=1), [normal(3, 4)]),
    ("sum", lambda x: np.sum(x, axis=(0, 2), keepdims=True), [normal(2, 3, 4)]),
    ("mean", lambda x: np.mean(x, axis=0), [normal(3, 4)]),
    ("mean", lambda x: np.mean(x, axis=(0, 2), keepdims=True), [normal(2, 3, 4)]),
    ("var", lambda x: np.var(x, axis=1), [normal(3, 4)]),
    ("var", lambda x: np.var(x, ddof=1), [normal(3, 4)]),
    ("std", lambda x: np.std(x, axis=0, keepdims=True), [normal(3, 4)]),
    ("std", lambda x: np.std(x, axis=(1, 2), ddof=1), [normal(2, 3, 4)]),
    ("prod", lambda x: np.prod(x, axis=1), [normal(3, 4)]),
    ("prod", lambda x: np.prod(x, axis=(0, 2)), [normal(2, 3, 2)]),
    ("prod", lambda x: np.prod(x), [normal(5)]),
    ("max", lambda x: np.max(x, axis=1), [normal(3, 4)]),
    ("max", lambda x: np.max(x), [normal(2, 3)]),
    ("min", lambda x: np.min(x, axis=0, keepdims=True), [normal(3, 4)]),
    ("logsumexp", op("logsumexp", axis=(1,), keepdims=False), [normal(3, 4)]),
    ("cumsum", lambda x: np.cumsum(x, axis=1), [normal(3, 4)]),
    ("cumsum", lambda x: np.cumsum(x), [normal(3, 4)]),
    ("cumprod", lambda x: np.cumprod(x, axis=0), [positive(3, 4)]),
    ("cumprod", lambda x: np.cumprod(x), [positive(2, 3)]),
    ("sum_to", lambda x: tc.Tensor(tc.OPS["sum_to"](x.variable, tc.Constant(1), x.shape[1].variable)),
     [normal(3, 4)]),
    ("matmul", lambda a, b: a @ b, [normal(3, 4), normal(4, 2)]),
    ("matmul", lambda a, b: a @ b, [normal(4), normal(4, 2)]),
    ("matmul", lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    ("matmul", lambda a, b: a @ b, [normal(4), normal(4)]),
    ("matmul", lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    ("matmul", lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(3, 4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [normal(3, 4), normal(4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [normal(2, 3, 4), normal(5, 4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [normal(3, 4), normal(4)]),
    ("dot", lambda a, b: np.dot(a, b), [normal(), normal(3)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=([2, 0], [0, 1])), [normal(3, 4, 2), normal(2, 3, 5)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=1), [normal(3, 4), normal(4, 2)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=0), [normal(3), normal(2)]),
    ("outer", lambda a, b: np.outer(a, b), [normal(3), normal(2, 2)]),
    ("einsum", lambda a, b: np.einsum("ij,jk->ik", a, b), [normal(3, 4), normal(4, 2)]),
    ("einsum", lambda a, b: np.einsum("bij,bj->bi", a, b), [normal(2, 3, 4), normal(2, 4)]),
    ("einsum", lambda a, b: np.einsum("ij,kl->", a, b), [normal(3, 4), normal(2, 2)]),
    ("einsum", lambda a: np.einsum("ii->i", a), [normal(3, 3)]),
    ("einsum", lambda a, b: np.einsum("iij,j", a, b), [normal(3, 3, 2), normal(2)]),
    ("gemm", lambda a, b, c: op("gemm")(a, b, c, _const(0.5), _const(2.0)), [normal(3, 4), normal(4, 2), normal(3, 2)]),
    ("gemv", lambda a, b, c, al, be: op("gemv")(a, b, c, al, be), [normal(3, 4), normal(4), normal(3), normal(), normal()]),
    ("reshape", lambda x: np.reshape(x, (4, 3)), [normal(3, 4)]),
    ("reshape", lambda x: x.reshape(-1), [normal(2, 3, 1)]),
    ("transpose", lambda x: np.transpose(x, (2, 0, 1)), [normal(2, 3, 4)]),
    ("transpose", lambda x: x.T, [normal(3, 4)]),
    ("expand_dims", lambda x: np.expand_dims(x, (0, 2)), [normal(3, 4)]),
    ("squeeze", lambda x: np.squeeze(x, axis=1), [normal(3, 1, 4)]),
    ("broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4)), [normal(3, 1)]),
    ("concatenate", lambda x, y: np.concatenate([x, y, x], axis=1), [normal(3, 2), normal(3, 4)]),
    ("concatenate", lambda x, y: np.concatenate([x, y]), [normal(1, 3), normal(2, 3)]),
    ("stack", lambda x, y: np.stack([x, y, x], axis=1), [normal(3, 2), normal(3, 2)]),
    ("split", _split, [normal(2, 5)]),
    ("flip", lambda x: np.flip(x, axis=1) * np.arange(4.0), [normal(3, 4)]),
    ("roll", lambda x: np.roll(x, 2, axis=1) * np.arange(4.0), [normal(3, 4)]),
    ("roll", lambda x: np.roll(x, -1) * np.arange(12.0).reshape(3, 4), [normal(3, 4)]),
    ("tile", lambda x: np.tile(x, (2, 1, 3)), [normal(3, 2)]),
    ("repeat", lambda x: np.repeat(x, 3, axis=1), [normal(2, 3)]),
    ("repeat", lambda x: np.repeat(x, np.array([1, 0, 2])) * np.arange(3.0), [normal(3, 1)]),
    ("getitem", lambda x: x[1:, ::2], [normal(3, 4)]),
    ("getitem", lambda x: x[IDX], [normal(3, 2)]),
    ("getitem", lambda x: x[:, [0, 0, 3]], [normal(2, 4)]),
    ("getitem", lambda x: x[x > 0], [normal(3, 4)]),
    ("getitem", lambda x: x[1, None, :, 0], [normal(2, 3, 4)]),
    ("setitem", _setitem, [normal(4, 3), normal(3)]),
    ("setitem", _setitem_fancy, [normal(4, 3), normal(2, 3)]),
    ("setitem", _scatter_add, [normal(3, 2), normal(4, 2)]),
    ("alloc", lambda x: np.full((2, 3), x) * np.arange(3.0), [normal()]),
    ("linspace", lambda a, b: np.linspace(a, b, 5) ** 2, [normal(), normal()]),
    ("linspace", lambda a, b: np.linspace(a, b, 4, endpoint=False) ** 2, [normal(), normal()]),
    ("scan", lambda x, h0: tc.scan(lambda x_t, h: np.tanh(h * x_t + 0.5), sequences=x, outputs_info=h0)[0],
     [normal(4, 2), normal(2)]),
    ("scan_last", _rows_fold, [normal(4, 2), normal(2)]),
    ("scan_last", _rows_fold, [normal(0, 2), normal(2)]),
    ("scan_last_grad", _last_row_grad, [normal(2), normal(3, 2)]),
    ("debug_print", lambda x: np.sin(tc.debug.print(x * 2, "x2")), [normal(3)]),
    ("debug_breakpoint", lambda x: np.sin(tc.debug.breakpoint(np.sum(x) > 1e9, x * 2)), [normal(3)]),
    ("ifelse", lambda a, b: tc.ifelse(np.sum(a) > 0, np.sin(a) * b, b ** 2), [positive(2), normal(2)]),
    ("ifelse", lambda a, b: tc.ifelse(np.sum(a) > 0, np.sin(a) * b, b ** 2), [negative(2), normal(2)]),
]


def _cases():
    out = []
    for name, (fn, dom) in UNARY.items():
        for shape in UNARY_SHAPES:
            out.append((name, fn, [dom(*shape)]))
    for name, (fn, dx, dy) in BINARY.items():
        for sx, sy in BINARY_SHAPES:
            out.append((name, fn, [dx(*sx), dy(*sy)]))
    return out + OTHER


CASES = _cases()


def _ids(cases):
    seen, ids = {}, []
    for name, _, specs in cases:
        shapes = "-".join("x".join(map(str, s[1])) or "0d" for s in specs)
        key = f"{name}[{shapes}]"
        seen[key] = seen.get(key, 0) + 1
        ids.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return ids


def _args(specs, seed):
    rng = np.random.default_rng(seed)
    return [draw(s, rng) for s in specs]


def _ops_in(fn, args):
    compiled = tc.compile(fn)
    compiled(*args)
    return {n.op.name for p in compiled.programs for n in toposort(p.roots())}


@pytest.mark.parametrize("name, fn, specs", CASES, ids=_ids(CASES))
def test_first_order(name, fn, specs):
    args = _args(specs, seed=len(name))
    assert name in _ops_in(fn, args), f"the case for {name!r} does not use it"
    tc.verify_grad(fn, args, rng=1)


DEFAULT_MODE = [c for c in CASES if c[0] in {"matmul", "logsumexp", "getitem", "softplus", "maximum"}][::2]


@pytest.mark.parametrize("name, fn, specs", DEFAULT_MODE, ids=_ids(DEFAULT_MODE))
def test_first_order_default_mode(name, fn, specs):
    with tc.config.change(mode="FAST_RUN"):
        tc.verify_grad(fn, _args(specs, seed=len(name)), rng=1)


SECOND = [c for c in CASES if c[0] in UNARY or c[0] in BINARY and c[2][0][1] == (3, 4)
          or c[0] in {"divmod", "where", "clip", "sum", "mean", "var", "std", "prod", "max", "cumsum",
                      "cumprod", "matmul", "dot", "tensordot", "outer", "einsum", "transpose", "concatenate",
                      "getitem", "setitem", "tile", "repeat", "linspace", "logsumexp", "ifelse", "scan"}]


def _second(fn, n):
    def first_gradient(*xs):
        return tc.grad(lambda *ys: np.sum(np.sin(fn(*ys))), argnums=tuple(range(n)))(*xs)
    return first_gradient


@pytest.mark.parametrize("name, fn, specs", SECOND, ids=_ids(SECOND))
def test_second_order(name, fn, specs):
    args = _args(specs, seed=len(name))
    tc.verify_grad(_second(fn, len(args)), args, rng=2, n_tests=1, rel_tol=1e-4)


def _builtin(op):
    return "/tracec/" in op.infer.__code__.co_filename


def test_every_rule_is_exercised():
    """Each op with a derivative rule has a case above (and nothing else is claimed)."""
    grad_rules.install()
    ruled = {n for n, o in OPS.items() if _builtin(o) and o.grad not in (None, grad_rules.zero_rule)}
    covered = {name for name, _, _ in CASES}
    assert ruled - {"stop_gradient"} == covered


def test_ops_without_rule_are_listed():
    """A new op must get a rule (or join NON_DIFFERENTIABLE) before it can be differentiated."""
    grad_rules.install()
    missing = sorted(n for n, o in OPS.items() if _builtin(o) and o.grad is None)
    assert missing == ["fused_elemwise", "inplace_elemwise", "jacobian"]


def test_non_differentiable_list():
    grad_rules.install()
    zero = sorted(n for n, o in OPS.items() if o.grad is grad_rules.zero_rule)
    assert zero == sorted(grad_rules.NON_DIFFERENTIABLE)
    assert {"floor", "sign", "argmax", "equal", "nonzero", "shape_i"} <= set(zero)


@pytest.mark.parametrize("fn", [np.floor, np.ceil, np.rint, np.trunc, np.sign,
                                lambda x: (x > 0) * 1.0, lambda x: np.floor_divide(x, 0.7),
                                lambda x: np.argmax(x) * 1.0, lambda x: x.astype(np.int64) * 1.0])
def test_zero_gradient_ops(fn):
    x = np.array([0.3, -1.7, 2.2])
    g = tc.grad(lambda x: np.sum(fn(x) * x * 0.0 + fn(x)))(x)
    np.testing.assert_array_equal(g, np.zeros(3))


def test_max_ties_are_split_evenly():
    g = tc.grad(lambda x: np.max(x))(np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_allclose(g, [0, 0.5, 0.5, 0])
    g = tc.grad(lambda x: np.sum(np.min(x, axis=1)))(np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 5.0]]))
    np.testing.assert_allclose(g, [[1 / 3] * 3, [1, 0, 0]])
    gx, gy = tc.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1))(np.array([1.0, 2.0]),
                                                                               np.array([1.0, 3.0]))
    np.testing.assert_allclose(gx, [0.5, 0.0])
    np.testing.assert_allclose(gy, [0.5, 1.0])


def test_prod_with_zeros():
    # the product of the other elements, not prod / x
    g = tc.grad(lambda x: np.prod(x))(np.array([2.0, 0.0, 3.0, 4.0]))
    np.testing.assert_allclose(g, [0, 24, 0, 0])
    g = tc.grad(lambda x: np.prod(x))(np.array([2.0, 0.0, 0.0]))
    np.testing.assert_allclose(g, [0, 0, 0])


def test_power_at_zero():
    gx, gy = tc.grad(lambda x, y: np.sum(x ** y), argnums=(0, 1))(np.array([0.0, 0.0, 2.0]),
                                                                   np.array([0.0, 2.0, 3.0]))
    np.testing.assert_allclose(gx, [0, 0, 12])
    np.testing.assert_allclose(gy, [0, 0, 8 * np.log(2)])


def test_getitem_scatter_add_accumulates():
    g = tc.grad(lambda x: np.sum(x[IDX] * np.array([1.0, 10.0, 100.0, 1000.0])))(np.zeros(3))
    np.testing.assert_allclose(g, [10, 1000, 101])


def test_setitem_gradient_of_both_operands():
    def f(x, v):
        y = x * 1.0
        y[1:3] = v * 2
        return np.sum(y * np.arange(4.0))
    gx, gv = tc.grad(f, argnums=(0, 1))(np.ones(4), np.ones(2))
    np.testing.assert_allclose(gx, [0, 0, 0, 3])  # overwritten entries get nothing
    np.testing.assert_allclose(gv, [2, 4])
