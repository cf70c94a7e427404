"""Every op in the op table is exercised by the op tests.

The op tests record the op of every node in the programs they trace
(cases.SEEN_OPS). When this session ran the whole op suite (this test runs
last, see conftest.py), that record is used; otherwise (a single file, -k,
a distributed run) the op suite is run once more in a subprocess to get it.
A new op added to the table without a test makes this test fail.
"""
import glob
import json
import os
import subprocess
import sys

import cases
import tracec as tc

_HERE = cases.HERE


def _op_test_files():
    return {os.path.abspath(p) for p in glob.glob(os.path.join(_HERE, "test_*.py"))} - {cases.COVERAGE_FILE}


def _whole_suite_ran(config):
    if any("::" in str(arg) for arg in config.args):
        return False
    files = {os.path.abspath(os.path.join(str(config.rootpath), nodeid.split("::")[0]))
             for nodeid in cases.EXECUTED}
    return files >= _op_test_files() and cases.ALL_ITEMS <= cases.EXECUTED


def _seen_ops_from_subprocess(tmp_path):
    out = tmp_path / "seen.json"
    env = dict(os.environ, **{cases.REGISTRY_ENV: str(out)})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "--ignore", cases.COVERAGE_FILE, _HERE]
    proc = subprocess.run(cmd, cwd=_HERE, env=env, capture_output=True, text=True, timeout=600)
    assert out.exists(), f"the op suite did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert data["executed"] == data["collected"] > 0, data
    return set(data["seen"])


def test_every_op_is_exercised(request, tmp_path):
    if _whole_suite_ran(request.config):
        seen = set(cases.SEEN_OPS)
    else:
        seen = _seen_ops_from_subprocess(tmp_path)
    untested = sorted(set(tc.OPS) - seen)
    assert not untested, (f"{len(untested)} op(s) of tc.OPS appear in no traced program of the op "
                          f"tests: {untested}; add tests for them under tests/ops/")


def test_registry_records_ops():
    # the recording itself works: a tiny function shows up with its ops
    import numpy as np
    f = tc.compile(lambda x: np.exp(x).sum())
    f(np.ones(3))
    assert cases.ops_of(f) == {"exp", "sum"}
