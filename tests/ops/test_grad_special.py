"""The ops of tracec/trace/ops/special.py that differentiation adds: stop_gradient, jacobian.

(Their gradients are tested in tests/test_grad*.py; here, their values.)"""
import numpy as np

import tracec as tc
from cases import check, rand


def test_stop_gradient_is_identity():
    check(lambda x: tc.stop_gradient(x) * 2, rand((3, 4), "float64"), expect_ops=["stop_gradient"])
    check(lambda x: tc.stop_gradient({"a": x})["a"] + 1, rand((2,), "float32"), expect_ops=["stop_gradient"])


def test_jacobian_op():
    jac = tc.jacobian(lambda x: np.sin(x) * np.sum(x))
    check(jac, rand((3,), "float64"), expect_ops=["jacobian"])
    check(tc.jacobian(lambda x: x @ x.T), rand((2, 3), "float64"), expect_ops=["jacobian"])
    check(tc.jacobian(lambda x: x[:0] * 2), rand((3,), "float64"), expect_ops=["jacobian"])  # empty rows


def test_sum_to_undoes_runtime_broadcasting():
    # the gradient of an input leaf is summed to the input's run-time shape
    def grad_x(x, y):
        return tc.grad((x * y).sum(), [x])[0]

    check(grad_x, rand((3, 4), "float64"), rand((3, 4), "float64"),
          reference=lambda x, y: y, expect_ops=["sum_to"])
