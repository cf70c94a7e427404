"""Time the optimizer on a large graph: the loss and gradients of a deep MLP.

Run: python bench/optimize_large_graph.py [--layers N]
The issue's bound: a ~10,000-node graph optimizes in under 2 s on the reference
machine (2-core x86-64). Prints nodes before/after and the time of each pass.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import fmt_time  # noqa: E402

import tracec as tc  # noqa: E402
from tracec.trace.graph import toposort  # noqa: E402
from tracec.trace.program import Program  # noqa: E402


def mlp_program(layers, width=16):
    """Program computing a deep MLP's cross-entropy loss and its gradient w.r.t. every weight."""
    x, y = tc.dmatrix("x"), tc.dmatrix("y")
    params, h = [], x
    for i in range(layers):
        W, b = tc.dmatrix(f"W{i}"), tc.dvector(f"b{i}")
        params += [W, b]
        z = h @ W + b
        h = 1 / (1 + np.exp(-z)) if i % 2 else np.tanh(z) * 1.0 + 0
    logp = np.log(np.exp(h) / np.sum(np.exp(h), axis=1, keepdims=True))
    loss = -np.mean(np.sum(y * logp, axis=1)) + 0.01 * sum(np.sum(p ** 2) for p in params[::2])
    grads = tc.grad(loss, params)
    inputs = [x, y] + params
    return Program([v.variable for v in inputs], [loss.variable] + [g.variable for g in grads])


def count(program):
    return len(toposort(program.roots(), stop=program.all_inputs()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=370)  # about 10,000 nodes
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    program = mlp_program(args.layers)
    print(f"graph: {args.layers}-layer MLP loss + gradients, {count(program)} nodes")
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            optimized = tc.opt.optimize(program, mode)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"\n{mode}: median {fmt_time(sorted(times)[len(times) // 2])} wall, "
              f"{fmt_time(sorted(cpu)[len(cpu) // 2])} CPU ({count(program)} -> {count(optimized)} nodes)")
        print(tc.opt.profile_report(optimized))


if __name__ == "__main__":
    main()
