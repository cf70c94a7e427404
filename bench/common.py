"""Shared helpers for benchmarks: timing medians, peer detection, ratio tables.

Benchmarks print; they never assert. Compare within one run (the machine is
shared and noisy) and quote medians and ratios to NumPy.
"""
import statistics
import time


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


def peers():
    """Installed peer libraries, by name (each import is optional)."""
    found = {}
    for name in ("numexpr", "jax", "pytensor", "torch"):
        try:
            found[name] = __import__(name)
        except Exception:
            pass
    return found


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
