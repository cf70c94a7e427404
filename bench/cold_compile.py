"""Cold compile and cache hit of a new MLP value-and-grad step (2 layers, softmax cross-entropy).

Run: python bench/cold_compile.py [--quick] [--repeat N]
Each measurement is a fresh Python process (`python -c ...`), so nothing is warm:
- cold: an empty temporary cache dir (TRACEC_FLAGS=cache_dir=...); the time from
  after `import tracec` to the end of the first call: tracing, differentiation,
  optimization, C generation and compilation, one run;
- cache hit: the same script again on the now filled cache, as the wall time of
  the whole process minus the wall time of `python -c "import tracec"`.
Targets (C-backend issue): cold <= 1 s; cache hit <= 50 ms beyond `import tracec`.
Medians over the repeats; the first call's loss is checked against NumPy.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import REPO, fmt_time, load_note  # noqa: E402

IMPORT_ONLY = "import tracec"

# what a user's new training script does: define the loss, compile value_and_grad, call it once
BUILD_AND_CALL = """
import time
t0 = time.perf_counter()
import numpy as np, tracec as tc
t1 = time.perf_counter()

def loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * log_p, axis=1))

rng = np.random.default_rng(0)
params = {"W1": rng.standard_normal((784, 128)) * 0.05, "b1": np.zeros(128),
          "W2": rng.standard_normal((128, 10)) * 0.05, "b2": np.zeros(10)}
x = rng.standard_normal((32, 784))
y = np.eye(10)[rng.integers(0, 10, 32)]
step = tc.compile(tc.value_and_grad(loss), profile=PROFILE)
value, grads = step(params, x, y)
t2 = time.perf_counter()
print("@result", repr(float(value)), repr(float(np.abs(grads["W1"]).sum())), t1 - t0, t2 - t1)
if PROFILE:
    print("@phases", repr({k: t for k, (_, t) in step.profile.compile_times.items()}))
    print("@notes", repr({k: dict(v) for k, v in step.profile.notes.items()}))
"""


def build_and_call(profile=False):
    return f"PROFILE = {profile}\n" + BUILD_AND_CALL


def reference():
    """The loss and sum |dL/dW1| the child computes, by NumPy with a hand-written gradient."""
    rng = np.random.default_rng(0)
    W1, b1 = rng.standard_normal((784, 128)) * 0.05, np.zeros(128)
    W2, b2 = rng.standard_normal((128, 10)) * 0.05, np.zeros(10)
    x = rng.standard_normal((32, 784))
    y = np.eye(10)[rng.integers(0, 10, 32)]
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * np.log(p), axis=1))
    dz = (p * y.sum(axis=1, keepdims=True) - y) / x.shape[0]
    return loss, np.abs(x.T @ ((dz @ W2.T) * (1 - h * h))).sum()


def run_python(code, cache_dir):
    """Wall seconds of `python -c code` in a fresh process, and its stdout."""
    env = dict(os.environ, TRACEC_FLAGS=f"cache_dir={cache_dir},c_compile_after=0")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"the child process failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def parse(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("@result"))
    return [float(v) for v in line.split()[1:]]


def cache_entries(cache_dir):
    files = [os.path.join(d, f) for d, _, fs in os.walk(cache_dir) for f in fs]
    return len(files), sum(os.path.getsize(f) for f in files)


def breakdown(root):
    """The compile phases tc.profile records, for a cold run and for a cache hit."""
    cache_dir = os.path.join(root, "profiled")
    for label in ("cold", "cache hit"):
        _, out = run_python(build_and_call(profile=True), cache_dir)
        lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if line[:1] == "@"}
        phases, notes = eval(lines["@phases"]), eval(lines["@notes"])  # repr of plain dicts, from our child
        print(f"\n{label} (profile=True), compile phases over 1 ms; notes: {notes}")
        for name, t in phases.items():
            if t >= 1e-3:
                print(f"  {name:60s}{fmt_time(t):>12s}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--breakdown", action="store_true", help="also print tc.profile's compile phases")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    ref_loss, ref_g = reference()
    cold, cold_wall, hit_wall, import_wall, hit_inproc = [], [], [], [], []
    root = tempfile.mkdtemp(prefix="tracec-bench-cache-")
    try:
        for i in range(repeat):
            cache_dir = os.path.join(root, f"run{i}")  # a new empty cache each time
            wall, out = run_python(build_and_call(), cache_dir)
            loss, g, _, build = parse(out)
            if not (np.isclose(loss, ref_loss, rtol=1e-9) and np.isclose(g, ref_g, rtol=1e-9)):
                print(f"warning: cold run {i}: loss {loss} / |dW1| {g} differ from NumPy's "
                      f"{ref_loss} / {ref_g}", file=sys.stderr)
            cold.append(build)
            cold_wall.append(wall)
            n_files, size = cache_entries(cache_dir)
            # the cache hit in a new process, and an import-only process, interleaved against drift
            wall, out = run_python(build_and_call(), cache_dir)
            hit_wall.append(wall)
            hit_inproc.append(parse(out)[3])
            import_wall.append(run_python(IMPORT_ONLY, cache_dir)[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    print(f"MLP 784-128-10 value_and_grad, float64, {repeat} fresh processes each; "
          f"cache after a cold run: {n_files} files, {size / 1024:.0f} KiB; {load_note()}")
    print(f"first-call loss {loss:.12f} (NumPy {ref_loss:.12f})")
    rows = [("cold: build + first call, in process (after import)", med(cold), 1.0),
            ("cold: whole process wall time", med(cold_wall), None),
            ("cache hit: whole process wall time", med(hit_wall), None),
            ("import tracec only: process wall time", med(import_wall), None),
            ("cache hit: beyond import (wall difference)", med(hit_wall) - med(import_wall), 0.050),
            ("cache hit: build + first call, in process", med(hit_inproc), None)]
    print(f"\n{'measurement (median)':54s}{'time':>12s}{'target':>10s}")
    print("-" * 76)
    for label, t, target in rows:
        verdict = "" if target is None else (f"<= {fmt_time(target).strip()}" + (" ok" if t <= target else " MISSED"))
        print(f"{label:54s}{fmt_time(t):>12s}  {verdict}")
    if args.breakdown:
        root = tempfile.mkdtemp(prefix="tracec-bench-cache-")
        try:
            breakdown(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
