"""The differentiation API: Theano form, functional form, Lop/Rop, jacobian/hessian,
stop_gradient and verify_grad."""
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.trace.graph import toposort

RNG = np.random.default_rng(42)


# -- Theano form ---------------------------------------------------------------------------
def test_seed_logistic_regression():
    """The seed example, checked against the hand-derived gradient."""
    N, feats = 40, 7
    D = (RNG.standard_normal((N, feats)), RNG.integers(0, 2, N).astype(np.float64))
    x, y = tc.dmatrix("x"), tc.dvector("y")
    W = tc.shared(RNG.standard_normal(feats), name="W")
    b = tc.shared(0.0, name="b")
    p_1 = 1 / (1 + np.exp(-x @ W - b))
    xent = -y * np.log(p_1) - (1 - y) * np.log(1 - p_1)
    C = xent.mean() + 0.01 * (W ** 2).sum()
    dC_dW, dC_db = tc.grad(C, [W, b])
    train = tc.function([x, y], C, updates=[(W, W - 0.1 * dC_dW), (b, b - 0.1 * dC_db)])
    for _ in range(3):
        w0, b0 = W.get_value(), float(b.get_value())
        p = 1 / (1 + np.exp(-D[0] @ w0 - b0))
        cost = np.mean(-D[1] * np.log(p) - (1 - D[1]) * np.log(1 - p)) + 0.01 * np.sum(w0 ** 2)
        np.testing.assert_allclose(train(*D), cost, rtol=1e-12)
        np.testing.assert_allclose(W.get_value(), w0 - 0.1 * (D[0].T @ (p - D[1]) / N + 0.02 * w0), rtol=1e-12)
        np.testing.assert_allclose(b.get_value(), b0 - 0.1 * np.mean(p - D[1]), rtol=1e-12)


def test_single_and_list_wrt():
    x = tc.dvector("x")
    g = tc.grad(np.sum(x ** 2), x)
    assert isinstance(g, tc.Tensor) and g.type == x.type
    gs = tc.grad(np.sum(x ** 2), [x])
    assert isinstance(gs, list) and len(gs) == 1
    np.testing.assert_allclose(tc.function([x], g)([1.0, 2.0]), [2.0, 4.0])


def test_gradient_keeps_dtype_and_broadcast_pattern():
    x = tc.fmatrix("x")
    row = tc.tensor("float32", (True, False), name="row")
    c = np.sum(np.exp(x) * row)
    gx, grow = tc.grad(c, [x, row])
    assert gx.type == x.type and grow.type == row.type
    f = tc.function([x, row], [gx, grow])
    xv, rv = np.ones((3, 2), np.float32), np.array([[1.0, 2.0]], np.float32)
    out = f(xv, rv)
    assert out[0].dtype == np.float32 and out[1].shape == (1, 2)
    np.testing.assert_allclose(out[1], np.e * 3 * np.ones((1, 2)), rtol=1e-6)


def test_cost_must_be_scalar():
    x = tc.dvector("x")
    with pytest.raises(TypeError, match="scalar"):
        tc.grad(x * 2, x)


def test_disconnected_inputs():
    x, y = tc.dvector("x"), tc.dvector("why")
    cost = np.sum(x ** 2)
    with pytest.raises(tc.DisconnectedInputError, match="'why'"):
        tc.grad(cost, [x, y])
    with pytest.warns(UserWarning, match="'why'"):
        tc.grad(cost, [x, y], disconnected_inputs="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx, gy = tc.grad(cost, [x, y], disconnected_inputs="ignore")
    f = tc.function([y], gy)
    np.testing.assert_array_equal(f([3.0, 4.0, 5.0]), np.zeros(3))


def test_connected_through_non_differentiable_op_is_zero_not_an_error():
    x = tc.dvector("x")
    g = tc.grad(np.sum(np.floor(x)), x)  # connected: no error, zero gradient
    np.testing.assert_array_equal(tc.function([x], g)([1.5, 2.5]), [0.0, 0.0])


def test_consider_constant():
    x = tc.dscalar("x")
    y = x ** 2
    z = y * x
    g = tc.grad(z, x, consider_constant=[y])
    assert float(tc.function([x], g)(3.0)) == 9.0  # d(y x)/dx with y fixed
    with pytest.raises(tc.DisconnectedInputError, match="does not depend"):
        tc.grad(y * 2, x, consider_constant=[y])


def test_known_grads():
    x = tc.dvector("x")
    h = np.tanh(x)
    gh = tc.dvector("gh")
    gx = tc.grad(None, x, known_grads={h: gh})
    xv, gv = np.array([0.1, -0.4]), np.array([2.0, 3.0])
    np.testing.assert_allclose(tc.function([x, gh], gx)(xv, gv), gv * (1 - np.tanh(xv) ** 2))


def test_integer_inputs_get_no_gradient():
    x, k = tc.dvector("x"), tc.ivector("k")
    cost = np.sum(x[k] * k)
    gx, gk = tc.grad(cost, [x, k])
    assert gk.dtype == np.dtype(tc.config.floatX)
    f = tc.function([x, k], [gx, gk])
    gxv, gkv = f([1.0, 2.0, 3.0], np.array([0, 2, 2], np.int32))
    np.testing.assert_array_equal(gxv, [0, 0, 4])
    np.testing.assert_array_equal(gkv, [0, 0, 0])


def test_missing_rule_names_op_and_user_line():
    x = tc.dvector("x")
    J = tc.jacobian(x ** 2, x)  # the jacobian op has no rule of its own
    with pytest.raises(NotImplementedError, match=r"'jacobian'.*test_grad\.py:\d+.*tc\.jacobian\(x \*\* 2, x\)"):
        tc.grad(np.sum(J), x)


def test_no_dead_forward_nodes():
    """Only the forward values the derivative needs are computed."""
    x, y = tc.dvector("x"), tc.dvector("y")
    unused = np.exp(np.sin(y)) @ np.cos(y)     # feeds the cost, not d cost / dx
    cost = np.sum(x * 3.0) + unused
    g = tc.grad(cost, x)
    ops = {n.op.name for n in toposort([g.variable])}
    assert not ops & {"exp", "sin", "cos", "matmul"}, ops
    f = tc.function([x], g)  # y is not even an input
    np.testing.assert_allclose(f([1.0, 2.0]), [3.0, 3.0])


def test_gradient_of_gradient_theano_form():
    x = tc.dscalar("x")
    g = tc.grad(np.sin(x) * x, x)
    gg = tc.grad(g, x)
    f = tc.function([x], [g, gg])
    v = 0.7
    np.testing.assert_allclose(f(v), [np.cos(v) * v + np.sin(v), -np.sin(v) * v + 2 * np.cos(v)])


def test_shared_variable_inside_compile():
    W = tc.shared(np.array([1.0, 2.0]), name="W")

    @tc.compile
    def step(x):
        loss = np.sum((x @ W) ** 2)
        g = tc.grad(loss, W)
        W[...] -= 0.1 * g
        return loss

    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    step(x)
    np.testing.assert_allclose(W.get_value(), [1.0 - 0.2, 2.0 - 0.4])


# -- functional form ------------------------------------------------------------------------
def test_functional_grad_eager():
    g = tc.grad(lambda x: np.sum(np.sin(x) * x))
    x = RNG.standard_normal(5)
    np.testing.assert_allclose(g(x), np.cos(x) * x + np.sin(x))
    assert g(x).flags.writeable


def test_functional_argnums_and_pytrees():
    def loss(params, x, y):
        pred = np.tanh(x @ params["W"] + params["b"])
        return np.mean((pred - y) ** 2)

    params = {"W": RNG.standard_normal((3, 2)), "b": np.zeros(2)}
    x, y = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    g = tc.grad(loss)(params, x, y)
    assert set(g) == {"W", "b"} and g["W"].shape == (3, 2)
    pred = np.tanh(x @ params["W"] + params["b"])
    dpre = 2 * (pred - y) / pred.size * (1 - pred ** 2)
    np.testing.assert_allclose(g["W"], x.T @ dpre)
    np.testing.assert_allclose(g["b"], dpre.sum(0))
    gp, gx = tc.grad(loss, argnums=(0, 1))(params, x, y)
    np.testing.assert_allclose(gx, dpre @ params["W"].T)
    value, g2 = tc.value_and_grad(loss)(params, x, y)
    np.testing.assert_allclose(value, np.mean((pred - y) ** 2))
    np.testing.assert_allclose(g2["b"], g["b"])


def test_has_aux():
    f = lambda x: (np.sum(x ** 2), {"mean": np.mean(x)})  # noqa: E731
    g, aux = tc.grad(f, has_aux=True)(np.array([1.0, 3.0]))
    np.testing.assert_allclose(g, [2.0, 6.0])
    assert float(aux["mean"]) == 2.0
    (v, aux), g = tc.value_and_grad(f, has_aux=True)(np.array([1.0, 3.0]))
    assert float(v) == 10.0


def test_functional_grad_requires_scalar_float():
    with pytest.raises(TypeError, match="scalar"):
        tc.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        tc.grad(lambda x: np.sum(x * 2.0))(np.ones(3, dtype=np.int64))


def test_composition_with_itself_and_compile():
    f = lambda x: np.sum(np.sin(x) * x ** 2)  # noqa: E731
    x = RNG.standard_normal(4)
    d2 = tc.grad(lambda x: tc.grad(f)(x).sum())(x)
    # sum_j d/dx_i df/dx_j = diag Hessian here (elementwise f)
    np.testing.assert_allclose(d2, -np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x))
    compiled = tc.compile(tc.grad(f))
    np.testing.assert_allclose(compiled(x), np.cos(x) * x ** 2 + 2 * x * np.sin(x))
    assert len(compiled.programs) == 1

    @tc.compile
    def sgd(w, x):
        return w - 0.5 * tc.grad(lambda w: np.sum((x @ w) ** 2))(w)

    w = np.array([1.0, -1.0])
    A = np.eye(2)
    np.testing.assert_allclose(sgd(w, A), w - 0.5 * 2 * A.T @ (A @ w))


def test_closure_is_constant_in_nested_grad():
    # d/dx [ d/dy (x * y) at y = x ] = d/dx x = 1 (no perturbation confusion)
    g = tc.grad(lambda x: tc.grad(lambda y: x * y)(x))(3.0)
    assert float(g) == 1.0


def test_third_derivative():
    f = lambda x: x ** 4  # noqa: E731
    d3 = tc.grad(tc.grad(tc.grad(f)))
    assert float(d3(2.0)) == pytest.approx(24 * 2.0)


def test_vjp_and_jvp():
    f = lambda x, y: (np.sin(x) * y, x ** 2)  # noqa: E731
    x, y = RNG.standard_normal(3), RNG.standard_normal(3)
    out, f_vjp = tc.vjp(f, x, y)
    np.testing.assert_allclose(out[0], np.sin(x) * y)
    ct = (np.ones(3), np.full(3, 2.0))
    gx, gy = f_vjp(ct)
    np.testing.assert_allclose(gx, np.cos(x) * y + 4 * x)
    np.testing.assert_allclose(gy, np.sin(x))
    tx, ty = np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.0])
    out, tangent = tc.jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(tangent[0], np.cos(x) * y * tx + np.sin(x) * ty)
    np.testing.assert_allclose(tangent[1], 2 * x * tx)


def test_hessian_vector_products_and_forward_over_reverse():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x: 0.5 * x @ A @ x + np.sum(np.sin(x))  # noqa: E731
    x, v = np.array([0.3, -0.2]), np.array([1.0, 2.0])
    hv = A @ v - np.sin(x) * v
    _, jvp_of_grad = tc.jvp(tc.grad(f), (x,), (v,))
    np.testing.assert_allclose(jvp_of_grad, hv)
    xs, vs = tc.dvector("x"), tc.dvector("v")
    rop_of_grad = tc.Rop(tc.grad(f(xs), xs), xs, vs)
    np.testing.assert_allclose(tc.function([xs, vs], rop_of_grad)(x, v), hv)
    grad_of_jvp = tc.grad(lambda x: np.sum(tc.jvp(np.sin, (x,), (v,))[1]))(x)
    np.testing.assert_allclose(grad_of_jvp, -np.sin(x) * v)


# -- Lop, Rop, jacobian, hessian -------------------------------------------------------------
def _vector_fn(x, A):
    return np.tanh(A @ x) * np.sum(x ** 2)


def test_rop_equals_jacobian_times_v():
    x, v = tc.dvector("x"), tc.dvector("v")
    A = RNG.standard_normal((4, 3))
    y = _vector_fn(x, A)
    Jv = tc.Rop(y, x, v)
    J = tc.jacobian(y, x)
    f = tc.function([x, v], [Jv, J])
    xv, vv = RNG.standard_normal(3), RNG.standard_normal(3)
    jv, jac = f(xv, vv)
    np.testing.assert_allclose(jv, jac @ vv, rtol=1e-10)
    # and against finite differences
    e = 1e-6
    fd = (_vector_fn(xv + e * vv, A) - _vector_fn(xv - e * vv, A)) / (2 * e)
    np.testing.assert_allclose(jv, fd, rtol=1e-6)


def test_rop_does_not_build_the_jacobian():
    x, v = tc.dvector("x"), tc.dvector("v")
    Jv = tc.Rop(np.exp(x) * np.sum(x), x, v)
    assert "jacobian" not in {n.op.name for n in toposort([Jv.variable])}


def test_rop_lists_and_matrices():
    W, V = tc.dmatrix("W"), tc.dmatrix("V")
    x, vx = tc.dvector("x"), tc.dvector("vx")
    y1, y2 = np.tanh(W @ x), np.sum(W ** 2)
    r1, r2 = tc.Rop([y1, y2], [W, x], [V, vx])
    f = tc.function([W, x, V, vx], [r1, r2])
    Wv, xv, Vv, vxv = RNG.standard_normal((2, 3)), RNG.standard_normal(3), RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    out = f(Wv, xv, Vv, vxv)
    np.testing.assert_allclose(out[0], (1 - np.tanh(Wv @ xv) ** 2) * (Vv @ xv + Wv @ vxv))
    np.testing.assert_allclose(out[1], 2 * np.sum(Wv * Vv))


def test_lop_equals_v_times_jacobian():
    x, u = tc.dvector("x"), tc.dvector("u")
    A = RNG.standard_normal((4, 3))
    y = _vector_fn(x, A)
    f = tc.function([x, u], [tc.Lop(y, x, u), tc.jacobian(y, x)])
    uJ, J = f(RNG.standard_normal(3), np.arange(4.0))
    np.testing.assert_allclose(uJ, np.arange(4.0) @ J)


def test_hessian_of_quadratic_form_is_the_matrix():
    A = RNG.standard_normal((4, 4))
    A = A + A.T
    x = tc.dvector("x")
    H = tc.hessian(0.5 * x @ A @ x, x)
    np.testing.assert_allclose(tc.function([x], H)(RNG.standard_normal(4)), A, atol=1e-12)
    Hf = tc.hessian(lambda x: 0.5 * x @ A @ x)(np.zeros(4))
    np.testing.assert_allclose(Hf, A, atol=1e-12)
    B = RNG.standard_normal((4, 4))  # non-symmetric: the Hessian is the symmetric part
    np.testing.assert_allclose(tc.hessian(lambda x: x @ B @ x)(np.ones(4)), B + B.T, atol=1e-12)


def test_jacobian_shapes_and_lists():
    X, y = tc.dmatrix("X"), tc.dvector("y")
    out = np.tanh(X) * y
    JX, Jy = tc.jacobian(out, [X, y])
    f = tc.function([X, y], [JX, Jy])
    Xv, yv = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    jx, jy = f(Xv, yv)
    assert jx.shape == (2, 3, 2, 3) and jy.shape == (2, 3, 3)
    d = (1 - np.tanh(Xv) ** 2) * yv
    np.testing.assert_allclose(jx.reshape(6, 6), np.diag(d.ravel()))
    np.testing.assert_allclose(jy[1], np.diag(np.tanh(Xv[1])))
    s = tc.jacobian(np.sum(out), y)  # a scalar expression: the gradient
    np.testing.assert_allclose(tc.function([X, y], s)(Xv, yv), np.tanh(Xv).sum(0))
    Jf = tc.jacobian(lambda a, b: a * b, argnums=(0, 1))(np.ones(2), np.arange(2.0))
    np.testing.assert_allclose(Jf[0], np.diag([0.0, 1.0]))


def test_stop_gradient():
    f = lambda x: np.sum(x * tc.stop_gradient(x ** 2))  # noqa: E731
    np.testing.assert_allclose(tc.grad(f)(np.array([1.0, 2.0])), [1.0, 4.0])
    x = tc.dvector("x")
    with pytest.raises(ValueError, match="does not depend"):
        tc.grad(np.sum(tc.stop_gradient(x)), x)
    a = np.ones(2)
    assert tc.stop_gradient(a) is a


# -- verify_grad ---------------------------------------------------------------------------
def test_verify_grad_accepts_correct_and_rejects_wrong_gradients():
    tc.verify_grad(lambda x, y: np.tanh(x) @ y, [RNG.standard_normal((3, 4)), RNG.standard_normal(4)])
    tc.verify_grad(lambda x, idx: x[idx] * 2.0, [RNG.standard_normal(5), np.array([0, 0, 3])])

    def bad_exp(x):  # a wrong gradient through stop_gradient: d/dx is exp(x) + exp(x) * 0.1 * x ...
        return np.exp(x) + 0.1 * tc.stop_gradient(x) * x
    with pytest.raises(tc.GradientError, match="argument 0"):
        tc.verify_grad(bad_exp, [RNG.standard_normal(3)])
    with pytest.raises(ValueError, match="no floating-point argument"):
        tc.verify_grad(lambda i: i * 2, [np.arange(3)])


def test_verify_grad_float32_arguments_are_checked_in_float64():
    tc.verify_grad(lambda x: np.sin(x) * x, [np.linspace(0, 1, 4, dtype=np.float32)])


def test_naive_binary_cross_entropy_value_and_gradient_stay_finite():
    # issue 4: np.log(p), np.log(1 - p) on p = sigmoid(z) at z = +-800
    z, y = tc.dvector("z"), tc.dvector("y")
    p = 1 / (1 + np.exp(-z))
    cost = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()
    (g,) = tc.grad(cost, [z])
    zs, ys = np.array([800.0, -800.0, 800.0, -800.0]), np.array([1.0, 0.0, 0.0, 1.0])
    value, grad = tc.function([z, y], [cost, g])(zs, ys)
    assert value == 1600.0
    np.testing.assert_array_equal(grad, [0.0, 0.0, 1.0, -1.0])

    def bce(z, y):
        p = 1 / (1 + np.exp(-z))
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()

    value, grad = tc.value_and_grad(bce)(zs, ys)
    assert value == 1600.0
    np.testing.assert_array_equal(grad, [0.0, 0.0, 1.0, -1.0])


@pytest.mark.parametrize("x", [np.array([2.0, 0.0, 3.0, 4.0]), np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]),
                               np.array([1.5, -2.0, 3.0, 0.5])])
def test_cumprod_gradient_is_exact_with_zeros(x):
    tc.verify_grad(lambda v: np.cumprod(v, axis=-1), [x])
    tc.verify_grad(lambda v: np.cumprod(v), [x])
    g = tc.grad(lambda v: np.cumprod(v, axis=-1).sum())(x)
    rows = x.reshape(-1, x.shape[-1])
    expected = [[sum(np.prod(np.delete(r[:j + 1], i)) for j in range(i, len(r))) for i in range(len(r))]
                for r in rows]
    np.testing.assert_allclose(g.reshape(rows.shape), expected)


def test_gradient_of_a_declared_matrix_that_broadcasts_at_run_time():
    # tc.dmatrix does not say that a dimension has length 1; when it does at run time and
    # broadcasts, the gradient is still summed back to the input's shape
    x, y = tc.dmatrix("x"), tc.dmatrix("y")
    (g,) = tc.grad((x * y).sum(), [x])
    f = tc.function([x, y], g)
    np.testing.assert_array_equal(f(np.ones((1, 3)), np.arange(6.0).reshape(2, 3)), [[3.0, 5.0, 7.0]])
    W = tc.shared(np.ones((1, 3)), name="W")
    step = tc.function([y], (W * y).sum(), updates=[(W, W - 0.1 * tc.grad((W * y).sum(), W))])
    step(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(W.get_value(), [[0.7, 0.5, 0.3]])


def test_setitem_with_repeated_indices_gives_gradient_to_the_write_that_stays():
    def f(x, v):
        x = x.copy()
        x[np.array([0, 0, 1])] = v  # NumPy keeps the last write to x[0]
        return x * np.arange(1.0, 4.0)

    tc.verify_grad(f, [np.ones(3), np.array([2.0, 3.0, 4.0])])
    g_x, g_v = tc.grad(lambda x, v: f(x, v).sum(), argnums=(0, 1))(np.ones(3), np.array([2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(g_v, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(g_x, [0.0, 0.0, 3.0])

    def masked(x, v):
        x = x.copy()
        x[x > 1] = v
        return (x * x).sum()

    tc.verify_grad(masked, [np.array([0.5, 2.0, 3.0]), np.float64(1.5)])
