"""The C backend: renders elementwise groups of a Program to C, builds them
through the on-disk cache, and runs them with a runtime built at install time.

`available()` says whether FAST_RUN can use it; `CExecutor` plans a Program into a native Runner.
"""
