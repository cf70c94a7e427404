"""Bookkeeping for the op-coverage test (see cases.py and test_coverage.py)."""
import json
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import cases  # noqa: E402

COVERAGE_FILE = cases.COVERAGE_FILE
REGISTRY_ENV = cases.REGISTRY_ENV


def _is_op_test(item):
    path = os.path.abspath(str(item.fspath))
    return os.path.dirname(path) == _HERE and path != COVERAGE_FILE


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    # before -k/-m deselection: every op test there is; the coverage check runs last
    cases.ALL_ITEMS.update(item.nodeid for item in items if _is_op_test(item))
    items.sort(key=lambda item: os.path.abspath(str(item.fspath)) == COVERAGE_FILE)


def pytest_runtest_setup(item):
    if _is_op_test(item):
        cases.EXECUTED.add(item.nodeid)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get(REGISTRY_ENV)
    if path:
        with open(path, "w") as fh:
            json.dump({"seen": sorted(cases.SEEN_OPS), "executed": len(cases.EXECUTED),
                       "collected": len(cases.ALL_ITEMS)}, fh)
