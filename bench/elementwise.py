"""Elementwise expression np.exp(-x*x/2)*y + z: large arrays and per-call overhead.

Run: python bench/elementwise.py [--size N]
Prints medians and ratios to NumPy for tracec (each mode) and installed peers.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import median_time, peers, print_table  # noqa: E402

import tracec as tc  # noqa: E402


def expr(x, y, z):
    return np.exp(-x * x / 2) * y + z


def implementations():
    impls = {"numpy": expr,
             "tracec FAST_RUN": tc.compile(expr, mode="FAST_RUN"),
             "tracec FAST_COMPILE": tc.compile(expr, mode="FAST_COMPILE")}
    found = peers()
    if "numexpr" in found:
        ne = found["numexpr"]
        impls["numexpr"] = lambda x, y, z: ne.evaluate("exp(-x*x/2)*y + z")
    if "jax" in found:
        jax = found["jax"]
        jax.config.update("jax_enable_x64", True)
        jitted = jax.jit(lambda x, y, z: jax.numpy.exp(-x * x / 2) * y + z)
        impls["jax.jit"] = lambda x, y, z: jitted(x, y, z).block_until_ready()
    if "torch" in found:
        torch = found["torch"]
        tfn = torch.compile(lambda x, y, z: torch.exp(-x * x / 2) * y + z)
        impls["torch.compile"] = lambda x, y, z: tfn(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(z))
    return impls


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    impls = implementations()
    rows = []
    for label, n in (("3 elements (overhead)", 3), (f"{args.size:,} elements", args.size)):
        x, y, z = (rng.standard_normal(n) for _ in range(3))
        ref = expr(x, y, z)
        times = {}
        for name, fn in impls.items():
            out = np.asarray(fn(x, y, z))
            if not np.allclose(out, ref):
                print(f"warning: {name} disagrees with NumPy", file=sys.stderr)
            times[name] = median_time(fn, x, y, z, repeat=5 if n > 1000 else 7)
        rows.append((label, times))
    print_table("np.exp(-x*x/2)*y + z, float64, median time per call (ratio to NumPy)", rows)


if __name__ == "__main__":
    main()
