"""The backward driver: broadcasting undone centrally, accumulation, custom rules, errors."""
import numpy as np
import pytest

import tracec as tc
from tracec.trace.autodiff import backward, match_type
from tracec.trace.graph import Constant, toposort
from tracec.trace.ops import OPS, Op
from tracec.trace.tensor import Tensor
from tracec.trace.types import TensorType


@pytest.fixture
def custom_op():
    """A user op (x * exp(x)) registered for one test, then removed from the table."""
    def infer(inputs):
        return [inputs[0].type.with_weak(False)]
    op = Op("test_xexp", lambda x: x * np.exp(x), infer, kind="elemwise")
    yield op
    del OPS["test_xexp"]


def test_match_type_sums_broadcast_dimensions():
    var = tc.tensor("float64", (True, False), name="row").variable
    g = tc.tensor("float64", (False, False, False), name="g")
    matched = match_type(g, var)
    assert matched.type == var.type
    f = tc.function([g], Tensor(matched))
    out = f(np.ones((2, 3, 4)))
    np.testing.assert_array_equal(out, np.full((1, 4), 6.0))


def test_match_type_broadcasts_a_smaller_gradient_and_casts():
    var = tc.fmatrix("m").variable
    g = Tensor(Constant(np.float64(2.0)))
    matched = match_type(g, var)
    assert matched.type == var.type
    f = tc.function([Tensor(var)], Tensor(matched))
    out = f(np.zeros((2, 3), np.float32))
    assert out.dtype == np.float32 and out.shape == (2, 3) and np.all(out == 2)


@pytest.mark.parametrize("sx, sy", [((3, 1), (1, 4)), ((1,), (2, 3)), ((), (2, 2)), ((2, 1, 3), (4, 1))])
def test_broadcast_undone_once(sx, sy):
    f = lambda x, y: np.sum(np.exp(x) * np.sin(y) + x / (1 + y ** 2))  # noqa: E731
    x, y = np.random.default_rng(0).standard_normal(sx), np.random.default_rng(1).standard_normal(sy)
    gx, gy = tc.grad(f, argnums=(0, 1))(x, y)
    assert gx.shape == x.shape and gy.shape == y.shape
    tc.verify_grad(f, [x, y])


def test_reused_variable_accumulates():
    x = tc.dscalar("x")
    y = x * x
    z = y * y + y + x
    g = tc.grad(z, x)
    v = 1.5
    assert float(tc.function([x], g)(v)) == pytest.approx(4 * v ** 3 + 2 * v + 1)


def test_gradient_with_respect_to_an_intermediate():
    x = tc.dvector("x")
    h = np.sin(x)
    cost = np.sum(h ** 2)
    gh, gx = tc.grad(cost, [h, x])
    f = tc.function([x], [gh, gx])
    xv = np.array([0.3, 1.1])
    ghv, gxv = f(xv)
    np.testing.assert_allclose(ghv, 2 * np.sin(xv))
    np.testing.assert_allclose(gxv, 2 * np.sin(xv) * np.cos(xv))


def test_unused_outputs_of_multi_output_ops():
    x = tc.dvector("x")
    q, r = np.divmod(x, 0.75)
    parts = np.split(x, [1])
    cost = np.sum(r * 2) + np.sum(parts[1] ** 2)
    g = tc.function([x], tc.grad(cost, x))([1.0, 2.0, 3.0])
    np.testing.assert_allclose(g, [2.0, 2.0 + 4.0, 2.0 + 6.0])


def test_deep_graph_has_no_recursion_limit():
    x = tc.dscalar("x")
    y = x
    for _ in range(800):  # a chain 3,200 nodes deep, then its gradient
        y = np.sin(y) * 0.5 + y
    g = tc.grad(y, x)
    assert np.isfinite(tc.function([x], g, mode="FAST_COMPILE")(0.1))


def test_custom_op_without_rule_names_op_and_line(custom_op):
    x = tc.dvector("x")
    y = Tensor(custom_op(x.variable))  # the line the error must name
    with pytest.raises(tc.GradientNotDefinedError) as info:
        tc.grad(np.sum(y), x)
    text = str(info.value)
    assert "'test_xexp'" in text and "test_autodiff.py" in text and "custom_op(x.variable)" in text


def test_custom_op_rule_first_and_second_order(custom_op):
    # d/dx x e^x = (1 + x) e^x, written with NumPy calls: differentiable again
    custom_op.grad = lambda node, inputs, outputs, grads: [grads[0] * (1 + inputs[0]) * np.exp(inputs[0])]
    f = lambda x: np.sum(Tensor(custom_op(x.variable)))  # noqa: E731
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(tc.grad(f)(x), (1 + x) * np.exp(x))
    tc.verify_grad(lambda x: Tensor(custom_op(x.variable)), [x])
    tc.verify_grad(tc.grad(f), [x])


def test_rule_returning_wrong_count_is_reported(custom_op):
    custom_op.grad = lambda node, inputs, outputs, grads: []
    x = tc.dvector("x")
    with pytest.raises(ValueError, match="returned 0 gradients for 1 inputs"):
        tc.grad(np.sum(Tensor(custom_op(x.variable))), x)


def test_backward_seeds_and_types():
    x = tc.dmatrix("x")
    y = np.tanh(x)
    seed = tc.dmatrix("seed")
    (g,) = backward([(y.variable, seed.variable)], [x.variable])
    assert g.type == x.type
    f = tc.function([x, seed], Tensor(g))
    xv, sv = np.random.default_rng(0).standard_normal((2, 2)), np.ones((2, 2))
    np.testing.assert_allclose(f(xv, sv), 1 - np.tanh(xv) ** 2)


def test_weak_scalar_argument():
    g = tc.grad(lambda x, y: x * y + x ** 2, argnums=(0, 1))(2.0, 3.0)
    assert [float(v) for v in g] == [7.0, 2.0]


def test_gradient_graph_size_is_a_small_multiple():
    """Reverse mode costs a small constant factor of the forward graph."""
    x, W1, W2 = tc.dmatrix("x"), tc.dmatrix("W1"), tc.dmatrix("W2")
    h = np.tanh(x @ W1)
    loss = np.mean((h @ W2) ** 2)
    grads = tc.grad(loss, [W1, W2])
    n_fwd = len(toposort([loss.variable]))
    n_all = len(toposort([g.variable for g in grads]))
    # plus, per input, the guard that sums its gradient to its run-time shape (sum_to, shape_i)
    assert n_all <= 6 * n_fwd + 3 * len(grads), (n_fwd, n_all)


def test_tensor_type_of_rule_inputs():
    # rules see Tensors (NumPy calls work on them) and the node's params
    seen = {}
    original = OPS["sum"].grad

    def spy(node, inputs, outputs, grads):
        seen["types"] = [type(t) for t in inputs + outputs + grads]
        seen["axis"] = node.params["axis"]
        return original(node, inputs, outputs, grads)
    OPS["sum"].grad = spy
    try:
        x = tc.dmatrix("x")
        tc.grad(np.sum(x, axis=1).sum(), x)
    finally:
        OPS["sum"].grad = original
    assert set(seen["types"]) == {Tensor} and seen["axis"] in ((1,), (0,))
    assert TensorType("float64", ()).ndim == 0
