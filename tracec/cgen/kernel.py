"""Lowering elementwise nodes -- single ops and the optimizer's `fused_elemwise`
groups -- to one C loop each, rendered from templates/elemwise.c.

A kernel's C source depends only on its expression and dtypes, not on the
program it came from: ranks and broadcast patterns are checked by the runtime
and handled by the loops at run time, and constants are passed in as 0-d
inputs. So one compiled module serves every program with the same expression.
The comments (node, user source line) are left out of the cache key.
"""
import hashlib
import os
import string

import numpy as np

from ..config import config
from ..trace.graph import Constant
from ..trace.ops import OPS
from .build import canonical
from .render import CRenderer

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
_TEMPLATES = {}


def template(name):
    if name not in _TEMPLATES:
        with open(os.path.join(TEMPLATE_DIR, name)) as fh:
            _TEMPLATES[name] = string.Template(fh.read())
    return _TEMPLATES[name]


class KernelSpec:
    """One loop to generate: `nodes` (in order) computing `outputs` from `args`.

    `args` are the graph variables the loop reads (the inner graph's inputs,
    then its constants); `sources[i]` says where the executor finds arg i:
    ``('input', k)`` -- input k of the outer node -- or ``('const', value)``.
    `outputs[k]` is output k of the outer node; the kernel writes every
    output over the broadcast shape of all args.
    """

    def __init__(self, nodes, args, sources, outputs, node):
        self.nodes, self.args, self.sources, self.outputs = nodes, args, sources, list(outputs)
        self.node = node  # the outer node (for error messages)

    @property
    def output(self):
        """The first (for single-output kernels: the only) output."""
        return self.outputs[0]


def _const_value(var):
    return np.asarray(var.value, dtype=var.dtype)


def lower(node, renderer=CRenderer(), multi_output=False):
    """A KernelSpec for `node`, or None when part of it has no C rendering.

    Nodes with several outputs (multi-output fused kernels) are lowered only
    when the caller runs such kernels (`multi_output`).
    """
    op = node.op
    if len(node.outputs) != 1 and not (multi_output and op.name == "fused_elemwise"):
        return None
    if any(v.type.weak for v in node.outputs):
        return None
    if op.name == "inplace_elemwise":
        inner_op = OPS[node.params["op"]]
        if inner_op.name == "fused_elemwise":
            return _lower_fused(node, node.params["params"]["inner"], renderer)
        if not config.c_single_ops:
            return None
        inner = inner_op.make_node(node.inputs, node.params["params"], loc=node.loc)
        return _lower_nodes(node, [inner], list(node.inputs), inner.outputs, renderer)
    if op.name == "fused_elemwise":
        return _lower_fused(node, node.params["inner"], renderer)
    if op.kind == "elemwise" and config.c_single_ops:
        return _lower_nodes(node, [node], list(node.inputs), node.outputs, renderer)
    return None


def _lower_fused(node, inner, renderer):
    return _lower_nodes(node, inner.nodes, inner.inputs, inner.outputs, renderer)


def collect_args(inputs, nodes):
    """(args, sources) of a kernel: the group's inputs (first use), then the constants its nodes read."""
    args, sources, seen = [], [], set()
    for k, v in enumerate(inputs):
        if id(v) not in seen:
            seen.add(id(v))
            args.append(v)
            # a constant input too is an array of its dtype made once (the runtime would convert it per call)
            sources.append(("const", _const_value(v)) if isinstance(v, Constant) else ("input", k))
    for n in nodes:
        for v in n.inputs:
            if isinstance(v, Constant) and id(v) not in seen:
                seen.add(id(v))
                args.append(v)
                sources.append(("const", _const_value(v)))
    return args, sources


def _lower_nodes(outer, nodes, inputs, outputs, renderer):
    if not all(renderer.supports(n) for n in nodes):
        return None
    args, sources = collect_args(inputs, nodes)
    known = {id(v) for v in args} | {id(n.outputs[0]) for n in nodes}
    if any(id(v) not in known for n in nodes for v in n.inputs):
        return None  # reads a value it is not given (should not happen)
    if not all(renderer.supports_dtype(v.dtype) for v in list(args) + list(outputs)):
        return None
    return KernelSpec(nodes, args, sources, outputs, outer)


def signature(spec):
    """``"float64,float64->float64"``: the args' dtypes, then the outputs'."""
    return ",".join(v.dtype.name for v in spec.args) + "->" + ",".join(v.dtype.name for v in spec.outputs)


def render(spec, renderer=CRenderer()):
    """(name, C source) of the kernel for `spec`; the name is a hash of the code."""
    return named(_render(spec, renderer), "tc_k")


_NAME = "tc_kernel_NAME"  # what a template calls its kernel until the source is hashed


def named(source, prefix):
    """(name, source) with the kernel named `prefix` + a hash of the code (comments aside)."""
    name = prefix + hashlib.sha256(canonical(source).encode()).hexdigest()[:20]
    return name, source.replace(_NAME, name)


def _render(spec, renderer):
    ct = renderer.ctype
    names = {}
    comments, scalars, strides, row_ptrs, strided_loads, unit_loads = [], [], [], [], [], []
    contiguous, unit = [], []  # unit: every operand moves one element per step (the loop vectorizes)
    itemsizes = []
    for k, v in enumerate(spec.args):
        name = names[id(v)] = f"x{k}"
        t = ct(v.dtype)
        itemsizes.append(f"sizeof({t})")
        what = (f"constant {np.asarray(v.value).tolist()!r}" if isinstance(v, Constant) and v.ndim == 0
                else "constant array" if isinstance(v, Constant) else f"input {v.name or ''}".rstrip())
        comments.append(f"// {name}: {what} {v.type.short()}")
        if v.ndim == 0:
            scalars.append(f"    const {t} {name} = *(const {t} *)args[{k}].data;")
            continue
        contiguous.append(f"st[{k}][0] == (int64_t)sizeof({t})")
        strides.append(f"    const int64_t s{k} = es[{k}];")
        row_ptrs.append(f"    const {t} *restrict a{k} = (const {t} *)p[{k}];")
        strided_loads.append(f"            const {t} {name} = a{k}[i * s{k}];")
        unit.append(f"s{k} == 1")
        unit_loads.append(f"            const {t} {name} = a{k}[i];")
    body = []
    for j, node in enumerate(spec.nodes):
        out = node.outputs[0]
        name = names[id(out)] = f"v{j}"
        args = [names[id(v)] for v in node.inputs]
        expr = renderer.node_expr(node, args, [v.dtype for v in node.inputs])
        call = f"{node.op.name}({', '.join(args)})"
        comments.append(f"// {name} = {call} -> {out.type.short()}  at {node.loc.describe()}")
        body.append(f"// {call}, line {node.loc.lineno}")
        body.append(f"const {ct(out.dtype)} {name} = {expr};")
    n_in = len(spec.args)
    strided_stores, unit_stores = [], []
    for k, var in enumerate(spec.outputs):
        a, t_out, o = n_in + k, ct(var.dtype), f"out{k}"
        itemsizes.append(f"sizeof({t_out})")
        comments.append(f"// {o}: output {k} = {names[id(var)]} {var.type.short()}")
        contiguous.append(f"st[{a}][0] == (int64_t)sizeof({t_out})")
        strides.append(f"    const int64_t s{a} = es[{a}];")
        row_ptrs.append(f"    {t_out} *restrict {o} = ({t_out} *)p[{a}];")
        strided_stores.append(f"            {o}[i * s{a}] = {names[id(var)]};")
        unit.append(f"s{a} == 1")
        unit_stores.append(f"            {o}[i] = {names[id(var)]};")
    indent = lambda lines, n: "\n".join(" " * n + line for line in lines)  # noqa: E731
    title = f"{len(spec.nodes)} op(s): " + " ".join(n.op.name for n in spec.nodes)
    if len(spec.outputs) > 1:
        title += f" -> {len(spec.outputs)} outputs"
    return template("elemwise.c").substitute(
        title=title, comments="\n".join(comments), nargs=n_in + len(spec.outputs),
        n_outputs=len(spec.outputs), signature=signature(spec), fn=_NAME, scalars="\n".join(scalars),
        itemsizes=", ".join(itemsizes), contiguous_test=" && ".join(contiguous),
        row_pointers="\n".join(row_ptrs), strides="\n".join(strides),
        strided_body="\n".join(strided_loads + [indent(body, 12)] + strided_stores),
        unit_test=" && ".join(unit), unit_body="\n".join(unit_loads + [indent(body, 12)] + unit_stores))
