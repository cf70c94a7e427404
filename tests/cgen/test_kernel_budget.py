"""Fused kernels stay within the arrays one C kernel takes (inputs, constants, outputs):
the optimizer splits larger groups, and every piece really runs in C (a kernel over the
runtime's limit would run NumPy while `describe()` said "C kernel")."""
import numpy as np

import tracec as tc
from tracec.cgen import executor
from tracec.opt.fusion import MAX_KERNEL_ARRAYS


def _steps(fn):
    """(op name, ran native code) of each step of a tc.function's runner."""
    return [(s.node.op.name, s.native) for s in fn.executable.backend.runner.steps_list]


def _kernel_arrays(fn):
    """Arrays each compiled kernel of `fn` takes, from the specs the executor lowered."""
    backend = fn.executable.backend
    return [len(backend.specs[id(n)].args) + len(backend.specs[id(n)].outputs) for n in backend._lowered]


def test_the_optimizer_budget_is_the_runtime_limit():
    assert MAX_KERNEL_ARRAYS == executor.MAX_KERNEL_ARGS


def test_an_expression_of_70_inputs_runs_as_c_kernels():
    xs = [tc.dvector(f"x{i}") for i in range(70)]
    total = xs[0] * 0.5
    for i, x in enumerate(xs[1:]):
        total = total + np.sin(x) * (i + 1.5)  # 70 inputs, 139 constants: at least 4 kernels
    fn = tc.function(xs, total)
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(5) for _ in xs]
    expected = values[0] * 0.5
    for i, v in enumerate(values[1:]):
        expected = expected + np.sin(v) * (i + 1.5)
    np.testing.assert_allclose(fn(*values), expected, rtol=1e-13)
    steps = _steps(fn)
    assert len(steps) >= 4 and all(native for _, native in steps), steps
    assert {op for op, _ in steps} <= {"fused_elemwise", "inplace_elemwise"}, steps
    assert max(_kernel_arrays(fn)) <= MAX_KERNEL_ARRAYS
    assert "NumPy" not in fn.executable.backend.describe()


def test_multi_output_kernels_of_70_outputs_run_in_c():
    # 70 products of x by a scalar each: one shape, so they merge; 32 of them in one kernel
    # would take x, 32 scalars and 32 outputs: 65 arrays
    x, ss = tc.dvector("x"), [tc.dscalar(f"s{i}") for i in range(70)]
    fn = tc.function([x] + ss, [np.exp(x) * s for s in ss])
    rng = np.random.default_rng(1)
    x_value, s_values = rng.standard_normal(4), list(rng.standard_normal(70))
    got = fn(x_value, *s_values)
    assert len(got) == 70
    for g, s in zip(got, s_values):
        np.testing.assert_allclose(g, np.exp(x_value) * s, rtol=1e-13)
    steps = _steps(fn)
    assert steps and all(native for _, native in steps), steps
    assert any(len(n.outputs) > 1 for n, _ in fn.executable.backend.steps)  # merged, within the limit
    assert max(_kernel_arrays(fn)) <= MAX_KERNEL_ARRAYS
