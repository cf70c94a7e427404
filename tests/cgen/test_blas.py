"""BLAS for the C backend: tc_gemm / tc_gemv (templates/tc_blas.h) against NumPy, called
through ctypes with the function pointers tracec/cgen/blas.py finds, and the lookup itself.

The reference is always NumPy's `alpha * (A @ B) + beta * C`.
"""
import ctypes
import functools
import importlib.util
import os

import numpy as np
import pytest

from tracec.cgen import blas, build

_spec = importlib.util.spec_from_file_location(
    "abi_ctypes", os.path.join(os.path.dirname(os.path.abspath(__file__)), "abi_ctypes.py"))
abi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(abi)

TC_ERR_ABI, TC_ERR_SHAPE, TC_ERR_UNSUPPORTED = 1 << 17, 1 << 19, 1 << 21

SOURCE = """\
#include "tc_blas.h"
int test_gemm(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
              const tc_array *C, const tc_array *out, tc_ctx *ctx)
{ return tc_gemm(bl, alpha, A, B, beta, C, out, ctx); }
int test_gemv(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
              const tc_array *C, const tc_array *out, tc_ctx *ctx)
{ return tc_gemv(bl, alpha, A, B, beta, C, out, ctx); }
"""


class TcBlas(ctypes.Structure):
    """C's tc_blas (templates/tc_blas.h)."""
    _fields_ = [("sgemm", ctypes.c_void_p), ("dgemm", ctypes.c_void_p), ("sgemv", ctypes.c_void_p),
                ("dgemv", ctypes.c_void_p), ("interface", ctypes.c_int32), ("int_bytes", ctypes.c_int32)]


@functools.lru_cache(maxsize=None)
def _library():
    lib = ctypes.CDLL(build.build(SOURCE))
    for name in ("test_gemm", "test_gemv"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(TcBlas), ctypes.c_double, ctypes.POINTER(abi.TcArray),
                       ctypes.POINTER(abi.TcArray), ctypes.c_double, ctypes.POINTER(abi.TcArray),
                       ctypes.POINTER(abi.TcArray), ctypes.POINTER(abi.TcCtx)]
    return lib


def _variant(name):
    """A Blas: NumPy's (found by blas.find()) or one of the other conventions this machine has."""
    found, reason = blas.find()
    if name == "numpy":
        assert found is not None, reason
        return found
    if name == "numpy-fortran":
        return blas.from_library(found.library, ("fortran",))
    pytest.importorskip("scipy.linalg")
    if name == "scipy-capsule":
        return blas.from_scipy()
    interface = name.split("-")[-1]
    for path in blas.candidate_libraries():
        try:
            other = blas.from_library(path, (interface,))
        except LookupError:
            continue
        if other.int_bits == 32:
            return other
    pytest.skip("no LP64 BLAS loaded")


def call(which, alpha, A, B, beta=0.0, C=None, out=None, table=None):
    """tc_gemm/tc_gemv on these arrays: (return code, message)."""
    table = TcBlas(*_variant("numpy").fields()) if table is None else table
    a, keep_a = abi.tc_array(A)
    b, keep_b = abi.tc_array(B)
    c, keep_c = abi.tc_array(C) if C is not None else (None, None)
    o, keep_o = abi.tc_array(out)
    ctx = abi.TcCtx(1, 0, 1 << 62, b"")
    fn = getattr(_library(), "test_" + which)
    rc = fn(ctypes.byref(table), alpha, ctypes.byref(a), ctypes.byref(b), beta,
            ctypes.byref(c) if c is not None else None, ctypes.byref(o), ctypes.byref(ctx))
    return rc, ctx.message.decode()


def reference(alpha, A, B, beta, C):
    with np.errstate(all="ignore"):
        prod = alpha * (A @ B)
        return prod if C is None else prod + beta * C


def check(which, alpha, A, B, beta=0.0, C=None, table=None):
    """Runs one product into a NaN-filled out and compares with NumPy."""
    expected = reference(alpha, A, B, beta, C)
    out = np.full(expected.shape, np.nan, A.dtype)
    rc, message = call(which, alpha, A, B, beta, C, out, table)
    assert rc == 0, message
    tol = 1e-12 if A.dtype == np.float64 else 3e-5
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


# ---- operands of every layout -------------------------------------------------------------
def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    return u


def matrix(rng, shape, layout, dtype):
    r, c = shape

    def rand(*s):
        return rng.standard_normal(s).astype(dtype)
    return {
        "c": lambda: rand(r, c),
        "f": lambda: np.asfortranarray(rand(r, c)),
        "t": lambda: rand(c, r).T,
        "ld": lambda: rand(r, c + 3)[:, 1:1 + c],              # rows contiguous, ld > cols
        "ldt": lambda: rand(c, r + 3)[:, 2:2 + r].T,           # columns contiguous, ld > rows
        "steps": lambda: rand(2 * r, 3 * c)[1::2, ::3],
        "neg_rows": lambda: rand(r, c)[::-1],
        "neg_cols": lambda: rand(r, c)[:, ::-1],
        "neg_both": lambda: rand(r, c)[::-1, ::-1],
        "bcast_row": lambda: np.broadcast_to(rand(1, c), (r, c)),
        "bcast_col": lambda: np.broadcast_to(rand(r, 1), (r, c)),
        "bcast_all": lambda: np.broadcast_to(rand(1, 1), (r, c)),
        "overlapping": lambda: np.lib.stride_tricks.as_strided(   # a sliding window: rows overlap
            rand(r + c + 1), (r, c), (rand(1).itemsize,) * 2),
        "unaligned": lambda: _unaligned(rand(r, c)),
    }[layout]()


def vector(rng, n, layout, dtype):
    def rand(*s):
        return rng.standard_normal(s).astype(dtype)
    return {
        "c": lambda: rand(n),
        "steps": lambda: rand(3 * n)[1::3],
        "neg": lambda: rand(2 * n)[::-2],
        "bcast": lambda: np.broadcast_to(rand(1), (n,)),
        "unaligned": lambda: _unaligned(rand(n)),
    }[layout]()


LAYOUTS = ["c", "f", "t", "ld", "ldt", "steps", "neg_rows", "neg_cols", "neg_both", "bcast_row",
           "bcast_col", "bcast_all", "overlapping", "unaligned"]
VECTOR_LAYOUTS = ["c", "steps", "neg", "bcast", "unaligned"]
DTYPES = [np.float32, np.float64]
# (m, k, n): gemm, a row (gemv on B^T), a column (gemv), 1x1, k = 1, and blocks past a kernel's tile
SHAPES = [(3, 4, 5), (1, 4, 5), (3, 4, 1), (1, 1, 1), (2, 1, 3), (37, 33, 19)]
PAIRS = [(la, "c") for la in LAYOUTS] + [("c", lb) for lb in LAYOUTS[1:]] + [
    ("t", "t"), ("ld", "ldt"), ("neg_both", "steps"), ("unaligned", "bcast_row"), ("f", "neg_rows")]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("la,lb", PAIRS, ids=[f"{a}@{b}" for a, b in PAIRS])
def test_gemm_layouts(dtype, la, lb):
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        A, B = matrix(rng, (m, k), la, dtype), matrix(rng, (k, n), lb, dtype)
        check("gemm", 1.0, A, B)
        check("gemm", -0.75, A, B, 2.0, matrix(rng, (m, n), "c", dtype))


C_KINDS = ["full", "fortran", "row_bias", "column", "scalar", "one_by_one", "steps", "negative",
           "batch", "grows_rows"]


def _addend(rng, kind, m, n, dtype):
    def rand(*s):
        return rng.standard_normal(s).astype(dtype)
    return {
        "full": lambda: rand(m, n),
        "fortran": lambda: np.asfortranarray(rand(m, n)),
        "row_bias": lambda: rand(n),
        "column": lambda: rand(m, 1),
        "scalar": lambda: np.asarray(rand(1)[0]),
        "one_by_one": lambda: rand(1, 1),
        "steps": lambda: rand(2 * m, 2 * n)[::2, 1::2],
        "negative": lambda: rand(m, n)[::-1, ::-1],
        "batch": lambda: rand(2, m, n),                  # out grows leading dimensions
        "grows_rows": lambda: rand(4, n),                # the (1, n) product broadcasts to (4, n)
    }[kind]()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", C_KINDS)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (2.5, -0.5), (0.0, 1.5), (-1.0, 0.0)])
def test_gemm_addend(dtype, kind, alpha, beta):
    rng = np.random.default_rng(1)
    for m, k, n in [(3, 4, 5), (37, 33, 19)] + ([(1, 4, 5)] if kind == "grows_rows" else []):
        if kind == "grows_rows" and m != 1:
            continue
        A, B = matrix(rng, (m, k), "c", dtype), matrix(rng, (k, n), "t", dtype)
        check("gemm", alpha, A, B, beta, _addend(rng, kind, m, n, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(3, 0, 5), (0, 4, 5), (3, 4, 0), (0, 0, 0), (1, 0, 1)])
def test_gemm_empty(dtype, m, k, n):
    rng = np.random.default_rng(2)
    A, B = matrix(rng, (m, k), "c", dtype), matrix(rng, (k, n), "c", dtype)
    check("gemm", 2.0, A, B)                                    # k = 0: zeros
    check("gemm", 2.0, A, B, 0.5, _addend(rng, "full", m, n, dtype))
    check("gemm", 2.0, A, B, 0.5, _addend(rng, "row_bias", m, n, dtype))
    if k == 0:
        check("gemm", np.inf, A, B)                             # inf * 0: NaN, as NumPy


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_non_finite_values_propagate_as_numpy(dtype):
    rng = np.random.default_rng(3)
    A, B, C = matrix(rng, (4, 3), "c", dtype), matrix(rng, (3, 5), "c", dtype), matrix(rng, (4, 5), "c", dtype)
    A[1, 2], C[2, 3] = np.inf, np.nan
    for alpha, beta in [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (np.inf, 1.0), (1.0, np.nan)]:
        check("gemm", alpha, A, B, beta, C)      # BLAS would skip A @ B for alpha = 0, C for beta = 0
        check("gemv", alpha, A, B[:, 0], beta, C[:, 0])
        inplace = C.copy()
        expected = reference(alpha, A, B, beta, inplace)
        assert call("gemm", alpha, A, B, beta, inplace, inplace)[0] == 0
        np.testing.assert_allclose(inplace, expected, rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.3])
def test_out_shares_memory(dtype, beta):
    rng = np.random.default_rng(4)
    n = 6
    for m, k in [(n, 5), (1, 5)]:
        A, B = matrix(rng, (m, k), "c", dtype), matrix(rng, (k, n), "c", dtype)
        for c_view in [lambda o: o, lambda o: o.T, lambda o: o[0], lambda o: o[::-1]]:
            out = matrix(rng, (m, n), "c", dtype)
            if m == 1 and c_view(out).shape == (n, 1):
                continue
            C = c_view(out)                                     # C is out, or another view of it
            expected = reference(1.5, A, B, beta, C.copy())
            rc, message = call("gemm", 1.5, A, B, beta, C, out)
            assert rc == 0, message
            np.testing.assert_allclose(out, expected, rtol=3e-5, atol=3e-5)
    for operands in ["A", "B", "AB"]:                           # A or B is out itself
        out = matrix(rng, (n, n), "c", dtype)
        other = matrix(rng, (n, n), "f", dtype)
        A = out if "A" in operands else other
        B = out if "B" in operands else other
        expected = reference(2.0, A.copy(), B.copy(), beta, None)
        assert call("gemm", 2.0, A, B, beta, None, out)[0] == 0
        np.testing.assert_allclose(out, expected, rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("form", ["mat@vec", "vec@mat", "vec@vec"])
@pytest.mark.parametrize("lv", VECTOR_LAYOUTS)
def test_gemv(dtype, form, lv):
    rng = np.random.default_rng(5)
    for m, k in [(3, 4), (1, 4), (3, 1), (1, 1), (40, 33), (3, 0), (0, 4)]:
        for lm in ["c", "t", "steps", "neg_rows", "bcast_row"]:
            M, v = matrix(rng, (m, k), lm, dtype), vector(rng, k, lv, dtype)
            A, B = {"mat@vec": (M, v), "vec@mat": (v, M.T), "vec@vec": (v, vector(rng, k, "c", dtype))}[form]
            prod_shape = (A @ B).shape
            check("gemv", 1.0, A, B)
            check("gemv", 0.5, A, B, -2.0, np.asarray(rng.standard_normal(prod_shape), dtype))
            check("gemv", 0.5, A, B, 1.0, np.asarray(3.0, dtype))
            if form == "vec@vec":
                check("gemv", 1.0, A, B, 1.0, rng.standard_normal(3).astype(dtype))   # () grows to (3,)


def test_shape_mismatch_names_the_shapes():
    A, B = np.ones((3, 4)), np.ones((5, 2))
    rc, message = call("gemm", 1.0, A, B, 0.0, None, np.empty((3, 2)))
    assert rc == TC_ERR_SHAPE
    assert message == "matmul: shapes (3,4) and (5,2) not aligned: 4 (dim 1) != 5 (dim 0)"
    rc, message = call("gemv", 1.0, A, np.ones(5), 0.0, None, np.empty(3))
    assert (rc, message) == (TC_ERR_SHAPE, "matmul: shapes (3,4) and (5,) not aligned: 4 (dim 1) != 5 (dim 0)")
    rc, message = call("gemv", 1.0, np.ones(4), B, 0.0, None, np.empty(2))
    assert (rc, message) == (TC_ERR_SHAPE, "matmul: shapes (4,) and (5,2) not aligned: 4 (dim 0) != 5 (dim 0)")
    rc, message = call("gemm", 1.0, A, np.ones((4, 2)), 1.0, np.ones(3), np.empty((3, 2)))
    assert rc == TC_ERR_SHAPE
    assert message == ("gemm: the product of shape (3,2) and C of shape (3,) could not be broadcast together")


def test_bad_calls_are_refused():
    A, B = np.ones((3, 4)), np.ones((4, 2))
    cases = [   # (which, A, B, C, out, code, start of message)
        ("gemm", A, B, None, np.empty((2, 3)), TC_ERR_ABI,
         "gemm: out must be a C-contiguous aligned float64 array of shape (3,2)"),
        ("gemm", A, B, None, np.empty((2, 3)).T, TC_ERR_ABI, "gemm: out must be a C-contiguous"),
        ("gemm", A, B, None, np.empty((3, 2), np.float32), TC_ERR_ABI, "gemm: out must be"),
        ("gemm", A, np.ones(4), None, np.empty(3), TC_ERR_ABI, "gemm: A and B must be 2-d, got 2-d and 1-d"),
        ("gemv", A, B, None, np.empty((3, 2)), TC_ERR_ABI, "gemv: takes (2-d, 1-d)"),
        ("gemm", A.astype(np.int64), B.astype(np.int64), None, np.empty((3, 2), np.int64),
         TC_ERR_UNSUPPORTED, "gemm: BLAS takes float32 or float64 operands of one dtype, got int64 and int64"),
        ("gemm", A.astype(np.float32), B, None, np.empty((3, 2)), TC_ERR_UNSUPPORTED,
         "gemm: BLAS takes float32 or float64 operands of one dtype, got float32 and float64"),
        ("gemm", A, B, np.ones(2, np.float32), np.empty((3, 2)), TC_ERR_UNSUPPORTED,
         "gemm: BLAS takes float32 or float64 operands of one dtype, got float64 and float64 with C float32"),
    ]
    for which, a, b, c, out, code, start in cases:
        rc, message = call(which, 1.0, a, b, 1.0, c, out)
        assert rc == code and message.startswith(start), (rc, message)
    rc, message = call("gemm", 1.0, A, B, 0.0, None, np.empty((3, 2)), table=TcBlas())
    assert (rc, message) == (TC_ERR_UNSUPPORTED, "gemm: no BLAS was found")


@pytest.mark.parametrize("variant", ["numpy-fortran", "scipy-lib-cblas", "scipy-lib-fortran", "scipy-capsule"])
def test_every_calling_convention(variant):
    """CBLAS and Fortran interfaces, 32- and 64-bit integers: the same results."""
    found = _variant(variant)
    table = TcBlas(*found.fields())
    rng = np.random.default_rng(6)
    for dtype in DTYPES:
        for la, lb in [("c", "c"), ("t", "ld"), ("ldt", "neg_rows"), ("f", "t")]:
            for m, k, n in SHAPES + [(3, 0, 2)]:
                A, B = matrix(rng, (m, k), la, dtype), matrix(rng, (k, n), lb, dtype)
                check("gemm", 1.25, A, B, -1.0, _addend(rng, "row_bias", m, n, dtype), table=table)
                check("gemv", 0.5, A, B[:, 0], 2.0, _addend(rng, "column", m, 1, dtype)[:, 0], table=table)
                check("gemv", 0.5, A[0], B, 0.0, None, table=table)


# ---- the lookup -------------------------------------------------------------------------
def test_find_on_this_machine():
    found, reason = blas.find()
    assert found is not None, reason
    assert reason is None
    assert found.interface in blas.INTERFACE_CODES and found.int_bits in (32, 64)
    assert all(found.fields()[:4]) and found.fields()[4:] == (blas.INTERFACE_CODES[found.interface],
                                                                found.int_bits // 8)
    assert os.path.exists(found.library)
    config = blas._numpy_blas_config()
    if "USE64BITINT" in str(config.get("openblas configuration", "")):
        assert found.int_bits == 64        # NumPy 2 wheels: scipy-openblas64, ILP64
    assert blas.find() is blas.find()       # cached


def test_find_degrades_to_none_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(blas, "candidate_libraries", lambda: [str(tmp_path / "libopenblas.so")])
    monkeypatch.setitem(__import__("sys").modules, "scipy.linalg.cython_blas", None)   # import fails
    found, reason = blas.search()
    assert found is None
    assert reason.startswith("no BLAS found; matrix products run on NumPy")
    assert "libopenblas.so: not loaded in this process" in reason
    assert "SciPy is not installed" in reason
    monkeypatch.setattr(blas, "candidate_libraries", lambda: [])
    monkeypatch.setattr(blas, "from_scipy", lambda: (_ for _ in ()).throw(LookupError("scipy: none")))
    assert blas.search() == (None, "no BLAS found; matrix products run on NumPy: scipy: none")


def test_only_libraries_already_loaded_are_used():
    path = build.build("int tc_blas_test_unloaded = 1;\n")    # a fresh file nobody has loaded
    with pytest.raises(LookupError, match="not loaded in this process"):
        blas.from_library(path)
    ctypes.CDLL(path)
    with pytest.raises(LookupError, match=r"no sgemm/dgemm/sgemv/dgemv under any known name"):
        blas.from_library(path)
