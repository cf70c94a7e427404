"""An RNN forward + backward: h = tanh(x_t @ Wx + h @ Wh + b), loss = mean of all h, float32.

Run: python bench/rnn.py [--quick] [--threads N]
Default sizes are the loops issue's target: hidden 256 (inputs 256 wide), batch
32, 100 steps. tracec runs it twice: with tc.scan (tc.function + tc.grad), and
as a plain Python loop in a @tc.compile function (the loop converter makes it a
scan). Peers: NumPy with hand-written backpropagation through time (the ratio
baseline), JAX lax.scan under jit, PyTorch's eager loop with autograd, PyTensor
scan. Each implementation is timed in its own process; the gradients are first
checked against PyTorch's (or NumPy's when PyTorch is absent).
Target: tracec no slower than JAX lax.scan under jit and PyTorch eager.
On a shared 2-core machine the multi-threaded BLAS pools (OpenBLAS, MKL) stall
badly whenever other work holds a core: compare with --threads 1.
"""
import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import (cpu_threads, installed, interleaved_times, load_note, print_table, serve,  # noqa: E402
                    thread_env)

import tracec as tc  # noqa: E402


def data(steps, batch, hidden, seed=0):
    rng = np.random.default_rng(seed)
    xs = (rng.standard_normal((steps, batch, hidden)) * 0.5).astype(np.float32)
    h0 = np.zeros((batch, hidden), np.float32)
    Wx, Wh = ((rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32) for _ in "xh")
    b = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    return xs, h0, Wx, Wh, b


def numpy_fwd_bwd(xs, h0, Wx, Wh, b):
    """Forward, then backpropagation through time by hand: (loss, dWx, dWh, db)."""
    hs, h = [], h0
    for x in xs:
        h = np.tanh(x @ Wx + h @ Wh + b)
        hs.append(h)
    loss = np.mean(hs)
    direct = np.float32(1.0 / (len(xs) * h0.size))
    gWx, gWh, gb, g_next = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b), np.zeros_like(h0)
    for t in range(len(xs) - 1, -1, -1):
        g = (g_next + direct) * (1 - hs[t] * hs[t])
        gWx += xs[t].T @ g
        gWh += (hs[t - 1] if t else h0).T @ g
        gb += g.sum(0)
        g_next = g @ Wh.T
    return loss, gWx, gWh, gb


def tracec_scan():
    xs, h0, Wx, Wh = tc.ftensor3("xs"), tc.fmatrix("h0"), tc.fmatrix("Wx"), tc.fmatrix("Wh")
    b = tc.fvector("b")
    hs, _ = tc.scan(lambda x, h: np.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
    loss = hs.mean()
    return tc.function([xs, h0, Wx, Wh, b], [loss] + tc.grad(loss, [Wx, Wh, b]))


@tc.compile
def tracec_loop(xs, h0, Wx, Wh, b):
    """The plain Python loop: the loop converter turns it into one scan node."""
    h, total = h0, 0.0
    for x in xs:
        h = np.tanh(x @ Wx + h @ Wh + b)
        total = total + h.mean()
    loss = total / xs.shape[0]
    return [loss] + tc.grad(loss, [Wx, Wh, b])


def jax_fwd_bwd(jax):
    jnp = jax.numpy

    def loss(Wx, Wh, b, xs, h0):
        def step(h, x):
            h = jnp.tanh(x @ Wx + h @ Wh + b)
            return h, h
        _, hs = jax.lax.scan(step, h0, xs)
        return hs.mean()
    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    def run(xs, h0, Wx, Wh, b):
        value, grads = f(Wx, Wh, b, xs, h0)
        return [np.asarray(value)] + [np.asarray(g) for g in grads]
    return run


def torch_fwd_bwd(torch):
    def run(xs, h0, Wx, Wh, b):
        Wx, Wh, b = (torch.from_numpy(a).requires_grad_() for a in (Wx, Wh, b))
        h, total = torch.from_numpy(h0), 0
        for x in torch.from_numpy(xs):
            h = torch.tanh(x @ Wx + h @ Wh + b)
            total = total + h.mean()
        loss = total / xs.shape[0]
        loss.backward()
        return [loss.detach().numpy()] + [p.grad.numpy() for p in (Wx, Wh, b)]
    return run


def pytensor_fwd_bwd(pytensor):
    pt = pytensor.tensor
    xs, h0, Wx, Wh, b = pt.ftensor3("xs"), pt.fmatrix("h0"), pt.fmatrix("Wx"), pt.fmatrix("Wh"), pt.fvector("b")
    with warnings.catch_warnings():  # newer PyTensor: the updates return value is deprecated
        warnings.simplefilter('ignore', DeprecationWarning)
        hs, _ = pytensor.scan(lambda x, h: pt.tanh(x @ Wx + h @ Wh + b), sequences=xs, outputs_info=h0)
    loss = hs.mean()
    return pytensor.function([xs, h0, Wx, Wh, b], [loss] + pytensor.grad(loss, [Wx, Wh, b]))


# label: (peer module or None, factory(module))
IMPLS = {
    "numpy": (None, lambda _: numpy_fwd_bwd),
    "tracec scan": (None, lambda _: tracec_scan()),
    "tracec loop": (None, lambda _: tracec_loop),
    "jax lax.scan jit": ("jax", jax_fwd_bwd),
    "torch eager": ("torch", torch_fwd_bwd),
    "pytensor scan": ("pytensor", pytensor_fwd_bwd),
}


def implementations(threads, only=None):
    return installed(IMPLS, threads, only, lambda label, mod: IMPLS[label][1](mod))


def check_gradients(impls, args):
    """Loss and gradients of every implementation against PyTorch's (NumPy's if PyTorch is absent)."""
    results = {name: [np.asarray(r) for r in fn(*args)] for name, fn in impls.items()}
    ref_name = "torch eager" if "torch eager" in results else "numpy"
    ref = results[ref_name]
    print(f"max |difference| / max |value| against {ref_name}, for loss, dWx, dWh, db:")
    for name, res in results.items():
        errs = [np.max(np.abs(r - e)) / max(np.max(np.abs(e)), 1e-30) for r, e in zip(res, ref)]
        flag = "" if max(errs) < 1e-3 else "   <-- DISAGREES"
        print(f"  {name:18s}" + "".join(f"{e:10.1e}" for e in errs) + flag)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="hidden 64, batch 8, 20 steps")
    parser.add_argument("--threads", type=int, default=cpu_threads(),
                        help="threads of every implementation (OpenMP, BLAS, torch, XLA); default: all CPUs")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (default 9, 3 with --quick)")
    parser.add_argument("--only", choices=list(IMPLS), help="serve one implementation's timings (a child process)")
    args = parser.parse_args()
    steps, batch, hidden = (20, 8, 64) if args.quick else (100, 32, 256)
    tc.config.c_threads = args.threads
    tc.config.c_compile_after = 0  # native code from the first call
    call_args = data(steps, batch, hidden)
    impls = implementations(args.threads, args.only)
    if args.only:
        serve(impls[args.only], *call_args)
        return
    print(f"RNN tanh, hidden {hidden}, batch {batch}, {steps} steps, float32, loss = mean of all h, "
          f"{args.threads} threads; {load_note()}")
    check_gradients(impls, call_args)
    times = interleaved_times(list(impls), args.rounds or (3 if args.quick else 9), thread_env(args.threads))
    print_table("median time of forward + backward, each in its own process, " + load_note() + " (ratio to NumPy)",
                [(f"RNN {batch}x{hidden}, {steps} steps", times)])


if __name__ == "__main__":
    main()
