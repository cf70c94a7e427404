"""Profiling: per node and per op times, the compile-time breakdown, summaries,
tc.profile.report() (also at exit with the flag) and hints about slowness."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import tracec as tc
from tracec import profiling

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        return next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith(f"# {marker}"))


def step(x, W):
    h = np.tanh(x @ W)  # TANH_LINE
    return h.sum(axis=1)


def test_compile_profile_counts_calls_nodes_and_ops():
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        f = tc.compile(step, profile=True, mode=mode)
        x, W = np.ones((8, 4)), np.ones((4, 3))
        for _ in range(5):
            np.testing.assert_allclose(f(x, W), step(x, W))
        p = f.profile
        assert p.calls == 5 and p.traces == 1 and p.call_time > 0
        assert all(calls == 5 for _, calls, _ in p.by_node())
        ops = {name for name, _, _ in p.by_op()}
        assert "matmul" in ops or "dot" in ops or "gemm" in ops, ops
        assert 0 < p.node_time <= p.call_time
        assert {"trace", "build"} <= set(p.compile_times) and "build/optimize" in p.compile_times
        text = p.summary(file=io.StringIO())
        assert "Profile of step" in text and "5 call(s)" in text and "Per op" in text and "Per node" in text
        assert f"{THIS_FILE}:{line_of('TANH_LINE')}" in text and "%" in text and "optimize" in text


def test_function_profile_and_reset():
    x = tc.dvector("x")
    f = tc.function([x], np.exp(x).sum(), profile=True, name="expsum")
    f(np.ones(10))
    f(np.ones(10))
    assert f.profile.calls == 2 and f.profile.by_op()[0][1] == 2
    assert f.profile.compile_times["build"][0] == 1
    f.profile.reset()
    assert f.profile.calls == 0 and f.profile.nodes == {}
    assert tc.function([x], x + 1).profile is None


def test_config_flag_profiles_everything_and_report_lists_it():
    with tc.config.change(profile=True):
        f = tc.compile(lambda v: v * 2, name="doubler")
        f(np.ones(3))
        g = tc.compile(lambda v: v * 3, name="never_called")
    assert f.profile is not None and g.profile is not None
    late = tc.compile(lambda v: v * 4, name="flag_set_later")
    assert late.profile is None
    with tc.config.change(profile=True):
        late(np.ones(3))  # the flag is also honoured at the first trace
    assert late.profile.calls == 1
    text = tc.profile.report(file=io.StringIO())
    assert "Profile of doubler" in text and "never_called" not in text
    assert tc.compile(lambda v: v, profile=False)._profile_flag is False


def test_report_at_exit_with_the_flag():
    code = ("import numpy as np, tracec as tc\n"
            "f = tc.compile(lambda x: np.exp(x), name='at_exit_fn')\n"
            "f(np.ones(3))\n")
    env = dict(os.environ, TRACEC_FLAGS="profile=True")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "Profile of at_exit_fn" in out.stderr, out.stderr
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "TRACEC_FLAGS"})
    assert "Profile of" not in quiet.stderr


def test_hint_float64_under_float32_floatx():
    def f(x, w):
        return np.tanh(x * w)  # MIXED_LINE
    with tc.config.change(floatX="float32"):
        g = tc.compile(f, profile=True, mode="FAST_COMPILE")
        g(np.ones(4, np.float32), np.ones(4))   # w is float64: everything upcasts
        hints = g.profile.hints()
    assert any("floatX is float32" in h and "the argument 'w'" in h for h in hints), hints
    h32 = tc.compile(f, profile=True, mode="FAST_COMPILE")
    with tc.config.change(floatX="float32"):
        h32(np.ones(4, np.float32), np.ones(4, np.float32))
        assert not any("float32" in h for h in h32.profile.hints())


def test_hint_retrace_on_every_call():
    g = tc.compile(lambda x: x + 1, profile=True, mode="FAST_COMPILE")
    for dt in (np.float64, np.float32, np.int32, np.int64):
        g(np.ones(2, dt))
    hints = g.profile.hints()
    assert any("traced 4 times in 4 call(s)" in h and "explain_retrace" in h for h in hints), hints
    assert "Hints" in g.profile.summary(file=io.StringIO())


def test_hint_scan_dominating():
    x = tc.dvector("x")
    out, _ = tc.scan(lambda v, acc: acc + np.sin(v), sequences=[x], outputs_info=[np.float64(0.0)])
    f = tc.function([x], out[-1], profile=True, mode="FAST_COMPILE")
    f(np.ones(300))
    assert any("scan" in h and "NumPy interpreter" in h for h in f.profile.hints())


def test_phase_and_note_api():
    p = profiling.Profile("manual")
    with profiling.phase("build", p):
        with profiling.phase("optimize: fusion"):
            profiling.note("C cache", "hit")
        profiling.note("C cache", "miss")
        profiling.note("C cache", "hit")
    with profiling.phase("outside"):  # no profile being compiled: nothing recorded, no error
        profiling.note("C cache", "hit")
    assert list(p.compile_times) == ["build", "build/optimize: fusion"]
    assert p.notes["C cache"] == {"hit": 2, "miss": 1}
    text = p.summary(file=io.StringIO())
    assert "    optimize: fusion" in text and "C cache: 2 hit, 1 miss" in text


def test_profile_reports_each_optimizer_pass():
    @tc.compile(profile=True)
    def softplus_times(x, y):
        return np.log(1 + np.exp(x)) * y

    softplus_times(np.ones(3), np.ones(3))
    text = softplus_times.profile.summary(file=io.StringIO())
    assert "Optimizer passes" in text
    stabilize = next(line for line in text.splitlines() if line.strip().startswith("stabilize") and "softplus" in line)
    assert "softplus_from_log1p" in stabilize
    assert "optimize" in text and "fusion" in text


def test_a_loop_that_is_not_replayed_gets_a_hint_naming_the_reason():
    with tc.config.change(c_compile_after=0):
        A = tc.matrix("A")

        def step(A):
            A[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
            return A

        As, _ = tc.scan(step, outputs_info=A, n_steps=200)
        f = tc.function([A], As[-1], profile=True, mode="FAST_RUN")
        for _ in range(2):
            f(np.ones((40, 40)))
        if f.executable.backend.__class__.__name__ != "ProfilingCExecutor":
            pytest.skip("no C compiler: the interpreter's loop hint is tested above")
        hints = f.profile.hints()
        assert any("not replayed" in h and "setitem" in h for h in hints), hints
        x0 = tc.dscalar("x0")
        xs, _ = tc.scan(lambda x: 0.999 * x + 1, outputs_info=x0, n_steps=1000)
        g = tc.function([x0], xs[-1], profile=True, mode="FAST_RUN")
        for _ in range(2):
            g(0.0)
        assert not any("loop" in h for h in g.profile.hints())
