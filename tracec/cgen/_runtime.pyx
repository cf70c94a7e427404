# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The C backend's runtime, built once at install time (setup.py).

It loads per-graph modules (plain C shared objects, no Python headers) with
dlopen and calls them through the fixed ABI of templates/tc_abi.h: arrays as
data pointer, dtype, rank, shape and strides. Argument checks (dtype, rank,
length-1 broadcastable dimensions, broadcasting) happen here, in C, before
any generated code touches memory.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from posix.dlfcn cimport dlopen, dlsym, dlerror, RTLD_NOW, RTLD_LOCAL

import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "tc_abi.h":
    enum: TC_MAX_NDIM
    ctypedef struct tc_array:
        char *data
        const int64_t *shape
        const int64_t *strides
        int32_t ndim
        int32_t dtype
    ctypedef struct tc_ctx:
        int32_t nthreads
        int32_t status
        int64_t parallel_threshold
        char message[256]
    ctypedef int (*tc_kernel_fn)(const tc_array *, int, const int64_t *, int, tc_ctx *) nogil

# errors found by the runtime's checks (above the kernels' TC_ERR_* bits)
ERR_SHAPE = 1 << 24
ERR_ARGUMENT = 1 << 25


class KernelStatus(Exception):
    """A kernel call did not finish cleanly: `status` bits, `message`, and the output computed."""

    def __init__(self, status, message, output=None):
        super().__init__(message)
        self.status, self.message, self.output = status, message, output


cdef inline int32_t dtype_code(cnp.dtype dt):
    return (<int32_t>ord(dt.kind) << 8) | <int32_t>dt.itemsize


def load(path, name):
    """dlopen `path`; returns (handle address, address of kernel `name`, its signature)."""
    cdef bytes bpath = path.encode()
    cdef void *handle = dlopen(bpath, RTLD_NOW | RTLD_LOCAL)
    if handle == NULL:
        raise OSError(f"cannot load {path}: {(<bytes>dlerror()).decode(errors='replace')}")
    cdef void *fn = dlsym(handle, name.encode())
    cdef const char *sig = <const char *>dlsym(handle, (name + "_signature").encode())
    if fn == NULL or sig == NULL:
        raise OSError(f"{path} holds no tracec kernel {name}")
    return <size_t>handle, <size_t>fn, (<bytes>sig).decode()


cdef bint _fits(cnp.ndarray arr, int ndim, cnp.npy_intp *shape, int typenum):
    """Can `arr` take the output: same type, rank and shape, C-contiguous, writeable, aligned?"""
    cdef int d
    if cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_NDIM(arr) != ndim:
        return False
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISWRITEABLE(arr) and cnp.PyArray_ISBEHAVED(arr)):
        return False
    for d in range(ndim):
        if cnp.PyArray_DIMS(arr)[d] != shape[d]:
            return False
    return True


cdef class Kernel:
    """One loaded elementwise kernel, bound to the types of its call site.

    Parameters: path of the module, the kernel's name in it, the signature it
    must report, input dtypes, input broadcastable patterns, output dtype and
    output rank.
    """
    cdef tc_kernel_fn fn
    cdef int n_in, out_ndim, out_typenum
    cdef int32_t *codes
    cdef int32_t *ndims
    cdef uint8_t *bcast      # n_in x out_ndim, right-aligned: 1 where the dim must be 1
    cdef list in_dtypes
    cdef readonly object path, signature

    def __cinit__(self, path, name, signature, in_dtypes, in_broadcastable, out_dtype, out_ndim):
        handle, fn, sig = load(path, name)
        if sig != signature:
            raise OSError(f"{path} holds kernel {sig!r}, expected {signature!r}")
        self.fn = <tc_kernel_fn><size_t>fn
        self.path, self.signature = path, signature
        self.n_in = len(in_dtypes)
        self.out_ndim = out_ndim
        self.out_typenum = np.dtype(out_dtype).num
        self.in_dtypes = [np.dtype(d) for d in in_dtypes]
        self.codes = <int32_t *>malloc(sizeof(int32_t) * max(self.n_in, 1))
        self.ndims = <int32_t *>malloc(sizeof(int32_t) * max(self.n_in, 1))
        self.bcast = <uint8_t *>malloc(max(self.n_in * out_ndim, 1))
        if self.codes == NULL or self.ndims == NULL or self.bcast == NULL:
            raise MemoryError()
        memset(self.bcast, 0, max(self.n_in * out_ndim, 1))
        for i, (dt, pattern) in enumerate(zip(self.in_dtypes, in_broadcastable)):
            self.codes[i] = dtype_code(dt)
            self.ndims[i] = len(pattern)
            for d, b in enumerate(pattern):
                self.bcast[i * out_ndim + out_ndim - len(pattern) + d] = b

    def __dealloc__(self):
        free(self.codes)
        free(self.ndims)
        free(self.bcast)

    def __call__(self, list inputs, int nthreads, int64_t threshold, out=None):
        """The output array for `inputs`; raises KernelStatus on errors and floating-point flags.

        `out`, when it is a writeable C-contiguous array of exactly the output's
        dtype and shape (a dead intermediate), receives the result in place.
        """
        cdef int n_in = self.n_in, out_ndim = self.out_ndim, i, d, k
        cdef tc_array *args = <tc_array *>malloc(sizeof(tc_array) * (n_in + 1))
        cdef cnp.npy_intp shape[TC_MAX_NDIM]
        cdef int64_t s, n = 1
        cdef tc_ctx ctx
        cdef cnp.ndarray arr, dest
        cdef list keep = []
        if args == NULL:
            raise MemoryError()
        try:
            if len(inputs) != n_in:
                raise KernelStatus(ERR_ARGUMENT, f"kernel takes {n_in} inputs, got {len(inputs)}")
            for d in range(out_ndim):
                shape[d] = 1
            for i in range(n_in):
                value = inputs[i]
                if not cnp.PyArray_CheckExact(value) or not cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>value):
                    value = np.asarray(value, dtype=self.in_dtypes[i])
                    if not cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>value):
                        value = np.array(value, dtype=self.in_dtypes[i].newbyteorder("="))
                arr = <cnp.ndarray>value
                keep.append(arr)
                if dtype_code(arr.dtype) != self.codes[i] or cnp.PyArray_NDIM(arr) != self.ndims[i]:
                    raise KernelStatus(ERR_ARGUMENT, f"input {i}: expected {self.in_dtypes[i]} with "
                                       f"{self.ndims[i]} dimension(s), got {arr.dtype}{np.shape(value)}")
                k = out_ndim - self.ndims[i]
                for d in range(self.ndims[i]):
                    s = cnp.PyArray_DIMS(arr)[d]
                    if self.bcast[i * out_ndim + k + d] and s != 1:
                        raise KernelStatus(ERR_SHAPE, f"input {i}: dimension {d} must have length 1, "
                                           f"shape is {np.shape(value)}")
                    if s != 1:
                        if shape[k + d] == 1:
                            shape[k + d] = s
                        elif shape[k + d] != s:
                            raise KernelStatus(ERR_SHAPE, "shapes do not broadcast: " + ", ".join(
                                str(list(np.shape(v))) for v in inputs))
                args[i].data = <char *>cnp.PyArray_DATA(arr)
                args[i].shape = <const int64_t *>cnp.PyArray_DIMS(arr)
                args[i].strides = <const int64_t *>cnp.PyArray_STRIDES(arr)
                args[i].ndim = self.ndims[i]
                args[i].dtype = self.codes[i]
            if out is not None and cnp.PyArray_CheckExact(out) and _fits(<cnp.ndarray>out, out_ndim, shape,
                                                                          self.out_typenum):
                dest = <cnp.ndarray>out
            else:
                dest = cnp.PyArray_EMPTY(out_ndim, shape, self.out_typenum, 0)
            args[n_in].data = <char *>cnp.PyArray_DATA(dest)
            args[n_in].shape = <const int64_t *>cnp.PyArray_DIMS(dest)
            args[n_in].strides = <const int64_t *>cnp.PyArray_STRIDES(dest)
            args[n_in].ndim = out_ndim
            args[n_in].dtype = dtype_code(dest.dtype)
            for d in range(out_ndim):
                n *= shape[d]
            ctx.nthreads = nthreads
            ctx.status = 0
            ctx.parallel_threshold = threshold
            ctx.message[0] = 0
            if n >= threshold:
                with nogil:
                    self.fn(args, n_in + 1, <const int64_t *>shape, out_ndim, &ctx)
            else:
                self.fn(args, n_in + 1, <const int64_t *>shape, out_ndim, &ctx)
            if ctx.status:
                raise KernelStatus(ctx.status, (<bytes>ctx.message).decode(errors="replace"), dest)
            return dest
        finally:
            free(args)
