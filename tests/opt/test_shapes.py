"""Shape inference: shapes from input shapes, without computing the node."""
import numpy as np
import pytest

import tracec as tc
from optcheck import REWRITES, check, rand
from tracec.opt.shapes import SHAPE_RULES
from tracec.trace.ops import OPS


def test_zeros_of_a_shape_does_not_compute_the_node():
    @tc.compile
    def f(x):
        return np.zeros(np.exp(x @ x.T).shape) + 1

    x = rand((3, 2))
    np.testing.assert_array_equal(f(x), np.ones((3, 3)))
    names = {n.op.name for n in _nodes(tc.opt.optimized_program(f)[0])}
    assert not names & {"exp", "matmul", "transpose"}, names


def _nodes(prog):
    from tracec.trace.graph import toposort
    return toposort(prog.roots(), stop=prog.all_inputs())


SHAPE_CASES = [  # (name, function of x (a 3-d float tensor), ops that must disappear)
    ("elemwise", lambda x, y: np.exp(x) + y, ["exp", "add"]),
    ("sum", lambda x, y: np.sum(x, axis=1), ["sum"]),
    ("sum keepdims", lambda x, y: np.sum(x * y, axis=(0, 2), keepdims=True), ["sum", "multiply"]),
    ("argmax", lambda x, y: np.argmax(x, axis=2), ["argmax"]),
    ("cumsum flat", lambda x, y: np.cumsum(x), ["cumsum"]),
    ("transpose", lambda x, y: np.transpose(np.exp(x), (2, 0, 1)), ["exp", "transpose"]),
    ("reshape -1", lambda x, y: np.exp(x).reshape(-1, x.shape[2]), ["exp", "reshape"]),
    ("expand/squeeze", lambda x, y: np.squeeze(np.expand_dims(np.exp(x), 1), 1), ["exp"]),
    ("matmul", lambda x, y: np.exp(x) @ np.transpose(x, (0, 2, 1)), ["matmul", "exp"]),
    ("concatenate", lambda x, y: np.concatenate([np.exp(x), x], axis=1), ["concatenate", "exp"]),
    ("stack", lambda x, y: np.stack([np.exp(x), x], axis=1), ["stack", "exp"]),
    ("broadcast", lambda x, y: np.exp(x[:, :1, :]) * y, ["exp", "multiply"]),
]


@pytest.mark.parametrize("name, fn, gone", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_rules(name, fn, gone):
    x, y = tc.dtensor3("x"), tc.dtensor3("y")
    out = fn(x, y)
    from tracec.trace.numpy_api import as_tensor
    outs = [as_tensor(d) for d in out.shape]
    for xs, ys in [((2, 3, 4), (2, 3, 4)), ((2, 1, 4), (2, 5, 4)), ((1, 3, 1), (2, 3, 4))]:
        if name in ("matmul", "concatenate", "stack", "reshape -1", "sum", "argmax",
                    "cumsum flat", "transpose", "expand/squeeze") and xs != (2, 3, 4):
            continue
        check([x, y], outs, [rand(xs), rand(ys, seed=1)], absent=gone)


def test_every_shape_rule_is_installed():
    for name, rule in SHAPE_RULES.items():
        assert OPS[name].shape is not None, name
    assert OPS["exp"].shape is SHAPE_RULES["exp"]


def test_shape_inference_can_be_excluded():
    x = tc.dvector("x")
    from tracec.trace.numpy_api import as_tensor
    out = as_tensor(np.exp(x).shape[0])
    check([x], out, [rand(3)], mode=REWRITES.excluding("shape"), present=["exp"])
    check([x], out, [rand(3)], absent=["exp"])
