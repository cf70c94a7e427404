"""Array creation with traced sizes: alloc (zeros/ones/empty/full and *_like), arange, eye,
identity, linspace."""
import numpy as np
import pytest

import tracec as tc

from cases import DTYPES, check, check_same_error, rand


def X(shape=(3, 4), dtype="float64", seed=0):
    return rand(shape, dtype, -5, 5, seed=seed)


@pytest.mark.parametrize("dtype", [None] + DTYPES + ["int8", "float16"], ids=str)
def test_zeros_ones_full_traced_sizes(dtype):
    x = X()
    kw = {} if dtype is None else {"dtype": dtype}
    check(lambda x: np.zeros(x.shape, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.ones((x.shape[0], 2), **kw), x, expect_ops=["alloc"])
    check(lambda x: np.zeros(x.shape[1], **kw), x, expect_ops=["alloc"])
    check(lambda x: np.ones((2, x.shape[1], 1), **kw) + 0, x, expect_ops=["alloc"])
    check(lambda x: np.full(x.shape, 7, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.full((x.shape[0],), 2.5, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.empty(x.shape, **kw), x, values=False, expect_ops=["alloc"])
    check(lambda x, n: np.zeros((n, n), **kw), x, 3, expect_ops=["alloc"])


def test_full_fill_value_dtypes():
    x = X()
    check(lambda x: np.full(x.shape, 3), x)             # Python int -> int64
    check(lambda x: np.full(x.shape, 3.5), x)           # Python float -> float64
    check(lambda x: np.full(x.shape, True), x)
    check(lambda x: np.full(x.shape, np.float32(1.5)), x)
    check(lambda x: np.full(x.shape, x[0, 0]), x)       # a traced fill value
    check(lambda x, v: np.full(x.shape[0], v), x, 2.5)  # a traced Python scalar fill value
    check(lambda x, v: np.full(x.shape[0], v), x, 2)
    check(lambda x: np.full(x.shape, x.sum(), dtype="float32"), x)


@pytest.mark.parametrize("dtype", [None, "float32", "int32", "bool"], ids=str)
@pytest.mark.parametrize("src", DTYPES)
def test_like(src, dtype):
    x = X((3, 1, 4), src)
    kw = {} if dtype is None else {"dtype": dtype}
    check(lambda x: np.zeros_like(x, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.ones_like(x, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.full_like(x, 2, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.full_like(x, 2.7, **kw), x, expect_ops=["alloc"])
    check(lambda x: np.empty_like(x, **kw), x, values=False, expect_ops=["alloc"])
    check(lambda x: np.zeros_like(x, shape=(2, x.shape[2]), **kw), x, expect_ops=["alloc"])


def test_like_scalars_and_mutation():
    check(lambda s: np.zeros_like(s), 2.5)
    check(lambda s: np.ones_like(s), 3)
    check(lambda s: np.full_like(s, 7), np.float32(2))

    def build(x):
        out = np.zeros_like(x)
        out[0] = 1
        out[1:] = x[1:] * 2
        return out
    check(build, X())


def test_alloc_errors():
    assert check_same_error(lambda x: np.zeros((x.shape[0], 2.5)), X())
    f = tc.compile(lambda x, n: np.zeros((n, 2)))
    with pytest.raises(ValueError):
        f(X(), -1)  # a negative size known only at run time


ARANGE = [(lambda n: np.arange(n)), (lambda n: np.arange(1, n)), (lambda n: np.arange(n, 0, -1)),
          (lambda n: np.arange(0, n, 2)), (lambda n: np.arange(n, dtype="float32")),
          (lambda n: np.arange(0.5, n)), (lambda n: np.arange(0, n, 0.5)),
          (lambda n: np.arange(n, 2 * n, dtype=np.int32)), (lambda n: np.arange(-n, n, 3)),
          (lambda n: np.arange(start=1, stop=n)), (lambda n: np.arange(stop=n)), (lambda n: np.arange(n, n)),
          (lambda n: np.arange(n, dtype=bool) if False else np.arange(n) > 2)]


@pytest.mark.parametrize("fn", ARANGE, ids=range(len(ARANGE)))
def test_arange(fn):
    x = X((5, 2))
    check(lambda x: fn(x.shape[0]), x, expect_ops=["arange"])
    check(lambda n: fn(n), 6, expect_ops=["arange"])
    check(lambda n: fn(n), np.int32(4), expect_ops=["arange"])


def test_arange_float_and_mixed_arguments():
    check(lambda s: np.arange(s), 4.0)
    check(lambda s: np.arange(0, 3, s), 0.25)
    check(lambda s: np.arange(s, 5), np.float32(1.5))
    check(lambda n: np.arange(np.int32(0), n), np.int32(5))
    check(lambda n: np.arange(n, dtype="float32") * 2.5, 4)
    check(lambda x: x * np.arange(x.shape[-1]), X((3, 4), "float32"))
    check(lambda x: x + np.arange(x.shape[-1]), X((3, 4), "int32"))


@pytest.mark.parametrize("dtype", [None, "float32", "int32", "bool"], ids=str)
def test_eye_identity(dtype):
    kw = {} if dtype is None else {"dtype": dtype}
    x = X((3, 5))
    check(lambda x: np.eye(x.shape[0], **kw), x, expect_ops=["eye"])
    check(lambda x: np.eye(x.shape[0], x.shape[1], **kw), x, expect_ops=["eye"])
    check(lambda x: np.eye(x.shape[0], x.shape[1], 1, **kw), x, expect_ops=["eye"])
    check(lambda x: np.eye(x.shape[1], k=-2, **kw), x, expect_ops=["eye"])
    check(lambda x: np.eye(x.shape[0], M=2, **kw), x, expect_ops=["eye"])
    check(lambda n, k: np.eye(n, k=k, **kw), 4, 1, expect_ops=["eye"])
    check(lambda x: np.identity(x.shape[1], **kw), x, expect_ops=["eye"])
    check(lambda n: np.identity(n, **kw), 1, expect_ops=["eye"])
    check(lambda x: x @ np.eye(x.shape[1], **kw), x, expect_ops=["eye"])


@pytest.mark.parametrize("endpoint", [True, False])
@pytest.mark.parametrize("dtype", [None, "float32", "int64"], ids=str)
def test_linspace(dtype, endpoint):
    kw = {} if dtype is None else {"dtype": dtype}
    x = X((7, 2))
    check(lambda x: np.linspace(0, 1, x.shape[0], endpoint=endpoint, **kw), x, expect_ops=["linspace"])
    check(lambda x: np.linspace(-2.5, 4, x.shape[0], endpoint=endpoint, **kw), x, expect_ops=["linspace"])
    check(lambda n: np.linspace(0, 10, n, endpoint=endpoint, **kw), 5, expect_ops=["linspace"])
    check(lambda n: np.linspace(0, 10, n, endpoint=endpoint, **kw), 1, expect_ops=["linspace"])
    check(lambda a, b: np.linspace(a, b, 4, endpoint=endpoint, **kw), 1.0, 3.0, expect_ops=["linspace"])
    check(lambda x: np.linspace(x[0, 0], x[1, 0], 6, endpoint=endpoint, **kw), x, expect_ops=["linspace"])
    check(lambda x: np.linspace(0, 1, x.shape[0], endpoint=endpoint, **kw),
          X((7, 2), "float32"), expect_ops=["linspace"])


def test_linspace_strong_scalar_endpoints():
    check(lambda a: np.linspace(a, 2, 5), np.float32(1))
    check(lambda a: np.linspace(0, a, 5), np.int32(4))
    check(lambda x: np.linspace(0, x.sum(), 3), X((3,), "float32"))


def test_creation_with_concrete_arguments():
    # nothing traced in the arguments: a constant, or (zeros/ones/empty/full) a traced buffer
    check(lambda x: x + np.arange(4), X((3, 4)))
    check(lambda x: x * np.eye(4)[0], X((3, 4)))
    check(lambda x: np.zeros(3) + x[0, :3], X((3, 4)))
    check(lambda x: np.full((2, 4), 1.5, dtype=np.float32) * x[:2], X((3, 4)))

    def fill_buffer(x):
        out = np.zeros((3, 2))
        out[0] = x[0, :2]
        out[1:, 1] = x[1:, 3] * 2
        return out
    check(fill_buffer, X((3, 4)))


def test_array_and_asarray():
    x = X((3, 4), "int32")
    check(lambda x: np.array(x, dtype="float32"), x)
    check(lambda x: np.asarray(x), x)
    check(lambda x: np.asarray(x, dtype=np.int64), x)
    check(lambda x: np.array(x[0]) + 1, x)
    check(lambda s: np.asarray(s), 2.5)
    check(lambda s: np.asarray(s) * np.float32(2), 3)
