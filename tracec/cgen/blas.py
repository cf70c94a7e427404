"""Finding, at run time, the BLAS that NumPy (or SciPy) already loaded.

The C backend's matrix products (templates/tc_blas.h) call sgemm/dgemm/sgemv/
dgemv through function pointers; this module finds their addresses. No BLAS is
linked at build time, and NumPy's is reused only once it is loaded, so products
share NumPy's copy of the library, its threads and its settings.

The lookup, first hit wins:

1. NumPy's BLAS. Candidate files: the wheel's bundled copy (``numpy.libs/``,
   ``numpy/.dylibs/``; NumPy 2 wheels ship scipy-openblas there), then every
   BLAS-like shared object this process has mapped (``/proc/self/maps`` on
   Linux: a system NumPy's libopenblas, libblas, MKL, ...), then those in the
   "lib directory" ``numpy.show_config()`` reports, and Accelerate on macOS.
   Each is opened with ``RTLD_NOLOAD``: dlopen of a loaded library returns its
   existing handle, and of any other file fails, so nothing new is loaded.
   In each, the four routines are looked up under the names builds give them
   (``_NAMES``): CBLAS first (``scipy_cblas_dgemm64_``, ``cblas_dgemm_64``,
   ``cblas_dgemm``, ...), then the Fortran interface (``scipy_dgemm_64_``,
   ``dgemm_``, ...). The integer width (LP64: 32 bits, ILP64: 64) follows
   from a ``64_``/``_64`` suffix; for plain names from OpenBLAS's
   ``openblas_get_config()`` (``USE64BITINT``) or an "ilp64" BLAS name in
   NumPy's build configuration; otherwise 32 bits.
2. SciPy, when importable (it is not a dependency): the capsules of
   ``scipy.linalg.cython_blas.__pyx_capi__``, Fortran interface, 32 bits.
3. Neither: ``find()`` returns ``(None, reason)`` and callers use NumPy.

>>> from tracec.cgen import blas
>>> found, reason = blas.find()
>>> (found is None) != (reason is None)       # a Blas, or why there is none
True
"""
import ctypes
import functools
import glob
import importlib
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np

ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv")
INTERFACE_CODES = {"cblas": 1, "fortran": 2}   # TC_BLAS_CBLAS, TC_BLAS_FORTRAN in tc_blas.h

# (interface, symbol pattern, integer bits; None: decided from the library's configuration)
_NAMES = [
    ("cblas", "scipy_cblas_{}64_", 64),           # scipy-openblas64: NumPy 2 wheels
    ("cblas", "cblas_{}64_", 64),                 # OpenBLAS built with the 64_ suffix
    ("cblas", "cblas_{}_64", 64),                 # MKL's ILP64 names
    ("cblas", "cblas_{}$NEWLAPACK$ILP64", 64),    # Accelerate, macOS >= 13.3
    ("cblas", "scipy_cblas_{}", None),            # scipy-openblas32
    ("cblas", "cblas_{}", None),
    ("fortran", "scipy_{}_64_", 64),
    ("fortran", "{}_64_", 64),
    ("fortran", "{}_64", 64),
    ("fortran", "scipy_{}_", None),
    ("fortran", "{}_", None),
]
_OPENBLAS_CONFIG = ("scipy_openblas_get_config64_", "openblas_get_config64_",
                    "scipy_openblas_get_config", "openblas_get_config")
_BLAS_FILE = re.compile(r"blas|mkl_rt|libmkl|accelerate|armpl|libsci", re.IGNORECASE)
_ACCELERATE = "/System/Library/Frameworks/Accelerate.framework/Accelerate"


@dataclass(frozen=True)
class Blas:
    """The four routines of one BLAS: addresses, calling convention, integer width."""

    sgemm: int
    dgemm: int
    sgemv: int
    dgemv: int
    interface: str     # "cblas" or "fortran"
    int_bits: int      # 32 (LP64) or 64 (ILP64)
    library: str       # the file, or "scipy.linalg.cython_blas"
    names: tuple       # the four symbols, in ROUTINES order
    keep: object = field(default=None, repr=False, compare=False)   # keeps the handle alive

    def fields(self):
        """The values of C's `tc_blas`, in its field order (templates/tc_blas.h)."""
        return (self.sgemm, self.dgemm, self.sgemv, self.dgemv,
                INTERFACE_CODES[self.interface], self.int_bits // 8)


@functools.lru_cache(maxsize=None)
def find():
    """`(Blas, None)` for the BLAS NumPy or SciPy loaded, or `(None, reason)`; cached."""
    return search()


def search():
    """`find()` without the cache: tries every candidate, collecting why each failed."""
    reasons = []
    for path in candidate_libraries():
        try:
            return from_library(path), None
        except LookupError as err:
            reasons.append(str(err))
    try:
        return from_scipy(), None
    except LookupError as err:
        reasons.append(str(err))
    if not reasons:
        reasons.append("no BLAS library is loaded in this process")
    return None, "no BLAS found; matrix products run on NumPy: " + "; ".join(reasons)


def candidate_libraries():
    """Files that may hold the BLAS NumPy loaded, most likely first, without duplicates."""
    found = _numpy_bundled() + _mapped_libraries() + _numpy_config_libraries()
    if sys.platform == "darwin":
        found.append(_ACCELERATE)
    unique = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _numpy_bundled():
    package = os.path.dirname(np.__file__)
    dirs = [os.path.join(os.path.dirname(package), "numpy.libs"), os.path.join(package, ".dylibs")]
    return sorted(p for d in dirs for p in glob.glob(os.path.join(d, "*"))
                  if _BLAS_FILE.search(os.path.basename(p)))


def _mapped_libraries():
    """BLAS-like shared objects this process has mapped (Linux); Python extensions excluded."""
    try:
        with open("/proc/self/maps") as fh:
            paths = [line.split(None, 5)[5].strip() for line in fh if len(line.split(None, 5)) == 6]
    except OSError:
        return []
    names = dict.fromkeys(p for p in paths if p.startswith("/"))
    return [p for p in names
            if _BLAS_FILE.search(os.path.basename(p)) and ".cpython-" not in p and ".so" in p]


def _numpy_blas_config():
    try:
        return np.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return {}


def _numpy_config_libraries():
    directory = _numpy_blas_config().get("lib directory") or ""
    if not os.path.isdir(directory):
        return []
    return sorted(p for p in glob.glob(os.path.join(directory, "*"))
                  if _BLAS_FILE.search(os.path.basename(p)) and (".so" in p or p.endswith(".dylib")))


def _open_loaded(path):
    """ctypes handle on `path` only if it is already loaded (the same handle NumPy's has)."""
    if not getattr(os, "RTLD_NOLOAD", 0):
        raise LookupError(f"{path}: this platform has no RTLD_NOLOAD to reuse a loaded library")
    try:
        return ctypes.CDLL(path, mode=os.RTLD_NOLOAD | ctypes.RTLD_LOCAL)
    except OSError:
        raise LookupError(f"{path}: not loaded in this process") from None


def _address(lib, name):
    try:
        return ctypes.cast(lib[name], ctypes.c_void_p).value
    except AttributeError:
        return None


def from_library(path, interfaces=("cblas", "fortran")):
    """The routines of the already-loaded library `path`; LookupError says why not.

    `interfaces` restricts the calling conventions tried (in that order).
    """
    lib = _open_loaded(path)
    for interface, pattern, bits in _NAMES:
        if interface not in interfaces:
            continue
        names = tuple(pattern.format(r) for r in ROUTINES)
        addresses = [_address(lib, n) for n in names]
        if all(addresses):
            return Blas(*addresses, interface=interface, int_bits=bits or _int_bits(lib),
                        library=path, names=names, keep=lib)
    raise LookupError(f"{path}: no {'/'.join(ROUTINES)} under any known name ({' or '.join(interfaces)})")


def _int_bits(lib):
    """Integer width of a BLAS exporting plain names: OpenBLAS says, else NumPy's config, else 32."""
    for name in _OPENBLAS_CONFIG:
        if _address(lib, name):
            fn = lib[name]
            fn.restype, fn.argtypes = ctypes.c_char_p, []
            return 64 if b"USE64BITINT" in (fn() or b"") else 32
    config = _numpy_blas_config()
    text = " ".join(str(config.get(key, "")) for key in ("name", "openblas configuration"))
    return 64 if "ilp64" in text.lower() or "USE64BITINT" in text else 32


def from_scipy():
    """SciPy's Fortran BLAS wrappers (32-bit integers); LookupError when SciPy is missing."""
    try:
        cython_blas = importlib.import_module("scipy.linalg.cython_blas")
    except ImportError:
        raise LookupError("scipy.linalg.cython_blas: SciPy is not installed") from None
    capi = getattr(cython_blas, "__pyx_capi__", {})
    if not all(r in capi for r in ROUTINES):
        raise LookupError("scipy.linalg.cython_blas: does not export " + "/".join(ROUTINES))
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    addresses = [get_pointer(capi[r], get_name(capi[r])) for r in ROUTINES]
    return Blas(*addresses, interface="fortran", int_bits=32, library="scipy.linalg.cython_blas",
                names=ROUTINES, keep=cython_blas)
