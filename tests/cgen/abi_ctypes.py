"""Calling generated kernels from tests through ctypes, with the C ABI of
tracec/cgen/templates/tc_abi.h -- no runtime involved, so a kernel can be
tested on exactly the arrays, shapes and thread settings a test chooses."""
import ctypes

import numpy as np

from tracec.cgen import build

TC_FPE_DIVIDE, TC_FPE_OVERFLOW, TC_FPE_UNDERFLOW, TC_FPE_INVALID = 1, 2, 4, 8
TC_ERR_NEGATIVE_POWER, TC_ERR_ABI, TC_ERR_EMPTY_REDUCTION = 1 << 16, 1 << 17, 1 << 18


class TcArray(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("ndim", ctypes.c_int32),
                ("dtype", ctypes.c_int32)]


class TcCtx(ctypes.Structure):
    _fields_ = [("nthreads", ctypes.c_int32), ("status", ctypes.c_int32),
                ("parallel_threshold", ctypes.c_int64), ("message", ctypes.c_char * 256)]


KERNEL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(TcArray), ctypes.c_int,
                             ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.POINTER(TcCtx))


def dtype_code(dtype):
    """TC_DTYPE(kind, itemsize) of a NumPy dtype."""
    dtype = np.dtype(dtype)
    return (ord(dtype.kind) << 8) | dtype.itemsize


def int64s(values):
    values = list(values)
    return (ctypes.c_int64 * max(len(values), 1))(*values)


def tc_array(arr, dtype=None):
    """A tc_array describing `arr` (shape and strides held by the struct's owner list)."""
    shape, strides = int64s(arr.shape), int64s(arr.strides)
    code = dtype_code(arr.dtype if dtype is None else dtype)
    struct = TcArray(arr.ctypes.data, shape, strides, arr.ndim, code)
    return struct, (arr, shape, strides)


class Kernel:
    """A kernel `name` compiled from `source` (through the on-disk cache)."""

    def __init__(self, name, source):
        self.path = build.build(source)
        self.lib = ctypes.CDLL(self.path)
        self.name = name
        self.fn = KERNEL_FN((name, self.lib))
        first = ctypes.c_char.in_dll(self.lib, name + "_signature")  # a char array, not a pointer
        self.signature = ctypes.string_at(ctypes.addressof(first)).decode()

    def __call__(self, arrays, shape, nthreads=1, threshold=1 << 62, nargs=None):
        """Run on `arrays` (inputs then outputs) over iteration `shape`: (return code, ctx)."""
        structs, keep = [], []  # keep: the arrays and shape/stride buffers, alive through the call
        for a in arrays:
            s, k = a if isinstance(a, tuple) else tc_array(a)
            structs.append(s)
            keep.append(k)
        args = (TcArray * max(len(structs), 1))(*structs)
        ctx = TcCtx(nthreads, 0, threshold, b"")
        count = len(structs) if nargs is None else nargs
        rc = self.fn(args, count, int64s(shape), len(shape), ctypes.byref(ctx))
        return rc, ctx
