"""Python loops and ifs in `tc.compile` functions, captured as scan and ifelse.

convert.py rewrites a function's source (AST) so each loop/if calls runtime.py,
which runs it as Python when its bounds or condition are concrete and builds
one scan / ifelse node when they are traced (scanned.py builds the scan).
analysis.py finds the loop state; objects.py follows which array each name
holds, so in-place changes reach the arrays NumPy would change.
"""
from .convert import convert, converted_source
from .runtime import LoopConversionError

__all__ = ["convert", "converted_source", "LoopConversionError"]
