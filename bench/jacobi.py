"""A 2-D Jacobi stencil, time-stepped by a plain Python loop, compiled by tracec vs run by NumPy.

Run: python bench/jacobi.py [--quick] [--size N] [--steps T]
The same Python function runs under NumPy and under @tc.compile, where the loop
converter captures the loop (its trip count is a traced argument) as one scan
node carrying A and B, and the in-place slice assignment is traced functionally
and written back into the caller's arrays. Checks that the returned array and
both mutated arguments match NumPy's, then prints median times.
Target (loops issue): 1,000 steps faster than NumPy running the same code.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_median_times, load_note, print_table  # noqa: E402

import tracec as tc  # noqa: E402


def jacobi(A, B, steps):
    for _ in range(steps):
        B[1:-1, 1:-1] = 0.25 * (A[:-2, 1:-1] + A[2:, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:])
        A, B = B, A
    return A


def on_copies(fn):
    """fn(A, B, steps) on fresh copies, so every call starts from the same state."""
    def run(A0, steps):
        A, B = A0.copy(), A0.copy()
        return fn(A, B, steps), A, B
    return run


def check(impls, A0, steps):
    """The returned array, and the caller's A and B after the call (written back as NumPy mutates them)."""
    ref = impls["numpy"](A0, steps)
    for name, fn in impls.items():
        got = fn(A0, steps)
        errs = [np.max(np.abs(np.asarray(g) - r)) for g, r in zip(got, ref)]
        verdicts = ["matches" if e <= 1e-12 else f"DIFFERS (max |diff| {e:.1e})" for e in errs]
        print(f"  {name:20s} result {verdicts[0]}; caller's A {verdicts[1]}; caller's B {verdicts[2]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64x64, 100 steps")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    n, steps = (64, 100) if args.quick else (args.size, args.steps)
    tc.config.c_compile_after = 0  # native code from the first call
    A0 = np.random.default_rng(0).standard_normal((n, n))
    impls = {"numpy": on_copies(jacobi),
             "tracec": on_copies(tc.compile(jacobi)),
             "tracec FAST_COMPILE": on_copies(tc.compile(jacobi, mode="FAST_COMPILE"))}
    print(f"Jacobi {n}x{n}, {steps} steps, float64; one call against NumPy:")
    check(impls, A0, steps)
    times = interleaved_median_times(impls, A0, steps, rounds=3 if args.quick else 7)
    print_table(f"median time per call, {load_note()} (ratio to NumPy running the same code)",
                [(f"Jacobi {n}x{n}, {steps} steps", times)])
    print(f"per time step: NumPy {times['numpy'] / steps * 1e6:.1f} us, "
          f"tracec {times['tracec'] / steps * 1e6:.1f} us")


if __name__ == "__main__":
    main()
