"""The C backend's tests share one temporary cache directory per test session
(never ~/.cache), so each distinct module is compiled once per session.

Inside these tests kernels compile when a function is built (c_compile_after=0)
and lone elementwise nodes are compiled too (c_single_ops), so every op's C
expression is exercised. The flags are set per test, so other test folders
keep the defaults.
"""
import os

import pytest

import tracec as tc
from tracec.cgen import build, executor


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tracec-cache"))


@pytest.fixture(autouse=True)
def c_backend(cache_dir):
    if not executor.available():
        pytest.skip("no C compiler or runtime: the C backend cannot run here")
    with tc.config.change(cache_dir=cache_dir, c_compile_after=0, c_single_ops=True, mode="FAST_RUN"):
        yield


@pytest.fixture
def subprocess_env(cache_dir):
    """Environment for child processes using the session's cache."""
    env = dict(os.environ)
    env["TRACEC_FLAGS"] = f"cache_dir={cache_dir}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(build.__file__)))), env.get("PYTHONPATH")]))
    return env
