"""Per-thread tracing state: which `tc.compile` trace (if any) is running.

Shared variables are global objects; while a function is traced their current
value and any in-place changes live here, so the trace sees its own updates
and nothing leaks into other traces or into the symbolic front end.
"""
import threading

_local = threading.local()


class TraceContext:
    def __init__(self):
        self.shared = {}  # SharedVariable -> [current Variable, version]

    def __enter__(self):
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _local.stack.pop()
        return False


def current():
    """The innermost active TraceContext, or None outside tracing."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None
