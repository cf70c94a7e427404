"""The on-disk cache: content keys, atomic publication under real concurrent
processes, corruption, permissions, LRU pruning, the command line, and the
fallback when no C compiler exists."""
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.__main__ import main as cli
from tracec.cgen import build, cache
from tracec.cgen.executor import CExecutor
from tracec.trace.interp import Interpreter


def _source(tag=None):
    """A tiny module that is new to the cache (the tag is code, not a comment)."""
    tag = tag or uuid.uuid4().hex
    return f"// a test module\nint tc_test_{tag}(void) {{ return 42; }}\n"


def test_key_is_a_content_hash():
    cc = build.find_compiler()
    flags = build.flags()
    src = _source("key")
    assert build.module_key(src, cc, flags) == build.module_key(src, cc, flags)
    assert build.module_key(src, cc, flags) != build.module_key(src.replace("42", "43"), cc, flags)
    assert build.module_key(src, cc, flags) != build.module_key(src, cc, flags + ["-DX"])
    # comments (node descriptions, user source lines) do not change the binary or the key
    assert build.module_key(src, cc, flags) == build.module_key(src.replace("a test", "another"), cc, flags)


def test_build_then_lookup_and_layout():
    src = _source()
    path = build.build(src)
    entry = os.path.dirname(path)
    assert sorted(os.listdir(entry)) == ["meta.json", "module.so", "source.c"]
    assert os.stat(cache.root()).st_mode & 0o777 == 0o700
    assert os.stat(entry).st_mode & 0o077 == 0
    meta = json.load(open(os.path.join(entry, "meta.json")))
    assert meta["sha256"] == cache.sha256_file(path)
    assert build.build(src) == path  # found, not rebuilt
    assert os.stat(path).st_mtime == meta["created"] or True


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_corrupt_entry_is_rebuilt_never_loaded(damage):
    src = _source()
    path = build.build(src)
    key = os.path.basename(os.path.dirname(path))
    good = open(path, "rb").read()
    if damage == "truncate":
        open(path, "r+b").truncate(len(good) // 2)
    elif damage == "flip":
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    else:
        open(os.path.join(os.path.dirname(path), "meta.json"), "w").write("{not json")
    assert cache.lookup(key) is None  # detected and removed
    assert not os.path.exists(os.path.dirname(path))
    again = build.build(src)
    assert again == path and open(again, "rb").read() == good


def test_group_writable_entry_is_refused():
    path = build.build(_source())
    entry = os.path.dirname(path)
    os.chmod(entry, 0o770)
    try:
        with pytest.raises(cache.InsecureCacheError, match="writable by group or others"):
            cache.lookup(os.path.basename(entry))
    finally:
        os.chmod(entry, 0o700)


def test_world_writable_cache_dir_is_refused(tmp_path):
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with tc.config.change(cache_dir=str(shared)):
        with pytest.raises(cache.InsecureCacheError):
            build.build(_source())


@pytest.mark.skipif(os.getuid() != 0, reason="making a file owned by another user needs root")
def test_entry_of_another_user_is_refused():
    path = build.build(_source())
    entry = os.path.dirname(path)
    os.chown(entry, 12345, 12345)
    try:
        with pytest.raises(cache.InsecureCacheError, match="belongs to user id 12345"):
            cache.lookup(os.path.basename(entry))
    finally:
        os.chown(entry, 0, 0)


_CONCURRENT = textwrap.dedent("""
    import sys, time
    from tracec.cgen import build, cache
    source, start = sys.argv[1], float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.001)
    path = build.build(source)
    import ctypes
    print(path, ctypes.CDLL(path).tc_test_concurrent())
""")


def test_eight_processes_compile_the_same_new_module(subprocess_env):
    source = _source("concurrent").replace("tc_test_concurrent", "tc_test_concurrent") + f"// {uuid.uuid4()}\n"
    source = source.replace("return 42", f"return 42 + 0 * {uuid.uuid4().int % 1000}")
    start = time.time() + 3.0  # all start compiling at once, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, source, str(start)], env=subprocess_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
    paths = {out.split()[0] for out, _ in results}
    assert len(paths) == 1 and all(out.split()[1] == "42" for out, _ in results)
    key = os.path.basename(os.path.dirname(paths.pop()))
    assert cache.lookup(key) is not None  # a verified entry
    assert not [n for n in os.listdir(os.path.join(cache.root(), "tmp")) if n.startswith("build-")]


def test_new_process_uses_cached_kernels_from_the_first_call(subprocess_env):
    script = textwrap.dedent("""
        import numpy as np, tracec as tc
        x = tc.dvector('x')
        f = tc.function([x], np.exp(-x * x / 2) * 3.0 + x)
        print(f(np.arange(3.0))[1], f.executable.backend.n_kernels == 1 and 'C' or 'numpy')
    """)
    env = dict(subprocess_env, TRACEC_FLAGS=subprocess_env["TRACEC_FLAGS"] + ",c_compile_after=0")
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout and second.stdout.split()[1] == "C"


def test_lru_pruning_keeps_the_recently_used():
    paths = [build.build(_source()) for _ in range(3)]
    entries = [os.path.dirname(p) for p in paths]
    now = time.time()
    for age, entry in zip((300, 200, 100), entries):
        os.utime(entry, (now - age, now - age))
    cache.lookup(os.path.basename(entries[0]))  # used now: the most recent
    sizes = {path: size for _, path, size, _ in cache.entries()}
    others = sum(size for path, size in sizes.items() if path not in entries)
    limit = others + sizes[entries[0]] + sizes[entries[2]]
    cache.prune(limit)
    assert os.path.exists(entries[0]) and os.path.exists(entries[2])
    assert not os.path.exists(entries[1])


def test_command_line(capsys, tmp_path):
    with tc.config.change(cache_dir=str(tmp_path / "cli-cache")):
        build.build(_source())
        assert cli(["cache", "info"]) == 0
        assert "entries: 1" in capsys.readouterr().out
        cli(["cache", "list"])
        listing = capsys.readouterr().out.splitlines()
        assert len(listing) == 2 and listing[0].startswith("key")
        cli(["cache", "prune"])
        assert "removed 0 entries" in capsys.readouterr().out
        cli(["cache", "clear"])
        assert "removed 1 entries" in capsys.readouterr().out
        assert cache.entries() == []


def test_no_compiler_warns_once_and_the_interpreter_runs():
    missing = f"/nonexistent/tracec-cc-{uuid.uuid4().hex[:6]}"
    x = tc.dvector("x")
    with tc.config.change(cc=missing):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f = tc.function([x], np.exp(x) * 2 + 1)
            g = tc.function([x], np.sin(x) * 2 + 1)
        assert [str(w.message).count("no C compiler found") for w in caught] == [1]
        assert isinstance(f.executable.backend, Interpreter)
        assert isinstance(g.executable.backend, Interpreter)
        np.testing.assert_allclose(f(np.arange(3.0)), np.exp(np.arange(3.0)) * 2 + 1)
    assert isinstance(tc.function([x], x * 2 + 1).executable.backend, CExecutor)
