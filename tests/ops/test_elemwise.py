"""Elementwise ops: every ufunc of the op table, clip, where, astype; NumPy 2 (NEP 50) promotion."""
import numpy as np
import pytest

from tracec.trace.ops.elemwise import UFUNCS

from cases import BROADCAST, DTYPES, check, check_raises, check_same_error, rand

# input range per ufunc name and argument position (default: [-3, 3))
_UNIT = (-0.95, 0.95)
_POS = (0.25, 4.0)
DOMAIN = {
    "arcsin": [_UNIT], "arccos": [_UNIT], "arctanh": [_UNIT], "arccosh": [(1.0, 4.0)],
    "log": [_POS], "log2": [_POS], "log10": [_POS], "sqrt": [_POS], "log1p": [(-0.9, 3.0)],
    "power": [(0.5, 3.0), (0.0, 3.0)], "float_power": [_POS, (-2.0, 2.0)],
    "left_shift": [(-8, 8), (0, 5)], "right_shift": [(-64, 64), (0, 5)],
    "ldexp": [(-3.0, 3.0), (-3, 4)], "gcd": [(-6, 7), (-6, 7)], "lcm": [(-6, 7), (-6, 7)],
}
NONZERO = {"divide": [1], "floor_divide": [1], "remainder": [1], "fmod": [1], "divmod": [1],
           "reciprocal": [0], "gcd": [], "lcm": []}
SPECIAL = {"isnan", "isinf", "isfinite", "signbit", "fmax", "fmin", "maximum", "minimum",
           "copysign", "nextafter", "spacing", "sign", "heaviside"}


def ufunc_args(ufunc, dtypes, shapes, seed=0):
    name = ufunc.__name__
    args = []
    for i, (dtype, shape) in enumerate(zip(dtypes, shapes)):
        low, high = DOMAIN.get(name, [(-3.0, 3.0)] * 2)[min(i, len(DOMAIN.get(name, [0, 0])) - 1)]
        a = rand(shape, dtype, low, high, seed=seed + i, nonzero=i in NONZERO.get(name, []))
        if name == "power" and i == 0 and a.dtype.kind in "iu":
            a = rand(shape, dtype, -3, 4, seed=seed)
        if name == "heaviside" and a.dtype.kind == "f":
            a = np.round(a).astype(dtype)  # some exact zeros
        if name in SPECIAL and a.dtype.kind == "f" and a.size >= 4:
            flat = a.reshape(-1)
            flat[[0, 1, 2, 3][:flat.size]] = [np.nan, np.inf, -np.inf, -0.0][:flat.size] if i == 0 \
                else [1.0, np.nan, 0.0, -0.0][:flat.size]
        args.append(a)
    return args


def _ids(u):
    return u.__name__


def _call(ufunc):
    return lambda *xs: ufunc(*xs)


# -- every ufunc x every dtype -------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ufunc", UFUNCS, ids=_ids)
def test_ufunc_dtypes(ufunc, dtype):
    fn = _call(ufunc)
    args = ufunc_args(ufunc, [dtype] * ufunc.nin, [(3, 4)] * ufunc.nin)
    if not check_same_error(fn, *args):  # no loop for this dtype: tracec refuses it the same way
        check(fn, *args, expect_ops=[ufunc.__name__])


@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
@pytest.mark.parametrize("ufunc", [u for u in UFUNCS if u.nin == 2], ids=_ids)
def test_binary_ufunc_broadcast(ufunc, shapes):
    dtype = "int64" if ufunc.__name__ in ("gcd", "lcm", "left_shift", "right_shift") or \
        ufunc.__name__.startswith("bitwise") else "float64"
    dtypes = [dtype, "int64" if ufunc.__name__ == "ldexp" else dtype]
    check(_call(ufunc), *ufunc_args(ufunc, dtypes, shapes), expect_ops=[ufunc.__name__])


@pytest.mark.parametrize("shape", [(), (2, 1, 3)], ids=str)
@pytest.mark.parametrize("ufunc", [u for u in UFUNCS if u.nin == 1], ids=_ids)
def test_unary_ufunc_shapes(ufunc, shape):
    dtype = "int64" if ufunc.__name__ == "invert" else "float32"
    check(_call(ufunc), *ufunc_args(ufunc, [dtype], [shape]), expect_ops=[ufunc.__name__])


# mixed strong dtypes: the result dtype is NumPy's promotion
MIXED = [("float32", "float64"), ("float32", "int32"), ("float32", "int64"), ("int32", "int64"),
         ("int32", "float64"), ("bool", "int32"), ("bool", "float32"), ("int8", "uint8"),
         ("uint8", "int64"), ("float16", "int16"), ("uint32", "int32"), ("uint64", "int64")]
MIXED_UFUNCS = [np.add, np.subtract, np.multiply, np.divide, np.floor_divide, np.remainder,
                np.power, np.maximum, np.fmin, np.arctan2, np.hypot, np.less, np.equal,
                np.logical_xor, np.bitwise_or, np.copysign, np.logaddexp, np.divmod]


@pytest.mark.parametrize("dtypes", MIXED, ids="-".join)
@pytest.mark.parametrize("ufunc", MIXED_UFUNCS, ids=_ids)
def test_binary_ufunc_mixed_dtypes(ufunc, dtypes):
    fn = _call(ufunc)
    a = rand((3, 4), dtypes[0], 0, 4, seed=1, nonzero=True)
    b = rand((4,), dtypes[1], 0, 3, seed=2, nonzero=True)
    for x, y in ((a, b), (b, a)):
        if not check_same_error(fn, x, y):
            check(fn, x, y)


# -- Python scalars (weak, NEP 50) ---------------------------------------------------------
SCALARS = [2, 2.5, True]
SCALAR_UFUNCS = [u for u in UFUNCS if u.nin == 2 and u.__name__ not in ("ldexp",)]


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("ufunc", SCALAR_UFUNCS, ids=_ids)
def test_binary_ufunc_python_scalar_constant(ufunc, dtype, scalar):
    """A Python scalar written in the function: a weak constant on either side."""
    x = ufunc_args(ufunc, [dtype], [(3, 4)])[0]
    for fn in (lambda x: ufunc(x, scalar), lambda x: ufunc(scalar, x)):
        if not check_same_error(fn, x):
            check(fn, x)


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("ufunc", [np.add, np.multiply, np.divide, np.power, np.maximum,
                                   np.arctan2, np.less, np.floor_divide, np.bitwise_and,
                                   np.copysign, np.heaviside, np.remainder], ids=_ids)
def test_binary_ufunc_python_scalar_argument(ufunc, dtype, scalar):
    """A Python scalar passed as an argument of the compiled function: a weak input."""
    x = ufunc_args(ufunc, [dtype], [(3, 4)])[0]
    for fn in (lambda x, s: ufunc(x, s), lambda x, s: ufunc(s, x)):
        if not check_same_error(fn, x, scalar):
            check(fn, x, scalar)


OPERATORS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
    "pow": lambda a, b: a ** b, "and": lambda a, b: a & b, "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b, "lshift": lambda a, b: a << b, "rshift": lambda a, b: a >> b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "divmod": lambda a, b: divmod(a, b),
}


@pytest.mark.parametrize("other", ["array", -3, 2.5, True, "np.float32", "np.int64"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("op", list(OPERATORS))
def test_python_operators(op, dtype, other):
    fn2 = OPERATORS[op]
    x = rand((3, 4), dtype, 1, 4, seed=3, nonzero=True)
    if other == "array":
        y = rand((4,), dtype, 1, 3, seed=4, nonzero=True)
        cases = [(fn2, (x, y))]
    else:
        value = {"np.float32": np.float32(1.5), "np.int64": np.int64(2),
                 "np.float64": np.float64(1.5)}.get(other, other)
        cases = [((lambda x: fn2(x, value)), (x,)), ((lambda x: fn2(value, x)), (x,)),
                 ((lambda x, s: fn2(x, s)), (x, value))]
    for fn, args in cases:
        if not check_same_error(fn, *args):
            check(fn, *args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_operators(dtype):
    x = rand((3, 4), dtype, seed=5)
    for fn in (lambda x: -x, lambda x: +x, lambda x: abs(x), lambda x: ~x):
        if not check_same_error(fn, x):
            check(fn, x)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_inplace_operators(op, dtype):
    fn2 = OPERATORS[op]

    def body(x, y):
        z = x.copy()
        z2 = fn2(z, y)  # the out-of-place result, to compare with the in-place one
        if op == "add":
            z += y
        elif op == "sub":
            z -= y
        elif op == "mul":
            z *= y
        elif op == "truediv":
            z /= y
        elif op == "floordiv":
            z //= y
        elif op == "mod":
            z %= y
        elif op == "pow":
            z **= y
        elif op == "and":
            z &= y
        else:
            z |= y
        return z, z2

    x = rand((3, 4), dtype, 1, 4, seed=6, nonzero=True)
    for y in (rand((4,), dtype, 1, 3, seed=7, nonzero=True), 2, 1.5, np.float64(2.0)):
        if not check_same_error(body, x, y):
            check(body, x, y)


def test_inplace_on_argument_writes_back():
    def f(x, y):
        x += y
        x *= 2
        return x.sum()
    check(f, rand((3, 4), "float64"), rand((4,), "float64", seed=1))
    check(f, rand((3, 4), "int64"), 2)
    check_raises(TypeError, f, rand((3, 4), "int64"), 2.5)  # same_kind casting refuses float -> int


# -- explicit NEP 50 promotion cases ---------------------------------------------------------
PROMOTION = [
    ("f32 * 2.5", lambda x: x * 2.5, "float32"),
    ("f32 + 1", lambda x: x + 1, "float32"),
    ("i32 / 2", lambda x: x / 2, "int32"),
    ("i32 + 2.5", lambda x: x + 2.5, "int32"),
    ("i32 * 3", lambda x: x * 3, "int32"),
    ("i32 * True", lambda x: x * True, "int32"),
    ("bool + 1", lambda x: x + 1, "bool"),
    ("bool + True", lambda x: x + True, "bool"),
    ("bool * 1.5", lambda x: x * 1.5, "bool"),
    ("f32 * np.float64", lambda x: x * np.float64(2.5), "float32"),
    ("f32 * np.float32", lambda x: x * np.float32(2.5), "float32"),
    ("f64 * np.float32", lambda x: x * np.float32(2.5), "float64"),
    ("i32 + np.int64", lambda x: x + np.int64(1), "int32"),
    ("i32 + np.int8", lambda x: x + np.int8(1), "int32"),
    ("i32 + np.float32", lambda x: x + np.float32(1), "int32"),
    ("i64 + np.float32", lambda x: x + np.float32(1), "int64"),
    ("u8 + 3", lambda x: x + 3, "uint8"),
    ("i8 * 2.0", lambda x: x * 2.0, "int8"),
    ("f16 + 1.5", lambda x: x + 1.5, "float16"),
    ("np.float32 scalar + 2.5 (0-d)", lambda x: np.float32(2) + x.sum() * 0 + 2.5, "float32"),
    ("np.float32(2) * f64", lambda x: np.float32(2) * x, "float64"),
    ("2.5 ** i32", lambda x: 2.5 ** x, "int32"),
    ("np.sqrt(i32)", lambda x: np.sqrt(x), "int32"),
    ("np.sqrt(i8)", lambda x: np.sqrt(x), "int8"),
    ("np.exp(u16)", lambda x: np.exp(x), "uint16"),
    ("np.add(f32, 2.5)", lambda x: np.add(x, 2.5), "float32"),
    ("np.add(i32, 2, dtype=f32)", lambda x: np.add(x, 2, dtype="float32"), "int32"),
    ("f32 sum * 2.5", lambda x: x.sum() * 2.5, "float32"),
    ("i32 sum / 2", lambda x: x.sum() / 2, "int32"),
]


@pytest.mark.parametrize("label,fn,dtype", PROMOTION, ids=[p[0] for p in PROMOTION])
def test_nep50_promotion(label, fn, dtype):
    check(fn, rand((3, 4), dtype, 0, 4, seed=8))


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
@pytest.mark.parametrize("scalar", [np.float32(1.5), np.float64(1.5), np.int32(2), np.int64(2),
                                    np.bool_(True), 2, 1.5, True], ids=lambda s: f"{type(s).__name__}")
def test_numpy_scalar_arguments(scalar, dtype):
    """NumPy scalars passed as arguments are strong (0-d arrays); Python scalars are weak."""
    x = rand((4,), dtype, 1, 4, seed=9)
    check(lambda x, s: (x + s, s * x, s + s, np.multiply(s, 2), s * 2, x / s, np.maximum(s, x)), x, scalar)


def test_python_scalar_only_arithmetic():
    # weak op weak stays weak (Python arithmetic); a NumPy call returns a NumPy scalar
    check(lambda a, b: (a + b, a * b, a / b, np.add(a, b), np.sqrt(a), a < b), 3, 2)
    check(lambda a, b: (a + b, a * b, a / b, np.add(a, b), np.sqrt(a), a < b), 3.5, 2)
    check(lambda a, b: (a + b, np.add(a, b), a * 2.5), 1.5, True)
    check(lambda x, a: x * (a + 1), rand((3,), "float32"), 2)
    check(lambda x, a: x * (a * 2.5), rand((3,), "float32"), 2)
    check(lambda x, a: x * np.add(a, 1), rand((3,), "float32"), 2)  # strong int64 scalar


def test_python_int_out_of_range():
    check_raises(OverflowError, lambda x: x + 300, rand((3,), "uint8", 0, 4))
    check_raises(OverflowError, lambda x: x * 2 ** 40, rand((3,), "int32", 0, 4))


# -- ufunc keywords and methods -----------------------------------------------------------------
def test_ufunc_dtype_and_out_keywords():
    x = rand((3, 4), "int32", seed=10)
    check(lambda x: np.add(x, 1, dtype="float32"), x)
    check(lambda x: np.multiply(x, x, dtype=np.float64), x)

    def with_out(x):
        out = np.zeros(x.shape)  # traced sizes: a traced array (a NumPy one cannot take out=)
        np.add(x, 1, out=out)
        np.sqrt(out, out=(out,))
        return out
    check(with_out, rand((3, 4), "float64", 0, 3))


def test_two_output_ufuncs():
    x = rand((3, 4), "float32", -5, 5, seed=11)
    y = rand((4,), "float32", 1, 3, seed=12)
    check(lambda x: np.modf(x), x, expect_ops=["modf"])
    check(lambda x: np.frexp(x), x, expect_ops=["frexp"])
    check(lambda x, y: np.divmod(x, y), x, y, expect_ops=["divmod"])
    check(lambda x, y: divmod(x, y), x, y, expect_ops=["divmod"])
    check(lambda x, y: divmod(x, 3), rand((5,), "int32", -9, 9), 3, expect_ops=["divmod"])
    check(lambda x: np.modf(x)[0] + np.frexp(x)[1], x)
    check(lambda x: np.ldexp(*np.frexp(x)), x, expect_ops=["frexp", "ldexp"])


@pytest.mark.parametrize("dtypes", [("float32", "int32"), ("float64", "int64"), ("float32", "int64"),
                                    ("float64", "int32"), ("float16", "int8")], ids="-".join)
def test_ldexp(dtypes):
    x = rand((3, 4), dtypes[0], seed=13)
    e = rand((4,), dtypes[1], -3, 4, seed=14)
    check(lambda x, e: np.ldexp(x, e), x, e, expect_ops=["ldexp"])
    check(lambda x: np.ldexp(x, 3), x, expect_ops=["ldexp"])


# -- clip, where, astype -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_clip(dtype):
    x = rand((3, 4), dtype, -5, 5, seed=15)
    lo = rand((4,), dtype, -3, 0, seed=16)
    hi = rand((3, 1), dtype, 0, 3, seed=17)
    check(lambda x: np.clip(x, -1, 2), x, expect_ops=["clip"])
    check(lambda x: np.clip(x, -1.5, 2.5), x, expect_ops=["clip"])
    check(lambda x: np.clip(x, None, 2), x, expect_ops=["clip"])
    check(lambda x: np.clip(x, -1, None), x, expect_ops=["clip"])
    check(lambda x: x.clip(-1, 2), x, expect_ops=["clip"])
    check(lambda x: x.clip(max=1), x, expect_ops=["clip"])
    check(lambda x: np.clip(x, min=0, max=1), x, expect_ops=["clip"])
    check(lambda x, lo, hi: np.clip(x, lo, hi), x, lo, hi, expect_ops=["clip"])
    check(lambda x, lo: np.clip(x, lo, None), x, lo, expect_ops=["clip"])
    check(lambda x, lo: np.clip(x, lo.astype("float64"), 1), x, lo, expect_ops=["clip"])
    check(lambda x, a: np.clip(x, a, 2), x, -1, expect_ops=["clip"])
    check(lambda x: np.clip(x, np.float32(-1), np.float64(2)), x, expect_ops=["clip"])


def test_clip_out():
    def f(x):
        y = x.copy()
        np.clip(y, -1, 1, out=y)
        return y
    check(f, rand((3, 4), "float64", -3, 3))


@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("float32", "float64"), ("int32", "float32"),
                                    ("int32", "int64"), ("bool", "bool"), ("bool", "int32")], ids="-".join)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1)),
                                    ((4,), (3, 4), ()), ((3, 1), (1, 4), (4,))], ids=str)
def test_where(dtypes, shapes):
    c = rand(shapes[0], "bool", seed=18)
    a = rand(shapes[1], dtypes[0], seed=19)
    b = rand(shapes[2], dtypes[1], seed=20)
    check(lambda c, a, b: np.where(c, a, b), c, a, b, expect_ops=["where"])


def test_where_scalars_and_conditions():
    x = rand((3, 4), "float32", seed=21)
    i = rand((3, 4), "int32", seed=22)
    check(lambda x: np.where(x > 0, x, 0), x)
    check(lambda x: np.where(x > 0, x, 0.5), x)
    check(lambda x: np.where(x > 0, 1, 0), x)
    check(lambda x: np.where(x > 0, 1.5, 0), x)
    check(lambda x: np.where(x > 0, np.float32(1), 0), x)
    check(lambda x, i: np.where(i, x, -x), x, i)  # non-bool condition: truthiness
    check(lambda x: np.where(x, x, 1), x)
    check(lambda x, s: np.where(x > 0, s, x), x, 2.5)
    check(lambda i: np.where(i > 0, i, 2.5), i)


@pytest.mark.parametrize("target", DTYPES + ["int8", "uint8", "float16", "uint64", "complex128"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_astype(dtype, target):
    x = rand((3, 4), dtype, -3, 3, seed=23)
    if target == "complex128":  # complex results are outside this suite's scope
        return
    check(lambda x: x.astype(target), x, expect_ops=["cast"])
    check(lambda x: np.astype(x, target), x, expect_ops=["cast"])
    check(lambda x: x.astype(target).sum(), x)


def test_astype_scalars_and_casting():
    check(lambda a: np.float32(1) * 0 + np.astype(np.asarray(a), "float32"), 3)
    check(lambda x: x.sum().astype("float32"), rand((3,), "int64"))
    check(lambda x, s: x * np.astype(np.asarray(s), np.float32), rand((3,), "float32"), 2.5)
    check_raises(TypeError, lambda x: x.astype("int32", casting="safe"), rand((3,), "float64"))
    check(lambda x: x.astype("int64", casting="safe"), rand((3,), "int32"))


def test_round():
    x = rand((3, 4), "float64", -30, 30, seed=24)
    check(lambda x: (np.round(x), np.round(x, 1), np.around(x, 2), x.round()), x)
    check(lambda x: (np.round(x), x.round()), rand((3, 4), "int32"))
    check(lambda x: np.round(x.astype("float32"), 1), x)


def test_unsupported_ufuncs_refused():
    x = rand((3,), "float64")
    for fn in (lambda x: np.add.outer(x, x), lambda x: np.sin(x, where=x > 0),
               lambda x: np.subtract.reduce(x)):
        with pytest.raises(NotImplementedError):
            __import__("tracec").compile(fn)(x)
