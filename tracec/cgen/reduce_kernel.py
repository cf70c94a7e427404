"""Lowering reductions -- a lone `sum`/`prod`/`max`/`min`/`any`/`all` node, or a
`fused_elemwise` group ending in one -- to one C kernel each, rendered from
templates/reduce.c.

The kernel has the elementwise kernels' ABI (tc_kernel_fn in tc_abi.h): the
inputs broadcast against the iteration shape `shape` (the shape of the value
being reduced), then one C-contiguous output of the reduced shape
(`output_shape`). The reduced axes, keepdims and every rank are static, baked
into the source; constants are passed in as 0-d inputs, as for elementwise
kernels. The producers' values are computed element by element and combined
into the accumulator at once, so the intermediate array is never stored.
NumPy's semantics: accumulation in the output dtype, pairwise float sums,
NaN-propagating max/min, identities for empty reductions; max/min of nothing
returns TC_ERR_EMPTY_REDUCTION (the runtime reruns NumPy, which raises), unless
the node has NumPy's `initial` (float max/min: the accumulator's start value).
"""

import numpy as np

from ..config import config
from ..trace.graph import Constant
from ..trace.ops import OPS
from .kernel import _NAME, collect_args, named, template
from .render import SUFFIX, CRenderer

REDUCTIONS = ("sum", "prod", "max", "min", "any", "all")
_NUMPY_NAME = {"max": "maximum", "min": "minimum"}  # the ufunc names NumPy's error message uses
_PARAMS = {"axis", "keepdims", "dtype", "initial"}
_INT_RANGE = {"int8": ("INT8_MIN", "INT8_MAX"), "int16": ("INT16_MIN", "INT16_MAX"),
              "int32": ("INT32_MIN", "INT32_MAX"), "int64": ("INT64_MIN", "INT64_MAX"),
              "uint8": ("0", "UINT8_MAX"), "uint16": ("0", "UINT16_MAX"),
              "uint32": ("0", "UINT32_MAX"), "uint64": ("0", "UINT64_MAX"), "bool": ("0", "1")}


class ReduceSpec:
    """One reduction kernel: `nodes` (elementwise producers, then the reduction)
    computing `output` from `args`.

    As for elementwise kernels (kernel.KernelSpec), `args` are the graph
    variables the kernel reads and `sources[i]` says where the executor finds
    arg i: ``('input', k)`` -- input k of the outer `node` -- or
    ``('const', value)``. `value` is the variable reduced, `ndim` its rank
    (the rank of the iteration space), `axes` the reduced axes (sorted,
    non-negative), `keepdims` as the node says; `output.dtype` is also the
    accumulator's dtype.
    """

    def __init__(self, nodes, args, sources, node, axes, keepdims):
        self.nodes, self.args, self.sources, self.node = nodes, args, sources, node
        self.output = nodes[-1].outputs[0]
        self.outputs = [self.output]  # as kernel.KernelSpec has them
        self.reduction = nodes[-1].op.name
        self.value = nodes[-1].inputs[0]
        self.ndim = self.value.ndim
        self.axes, self.keepdims = tuple(axes), bool(keepdims)
        self.initial = nodes[-1].params.get("initial")  # max/min's start value (float), or None


def signature(spec):
    """"float32,float64->float64": the dtypes of the args, then of the output."""
    return ",".join(v.dtype.name for v in spec.args) + "->" + spec.output.dtype.name


def output_shape(spec, shape):
    """The output's shape for iteration shape `shape` (keepdims: 1 on the reduced axes)."""
    if len(shape) != spec.ndim:
        raise ValueError(f"{spec.reduction} kernel: iteration shape {tuple(shape)} has rank {len(shape)}, "
                         f"expected {spec.ndim}")
    if spec.keepdims:
        return tuple(1 if d in spec.axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in spec.axes)


def iteration_shape(spec, arg_shapes):
    """The shape the kernel's inputs broadcast to (raises ValueError as NumPy does)."""
    shape = np.broadcast_shapes(*arg_shapes)
    return (1,) * (spec.ndim - len(shape)) + tuple(shape)


def _plain(node, ins=None):
    """`node` itself, or the node of the op an `inplace_elemwise` wraps; on inputs `ins` if given."""
    ins = list(node.inputs) if ins is None else ins
    if node.op.name == "inplace_elemwise":
        return OPS[node.params["op"]].make_node(ins, node.params["params"], loc=node.loc)
    if all(a is b for a, b in zip(ins, node.inputs)):
        return node
    return node.op.make_node(ins, node.params, loc=node.loc)


def _plain_graph(nodes):
    """The nodes with every `inplace_elemwise` unwrapped (later nodes rebuilt on the new values)."""
    if not any(n.op.name == "inplace_elemwise" for n in nodes):
        return nodes
    memo, out = {}, []
    for n in nodes:
        new = _plain(n, [memo.get(id(v), v) for v in n.inputs])
        memo[id(n.outputs[0])] = new.outputs[0]
        out.append(new)
    return out


def _axes(params, ndim):
    axis = params.get("axis")
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(int(a) % ndim for a in axis)) if ndim else ()


def _supported_reduction(node, renderer):
    """Whether the reduction `node` has a C accumulation matching NumPy's."""
    if node.op.name not in REDUCTIONS or len(node.inputs) != 1 or set(node.params) - _PARAMS:
        return False
    src, acc = node.inputs[0].dtype, node.outputs[0].dtype
    if not (renderer.supports_dtype(src) and renderer.supports_dtype(acc)) or node.outputs[0].type.weak:
        return False
    if node.op.name in ("sum", "prod") and acc.kind not in "iuf":
        return False  # sum/prod with dtype=bool: logical or/and, left to NumPy
    if node.op.name in ("any", "all"):
        return acc == np.bool_
    if "initial" in node.params and not _initial_ok(node):
        return False
    return not (src.kind == "f" and acc.kind in "iub")  # float -> int conversion is undefined in C


def _initial_ok(node):
    """max/min's `initial`: a float accumulator and a real, non-NaN start value."""
    value = node.params["initial"]
    if node.op.name not in ("max", "min") or node.outputs[0].dtype.kind != "f":
        return False
    return isinstance(value, (int, float, np.integer, np.floating)) and not np.isnan(value)


def _float_literal(value, ct):
    """A C literal of exactly `value` (hexadecimal floats round-trip)."""
    value = float(value)
    if np.isinf(value):
        return f"({ct})({'-' if value < 0 else ''}INFINITY)"
    return f"({ct}){value.hex()}"


def lower_reduce(node, renderer=CRenderer()):
    """A ReduceSpec for `node` (a reduction, or a fused group ending in one), or None."""
    outer, node = node, _plain(node)
    if len(node.outputs) != 1:
        return None
    if node.op.name == "fused_elemwise":
        inner = node.params["inner"]
        if len(inner.outputs) != 1 or inner.outputs[0] is not inner.nodes[-1].outputs[0]:
            return None  # not a chain ending in its reduction
        nodes, inputs = _plain_graph(inner.nodes), inner.inputs
    elif node.op.name in REDUCTIONS:
        if not config.c_single_ops:
            return None  # a lone reduction already runs NumPy's native loop: not worth a compile
        nodes, inputs = [node], list(node.inputs)
    else:
        return None
    last, producers = nodes[-1], nodes[:-1]
    if not _supported_reduction(last, renderer):
        return None
    if not all(n.op.kind == "elemwise" and renderer.supports(n) for n in producers):
        return None
    args, sources = collect_args(inputs, producers)
    if not args or not all(renderer.supports_dtype(v.dtype) for v in args):
        return None
    known = {id(v) for v in args} | {id(n.outputs[0]) for n in producers}
    if any(id(v) not in known for n in nodes for v in n.inputs):
        return None  # reads a value it is not given (should not happen)
    if isinstance(last.inputs[0], Constant):
        return None  # constant folding's job
    return ReduceSpec(nodes, args, sources, outer, _axes(last.params, last.inputs[0].ndim),
                      last.params.get("keepdims", False))


def render_reduce(spec, renderer=CRenderer()):
    """(name, C source) of the kernel for `spec`; the name is a hash of the code."""
    return named(_render(spec, renderer), "tc_r")


def _identity(op, acc, ct, initial=None):
    """The accumulator's start value (an identity of the combination, or max/min's `initial`)."""
    if initial is not None:
        return _float_literal(initial, ct)
    if op in ("sum", "any"):
        return f"({ct})0"  # +0.0: NumPy 2 sums -0.0s to +0.0, its reductions start from the identity
    if op in ("prod", "all"):
        return f"({ct})1"
    if acc.kind == "f":
        return f"({ct})(-INFINITY)" if op == "max" else f"({ct})INFINITY"
    lo, hi = _INT_RANGE[acc.name]
    return f"({ct}){lo if op == 'max' else hi}"


def _combine(op, acc):
    if op == "sum":
        return "a + b"
    if op == "prod":
        return "a * b"
    if op in ("any", "all"):  # operands are 0 or 1
        return "a | b" if op == "any" else "a & b"
    if acc.kind == "f":
        return f"tc_{'maximum' if op == 'max' else 'minimum'}_{SUFFIX[acc.name]}(a, b)"
    return "(a >= b ? a : b)" if op == "max" else "(a <= b ? a : b)"


_LANE = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}  # mask lanes as wide as the accumulator's


def _vcombine(op, acc):
    """Body of ``${fn}_vcombine(r, v, m)``: 8 lanes `v` combined into `r`."""
    if acc.kind != "f" or op in ("any", "all"):
        return "    (void)v, (void)m;  /* unused: integer loops are plain */\n    return r;"
    if op in ("sum", "prod"):
        return f"    (void)m;\n    return r {'+' if op == 'sum' else '*'} v;"
    # NaN-propagating max/min that vectorizes: NaN lanes are noted, then compared as 0 so no
    # comparison ever sees a NaN and raises 'invalid'; r stays NaN-free
    return "\n".join([
        "    const ${fn}_mask nv = v != v;",
        "    *m |= nv;",
        "    v = (${fn}_vec)((${fn}_mask)v & ~nv);",
        f"    const ${{fn}}_mask take = v {'>' if op == 'max' else '<'} r;",
        "    return (${fn}_vec)(((${fn}_mask)v & take) | ((${fn}_mask)r & ~take));"]).replace("${fn}", _NAME)


def _empty(spec, ct):
    """What an empty reduction does: fill with NumPy's value, or fail as NumPy raises."""
    op = spec.reduction
    if spec.initial is not None:  # NumPy returns `initial` for nothing to reduce
        return (f"        for (int64_t o = 0; o < M; o++)\n            out[o] = {_float_literal(spec.initial, ct)};\n"
                "        return 0;")
    if op in ("max", "min"):
        return (f"        return tc_fail(ctx, TC_ERR_EMPTY_REDUCTION, \"zero-size array to reduction operation "
                f"{_NUMPY_NAME[op]} which has no identity\");")
    value = {"sum": 0, "prod": 1, "any": 0, "all": 1}[op]
    return (f"        for (int64_t o = 0; o < M; o++)\n            out[o] = ({ct}){value};\n"
            "        return 0;")


def _dtype_code(dtype):
    return f"TC_DTYPE('{dtype.kind}', {dtype.itemsize})"


def _describe(v):
    if isinstance(v, Constant):
        return f"constant {np.asarray(v.value).tolist()!r}" if v.ndim == 0 else "constant array"
    return f"input {v.name or ''}".rstrip()


def _render(spec, renderer):
    ct = renderer.ctype
    acc = spec.output.dtype
    names, params, comments, scalar_loads, array_setup, call_args = {}, [], [], [], [], []
    for k, v in enumerate(spec.args):
        name = names[id(v)] = f"x{k}"
        t = ct(v.dtype)
        params.append(f"{t} {name}")
        comments.append(f"// {name}: {_describe(v)} {v.type.short()}")
        if v.ndim == 0:
            scalar_loads.append(f"    const {t} {name} = *(const {t} *)p[{k}];")
            call_args.append(name)
        else:
            array_setup.append(f"    const char *b{k} = q[{k}];")
            array_setup.append(f"    const int64_t s{k} = contig ? (int64_t)sizeof({t}) : s[{k}];")
            call_args.append(f"*(const {t} *)(b{k} + e * s{k})")
    body = []
    for j, node in enumerate(spec.nodes[:-1]):
        out = node.outputs[0]
        name = names[id(out)] = f"v{j}"
        args = [names[id(v)] for v in node.inputs]
        expr = renderer.node_expr(node, args, [v.dtype for v in node.inputs])
        call = f"{node.op.name}({', '.join(args)})"
        comments.append(f"// {name} = {call} -> {out.type.short()}  at {node.loc.describe()}")
        body.append(f"    // {call}, line {node.loc.lineno}")
        body.append(f"    const {ct(out.dtype)} {name} = {expr};")
    red = spec.nodes[-1]
    value = names[id(spec.value)]
    comments.append(f"// {spec.reduction}({value}, axis={spec.axes}, keepdims={spec.keepdims}) -> "
                    f"{spec.output.type.short()}  at {red.loc.describe()}")
    title = f"{spec.reduction} over axes {spec.axes}"
    if len(spec.nodes) > 1:
        title += f" of {len(spec.nodes) - 1} fused op(s): " + " ".join(n.op.name for n in spec.nodes[:-1])
    reduced = [1 if d in spec.axes else 0 for d in range(spec.ndim)] or [0]
    nin = len(spec.args)
    value_call = f"{_NAME}_value({', '.join(call_args)}, &tc_st)"
    return template("reduce.c").substitute(
        title=title, comments="\n".join(comments), fn=_NAME, signature=signature(spec),
        nin=nin, nargs=nin + 1, ndim=spec.ndim, pairwise=int(spec.reduction == "sum" and acc.kind == "f"),
        vector=int(acc.kind == "f"), lane=_LANE[acc.itemsize], vcombine=_vcombine(spec.reduction, acc),
        lanes=32 if spec.reduction in ("max", "min") else 8, quiet=int(spec.reduction in ("max", "min")),
        direct=int(len(spec.nodes) == 1 and spec.args[0].ndim > 0 and spec.value.dtype == acc),
        reduced=", ".join(map(str, reduced)),
        dtypes=", ".join(_dtype_code(v.dtype) for v in spec.args + [spec.output]),
        ndims=", ".join(str(v.ndim) for v in spec.args + [spec.output]),
        itemsizes=", ".join(str(v.dtype.itemsize if v.ndim else 0) for v in spec.args),
        acc=ct(acc), combine=_combine(spec.reduction, acc), identity=_identity(spec.reduction, acc, ct(acc), spec.initial),
        value_params=", ".join(params), value_body="\n".join(body),
        value_result=renderer.convert(value, spec.value.dtype, acc),
        scalar_loads="\n".join(scalar_loads), array_setup="\n".join(array_setup),
        value_call=value_call, keepdims=int(spec.keepdims), empty=_empty(spec, ct(acc)))
