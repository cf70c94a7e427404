"""Loops: the per-step overhead of scan on a 10,000-step scalar recurrence.

Run: python bench/loops.py [--quick]
x <- 0.999 x + 1 repeated n times costs almost nothing but per-step overhead.
Each implementation runs n = N/10 and N steps (N = 10,000; 1,000 with --quick);
the per-step overhead is the difference of the two times over the difference
of the step counts, so the fixed cost of a call drops out. Implementations:
a Python loop over NumPy scalars (the ratio baseline), tracec's tc.scan with a
symbolic n_steps, a plain Python loop in @tc.compile (captured as scan), and
the installed peers: JAX lax.fori_loop under jit (traced trip count), PyTensor
scan, PyTorch eager (a Python loop over 0-d tensors).
Target (loops issue): tracec's per-step overhead under 1 us.
The RNN and Jacobi-stencil benchmarks of the same issue are bench/rnn.py and bench/jacobi.py.
"""
import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_median_times, load_note, peers, print_table  # noqa: E402

import tracec as tc  # noqa: E402


def numpy_loop(x0, n):
    x = x0
    for _ in range(int(n)):
        x = 0.999 * x + 1.0
    return x


@tc.compile
def tracec_loop(x0, n):
    x = x0
    for _ in range(n):
        x = 0.999 * x + 1.0
    return x


def tracec_scan():
    x0, n = tc.dscalar("x0"), tc.lscalar("n")
    out, _ = tc.scan(lambda x: 0.999 * x + 1.0, outputs_info=x0, n_steps=n)
    return tc.function([x0, n], out[-1])


def jax_loop(jax):
    f = jax.jit(lambda x0, n: jax.lax.fori_loop(0, n, lambda i, x: 0.999 * x + 1.0, x0))
    return lambda x0, n: float(f(x0, n))


def pytensor_scan(pytensor):
    pt = pytensor.tensor
    x0, n = pt.dscalar("x0"), pt.lscalar("n")
    with warnings.catch_warnings():  # newer PyTensor: the updates return value is deprecated
        warnings.simplefilter('ignore', DeprecationWarning)
        out, _ = pytensor.scan(lambda x: 0.999 * x + 1.0, outputs_info=x0, n_steps=n)
    return pytensor.function([x0, n], out[-1])


def torch_loop(torch):
    def run(x0, n):
        x = torch.tensor(x0)
        for _ in range(int(n)):
            x = 0.999 * x + 1.0
        return float(x)
    return run


def implementations():
    impls = {"numpy": numpy_loop, "tracec scan": tracec_scan(), "tracec loop": tracec_loop}
    found = peers()
    for module, label, make in (("jax", "jax fori_loop jit", jax_loop), ("pytensor", "pytensor scan", pytensor_scan),
                                ("torch", "torch eager", torch_loop)):
        if module in found:
            if module == "jax":
                found[module].config.update("jax_enable_x64", True)
            impls[label] = make(found[module])
        else:
            print(f"{module}: not installed, skipped")
    return impls


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 steps instead of 10,000")
    args = parser.parse_args()
    tc.config.c_compile_after = 0  # native code from the first call
    n_long = 1_000 if args.quick else 10_000
    n_short = n_long // 10
    x0 = np.float64(0.0)
    expected = (1 - 0.999 ** n_long) / (1 - 0.999)  # the closed form of the recurrence from 0
    impls = implementations()
    for name, fn in impls.items():
        got = float(np.asarray(fn(x0, n_long)))
        if not np.isclose(got, expected, rtol=1e-9):
            print(f"warning: {name} gives {got}, expected {expected}", file=sys.stderr)
    calls = {(name, n): (lambda fn=fn, n=np.int64(n): fn(x0, n))
             for name, fn in impls.items() for n in (n_short, n_long)}
    times = interleaved_median_times(calls, rounds=3 if args.quick else 7)
    short = {name: times[name, n_short] for name in impls}
    long_ = {name: times[name, n_long] for name in impls}
    per_step = {name: (long_[name] - short[name]) / (n_long - n_short) for name in impls}
    print_table(f"scalar recurrence x <- 0.999 x + 1, median time per call, {load_note()} "
                "(ratio to a Python loop over NumPy)",
                [(f"{n_short:,} steps", short), (f"{n_long:,} steps", long_),
                 ("per step (difference)", per_step)])
    print("\nper-step overhead (target for tracec: < 1 us):")
    for name, t in per_step.items():
        print(f"  {name:20s}{t * 1e6:9.3f} us" + ("  (below the noise)" if t <= 0 else ""))


if __name__ == "__main__":
    main()
