"""Ops that exist for differentiation: stop_gradient (identity that blocks gradients)
and jacobian (the rows of a Jacobian, computed by running an inner vjp program
once per output element)."""
import numpy as np

from ..types import TensorType
from .base import Op

stop_gradient = Op("stop_gradient", lambda x: x, lambda inputs: [inputs[0].type], kind="other",
                   doc="identity whose gradient is zero: tc.stop_gradient(x)")


class InnerVJP:
    """The programs behind a `jacobian` node, hashable by identity (they sit in its params).

    `forward` maps the node's inputs to ``[expr] + wrt``; `vjp` maps the node's
    inputs plus a cotangent of expr (last input) to the gradient of each wrt.
    """

    def __init__(self, forward, vjp):
        self.forward, self.vjp = forward, vjp
        self._run = None

    def run(self, values):
        from ..interp import Interpreter
        if self._run is None:
            self._run = (Interpreter(self.forward).run, Interpreter(self.vjp).run)
        run_fwd, run_vjp = self._run
        expr, *wrt = run_fwd(list(values))
        expr_shape = np.shape(expr)
        size = int(np.prod(expr_shape))
        u_dtype = self.vjp.inputs[-1].dtype
        rows = [[] for _ in wrt]
        for i in range(size):
            seed = np.zeros(size, u_dtype)
            seed[i] = 1
            for k, g in enumerate(run_vjp(list(values) + [seed.reshape(expr_shape)])):
                rows[k].append(np.broadcast_to(g, np.shape(wrt[k])))
        return [np.array(r, dtype=self.vjp.outputs[k].dtype).reshape(expr_shape + np.shape(w)) if size
                else np.zeros(expr_shape + np.shape(w), self.vjp.outputs[k].dtype)
                for k, (r, w) in enumerate(zip(rows, wrt))]

    def __repr__(self):
        return f"<jacobian program: {len(self.vjp.outputs)} wrt>"

    def __lt__(self, other):  # Params sorts its items
        return id(self) < id(other)


def _jacobian_impl(*values, inner):
    out = inner.run(values)
    return tuple(out) if len(out) > 1 else out[0]


def _jacobian_infer(inputs, inner):
    expr = inner.forward.outputs[0]
    return [TensorType(g.dtype, expr.broadcastable + w.broadcastable)
            for g, w in zip(inner.vjp.outputs, inner.forward.outputs[1:])]


jacobian = Op("jacobian", _jacobian_impl, _jacobian_infer, kind="other",
              doc="Jacobian of an inner program's expr w.r.t. some of its values, one vjp per row")


# -- ops the optimizer introduces (tracec/opt): stable special functions, BLAS-style
# products, fused elementwise kernels, in-place variants and output copies -------------
from .base import OPS, with_context  # noqa: E402
from .elemwise import _elemwise_infer, broadcast_pattern, dtype_sample  # noqa: E402
from .reduce import _reduce_type  # noqa: E402


def _softplus_impl(x):
    # log(1 + exp(x)) without overflow: 1000 at 1000, 0 at -1000. logaddexp flags 'invalid'
    # for NaN (its only invalid case here), where log(1 + exp(x)) raises nothing
    with np.errstate(invalid="ignore"):
        return np.logaddexp(0, x)


softplus = Op("softplus", _softplus_impl, _elemwise_infer(_softplus_impl), kind="elemwise",
              doc="log(1 + exp(x)), evaluated stably")


def _sigmoid_impl(x):
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-np.abs(x))
        out = np.where(np.asarray(x) >= 0, 1 / (1 + e), e / (1 + e))
    return out[()] if out.ndim == 0 else out


sigmoid = Op("sigmoid", _sigmoid_impl, _elemwise_infer(_sigmoid_impl), kind="elemwise",
             doc="1 / (1 + exp(-x)), evaluated without overflow")


def _lse_reference(x, axis, keepdims):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


def _logsumexp_impl(x, axis, keepdims):
    x = np.asarray(x)
    if x.size == 0:
        return _lse_reference(x, axis, keepdims)
    # shift in exp's dtype (as NumPy's exp converts): x - max(x) wraps in integer dtypes
    x = x.astype(np.exp(np.zeros(0, x.dtype)).dtype, copy=False)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # all -inf (or an inf) along the axis: no shift
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    dtype = _lse_reference(np.ones((1,) * x.ndim, x.dtype), axis, keepdims).dtype
    return out.astype(dtype, copy=False)


def _logsumexp_infer(inputs, axis, keepdims):
    return [_reduce_type(inputs[0], _lse_reference, axis, keepdims)]


logsumexp = Op("logsumexp", _logsumexp_impl, _logsumexp_infer, kind="reduce",
               doc="log(sum(exp(x), axis)), shifted by the max so it does not overflow")


def _gemm_impl(a, b, c, alpha, beta):
    return alpha * np.matmul(a, b) + beta * c


def _gemm_infer(inputs):
    a, b, c, alpha, beta = inputs
    if alpha.ndim or beta.ndim or a.ndim != 2 or b.ndim not in (1, 2):
        raise TypeError("gemm/gemv: A must be 2-d, B 1-d or 2-d, alpha and beta scalars")
    prod = OPS["matmul"].infer([a, b])[0]
    samples = [np.ones((1,) * v.ndim, v.dtype) if not v.type.weak else dtype_sample(v) for v in inputs]
    dtype = np.asarray(_gemm_impl(*samples)).dtype
    return [TensorType(dtype, broadcast_pattern([_Typed(prod), c]))]


class _Typed:
    """Just enough of a Variable (a type's pattern) for `broadcast_pattern`."""

    def __init__(self, type):
        self.type, self.ndim, self.broadcastable = type, type.ndim, type.broadcastable


gemm = Op("gemm", _gemm_impl, _gemm_infer, kind="linalg",
          doc="alpha * (A @ B) + beta * C with A, B matrices (BLAS gemm)")
gemv = Op("gemv", _gemm_impl, _gemm_infer, kind="linalg",
          doc="alpha * (A @ x) + beta * y with A a matrix, x a vector (BLAS gemv)")


class FusedGraph:
    """The inner graph of a `fused_elemwise` node: elementwise ops (or a chain ending in
    one reduction) over the node's inputs, with the user source lines they came from.

    `outputs` are the inner values the node returns, in order (several for a
    multi-output kernel: all of the same shape); `nodes` are in a topological order.
    """

    def __init__(self, inputs, outputs, nodes):
        self.inputs, self.outputs, self.nodes = list(inputs), list(outputs), list(nodes)
        locs = []
        for node in self.nodes:
            if node.loc not in locs:
                locs.append(node.loc)
        self.locs = tuple(locs)

    @property
    def output(self):
        """The output of a single-output kernel."""
        if len(self.outputs) != 1:
            raise AttributeError(f"a fused kernel with {len(self.outputs)} outputs has no single "
                                 "`output`; use `outputs`")
        return self.outputs[0]

    def run(self, values, out=None):
        """The outputs' values (a tuple when there are several); `out`: the buffer that a
        single-output kernel's last op writes into."""
        from ..interp import run_node
        store = {id(v): x for v, x in zip(self.inputs, values)}
        get = lambda v: v.value if v.owner is None and id(v) not in store else store[id(v)]  # noqa: E731
        last = self.nodes[-1]
        for node in self.nodes:
            args = [get(v) for v in node.inputs]
            if node is last and out is not None and len(self.outputs) == 1:
                try:
                    return node.op.impl(*args, **node.params, out=out)
                except (ValueError, TypeError, FloatingPointError) as exc:
                    raise with_context(exc, f"{node.op.name} at {node.loc.describe()}") from exc
            store[id(node.outputs[0])] = run_node(node, args)[0]
        if len(self.outputs) == 1:
            return store[id(self.outputs[0])]
        return tuple(store[id(v)] for v in self.outputs)

    def __repr__(self):
        outs = f"->{len(self.outputs)}" if len(self.outputs) > 1 else ""
        return "{" + ",".join(n.op.name for n in self.nodes) + "}" + outs

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __lt__(self, other):  # Params sorts its items
        return id(self) < id(other)


def _fused_impl(*values, inner, out=None):
    return inner.run(values, out)


def _fused_infer(inputs, inner):
    if len(inputs) != len(inner.inputs):
        raise TypeError("fused_elemwise: wrong number of inputs")
    for v, w in zip(inputs, inner.inputs):
        if (v.dtype, v.ndim, v.type.weak) != (w.dtype, w.ndim, w.type.weak):
            raise TypeError(f"fused_elemwise: input of type {v.type.short()} where the fused "
                            f"graph expects {w.type.short()}")
    return [v.type for v in inner.outputs]


fused_elemwise = Op("fused_elemwise", _fused_impl, _fused_infer, kind="fused",
                    doc="elementwise ops run as one kernel with one or more outputs (made by the "
                        "fusion pass)")


def _inplace_impl(*values, op, params, dest):
    target = values[dest]
    impl = OPS[op].impl
    if isinstance(target, np.ndarray) and target.flags.writeable and \
            target.shape == np.broadcast_shapes(*[np.shape(v) for v in values]):
        return impl(*values, **params, out=target)
    return impl(*values, **params)  # the buffer does not fit (broadcasting): a fresh one


def _inplace_infer(inputs, op, params, dest):
    return OPS[op].infer(inputs, **params)


inplace_elemwise = Op("inplace_elemwise", _inplace_impl, _inplace_infer, kind="inplace",
                      doc="an elementwise op writing into the buffer of its dead input `dest`")


def _copy_impl(x):
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


copy = Op("copy", _copy_impl, lambda inputs: [inputs[0].type], kind="other",
          doc="a fresh copy; the optimizer puts it on outputs folded to constants")
