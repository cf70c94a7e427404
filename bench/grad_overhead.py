"""Cost of reverse mode: an MLP loss, its gradient graph against its forward graph.

Run: python bench/grad_overhead.py [--batch N] [--hidden H]
Prints node counts (traced, and after the optimizer) and median run times of
the forward pass, of value_and_grad, and of a hand-written NumPy forward +
backward pass, with ratios to the forward pass. Reverse mode should cost a
small constant factor (about 2-3x) of the forward pass.

On a busy machine, BLAS threads spinning against other processes can make
every matrix product 50x slower; run with OPENBLAS_NUM_THREADS=1 then.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import fmt_time, median_time  # noqa: E402

import tracec as tc  # noqa: E402
from tracec.opt import optimize  # noqa: E402
from tracec.trace.graph import toposort  # noqa: E402


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * log_p, axis=1))


def numpy_value_and_grad(params, x, y):
    """The same loss and gradient derived by hand: what reverse mode should cost."""
    a = x @ params["W1"] + params["b1"]
    h = np.tanh(a)
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * (z - np.log(s)), axis=1))
    dz = (e / s * y.sum(axis=1, keepdims=True) - y) / x.shape[0]
    dh = dz @ params["W2"].T
    da = dh * (1 - h * h)
    return loss, {"W1": x.T @ da, "b1": da.sum(0), "W2": h.T @ dz, "b2": dz.sum(0)}


def node_counts(compiled, mode):
    (program,) = compiled.programs
    traced = len(toposort(program.roots(), stop=program.all_inputs()))
    optimized = optimize(program, mode)
    return traced, len(toposort(optimized.roots(), stop=optimized.all_inputs()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((args.features, args.hidden)) * 0.05, "b1": np.zeros(args.hidden),
              "W2": rng.standard_normal((args.hidden, args.classes)) * 0.05, "b2": np.zeros(args.classes)}
    x = rng.standard_normal((args.batch, args.features))
    y = np.eye(args.classes)[rng.integers(0, args.classes, args.batch)]
    ref_loss, ref_grads = numpy_value_and_grad(params, x, y)

    print(f"MLP {args.features}-{args.hidden}-{args.classes}, batch {args.batch}, float64")
    header = f"{'':34s}{'nodes (traced)':>16s}{'nodes (optimized)':>19s}{'median time':>14s}{'vs forward':>12s}"
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        forward = tc.compile(mlp_loss, mode=mode)
        both = tc.compile(tc.value_and_grad(mlp_loss), mode=mode)
        loss, grads = both(params, x, y)
        assert np.allclose(loss, ref_loss) and np.allclose(forward(params, x, y), ref_loss)
        for k in grads:
            assert np.allclose(grads[k], ref_grads[k]), k
        t_fwd = median_time(forward, params, x, y)
        t_both = median_time(both, params, x, y)
        n_fwd, n_fwd_opt = node_counts(forward, mode)
        n_both, n_both_opt = node_counts(both, mode)
        print(f"\nmode={mode}")
        print(header)
        print("-" * len(header))
        print(f"{'forward (loss)':34s}{n_fwd:16d}{n_fwd_opt:19d}{fmt_time(t_fwd):>14s}{1.0:11.2f}x")
        print(f"{'value_and_grad (loss + gradient)':34s}{n_both:16d}{n_both_opt:19d}{fmt_time(t_both):>14s}"
              f"{t_both / t_fwd:11.2f}x")
        print(f"{'  node ratio':34s}{n_both / n_fwd:15.2f}x{n_both_opt / n_fwd_opt:18.2f}x")
    t_np_fwd = median_time(mlp_loss, params, x, y)
    t_np = median_time(numpy_value_and_grad, params, x, y)
    print(f"\nNumPy by hand: forward {fmt_time(t_np_fwd).strip()}, forward + backward "
          f"{fmt_time(t_np).strip()} ({t_np / t_np_fwd:.2f}x)")


if __name__ == "__main__":
    main()
