"""The op table. Importing this package registers every built-in op in `OPS`."""
from .base import OPS, Op, Params  # noqa: F401
from . import elemwise, reduce, linalg, shape, index, create  # noqa: F401  (registers the ops)
