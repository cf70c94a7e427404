"""The C backend on elementwise expressions: fused kernels on large arrays, and
the per-call overhead on 3-element arrays (argument checks included).

Run: python bench/c_elementwise.py [--size N]
Prints medians and ratios to NumPy for tracec (FAST_RUN: the C backend, on all
cores and on one; FAST_COMPILE: the NumPy interpreter), installed peers
(numexpr, JAX, PyTensor, PyTorch), and for the exp expression the issue's
yardstick, a hand-written C loop with glibc's vector exp on all cores.
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
    if text == "exp(-x*x/2)*y + z":
        hand = hand_written_c(tc.config.c_threads or os.cpu_count())
        if hand is not None:
            impls["hand-written C"] = hand
    if "torch" in found:
        torch = found["torch"]
        impls["torch eager"] = lambda x, y, z: _jax_expr(torch, text, *map(torch.from_numpy, (x, y, z)))
    return impls


_HAND_C = r"""
#include <math.h>
#include <stdint.h>
__attribute__((__simd__("notinbranch"))) double exp(double);  /* glibc's vector exp */
void expr(const double *restrict x, const double *restrict y, const double *restrict z,
          double *restrict out, int64_t n, int threads)
{
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t i = 0; i < n; i++)
        out[i] = exp(-x[i] * x[i] / 2) * y[i] + z[i];
}
"""


def hand_written_c(threads):
    """The issue's yardstick: a hand-written C loop with vectorized exp (None without a compiler)."""
    import ctypes
    import subprocess
    import tempfile
    folder = tempfile.mkdtemp()
    src, lib = os.path.join(folder, "expr.c"), os.path.join(folder, "expr.so")
    with open(src, "w") as fh:
        fh.write(_HAND_C)
    cmd = [tc.config.cc, "-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC",
           src, "-o", lib, "-lmvec", "-lm"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    fn = ctypes.CDLL(lib).expr
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int]
    buffers = {}

    def run(x, y, z):
        out = buffers.get(len(x))
        if out is None:
            out = buffers[len(x)] = np.empty_like(x)
        fn(x.ctypes.data, y.ctypes.data, z.ctypes.data, out.ctypes.data, len(x), threads)
        return out
    return run


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
