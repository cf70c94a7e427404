"""The op table. Importing this package registers every built-in op in `OPS`."""
from .base import OPS, Op, Params  # noqa: F401
from . import elemwise, reduce, linalg, shape, index, create  # noqa: F401  (registers the ops)
from . import special  # noqa: F401  (stop_gradient, jacobian)
from . import debug_ops  # noqa: F401  (debug_print, debug_breakpoint)
from . import sizes  # noqa: F401  (sizes known when tracing: fills each op's `sizes` slot)
