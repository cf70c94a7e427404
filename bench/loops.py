"""Loops: per-step overhead of scan, an RNN forward+backward, a Jacobi stencil.

Run: python bench/loops.py [--quick]
Prints median times and ratios to NumPy (a plain Python loop over NumPy calls)
for tracec and the installed peers (JAX lax.scan under jit, PyTorch eager).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import median_time, peers, print_table  # noqa: E402

import tracec as tc  # noqa: E402


def scalar_recurrence(n_steps):
    """x <- 0.999 x + 1, n_steps times: the cost is all per-step overhead."""
    def numpy_loop(x0, n):
        x = x0
        for _ in range(int(n)):
            x = 0.999 * x + 1.0
        return x

    x0, n = tc.dscalar("x0"), tc.iscalar("n")
    out, _ = tc.scan(lambda x: 0.999 * x + 1.0, outputs_info=x0, n_steps=n)
    f = tc.function([x0, n], out[-1])
    return {"numpy": numpy_loop, "tracec": f}, (np.float64(0.0), n_steps)


def rnn(batch=32, hidden=256, steps=100):
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((steps, batch, hidden)) * 0.1
    h0 = np.zeros((batch, hidden))
    W = rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)

    def loss(xs, h0, W):
        hs, _ = tc.scan(lambda x, h: np.tanh(x + h @ W), sequences=xs, outputs_info=h0)
        return (hs ** 2).mean()

    def numpy_fwd_bwd(xs, h0, W):
        h, hs = h0, []
        for x in xs:
            h = np.tanh(x + h @ W)
            hs.append(h)
        g_h, g_W = np.zeros_like(h0), np.zeros_like(W)
        scale = 2.0 / (len(xs) * h0.size)
        for t in range(len(xs) - 1, -1, -1):
            g = (g_h + scale * hs[t]) * (1 - hs[t] ** 2)
            prev = hs[t - 1] if t else h0
            g_W += prev.T @ g
            g_h = g @ W.T
        return g_W

    impls = {"numpy": numpy_fwd_bwd, "tracec": tc.grad(loss, argnums=2)}
    found = peers()
    if "jax" in found:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)

        def jloss(xs, h0, W):
            def step(h, x):
                h = jnp.tanh(x + h @ W)
                return h, h
            _, hs = jax.lax.scan(step, h0, xs)
            return (hs ** 2).mean()
        jg = jax.jit(jax.grad(jloss, argnums=2))
        impls["jax lax.scan jit"] = lambda *a: jg(*a).block_until_ready()
    if "torch" in found:
        torch = found["torch"]

        def torch_fwd_bwd(xs, h0, W):
            Wt = torch.from_numpy(W).requires_grad_()
            h, total = torch.from_numpy(h0), 0
            for x in torch.from_numpy(xs):
                h = torch.tanh(x + h @ Wt)
                total = total + (h ** 2).sum()
            (total / (xs.shape[0] * h0.size)).backward()
            return Wt.grad
        impls["torch eager"] = torch_fwd_bwd
    return impls, (xs, h0, W)


def jacobi(n=128, steps=1000):
    def stencil(A, B, steps):
        for _ in range(steps):
            B[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
            A, B = B, A
        return A

    compiled = tc.compile(stencil)
    rng = np.random.default_rng(0)
    A0 = rng.standard_normal((n, n))

    def run(fn):
        return lambda A, steps: fn(A.copy(), A.copy(), steps)
    return {"numpy": run(stencil), "tracec": run(compiled)}, (A0, steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    n_steps = 1000 if args.quick else 10_000
    rows = []
    for label, (impls, call_args) in [
        (f"scalar recurrence, {n_steps} steps", scalar_recurrence(n_steps)),
        ("RNN fwd+bwd 32x256, 100 steps" if not args.quick else "RNN fwd+bwd 8x64, 20 steps",
         rnn() if not args.quick else rnn(8, 64, 20)),
        ("Jacobi 128x128, 1000 steps" if not args.quick else "Jacobi 64x64, 100 steps",
         jacobi() if not args.quick else jacobi(64, 100)),
    ]:
        times = {name: median_time(fn, *call_args, repeat=3, number=1) for name, fn in impls.items()}
        rows.append((label, times))
        if label.startswith("scalar"):
            per_step = times["tracec"] / n_steps
            print(f"scan per-step overhead: {per_step * 1e6:.2f} us")
    print_table("loops: median time per call (ratio to a Python loop over NumPy)", rows)


if __name__ == "__main__":
    main()
