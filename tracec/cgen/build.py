"""Compiling generated C into shared objects, through the on-disk cache.

The cache key is a content hash of everything that decides the binary: the
source (comments aside -- they carry user source lines, which do not change
the code), the headers it includes, the compiler's identity, the flags, the
Python and NumPy ABI and the tracec version. No version number is kept by hand.
"""
import ctypes.util
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..config import config
from . import cache

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
# always on: position-independent shared object, C11, wrapping signed integers as NumPy's loops have
BASE_FLAGS = ["-shared", "-fPIC", "-std=gnu11", "-fwrapv", "-fopenmp", "-w"]


def passive_openmp_threads():
    """Idle OpenMP threads sleep instead of spinning (unless the user set OMP_WAIT_POLICY).

    libgomp reads the variable when the first module using it is loaded. Spinning
    threads hold the cores that BLAS (its own thread pool) needs next: on 2 cores,
    an MLP step took 4x longer with spinning kernels between the matrix products.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


class CompilerMissingWarning(RuntimeWarning):
    """No C compiler: compiled functions run on the NumPy interpreter."""


class CompileError(RuntimeError):
    """The C compiler rejected generated code (a tracec bug): the message holds its output."""


_warned_missing = set()
_compiler_ids = {}


def find_compiler():
    """Absolute path of tc.config.cc, or None (with one warning per compiler name)."""
    name = config.cc
    path = shutil.which(name)
    if path is None and name not in _warned_missing:
        _warned_missing.add(name)
        warnings.warn(f"tracec: no C compiler found (flag cc={name!r}); compiled functions run on the "
                      "NumPy interpreter. Install gcc or clang, or set TRACEC_FLAGS=cc=/path/to/compiler",
                      CompilerMissingWarning, stacklevel=4)
    return path


def _compiler_id(path):
    """What identifies the compiler: resolved path, size and mtime of its driver."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return f"{real}:{st.st_size}:{int(st.st_mtime)}"


def _cpu_id():
    """-march=native compiles for this CPU: its feature flags are part of the key."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return hashlib.sha256(line.encode()).hexdigest()[:16]
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flags():
    """The full compile command's flags, user flags first."""
    extra = []
    if sys.platform.startswith("linux") and platform.machine() == "x86_64" and ctypes.util.find_library("mvec"):
        extra = ["-DTC_LIBMVEC"] + (["-DTC_LIBMVEC_2_35"] if _glibc_version() >= (2, 35) else [])
    return config.c_flags.split() + BASE_FLAGS + extra + ["-I" + TEMPLATES]


def _glibc_version():
    """(major, minor) of the C library, (0, 0) when it is not glibc."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return tuple(int(p) for p in version.split(".")[:2]) if name == "glibc" else (0, 0)
    except (AttributeError, OSError, ValueError):
        return (0, 0)


def _libs(flag_list):
    return ["-lm"] + (["-lmvec"] if "-DTC_LIBMVEC" in flag_list else [])



_COMMENT = re.compile(r"//[^\n]*")


def canonical(source):
    """`source` without its // comments (node descriptions, user source lines): what the key hashes."""
    return _COMMENT.sub("", source)


def _header_digest():
    digest = hashlib.sha256()
    for name in sorted(os.listdir(TEMPLATES)):
        if name.endswith(".h"):
            with open(os.path.join(TEMPLATES, name), "rb") as fh:
                digest.update(name.encode() + fh.read())
    return digest.hexdigest()


_HEADERS = None


def module_key(source, compiler_path, flag_list):
    """Content hash naming the module built from `source` with this compiler and flags."""
    global _HEADERS
    if _HEADERS is None:
        _HEADERS = _header_digest()
    from .. import __version__
    if compiler_path not in _compiler_ids:
        _compiler_ids[compiler_path] = _compiler_id(compiler_path)
    parts = [canonical(source), _HEADERS, _compiler_ids[compiler_path], " ".join(flag_list),
             sys.implementation.cache_tag, sysconfig.get_config_var("SOABI") or "",
             np.__version__.split(".")[0], __version__, platform.machine()]
    if "-march=native" in flag_list or "-mcpu=native" in flag_list:
        parts.append(_cpu_id())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _compile(source, key, compiler_path, flag_list):
    build_dir = cache.new_build_dir()
    src = os.path.join(build_dir, "source.c")
    out = os.path.join(build_dir, cache.MODULE)
    with open(src, "w") as fh:
        fh.write(source)
    cmd = [compiler_path] + flag_list + [src, "-o", out] + _libs(flag_list)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        shutil.rmtree(build_dir, ignore_errors=True)
        raise CompileError(f"{' '.join(cmd)}\nfailed with:\n{proc.stderr.strip()}\n--- source ---\n{source}")
    return cache.publish(key, build_dir, out, source,
                         {"compiler": _compiler_ids[compiler_path], "flags": flag_list})


def lookup_many(sources):
    """Paths of the modules for `sources` already in the cache (None where not), compiling nothing."""
    compiler_path = find_compiler()
    if compiler_path is None:
        return [None] * len(sources)
    flag_list = flags()
    return [cache.lookup(module_key(s, compiler_path, flag_list)) for s in sources]


def build(source):
    """Path of the shared object compiled from `source`: from the cache, or compiled now."""
    return build_many([source])[0]


def build_many(sources):
    """Paths of the modules for `sources`; missing ones are compiled in parallel.

    Raises CompileError; returns None entries only when no compiler exists
    (after warning once).
    """
    compiler_path = find_compiler()
    if compiler_path is None:
        return [None] * len(sources)
    flag_list = flags()
    keys = [module_key(s, compiler_path, flag_list) for s in sources]
    paths = [cache.lookup(k) for k in keys]
    todo = {}
    for i, (key, path) in enumerate(zip(keys, paths)):
        if path is None:
            todo.setdefault(key, (sources[i], []))[1].append(i)
    if not todo:
        return paths
    jobs = list(todo.items())
    if len(jobs) == 1:
        results = [_compile(jobs[0][1][0], jobs[0][0], compiler_path, flag_list)]
    else:
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
            results = list(pool.map(lambda job: _compile(job[1][0], job[0], compiler_path, flag_list), jobs))
    for (key, (_, positions)), path in zip(jobs, results):
        for i in positions:
            paths[i] = path
    try:
        cache.prune()
    except OSError:
        pass
    return paths
