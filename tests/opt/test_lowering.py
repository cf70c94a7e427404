"""Lowering (tracec/opt/lowering.py): sum_to, mean, var, std, outer, tensordot and logsumexp
rewritten into sums, elementwise ops and matrix products. Each rewrite: its structure, its
values against the op's NumPy implementation on the reference interpreter (over dtypes,
NaN/inf, empty arrays), and the cases it must leave alone."""
import warnings

import numpy as np
import pytest

import tracec as tc
from optcheck import REWRITES, check, op_counts, program, rand, run
from tracec.opt import optimize
from tracec.trace.graph import Constant
from tracec.trace.ops import OPS

EXACT = dict(rtol=0, atol=0)  # the same NumPy calls in the same order: bit for bit
EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300, 2.5])


def T(dtype, pattern, name="x"):
    return tc.tensor(dtype, pattern, name=name)


def values(shape, dtype, seed=0, edges=True):
    """Random values of `dtype`, with NaN/inf/huge values at the front for floats."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.random.default_rng(seed).random(shape) < 0.5
    if dtype.kind in "iu":
        low = 0 if dtype.kind == "u" else -100
        return rand(shape, dtype, low, 100, seed=seed)
    x = rand(shape, dtype, seed=seed)
    if edges and x.size:
        flat = x.reshape(-1)
        k = min(flat.size, EDGES.size)
        with np.errstate(over="ignore"):
            flat[:k] = EDGES[:k].astype(dtype)
    return x


def sum_to(g, *dims):
    return tc.Tensor(OPS["sum_to"](g.variable, *dims))


def dim(x, i):
    return OPS["shape_i"](x.variable, i=i)


# -- sum_to --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint64"])
def test_sum_to_over_leading_and_length_one_axes(dtype):
    g = T(dtype, (False, False, False))
    vals = [values((4, 5, 3), dtype)]
    _, counts = check([g], sum_to(g, Constant(1), dim(g, 2)), vals, absent=["sum_to"], **EXACT)
    assert counts["sum"] == 2  # as sum_to's implementation: leading axes, then the length-1 ones
    _, counts = check([g], sum_to(g, dim(g, 1), dim(g, 2)), vals, absent=["sum_to"], **EXACT)
    assert counts["sum"] == 1
    _, counts = check([g], sum_to(g, Constant(1), Constant(1), dim(g, 2)), vals, absent=["sum_to"], **EXACT)
    assert counts["sum"] == 1
    _, counts = check([g], sum_to(g, dim(g, 0), dim(g, 1), dim(g, 2)), vals, **EXACT)
    assert sum(counts.values()) == 0  # the shapes agree: nothing to compute


def test_sum_to_keeps_a_length_one_dimension_of_its_input():
    g = T("float64", (False, True))
    _, counts = check([g], sum_to(g, Constant(1), Constant(1)), [values((4, 1), "float64")], **EXACT)
    assert counts["sum"] == 1 and not counts["sum_to"]


def test_sum_to_of_empty_and_special_values():
    g = T("float64", (False, False))
    out = sum_to(g, Constant(1), dim(g, 1))
    check([g], out, [np.zeros((0, 3))], absent=["sum_to"], **EXACT)
    check([g], out, [np.array([[np.inf, np.nan, 1.0], [-np.inf, 2.0, -0.0]])], **EXACT)


def test_sum_to_decided_at_run_time_is_kept():
    # a target length that is 1 or g's length only when the function runs
    g, y = T("float64", (False, False)), T("float64", (False, False), "y")
    out = sum_to(g, dim(y, 0), dim(g, 1))
    check([g, y], out, [values((4, 3), "float64"), np.zeros((1, 3))], present=["sum_to"], **EXACT)
    check([g, y], out, [values((4, 3), "float64"), np.zeros((4, 3))], present=["sum_to"], **EXACT)
    b = T("float64", (True, False), "b")  # g's length 1 against a length not known to be 1
    check([b, y], sum_to(b, dim(y, 0), dim(b, 1)), [np.ones((1, 3)), np.zeros((1, 3))], present=["sum_to"])


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_sum_to_of_a_dtype_numpy_sums_wider_is_kept(dtype):
    g = T(dtype, (False, False))
    prog = optimize(program([g], [sum_to(g, dim(g, 0), dim(g, 1))]), REWRITES)
    assert op_counts(prog)["sum_to"] == 0  # nothing summed: g itself
    prog = optimize(program([g], [sum_to(g, Constant(1), dim(g, 1))]), REWRITES)
    assert op_counts(prog)["sum_to"] == 1


def test_gradients_of_elementwise_costs_have_no_sum_to():
    # declared inputs may hide a length-1 dimension, but a gradient of x's own shape is summed to nothing
    x = tc.dmatrix("x")
    vals = [values((3, 4), "float64", edges=False)]
    for cost in (np.sum(x ** 2), np.sum(np.tanh(x) * x), np.mean(x) + np.sum(np.var(x, axis=1))):
        (g,) = tc.grad(cost, [x])
        check([x], g, vals, absent=["sum_to"])
    (g,) = tc.grad(np.sum(x ** 2), [x])
    np.testing.assert_allclose(run(optimize(program([x], g), REWRITES), vals)[0], 2 * vals[0])


def test_bias_gradient_keeps_its_run_time_sum_to():
    # b of shape (1,) broadcasts against x @ W at run time: only the run-time shapes tell
    x, W, b = tc.dmatrix("x"), tc.dmatrix("W"), tc.dvector("b")
    (gb,) = tc.grad(np.sum(np.tanh(x @ W + b)), [b])
    vals = [rand((5, 3)), rand((3, 4), seed=1)]
    for bias in (rand(4, seed=2), rand(1, seed=2)):
        check([x, W, b], gb, vals + [bias], present=["sum_to"])


# -- mean, var, std -------------------------------------------------------------------------
REDUCED = [((4, 5), (0,), False), ((4, 5), (1,), True), ((3, 4, 5), (0, 2), False), ((4, 5), (0, 1), False),
           ((4, 5), (), False)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int16", "uint8", "bool"])
@pytest.mark.parametrize("shape, axis, keepdims", REDUCED)
def test_mean_is_a_sum_divided(dtype, shape, axis, keepdims):
    x = T(dtype, (False,) * len(shape))
    out = np.mean(x, axis=axis, keepdims=keepdims)
    _, counts = check([x], out, [values(shape, dtype)], absent=["mean"], **EXACT)
    assert counts["sum"] == 1 and (counts["divide"] == 1 or axis == ())  # (/ 1 may be folded)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("ddof", [0, 1, 2.5, 7])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_are_two_passes(dtype, ddof, name):
    fn = getattr(np, name)
    x = T(dtype, (False, False))
    for axis, keepdims in [(1, False), (0, True), (None, False)]:
        out = fn(x, axis=axis, ddof=ddof, keepdims=keepdims)
        _, counts = check([x], out, [values((4, 5), dtype)], absent=[name], **EXACT)
        assert counts["sum"] == 2 and counts["sqrt"] == (name == "std")


def test_float32_divides_in_float64_as_numpy():
    # NumPy divides a float32 sum by its int64 count in float64 and rounds once: a float32
    # division would round the count (2**24 + 1 here) first
    x = T("float32", (False,))
    n = 2 ** 24 + 1
    _, counts = check([x], np.mean(x), [np.ones(n, np.float32) * 3], absent=["mean"], **EXACT)
    assert counts["cast"] >= 1


@pytest.mark.parametrize("fn", [np.mean, np.var, np.std])
def test_empty_and_special_values(fn):
    x = T("float64", (False, False))
    for value in (np.zeros((0, 3)), np.zeros((3, 0)), values((2, 4), "float64")):
        for axis in (0, 1, None):
            check([x], fn(x, axis=axis), [value], absent=[fn.__name__], **EXACT)


def test_broadcastable_axes_count_one():
    x = T("float64", (False, True))
    check([x], np.mean(x, axis=(0, 1)), [values((3, 1), "float64")], absent=["mean"], **EXACT)
    check([x], np.var(x, axis=1, ddof=1), [values((3, 1), "float64")], absent=["var"], **EXACT)


def test_mean_var_std_left_to_numpy():
    x = T("float64", (False,))
    i64, c = T("int64", (False,), "i"), T("complex128", (False,), "c")
    ivals, cvals = [np.array([2 ** 62, 1, -2 ** 62 + 3])], [np.array([1 + 2j, 3 - 1j])]
    for fn in (np.mean, np.var, np.std):
        check([x], fn(x, dtype=np.float32), [values(5, "float64")], present=[fn.__name__])  # mixed dtypes
        check([i64], fn(i64), ivals, present=[fn.__name__])  # int64 past 2**53: order-dependent rounding
        check([c], fn(c), cvals, present=[fn.__name__])
        check([x], fn(x, dtype=np.float64), [values(5, "float64")], absent=[fn.__name__], **EXACT)


# -- outer ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_outer_is_a_broadcast_multiply(dtype):
    a, b = T(dtype, (False,), "a"), T(dtype, (False,), "b")
    _, counts = check([a, b], np.outer(a, b), [values(4, dtype), values(3, dtype, seed=1)],
                      absent=["outer"], **EXACT)
    assert counts["multiply"] == 1 and counts["expand_dims"] == 2


def test_outer_ravels_its_operands():
    a, b = T("float64", (False, False), "a"), T("float64", (), "b")
    vals = [values((2, 3), "float64"), np.float64(2.5)]
    check([a, b], np.outer(a, b), vals, absent=["outer"], **EXACT)
    check([b, a], np.outer(b, a), vals[::-1], absent=["outer"], **EXACT)
    r = T("float64", (True, True), "r")
    check([r, a], np.outer(r, a), [np.ones((1, 1)) * 3, vals[0]], absent=["outer"], **EXACT)
    check([a, a], np.outer(a, a), [np.zeros((0, 3))], absent=["outer"], **EXACT)


def test_outer_of_mixed_dtypes_and_python_numbers():
    a, b = T("int32", (False,), "a"), T("float32", (False,), "b")
    check([a, b], np.outer(a, b), [values(3, "int32"), values(2, "float32")], absent=["outer"], **EXACT)
    check([b], np.outer(b, 2.0), [values(3, "float32")], **EXACT)  # a weak operand: as traced


# -- tensordot ------------------------------------------------------------------------------
TENSORDOTS = [((3, 4), (4, 5), 1), ((2, 3, 4), (4, 5), ([2], [0])), ((2, 3, 4), (3, 5), ([1], [0])),
              ((3, 4), (5, 4), ([1], [1])), ((3, 4), (2,), 0), ((4,), (4, 2, 3), ([0], [0])),
              ((2, 3, 4), (5, 4), ([2], [1]))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa, sb, axes", TENSORDOTS)
def test_tensordot_is_a_matrix_product(dtype, sa, sb, axes):
    a, b = T(dtype, (False,) * len(sa), "a"), T(dtype, (False,) * len(sb), "b")
    rtol = 1e-5 if dtype == "float32" else 1e-12
    _, counts = check([a, b], np.tensordot(a, b, axes=axes),
                      [values(sa, dtype, edges=False), values(sb, dtype, 1, edges=False)],
                      absent=["tensordot"], rtol=rtol, atol=rtol)
    assert counts["matmul"] == 1


def test_tensordot_of_special_values_and_empty_arrays():
    a, b = T("float64", (False, False), "a"), T("float64", (False, False), "b")
    out = np.tensordot(a, b, axes=1)
    check([a, b], out, [np.array([[np.inf, 1.0], [np.nan, 0.0]]), np.array([[1.0, 2.0], [3.0, -np.inf]])],
          absent=["tensordot"])
    for sa, sb in [((0, 3), (3, 2)), ((2, 0), (0, 3)), ((2, 3), (3, 0))]:
        check([a, b], out, [np.ones(sa), np.ones(sb)], absent=["tensordot"], **EXACT)


def test_tensordot_over_several_axes_of_known_equal_lengths():
    # the product compares only K = product of the contracted lengths: each pair must be known equal
    a = T("float64", (False, False, False), "a")
    vals = [values((2, 3, 4), "float64", edges=False)]
    check([a], np.tensordot(a, np.tanh(a), axes=([0, 1], [0, 1])), vals, absent=["tensordot"])
    b = T("float64", (False, False, False), "b")
    check([a, b], np.tensordot(a, b, axes=([0, 1], [0, 1])), vals + [values((2, 3, 5), "float64", 1)],
          present=["tensordot"])
    with pytest.raises(ValueError, match="tensordot"):  # (2, 3) against (3, 2): K agrees, the shapes do not
        run(optimize(program([a, b], np.tensordot(a, b, axes=([0, 1], [0, 1]))), REWRITES),
            [np.ones((2, 3, 4)), np.ones((3, 2, 4))])


def test_tensordot_of_mismatched_lengths_still_raises():
    a, b = T("float64", (False, False), "a"), T("float64", (False, False), "b")
    prog = optimize(program([a, b], np.tensordot(a, b, axes=1)), REWRITES)
    assert not op_counts(prog)["tensordot"]
    with pytest.raises(ValueError):
        run(prog, [np.ones((2, 3)), np.ones((4, 2))])


def test_tensordot_left_to_numpy():
    i, j = T("int64", (False, False), "i"), T("int64", (False, False), "j")
    check([i, j], np.tensordot(i, j, axes=1), [values((2, 3), "int64"), values((3, 2), "int64")],
          present=["tensordot"])
    a, f = T("float64", (False, False), "a"), T("float32", (False, False), "f")
    check([a, f], np.tensordot(a, f, axes=1), [values((2, 3), "float64"), values((3, 2), "float32")],
          present=["tensordot"])


def test_gradient_of_a_batched_dot_uses_matrix_products():
    a, W = tc.dtensor3("a"), tc.dmatrix("W")
    grads = tc.grad(np.sum(np.tanh(np.dot(a, W))), [W, a])
    _, counts = check([a, W], grads, [rand((2, 3, 4)), rand((4, 5), seed=1)], absent=["tensordot"])
    assert counts["matmul"] >= 1


# -- logsumexp --------------------------------------------------------------------------
def lse(x, axis, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return tc.Tensor(OPS["logsumexp"](x.variable, axis=axes, keepdims=keepdims))


ROWS = np.array([[0.0, 1.0, 2.0, -3.0], [-np.inf] * 4, [np.inf, 1000.0, 1.0, 0.0], [np.nan, 1000.0, 1.0, 0.0],
                 [np.inf, -np.inf, 3.0, 0.0], [1e308, 1e308, -1e308, 0.0], [1.7e308, -1.7e308, 0.0, -np.inf],
                 [-1.7e308] * 4, [1000.0, 0.0, -1000.0, 999.0]])


@pytest.mark.parametrize("axis, keepdims", [(1, False), (0, True), (None, False), ((0, 1), True)])
def test_logsumexp_is_shifted_reductions(axis, keepdims):
    x = T("float64", (False, False))
    _, counts = check([x], lse(x, axis, keepdims), [ROWS], absent=["logsumexp"], **EXACT)
    assert counts["max"] == 1 and counts["sum"] == 1 and counts["exp"] == 1


@pytest.mark.parametrize("dtype", ["float32", "int16", "int32", "uint16", "uint64"])
def test_logsumexp_dtypes(dtype):
    x = T(dtype, (False, False))
    check([x], lse(x, 1), [values((3, 4), dtype)], absent=["logsumexp"], **EXACT)


def test_logsumexp_in_float16_is_left_to_numpy():
    for dtype in ("int8", "bool"):  # exp of these is float16
        x = T(dtype, (False,))
        check([x], lse(x, 0), [values(4, dtype)], present=["logsumexp"], rtol=1e-3)


def test_logsumexp_of_nothing_is_minus_infinity():
    x = T("float64", (False, False))
    for shape, axis in [((3, 0), 1), ((0, 3), 0), ((0, 3), None), ((0, 3), 1)]:
        check([x], lse(x, axis), [np.zeros(shape)], absent=["logsumexp"], **EXACT)


def test_logsumexp_raises_no_flag_the_op_does_not():
    # the op hides overflow (x - max, exp) and log(0) behind np.errstate; the lowered form never
    # raises them: rows of +inf or NaN next to large values, spreads past the float range
    x = T("float64", (False, False))
    for dtype in ("float64", "float32"):
        x = T(dtype, (False, False))
        prog = optimize(program([x], lse(x, 1)), REWRITES)
        with np.errstate(over="ignore"):
            rows = ROWS.astype(dtype)
        with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
            warnings.simplefilter("error")
            from tracec.trace.interp import Interpreter
            got = Interpreter(prog).run([rows])[0]
        with np.errstate(all="ignore"):
            want = OPS["logsumexp"].impl(rows, axis=(1,), keepdims=False)
        np.testing.assert_array_equal(got, want)


def test_log_softmax_is_lowered_too():
    x = tc.dmatrix("x")
    out = np.log(np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True))
    _, counts = check([x], out, [rand((3, 4))], absent=["logsumexp", "divide"])
    assert counts["max"] == 1


def test_each_rewrite_can_be_excluded():
    x = T("float64", (False, False))
    outs = [np.mean(x, axis=0), np.var(x), np.outer(x, x), lse(x, 1), np.tensordot(x, x, axes=1)]
    opt = optimize(program([x], outs), REWRITES.excluding("lowering"))
    counts = op_counts(opt)
    assert all(counts[name] == 1 for name in ("mean", "var", "outer", "logsumexp", "tensordot"))
    opt = optimize(program([x], outs), REWRITES.excluding("var_as_sums"))
    counts = op_counts(opt)
    assert counts["var"] == 1 and not counts["mean"] and not counts["logsumexp"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sum_to_sums_leading_axes_first_when_the_rest_is_decided_at_run_time(dtype):
    # a bias gradient: delta (batch, n) summed to b's length n, which may be 1 at run time
    g, b = T(dtype, (False, False, False)), T(dtype, (False,), "b")
    out = sum_to(g, dim(b, 0))
    for bshape in [(3,), (1,)]:
        _, counts = check([g, b], out, [values((2, 4, 3), dtype), np.zeros(bshape, dtype)],
                          present=["sum_to"], rtol=1e-6 if dtype == "float32" else 1e-15)
        assert counts["sum"] == 1 and counts["sum_to"] == 1  # leading axes as a C-lowerable sum


def test_sum_to_leading_axes_keeps_widening_dtypes_whole():
    g, b = T("int32", (False, False)), T("int32", (False,), "b")
    prog = optimize(program([g, b], [sum_to(g, dim(b, 0))]), REWRITES)
    assert op_counts(prog)["sum_to"] == 1 and op_counts(prog)["sum"] == 0
