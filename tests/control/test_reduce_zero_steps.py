"""tc.reduce / foldl / foldr give the initial value when no step runs (functools.reduce's rule)."""
import functools

import numpy as np
import pytest

import tracec as tc


@pytest.mark.parametrize("n", [0, 1, 4])
@pytest.mark.parametrize("fold", ["reduce", "foldl", "foldr"])
def test_folds_match_functools_reduce(fold, n):
    x = tc.vector("x")
    out, _ = getattr(tc, fold)(lambda v, acc: acc * 0.5 + v * v, sequences=x, outputs_info=np.float64(1.5))
    f = tc.function([x], out)
    values = np.arange(1.0, n + 1.0)
    order = values[::-1] if fold == "foldr" else values
    want = functools.reduce(lambda acc, v: acc * 0.5 + v * v, order, 1.5)
    assert float(f(values)) == pytest.approx(want, rel=1e-14)


def test_gradient_of_a_fold_with_and_without_steps():
    x, a = tc.vector("x"), tc.dscalar("a")
    out, _ = tc.foldl(lambda v, acc: acc * a + np.sin(v), sequences=x, outputs_info=a)
    g = tc.function([x, a], tc.grad(out, [x, a]))
    gx, ga = g(np.zeros(0), 2.0)
    assert gx.shape == (0,) and float(ga) == 1.0  # out = a when no step runs
    tc.verify_grad(lambda x, a: tc.foldl(lambda v, acc: acc * a + np.sin(v), sequences=x, outputs_info=a)[0],
                   [np.array([0.3, -0.2, 0.5]), np.array(0.7)])


def test_a_fold_over_several_taps_or_no_initial_value_still_needs_a_step():
    x = tc.vector("x")
    out, _ = tc.reduce(lambda v: v * 2, sequences=x, outputs_info=None)
    f = tc.function([x], out)
    assert float(f(np.array([1.0, 3.0]))) == 6.0
    with pytest.raises(IndexError):
        f(np.zeros(0))
