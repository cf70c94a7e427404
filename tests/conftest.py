"""Suite-wide fixtures."""
import pytest

import tracec as tc


@pytest.fixture(autouse=True)
def _check_graph():
    """Every optimizer pass is followed by the graph verifier (tc.config.check_graph)."""
    with tc.config.change(check_graph=True):
        yield
