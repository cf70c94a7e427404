"""Shared helpers for benchmarks: timing medians, peer detection, ratio tables.

Benchmarks print; they never assert. Compare within one run (the machine is
shared and noisy) and quote medians and ratios to NumPy.
"""
import importlib.util
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `python bench/x.py` puts bench/ on sys.path, not the checkout: find tracec there when no install does
if importlib.util.find_spec("tracec") is None:
    sys.path.insert(0, REPO)


def median_time(fn, *args, repeat=7, number=None, min_time=0.2):
    """Median seconds per call of fn(*args) over `repeat` batches of `number` calls."""
    fn(*args)  # warm-up (tracing, compilation, caches)
    if number is None:
        number, elapsed = 1, 0.0
        while True:
            t0 = time.perf_counter()
            for _ in range(number):
                fn(*args)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time / repeat or number >= 1 << 20:
                break
            number *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


def interleaved_median_times(impls, *args, rounds=7, sample_time=0.1):
    """{name: median seconds per call of fn(*args)} for impls {name: fn} in one process,
    sampled in interleaved rounds, so a load change on a shared machine hits all alike."""
    calls = {}
    for name, fn in impls.items():
        t0 = time.perf_counter()
        fn(*args)  # warm-up (tracing, compilation, caches); its time sizes the samples
        calls[name] = max(1, min(1 << 16, int(sample_time / max(time.perf_counter() - t0, 1e-9))))
    samples = {name: [] for name in impls}
    names = list(impls)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, n = impls[name], calls[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn(*args)
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def peers():
    """Installed peer libraries, by name (each import is optional)."""
    found = {}
    for name in ("numexpr", "jax", "pytensor", "torch"):
        try:
            found[name] = __import__(name)
        except Exception:
            pass
    return found


def installed(impls, threads, only, make):
    """{label: make(label, module)} for the entries {label: (module name or None, ...)} of `impls`
    whose module is installed (only `only` when given; torch's threads set to `threads`)."""
    chosen, found = {}, peers() if only is None else {}
    for label, entry in impls.items():
        if only is not None and label != only:
            continue
        module, mod = entry[0], None
        if module is not None:
            mod = found.get(module) if only is None else __import__(module)
            if mod is None:
                print(f"{module}: not installed, skipped")
                continue
            if module == "torch":
                mod.set_num_threads(threads)
        chosen[label] = make(label, mod)
    return chosen


def cpu_threads():
    """CPUs this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fmt_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f} {unit}"
    return f"{seconds * 1e9:8.2f} ns"


def print_table(title, rows, baseline="numpy"):
    """rows: list of (case, {implementation: seconds}). Ratios are time / baseline time."""
    print(f"\n{title}")
    impls = []
    for _, times in rows:
        for k in times:
            if k not in impls:
                impls.append(k)
    header = f"{'case':28s}" + "".join(f"{k:>22s}" for k in impls)
    print(header)
    print("-" * len(header))
    for case, times in rows:
        base = times.get(baseline)
        cells = []
        for k in impls:
            t = times.get(k)
            if t is None:
                cells.append(f"{'-':>22s}")
            else:
                ratio = f" ({t / base:5.2f}x)" if base else ""
                cells.append(f"{fmt_time(t) + ratio:>22s}")
        print(f"{case:28s}" + "".join(cells))


def thread_env(threads):
    """Environment capping the BLAS and OpenMP pools of a child process at `threads`."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:  # XLA:CPU's own pool
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            " intra_op_parallelism_threads=1").strip()
    return env


def serve(fn, *args, sample_time=0.2):
    """Child side of interleaved_times: warm up, then answer each "sample" line on stdin
    with the median of single calls of fn(*args) taking about `sample_time` seconds."""
    t0 = time.perf_counter()
    fn(*args)
    calls = max(1, min(50, int(sample_time / max(time.perf_counter() - t0, 1e-9))))
    print("@ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "sample":
            break
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
        print(f"@sample {statistics.median(times)!r}", flush=True)


def _reply(proc, name):
    for line in proc.stdout:
        if line.startswith("@"):
            return line.split()
    raise RuntimeError(f"{name}: its process ended without an answer:\n{proc.stderr.read()[-1500:]}")


def interleaved_times(names, rounds, env=None, only_flag="--only"):
    """Median time of each implementation, each in its own process, sampled in interleaved rounds.

    This script runs again once per implementation (`--only NAME`, which must call
    `serve`). Separate processes: thread pools of different libraries (OpenBLAS,
    OpenMP, XLA, PyTorch's) in one process spin against each other on a small
    machine. Interleaved rounds: a load change on a shared machine hits every
    implementation alike instead of whichever ran at the time.
    """
    procs = {}
    try:
        for name in names:  # start and warm up one at a time: compiling never overlaps a measurement
            cmd = [sys.executable, sys.argv[0], *sys.argv[1:], only_flag, name]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env)
            try:
                _reply(proc, name)
                procs[name] = proc
            except RuntimeError as err:
                proc.wait()
                print(err)
        samples = {name: [] for name in procs}
        for r in range(rounds):
            order = list(procs)[r % len(procs):] + list(procs)[:r % len(procs)] if procs else []
            for name in order:
                time.sleep(0.05)  # let the previous process's spinning threads go to sleep
                procs[name].stdin.write("sample\n")
                procs[name].stdin.flush()
                samples[name].append(float(_reply(procs[name], name)[1]))
        return {name: statistics.median(ts) for name, ts in samples.items()}
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()


def load_note():
    """The 1-minute load average, to print with results from a shared machine."""
    return f"load average {os.getloadavg()[0]:.1f} on {cpu_threads()} CPUs" if hasattr(os, "getloadavg") else ""
