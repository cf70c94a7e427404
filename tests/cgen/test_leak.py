"""Calling compiled functions does not leak: after a warm-up, a million calls of a small
FAST_RUN function (and many calls that raise) leave the resident memory where it was, and
the arguments' reference counts too.

The resident set size comes from /proc/self/statm (Linux); each check allows a small slack
for the allocator, far below what one leaked array or object per call adds up to.
"""
import gc
import os
import sys

import numpy as np
import pytest

import tracec as tc

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")

SLACK = 1 << 20  # bytes: a leak of one byte per call over the million shows


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _growth(call, warmup, calls, watched=()):
    """Resident memory added by `calls` calls of `call` after `warmup` calls, and the references
    they added to the objects `watched` (the arguments)."""
    for _ in range(warmup):
        call()
    gc.collect()
    before, refs = _rss(), [sys.getrefcount(o) for o in watched]
    for _ in range(calls):
        call()
    gc.collect()
    after = [sys.getrefcount(o) for o in watched]  # (counted the same way as before the calls)
    return _rss() - before, [a - b for a, b in zip(after, refs)]


def _raising(fn, *args, expected):
    def call():
        try:
            fn(*args)
        except expected:
            pass
        else:
            raise AssertionError(f"{fn} did not raise {expected.__name__}")
    return call


@pytest.mark.parametrize("args", ["arrays", "reversed view", "python float"])
def test_a_million_calls_keep_memory_flat(args):
    f = tc.compile(lambda x, y: x * y + 1)
    x = np.array([1.0, 2.0, 3.0])
    y = {"arrays": np.arange(3.0), "reversed view": np.arange(3.0)[::-1], "python float": 2.5}[args]
    expected = x * y + 1
    calls = 1_000_000 if args != "python float" else 100_000  # (the general call path is slower)
    grown, refs = _growth(lambda: f(x, y), calls // 10, calls, (x, y))
    assert grown < SLACK, f"{calls} calls added {grown / 2 ** 20:.1f} MiB"
    assert refs == [0, 0], f"the calls added references to the arguments: {refs}"
    np.testing.assert_array_equal(f(x, y), expected)


def test_shared_variable_updates_keep_memory_flat():
    w = tc.shared(np.zeros(3), name="w")
    x = tc.dvector("x")
    step = tc.function([x], (w * x).sum(), updates=[(w, w * 0.5 + x)])
    xv = np.array([1.0, -2.0, 4.0])
    grown, refs = _growth(lambda: step(xv), 100_000, 1_000_000, (xv,))
    assert grown < SLACK, f"a million calls with an update added {grown / 2 ** 20:.1f} MiB"
    assert refs == [0], f"the calls added references to the argument: {refs}"
    np.testing.assert_allclose(w.get_value(), 2 * xv)  # the fixed point of w -> w / 2 + x


def test_calls_that_raise_keep_memory_flat():
    # a run-time shape mismatch inside a kernel, and an argument the checks refuse
    f = tc.compile(lambda x, y: x * y + 1)
    x, bad = np.ones(3), np.ones(4)
    v = tc.dvector("v")
    g = tc.function([v], v * 2 + 1)
    matrix = np.ones((2, 2))
    for call, args in ((_raising(f, x, bad, expected=ValueError), (x, bad)),
                       (_raising(g, matrix, expected=TypeError), (matrix,))):
        grown, refs = _growth(call, 10_000, 100_000, args)
        assert grown < SLACK // 4, f"100000 raising calls added {grown / 2 ** 20:.1f} MiB"
        assert refs == [0] * len(args), f"the failing calls added references to the arguments: {refs}"
    np.testing.assert_array_equal(f(x, x), x * x + 1)  # and the function still works
