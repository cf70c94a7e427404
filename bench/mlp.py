"""An MLP training step: float32, softmax cross-entropy, SGD through shared-variable updates.

Run: python bench/mlp.py [--quick] [--act tanh|relu] [--threads N]
Default sizes are the C-backend issue's target: batch 256, 784-1024-1024-10.
tracec compiles the step as ``tc.function([x, y], loss, updates=[(W, W - lr*gW), ...])``;
the peers run the same math: NumPy with hand-written backprop, PyTorch eager
(torch.set_num_threads to the same thread count), JAX jit, PyTensor (Theano's
successor, the same shared-variable program). First checks that the losses of
a few steps from the same weights agree, then prints median step times with
ratios to NumPy. Target: tracec no slower than PyTorch eager.
On a shared 2-core machine the multi-threaded BLAS pools (OpenBLAS, MKL) stall
badly whenever other work holds a core: compare with --threads 1.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import (cpu_threads, installed, interleaved_times, load_note, print_table, serve,  # noqa: E402
                    thread_env)

import tracec as tc  # noqa: E402

LR = 0.01


def init_params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32))
        params.append(np.zeros(n_out, np.float32))
    return params


def batch(n, sizes, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    return x, y


def tracec_step(params, act):
    """The training step as a tc.function over shared weights."""
    shared = [tc.shared(p.copy(), name=f"p{i}") for i, p in enumerate(params)]
    x, y = tc.fmatrix("x"), tc.fmatrix("y")
    h = x
    for W, b in zip(shared[:-2:2], shared[1:-2:2]):
        h = act(h @ W + b)
    z = h @ shared[-2] + shared[-1]
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    loss = -np.mean(np.sum(y * log_p, axis=1))
    grads = tc.grad(loss, shared)
    return tc.function([x, y], loss, updates=[(p, p - LR * g) for p, g in zip(shared, grads)])


def numpy_step(params, act_name):
    """Hand-written forward and backward pass, updating `params` (copied) in place."""
    params = [p.copy() for p in params]
    act = np.tanh if act_name == "tanh" else (lambda a: np.maximum(a, 0))

    def step(x, y):
        hs = [x]
        for W, b in zip(params[:-2:2], params[1:-2:2]):
            hs.append(act(hs[-1] @ W + b))
        z = hs[-1] @ params[-2] + params[-1]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.sum(y * (z - np.log(s)), axis=1))
        d = (e / s * y.sum(axis=1, keepdims=True) - y) / np.float32(x.shape[0])
        for i in range(len(params) // 2 - 1, -1, -1):
            W, h = params[2 * i], hs[i]
            d_prev = d @ W.T if i else None
            params[2 * i] -= np.float32(LR) * (h.T @ d)
            params[2 * i + 1] -= np.float32(LR) * d.sum(0)
            if i:
                d = d_prev * (1 - h * h) if act_name == "tanh" else d_prev * (h > 0)
        return loss
    return step


def torch_step(torch, params, act_name):
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    act = torch.tanh if act_name == "tanh" else torch.relu

    def step(x, y):
        h = torch.from_numpy(x)
        for W, b in zip(ps[:-2:2], ps[1:-2:2]):
            h = act(h @ W + b)
        log_p = torch.log_softmax(h @ ps[-2] + ps[-1], dim=1)
        loss = -(torch.from_numpy(y) * log_p).sum(1).mean()
        loss.backward()
        with torch.no_grad():
            for p in ps:
                p -= LR * p.grad
                p.grad = None
        return loss.item()
    return step


def jax_step(jax, params, act_name):
    jnp = jax.numpy
    act = jnp.tanh if act_name == "tanh" else jax.nn.relu

    def loss_fn(ps, x, y):
        h = x
        for W, b in zip(ps[:-2:2], ps[1:-2:2]):
            h = act(h @ W + b)
        log_p = jax.nn.log_softmax(h @ ps[-2] + ps[-1], axis=1)
        return -jnp.mean(jnp.sum(y * log_p, axis=1))

    @jax.jit
    def update(ps, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(ps, x, y)
        return loss, [p - LR * g for p, g in zip(ps, grads)]

    state = [[jnp.asarray(p) for p in params]]

    def step(x, y):
        loss, state[0] = update(state[0], x, y)
        return float(loss)
    return step


def pytensor_step(pytensor, params, act_name):
    pt = pytensor.tensor
    shared = [pytensor.shared(p.copy()) for p in params]
    x, y = pt.fmatrix("x"), pt.fmatrix("y")
    act = pt.tanh if act_name == "tanh" else (lambda a: pt.maximum(a, 0))
    h = x
    for W, b in zip(shared[:-2:2], shared[1:-2:2]):
        h = act(h @ W + b)
    log_p = pt.special.log_softmax(h @ shared[-2] + shared[-1], axis=1)
    loss = -pt.mean(pt.sum(y * log_p, axis=1))
    grads = pytensor.grad(loss, shared)
    return pytensor.function([x, y], loss, updates=[(p, p - np.float32(LR) * g) for p, g in zip(shared, grads)])


# label: (peer module or None, factory(module, params, activation name))
IMPLS = {
    "numpy": (None, lambda _, params, act: numpy_step(params, act)),
    "tracec": (None, lambda _, params, act: tracec_step(params, np.tanh if act == "tanh" else
                                                          (lambda a: np.maximum(a, 0)))),
    "torch eager": ("torch", torch_step),
    "jax.jit": ("jax", jax_step),
    "pytensor": ("pytensor", pytensor_step),
}


def implementations(params, act_name, threads, only=None):
    """The steps of the installed implementations (or of the one named `only`)."""
    return installed(IMPLS, threads, only, lambda label, mod: IMPLS[label][1](mod, params, act_name))


def check_losses(impls, x, y, steps=3):
    """Losses of the first steps from the same weights and batch, per implementation."""
    losses = {name: [float(step(x, y)) for _ in range(steps)] for name, step in impls.items()}
    ref = np.array(losses["numpy"])
    print(f"losses of the first {steps} steps from the same weights (max |diff| to NumPy):")
    for name, values in losses.items():
        diff = np.max(np.abs(np.array(values) - ref))
        flag = "" if diff <= 1e-4 * max(1.0, np.max(np.abs(ref))) else "   <-- DISAGREES"
        print(f"  {name:14s} " + "  ".join(f"{v:.6f}" for v in values) + f"   {diff:.1e}{flag}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 64, 784-256-256-10")
    parser.add_argument("--act", choices=("tanh", "relu"), default="tanh")
    parser.add_argument("--threads", type=int, default=cpu_threads(),
                        help="threads of every implementation (OpenMP, BLAS, torch, XLA); default: all CPUs")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (default 9, 3 with --quick)")
    parser.add_argument("--only", choices=list(IMPLS), help="serve one implementation's timings (a child process)")
    args = parser.parse_args()
    n, sizes = (64, (784, 256, 256, 10)) if args.quick else (256, (784, 1024, 1024, 10))
    tc.config.c_threads = args.threads
    tc.config.c_compile_after = 0  # native code from the first call
    params = init_params(sizes)
    x, y = batch(n, sizes)
    impls = implementations(params, args.act, args.threads, args.only)
    if args.only:
        serve(impls[args.only], x, y)
        return
    print(f"MLP {'-'.join(map(str, sizes))}, batch {n}, float32, {args.act}, {args.threads} threads; {load_note()}")
    check_losses(impls, x, y)
    times = interleaved_times(list(impls), args.rounds or (3 if args.quick else 9), thread_env(args.threads))
    print_table("median time per SGD step, each in its own process, " + load_note() + " (ratio to NumPy)",
                [(f"step {n}x{'-'.join(map(str, sizes))}", times)])
    if "torch eager" in times and "tracec" in times:
        print(f"tracec / torch eager: {times['tracec'] / times['torch eager']:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
