"""The C backend on elementwise expressions: fused kernels on large arrays, and
the per-call overhead on 3-element arrays (argument checks included).

Run: python bench/c_elementwise.py [--size N]
Prints medians and ratios to NumPy for tracec (FAST_RUN: the C backend, on all
cores and on one; FAST_COMPILE: the NumPy interpreter) and installed peers
(numexpr, JAX, PyTensor, PyTorch).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import median_time, peers, print_table  # noqa: E402

import tracec as tc  # noqa: E402

CASES = {
    "exp(-x*x/2)*y + z": (lambda x, y, z: np.exp(-x * x / 2) * y + z, "exp(-x*x/2)*y + z"),
    "2.5*x + y*z - x": (lambda x, y, z: 2.5 * x + y * z - x, "2.5*x + y*z - x"),
}


def _single_thread(fn):
    def run(*args):
        with tc.config.change(c_threads=1):
            return fn(*args)
    return run


def implementations(expr, text):
    impls = {"numpy": expr,
             "tracec C": tc.compile(expr, mode="FAST_RUN"),
             "tracec C 1 thread": _single_thread(tc.compile(expr, mode="FAST_RUN")),
             "tracec interp": tc.compile(expr, mode="FAST_COMPILE")}
    found = peers()
    if "numexpr" in found:
        ne = found["numexpr"]
        impls["numexpr"] = lambda x, y, z: ne.evaluate(text)
    if "jax" in found:
        jax = found["jax"]
        jax.config.update("jax_enable_x64", True)
        jitted = jax.jit(lambda x, y, z: _jax_expr(jax.numpy, text, x, y, z))
        impls["jax.jit"] = lambda x, y, z: jitted(x, y, z).block_until_ready()
    if "pytensor" in found:
        pt = found["pytensor"]
        vx, vy, vz = (pt.tensor.dvector(n) for n in "xyz")
        impls["pytensor"] = pt.function([vx, vy, vz], _jax_expr(pt.tensor, text, vx, vy, vz))
    if "torch" in found:
        torch = found["torch"]
        impls["torch eager"] = lambda x, y, z: _jax_expr(torch, text, *map(torch.from_numpy, (x, y, z)))
    return impls


def _jax_expr(mod, text, x, y, z):
    return eval(text, {"exp": mod.exp}, {"x": x, "y": y, "z": z})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000_000)
    args = parser.parse_args()
    tc.config.c_compile_after = 0  # compile when built: the warm-up call runs native code
    rng = np.random.default_rng(0)
    rows = []
    for name, (expr, text) in CASES.items():
        impls = implementations(expr, text)
        sizes = ((f"{name}, {args.size:,}", args.size), (f"{name}, 3 (per call)", 3))
        for label, n in sizes[:1] if name != "exp(-x*x/2)*y + z" else sizes:
            x, y, z = (rng.standard_normal(n) for _ in range(3))
            ref = expr(x, y, z)
            times = {}
            for impl, fn in impls.items():
                out = np.asarray(fn(x, y, z))
                if not np.allclose(out, ref):
                    print(f"warning: {impl} disagrees with NumPy", file=sys.stderr)
                times[impl] = median_time(fn, x, y, z, repeat=5 if n > 1000 else 7)
            rows.append((label, times))
    print(f"threads: {tc.config.c_threads or os.cpu_count()} (tc.config.c_threads), "
          f"parallel above {tc.config.c_parallel_threshold:,} elements")
    print_table("float64, median time per call (ratio to NumPy)", rows)


if __name__ == "__main__":
    main()
