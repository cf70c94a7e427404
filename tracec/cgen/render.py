"""Scalar C expressions of the elementwise ops, and the renderer that applies them.

`C_EXPR` is the per-op table, one entry per op, installed in each op's
`Op.c_expr` slot: ``c_expr(*args, t)`` gets the C expressions of the inputs,
already converted to the dtypes of the NumPy loop the op would run (`t.ins`),
and returns the C expression of the result (dtype `t.out`), or None where C
cannot match NumPy for those dtypes -- such nodes run their NumPy
implementation instead. Helpers named ``tc_*`` live in templates/tc_kernel.h;
``tc_st`` is the kernel's status word (NumPy's floating-point warnings and
in-loop errors). The CUDA backend reuses `CRenderer` with its own table.
"""
import numpy as np

from ..trace.graph import Constant
from ..trace.ops import OPS

CTYPES = {"bool": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
          "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
          "uint64": "uint64_t", "float32": "float", "float64": "double"}
SUFFIX = {"bool": "b", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
          "uint16": "u16", "uint32": "u32", "uint64": "u64", "float32": "f32", "float64": "f64"}


class LoopTypes:
    """The dtypes of the NumPy loop a node runs: `ins`, `out`; `params` of the node."""

    def __init__(self, ins, out, params):
        self.ins, self.out, self.params = list(ins), out, params
        self.dt = self.ins[0] if self.ins else out
        self.kind = self.dt.kind  # 'b', 'i', 'u' or 'f' (first input's loop dtype)
        self.s = SUFFIX[self.dt.name]

    def m(self, name):
        """The libm function for this loop's float type: exp or expf."""
        return name + ("f" if self.dt == np.float32 else "")


def _float(name):  # a libm function, floats only
    return lambda *args: (f"{args[-1].m(name)}({', '.join(args[:-1])})" if args[-1].kind == "f" else None)


def _int_helper(name, kinds="iu"):  # tc_<name>_<suffix>(a, b): integer loops
    return lambda a, b, t: f"tc_{name}_{t.s}({a}, {b})" if t.kind in kinds else None


def _compare(c_op, helper):  # quiet comparisons (tc_kernel.h): NaN never raises 'invalid'
    return lambda a, b, t: f"tc_{helper}_{t.s}({a}, {b})" if t.kind == "f" else f"({a} {c_op} {b})"


def _round(name):  # floor, ceil, rint, trunc: integers are their own rounding
    return lambda a, t: f"{t.m(name)}({a})" if t.kind == "f" else a


def _extremum(helper, c_op, libm=None):
    def expr(a, b, t):
        if t.kind == "f":
            return f"{t.m(libm)}({a}, {b})" if libm else f"tc_{helper}_{t.s}({a}, {b})"
        return f"(({a} {c_op} {b}) ? {a} : {b})"
    return expr


def _clip(x, *bounds):
    t = bounds[-1]
    out = x
    if t.params["has_lo"]:
        out = _extremum("maximum", ">=")(out, bounds[0], t)
    if t.params["has_hi"]:
        out = _extremum("minimum", "<=")(out, bounds[-2], t)
    return out


C_EXPR = {
    # arithmetic
    "add": lambda a, b, t: f"({a} || {b})" if t.kind == "b" else f"({a} + {b})",
    "subtract": lambda a, b, t: None if t.kind == "b" else f"({a} - {b})",
    "multiply": lambda a, b, t: f"({a} && {b})" if t.kind == "b" else f"({a} * {b})",
    "divide": lambda a, b, t: f"({a} / {b})" if t.kind == "f" else None,
    "floor_divide": lambda a, b, t: f"tc_floor_divide_{t.s}({a}, {b}, &tc_st)" if t.kind in "fiu" else None,
    "remainder": lambda a, b, t: f"tc_remainder_{t.s}({a}, {b}, &tc_st)" if t.kind in "fiu" else None,
    "fmod": lambda a, b, t: (f"{t.m('fmod')}({a}, {b})" if t.kind == "f"
                             else f"tc_fmod_{t.s}({a}, {b}, &tc_st)" if t.kind in "iu" else None),
    "power": lambda a, b, t: (f"{t.m('pow')}({a}, {b})" if t.kind == "f"
                              else f"tc_power_{t.s}({a}, {b}, &tc_st)" if t.kind in "iu" else None),
    "float_power": _float("pow"),
    "negative": lambda a, t: None if t.kind == "b" else f"(-{a})",
    "positive": lambda a, t: None if t.kind == "b" else f"(+{a})",
    "absolute": lambda a, t: (f"{t.m('fabs')}({a})" if t.kind == "f"
                              else f"tc_abs_{t.s}({a})" if t.kind == "i" else a),
    "fabs": _float("fabs"),
    "sign": lambda a, t: (f"tc_sign_{t.s}({a})" if t.kind == "f" else f"(({a} > 0) - ({a} < 0))"
                          if t.kind == "i" else f"({a} > 0)" if t.kind == "u" else None),
    "reciprocal": lambda a, t: f"(1 / {a})" if t.kind == "f" else None,
    "square": lambda a, t: f"({a} && {a})" if t.kind == "b" else f"({a} * {a})",
    "sqrt": _float("sqrt"),
    "cbrt": _float("cbrt"),
    "copysign": _float("copysign"),
    "heaviside": lambda a, b, t: f"tc_heaviside_{t.s}({a}, {b})" if t.kind == "f" else None,
    "gcd": _int_helper("gcd"),
    "lcm": _int_helper("lcm"),
    "ldexp": lambda a, b, t: f"{t.m('ldexp')}({a}, tc_clamp_int({b}))" if t.kind == "f" else None,
    "nextafter": _float("nextafter"),
    "spacing": lambda a, t: f"tc_spacing_{t.s}({a})" if t.kind == "f" else None,
    # exponentials and logarithms
    "exp": lambda a, t: f"tc_exp_{t.s}({a})" if t.kind == "f" else None,  # exp(+-inf): no flag
    "exp2": _float("exp2"), "expm1": _float("expm1"),
    "log": _float("log"), "log2": _float("log2"), "log10": _float("log10"), "log1p": _float("log1p"),
    "logaddexp": lambda a, b, t: f"tc_logaddexp_{t.s}({a}, {b})" if t.kind == "f" else None,
    "logaddexp2": lambda a, b, t: f"tc_logaddexp2_{t.s}({a}, {b})" if t.kind == "f" else None,
    # trigonometric and hyperbolic
    "sin": _float("sin"), "cos": _float("cos"), "tan": _float("tan"),
    "arcsin": _float("asin"), "arccos": _float("acos"), "arctan": _float("atan"),
    "arctan2": _float("atan2"), "hypot": _float("hypot"),
    "sinh": _float("sinh"), "cosh": _float("cosh"), "tanh": _float("tanh"),
    "arcsinh": _float("asinh"), "arccosh": _float("acosh"), "arctanh": _float("atanh"),
    "deg2rad": lambda a, t: (None if t.kind != "f" else f"({a} * ((float)M_PI / 180.0f))"
                             if t.dt == np.float32 else f"({a} * (M_PI / 180.0))"),
    "rad2deg": lambda a, t: (None if t.kind != "f" else f"({a} * (180.0f / (float)M_PI))"
                             if t.dt == np.float32 else f"({a} * (180.0 / M_PI))"),
    # rounding
    "floor": _round("floor"), "ceil": _round("ceil"), "rint": _round("rint"), "trunc": _round("trunc"),
    # extrema (maximum/minimum propagate NaN, fmax/fmin ignore it)
    "maximum": _extremum("maximum", ">="), "minimum": _extremum("minimum", "<="),
    "fmax": _extremum("maximum", ">=", "fmax"), "fmin": _extremum("minimum", "<=", "fmin"),
    # comparisons
    "equal": lambda a, b, t: f"({a} == {b})",
    "not_equal": lambda a, b, t: f"({a} != {b})",
    "less": _compare("<", "lt"), "less_equal": _compare("<=", "le"),
    "greater": _compare(">", "gt"), "greater_equal": _compare(">=", "ge"),
    # logical
    "logical_and": lambda a, b, t: f"({a} && {b})",
    "logical_or": lambda a, b, t: f"({a} || {b})",
    "logical_xor": lambda a, b, t: f"(!{a} != !{b})",
    "logical_not": lambda a, t: f"(!{a})",
    # bitwise
    "bitwise_and": lambda a, b, t: f"({a} & {b})" if t.kind in "iub" else None,
    "bitwise_or": lambda a, b, t: f"({a} | {b})" if t.kind in "iub" else None,
    "bitwise_xor": lambda a, b, t: f"({a} ^ {b})" if t.kind in "iub" else None,
    "invert": lambda a, t: f"(!{a})" if t.kind == "b" else f"(~{a})" if t.kind in "iu" else None,
    "left_shift": _int_helper("left_shift"),
    "right_shift": _int_helper("right_shift"),
    # floating-point classification (integer loops: constants)
    "isnan": lambda a, t: f"(isnan({a}) != 0)" if t.kind == "f" else "0",
    "isinf": lambda a, t: f"(isinf({a}) != 0)" if t.kind == "f" else "0",
    "isfinite": lambda a, t: f"(isfinite({a}) != 0)" if t.kind == "f" else "1",
    "signbit": lambda a, t: f"(signbit({a}) != 0)" if t.kind == "f" else None,
    # the non-ufunc elementwise ops
    "where": lambda c, a, b, t: f"({c} ? {a} : {b})",
    "clip": _clip,
    "cast": lambda a, t: a,  # the conversion to the target dtype is the renderer's (convert)
    "softplus": lambda a, t: f"tc_softplus_{t.s}({a})" if t.kind == "f" else None,
    "sigmoid": lambda a, t: f"tc_sigmoid_{t.s}({a})" if t.kind == "f" else None,
}


def install():
    """Fill the `c_expr` slot of every op in `C_EXPR`."""
    for name, expr in C_EXPR.items():
        OPS[name].c_expr = expr


install()


def _weak_kind(var):
    """What NumPy's dtype resolution takes for a weak input: the Python type."""
    return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[var.dtype.kind]


def loop_dtypes(node):
    """(input dtypes, output dtype) of the NumPy loop `node` runs, or None if unknown."""
    op, out = node.op, node.outputs[0].dtype
    if op.name == "where":
        return [np.dtype(bool), out, out], out
    if op.name == "cast":  # the loop computes in the input's dtype; convert() makes the result
        return [node.inputs[0].dtype], node.inputs[0].dtype
    ufunc = getattr(np, op.name, None)
    if not isinstance(ufunc, np.ufunc):  # clip, softplus, sigmoid: computed in the output dtype
        return [out] * len(node.inputs), out
    if ufunc.nout != 1:
        return None
    specs = tuple(_weak_kind(v) if v.type.weak else v.dtype for v in node.inputs)
    try:
        resolved = ufunc.resolve_dtypes(specs + (None,))
    except (TypeError, ValueError):
        return None
    return list(resolved[:-1]), resolved[-1]


class CRenderer:
    """Renders elementwise nodes as C expressions over named scalar values."""

    ctypes = CTYPES

    def ctype(self, dtype):
        return self.ctypes[np.dtype(dtype).name]

    def supports_dtype(self, dtype):
        return np.dtype(dtype).name in self.ctypes

    def convert(self, expr, src, dst):
        """`expr` of dtype src as dtype dst, with NumPy's casting (bool: nonzero)."""
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return expr
        if dst == np.bool_:
            return f"({expr} != 0)"
        if src.kind == "f" and dst.kind in "iu":
            return self._float_to_int(expr, src, dst)
        return f"({self.ctype(dst)}){expr}"

    def _float_to_int(self, expr, src, dst):
        """NumPy's float -> integer casts: C leaves a value out of the target's range undefined
        (and gcc's AVX-512 code saturates), NumPy wraps it through a wider signed integer."""
        if dst.itemsize < 4:
            return f"(({self.ctype(dst)})(int32_t){expr})"
        if dst == np.uint32:
            return f"((uint32_t)(int64_t){expr})"
        if dst == np.uint64:
            return f"tc_to_u64_{SUFFIX[src.name]}({expr})"
        return f"({self.ctype(dst)}){expr}"

    def node_expr(self, node, args, arg_dtypes):
        """C expression of `node` (single output) from its inputs' C expressions, or None."""
        op = node.op
        if op.c_expr is None or len(node.outputs) != 1:
            return None
        loop = loop_dtypes(node)
        if loop is None:
            return None
        ins, out = loop
        dtypes = list(ins) + [out, node.outputs[0].dtype] + list(arg_dtypes)
        if not all(self.supports_dtype(d) for d in dtypes) or len(ins) != len(args):
            return None
        converted = [self.convert(a, d, loop_d) for a, d, loop_d in zip(args, arg_dtypes, ins)]
        expr = op.c_expr(*converted, LoopTypes(ins, out, node.params))
        if expr is None:
            return None
        return self.convert(expr, out, node.outputs[0].dtype)

    def supports(self, node):
        """Whether `node` renders (checked on placeholder argument names)."""
        if len(node.outputs) != 1 or node.outputs[0].type.weak:
            return False
        loop = loop_dtypes(node)
        if loop is not None and not all(_fits(v, d) for v, d in zip(node.inputs, loop[0])
                                        if isinstance(v, Constant) and v.type.weak):
            return False
        names = [f"x{i}" for i in range(len(node.inputs))]
        return self.node_expr(node, names, [v.dtype for v in node.inputs]) is not None


def _fits(const, dtype):
    """Whether the loop dtype `dtype` holds a weak constant's value: C would wrap one that it
    does not (np.clip(uint64_x, -1, 2)), where NumPy raises or computes otherwise."""
    try:
        value = np.asarray(const.value, dtype=const.dtype)  # its own int64/float64/bool first
        if not np.all(value == const.value):
            return False
    except (OverflowError, ValueError):
        return False
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and value.dtype.kind in "iub":
        info = np.iinfo(dtype)
        return bool(np.all((value >= info.min) & (value <= info.max)))
    return True
