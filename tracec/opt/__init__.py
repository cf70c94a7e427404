"""The graph optimizer: rewrite engine, named rewrite lists, the pass pipeline, modes.

>>> import tracec as tc
>>> print(tc.opt.describe_pipeline('FAST_COMPILE').splitlines()[1])
  merge: (merges equal nodes; every pass does while it runs)
"""
from .engine import Builder, OptimizerWarning, RewriteError, n_clients, on, producer, run_pass  # noqa: F401
from .pipeline import (MODE_PASSES, PIPELINE, Mode, as_mode, describe_pipeline, optimize,  # noqa: F401
                       plan, profile_report, stabilized)
from .verify import GraphError, verify  # noqa: F401


def optimized_program(fn):
    """The optimized Program(s) a compiled function runs.

    For a ``tc.function`` result: its Program; for a ``tc.compile`` function:
    the list of Programs, one per traced signature.
    """
    from ..function import CompiledFunction, Function
    if isinstance(fn, Function):
        return fn.executable.backend.program
    if isinstance(fn, CompiledFunction):
        return [executable.backend.program for _, executable in fn._cache.values()]
    raise TypeError(f"optimized_program: expected a tc.function or tc.compile function, got {type(fn).__name__}")
