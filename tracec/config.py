"""tc.config: flags read from ~/.tracecrc (or $TRACECRC), then $TRACEC_FLAGS,
then assignment (``tc.config.floatX = 'float32'``) or ``with tc.config.change(...)``.

Each flag is one row of FLAGS: name, default, parser/validator, help. Later
parts of tracec add their rows here, so every flag is listed in one place.
"""
import configparser
import contextlib
import os
import re

import numpy as np


class ConfigError(ValueError):
    """An unknown flag or an invalid value."""


def _choice(*allowed):
    def parse(value):
        if value not in allowed:
            raise ConfigError(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    parse.allowed = allowed
    return parse


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected a boolean (True/False, 1/0), got {value!r}")


def _device(value):
    if not re.fullmatch(r"cpu|cuda\d*", str(value)):
        raise ConfigError(f"expected 'cpu', 'cuda' or 'cudaN' (N a GPU number), got {value!r}")
    return str(value)


def _path(value):
    return os.path.abspath(os.path.expanduser(str(value)))


def _names(value):
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return tuple(n for n in re.split(r"[:,\s]+", str(value)) if n)


def _positive_int(value):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a positive integer, got {value!r}") from None
    if n <= 0:
        raise ConfigError(f"expected a positive integer, got {value!r}")
    return n


def _positive_float(value):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a positive number, got {value!r}") from None
    if not x > 0:
        raise ConfigError(f"expected a positive number, got {value!r}")
    return x


def _nonneg_int(value):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a non-negative integer, got {value!r}") from None
    if n < 0:
        raise ConfigError(f"expected a non-negative integer, got {value!r}")
    return n


def _byte_size(value):
    """A size in bytes: an integer, or with a K/M/G suffix ('500M', '2G')."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[bB]?\s*", str(value))
    if not match:
        raise ConfigError(f"expected a size in bytes such as 1000000, '500M' or '2G', got {value!r}")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")


# name: (default, parser, help)
FLAGS = {
    "floatX": ("float64", _choice("float64", "float32", "float16"),
               "dtype of tc.scalar/vector/... declared without a dtype"),
    "mode": ("FAST_RUN", _choice("FAST_RUN", "FAST_COMPILE", "DEBUG"),
             "default execution mode of compiled functions"),
    "device": ("cpu", _device, "where compiled functions run: cpu, cuda, cudaN"),
    "cache_dir": ("~/.cache/tracec", _path, "on-disk cache of generated code"),
    "optimizer_including": ((), _names, "rewrites or tags to add to the mode's optimizer"),
    "optimizer_excluding": ((), _names, "rewrites or tags to remove from the mode's optimizer"),
    "check_graph": (False, _bool, "verify graph types and invariants after every rewrite pass"),
    "retrace_warn": (10, _positive_int, "warn after this many traces of one function"),
    "unroll_limit": (64, _positive_int, "Python loops over concrete ranges run unrolled up to "
                     "this many steps in tc.compile functions; longer ones become one scan"),
    # the C backend (tracec/cgen)
    "cc": (os.environ.get("CC", "cc"), str, "C compiler of the C backend (none found: the NumPy interpreter runs)"),
    "c_flags": ("-O3 -march=native -fno-math-errno -ffp-contract=off", str,
                "optimization flags of generated C (never -ffast-math: it changes NaN/Inf results)"),
    "c_threads": (0, _nonneg_int, "OpenMP threads of native kernels; 0: one per CPU core"),
    "c_parallel_threshold": (200_000, _nonneg_int, "elements above which native kernels use threads"),
    "c_compile_after": (1, _nonneg_int, "calls of a new function run through NumPy before its kernels are "
                        "compiled (0: compile at once); kernels already cached, or a call on arrays of "
                        "c_parallel_threshold elements, switch to native code at once"),
    "c_single_ops": (False, _bool, "also compile lone elementwise nodes and reductions (by default only "
                     "fused groups: a lone ufunc or reduction already runs NumPy's native loop; loop bodies "
                     "always compile them, so that their steps can be replayed)"),
    "cache_size_limit": ("2G", _byte_size, "on-disk cache size above which least recently used entries go"),
    # debugging and profiling (tracec/debug.py, tracec/profiling.py)
    "nan_is_error": (True, _bool, "DEBUG mode: a NaN in any node's output raises"),
    "inf_is_error": (True, _bool, "DEBUG mode: an infinity in any node's output raises"),
    "big_is_error": (False, _bool, "DEBUG mode: a value larger than big_threshold in magnitude raises"),
    "big_threshold": (1e10, _positive_float, "DEBUG mode: what big_is_error counts as big"),
    "debug_check_backend": (False, _bool, "run every node also on the NumPy reference and report the "
                            "first node whose compiled output differs (meaningful with the C backend)"),
    "disable_compile": (False, _bool, "tc.compile runs the original Python function untraced (for pdb)"),
    "explain_retrace": (False, _bool, "log which argument's type changed when a function is traced again"),
    "profile": (False, _bool, "profile every compiled function; tc.profile.report() runs at exit"),
}


class Config:
    """The flag values in force. Unknown names raise, listing the valid ones."""

    def __init__(self, env=None, rcfile=None):
        object.__setattr__(self, "_values", {})
        for name, (default, parse, _) in FLAGS.items():
            self._values[name] = parse(default)
        env = os.environ if env is None else env
        rcfile = rcfile or env.get("TRACECRC") or os.path.expanduser("~/.tracecrc")
        if os.path.isfile(rcfile):
            self._read_rc(rcfile)
        flags = env.get("TRACEC_FLAGS", "")
        for item in filter(None, (s.strip() for s in flags.split(","))):
            name, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"TRACEC_FLAGS: expected name=value, got {item!r}")
            self._set(name.strip(), value.strip(), where="TRACEC_FLAGS")

    def _read_rc(self, path):
        parser = configparser.ConfigParser()
        parser.optionxform = str  # flag names are case-sensitive (floatX)
        parser.read(path)
        for section in parser.sections():
            for name, value in parser.items(section):
                self._set(name, value, where=path)

    def _set(self, name, value, where="tc.config"):
        if name not in FLAGS:
            raise ConfigError(f"{where}: unknown flag {name!r}; valid flags: {', '.join(sorted(FLAGS))}")
        try:
            self._values[name] = FLAGS[name][1](value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: flag {name!r}: {exc}") from None

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"tc.config has no flag {name!r}; valid flags: "
                                 f"{', '.join(sorted(FLAGS))}") from None

    def __setattr__(self, name, value):
        self._set(name, value)

    @contextlib.contextmanager
    def change(self, **flags):
        """Temporarily set flags: ``with tc.config.change(floatX='float32'): ...``."""
        saved = dict(self._values)
        try:
            for name, value in flags.items():
                self._set(name, value)
            yield self
        finally:
            self._values.clear()
            self._values.update(saved)

    def describe(self):
        """One line per flag: name, value and help."""
        return "\n".join(f"{n} = {self._values[n]!r}  # {FLAGS[n][2]}" for n in sorted(FLAGS))

    def __repr__(self):
        return f"<tc.config {self._values}>"

    def __dir__(self):
        return list(FLAGS) + ["change", "describe"]


config = Config()


def float_x():
    return np.dtype(config.floatX)
