# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The native program runner, built once at install time (setup.py).

A compiled function's optimized graph becomes a `Runner`: a list of steps over
a list of value slots. Native steps call the per-graph C kernels (loaded with
dlopen through the fixed ABI of templates/tc_abi.h) straight from this loop,
so no Python code runs between them; the few ops without C call their NumPy
implementation. `Runner.fast_call` also checks the arguments against the
compiled signature (dtype, rank, length-1 dimensions), applies shared-variable
updates and builds the result, all in C, for the per-call cost of a NumPy call.

Every kernel argument is checked here (dtype, rank, broadcastable dimensions,
broadcasting) before generated code touches memory. A check that fails, and a
kernel reporting an error or a floating-point condition NumPy would act on,
sends the node through NumPy, which raises or warns exactly as the reference
interpreter does, naming the op and the user's source line.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from cpython.ref cimport PyObject
from posix.dlfcn cimport dlopen, dlsym, dlerror, RTLD_NOW, RTLD_LOCAL

import warnings
from time import perf_counter

import numpy as np
cimport numpy as cnp

from ..trace.interp import run_node
from ..trace.ops.index import rebuild_key
from ..trace.ops.base import with_context

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

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewFromDescr(object subtype, object descr, int nd, cnp.npy_intp *dims,
                                cnp.npy_intp *strides, void *data, int flags, object obj)

cdef extern from "Python.h":
    PyObject *PyList_GET_ITEM(object, Py_ssize_t)
    Py_ssize_t Py_REFCNT(PyObject *)

cdef enum:
    MAX_ARGS = 64      # inputs + outputs of one kernel (the planner keeps larger groups in NumPy)

_FPE_CATEGORIES = ((1, "divide", "divide by zero"), (2, "over", "overflow"), (4, "under", "underflow"),
                   (8, "invalid", "invalid value"))


class _NoMatch:
    """`Runner.fast_call`'s answer when the arguments do not fit the compiled signature."""

    def __repr__(self):
        return "NOMATCH"


NOMATCH = _NoMatch()
MAX_KERNEL_ARGS = MAX_ARGS


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


cdef int *int_array(object values) except NULL:
    cdef Py_ssize_t i, n = len(values)
    cdef int *out = <int *>malloc(sizeof(int) * (n if n else 1))
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = values[i]
    return out


cdef inline int32_t dtype_code(cnp.ndarray arr):
    cdef cnp.dtype dt = <cnp.dtype>(<PyObject *>cnp.PyArray_DESCR(arr))
    return (<int32_t>dt.kind << 8) | <int32_t>cnp.PyArray_ITEMSIZE(arr)


cdef inline void describe(tc_array *a, cnp.ndarray arr, int32_t code):
    a.data = <char *>cnp.PyArray_DATA(arr)
    a.shape = <const int64_t *>cnp.PyArray_DIMS(arr)
    a.strides = <const int64_t *>cnp.PyArray_STRIDES(arr)
    a.ndim = cnp.PyArray_NDIM(arr)
    a.dtype = code


cdef inline bint fits(object obj, int ndim, cnp.npy_intp *shape, int typenum):
    """Can `obj` take an output: an ndarray of this type and shape, C-contiguous, writeable, aligned?"""
    cdef int d
    cdef cnp.ndarray arr
    if not cnp.PyArray_CheckExact(obj):
        return False
    arr = <cnp.ndarray>obj
    if cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_NDIM(arr) != ndim:
        return False
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISWRITEABLE(arr) and cnp.PyArray_ISBEHAVED(arr)):
        return False
    for d in range(ndim):
        if cnp.PyArray_DIMS(arr)[d] != shape[d]:
            return False
    return True


cdef void extent(cnp.ndarray a, char **lo, char **hi):
    """The address range [lo, hi) an array's elements lie in."""
    cdef int d
    cdef cnp.npy_intp s
    lo[0] = hi[0] = <char *>cnp.PyArray_DATA(a)
    for d in range(cnp.PyArray_NDIM(a)):
        s = cnp.PyArray_STRIDES(a)[d] * (cnp.PyArray_DIMS(a)[d] - 1)
        if s < 0:
            lo[0] += s
        else:
            hi[0] += s
    hi[0] += cnp.PyArray_ITEMSIZE(a)


cdef bint extents_overlap(cnp.ndarray a, cnp.ndarray b):
    """Could the memory of `a` and `b` overlap (their address ranges intersect)?"""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    if cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0:
        return False
    extent(a, &alo, &ahi)
    extent(b, &blo, &bhi)
    return alo < bhi and blo < ahi


cdef class Step:
    """One node of the program. The base class runs the node's NumPy implementation."""
    cdef readonly object node
    cdef readonly bint native
    cdef int n_node_in, n_node_out, n_frees
    cdef int *node_ins
    cdef int *node_outs
    cdef int *frees

    def __cinit__(self, node, ins, outs, frees, *args, **kwargs):
        self.node = node
        self.n_node_in, self.n_node_out, self.n_frees = len(ins), len(outs), len(frees)
        self.node_ins, self.node_outs, self.frees = int_array(ins), int_array(outs), int_array(frees)

    def __dealloc__(self):
        free(self.node_ins)
        free(self.node_outs)
        free(self.frees)

    cdef int run(self, list store, Runner runner) except -1:
        return self.run_numpy(store)

    cdef int run_numpy(self, list store) except -1:
        cdef int i
        results = run_node(self.node, [store[self.node_ins[i]] for i in range(self.n_node_in)])
        for i in range(self.n_node_out):
            store[self.node_outs[i]] = results[i]
        return 0


cdef class KernelStep(Step):
    """An elementwise node, fused group or (fused) reduction run by one C kernel.

    The kernel gets the arguments, then the outputs, and the iteration shape
    (the arguments broadcast together). Parameters after the Step's: kernel
    function address, kernel argument slots (node inputs and kernel
    constants), their dtypes and broadcastable patterns, the outputs' dtypes,
    the iteration rank, the in-place destination slot (or -1), the slots of
    weak (Python) ints that must fit the kernel's dtype, and for a reduction
    the reduced axes of the iteration shape and whether they are kept.
    """
    cdef tc_kernel_fn fn
    cdef int n_in, n_out, ndim, res_ndim, dest, n_weak, n_reduced
    cdef bint keepdims
    cdef int *ins
    cdef int *weak
    cdef int32_t codes[MAX_ARGS]
    cdef int32_t ndims[MAX_ARGS]
    cdef int typenums[MAX_ARGS]
    cdef uint8_t reduced[TC_MAX_NDIM]
    cdef uint8_t *bcast          # n_in x ndim, right-aligned: 1 where the dimension must be 1
    cdef list in_dtypes, buffers
    cdef readonly bint ran_native  # the last recorded run called the kernel (LoopPlan.record)
    cdef list converted            # ... on these arrays: (argument, array) for values it converted first
    cdef int64_t last_shape[TC_MAX_NDIM]  # ... over this iteration shape (a loop plan replays it)

    def __cinit__(self, node, ins, outs, frees, size_t fn, args, in_dtypes, in_broadcastable, out_dtypes,
                  int ndim, int dest, weak, reduced_axes=(), bint keepdims=False):
        cdef int i, d
        if len(args) + len(out_dtypes) > MAX_ARGS or ndim > TC_MAX_NDIM:
            raise ValueError("too many kernel arguments or dimensions")
        self.native = True
        self.fn = <tc_kernel_fn>fn
        self.n_in, self.n_out, self.ndim, self.dest = len(args), len(out_dtypes), ndim, dest
        self.ins, self.weak, self.n_weak = int_array(args), int_array(weak), len(weak)
        self.in_dtypes = [np.dtype(dt) for dt in in_dtypes]
        self.buffers = [None] * self.n_out
        memset(self.reduced, 0, TC_MAX_NDIM)
        for d in reduced_axes:
            self.reduced[d] = 1
        self.n_reduced, self.keepdims = len(set(reduced_axes)), keepdims
        self.res_ndim = ndim if keepdims else ndim - self.n_reduced
        self.bcast = <uint8_t *>malloc(max(self.n_in * ndim, 1))
        if self.bcast == NULL:
            raise MemoryError()
        memset(self.bcast, 0, max(self.n_in * ndim, 1))
        for i, (dt, pattern) in enumerate(zip(self.in_dtypes, in_broadcastable)):
            self.codes[i] = (<int32_t>ord(dt.kind) << 8) | <int32_t>dt.itemsize
            self.ndims[i] = len(pattern)
            for d, b in enumerate(pattern):
                self.bcast[i * ndim + ndim - len(pattern) + d] = b
        for i, dt in enumerate(out_dtypes):
            self.typenums[i] = np.dtype(dt).num

    def __dealloc__(self):
        free(self.ins)
        free(self.weak)
        free(self.bcast)

    cdef int run(self, list store, Runner runner) except -1:
        cdef tc_array args[MAX_ARGS]
        cdef cnp.npy_intp shape[TC_MAX_NDIM]
        cdef cnp.npy_intp rshape[TC_MAX_NDIM]
        cdef cnp.npy_intp *oshape = shape
        cdef int n_in = self.n_in, ndim = self.ndim, i, j, d, k
        cdef int64_t s, n = 1
        cdef cnp.ndarray arr
        cdef list keep = None
        cdef PyObject *p
        cdef tc_ctx ctx
        self.ran_native = False
        if runner.recording:
            self.converted = []
        for k in range(self.n_weak):  # NumPy raises OverflowError for a Python int the dtype cannot hold
            obj = store[self.weak[k]]
            if not -128 <= obj < 128:
                return self.run_numpy(store)
        for d in range(ndim):
            shape[d] = 1
        for i in range(n_in):
            obj = store[self.ins[i]]
            if not cnp.PyArray_CheckExact(obj) or not cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>obj) \
                    or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>obj):
                obj = np.asarray(obj, dtype=self.in_dtypes[i])
                if not cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>obj) or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>obj):
                    obj = np.array(obj, dtype=self.in_dtypes[i].newbyteorder("="))
                if keep is None:
                    keep = []
                keep.append(obj)
                if runner.recording:
                    self.converted.append((i, obj))
            arr = <cnp.ndarray>obj
            if dtype_code(arr) != self.codes[i] or cnp.PyArray_NDIM(arr) != self.ndims[i]:
                return self.run_numpy(store)  # a value not of the node's type: NumPy says what is wrong
            k = ndim - self.ndims[i]
            for d in range(self.ndims[i]):
                s = cnp.PyArray_DIMS(arr)[d]
                if s != 1:
                    if self.bcast[i * ndim + k + d]:
                        return self.run_numpy(store)
                    if shape[k + d] == 1:
                        shape[k + d] = s
                    elif shape[k + d] != s:
                        return self.run_numpy(store)  # does not broadcast: NumPy raises, naming the line
            describe(&args[i], arr, self.codes[i])
        for d in range(ndim):
            n *= shape[d]
        if self.n_reduced:
            oshape, k = rshape, 0
            for d in range(ndim):
                if not self.reduced[d]:
                    rshape[k] = shape[d]
                    k += 1
                elif self.keepdims:
                    rshape[k] = 1
                    k += 1
        for j in range(self.n_out):
            out = None
            if j == 0 and self.dest >= 0 and not runner.recording:  # a recorded step keeps every value
                out = store[self.dest]
                if not fits(out, self.res_ndim, oshape, self.typenums[0]):
                    out = None
            if out is None:
                # last call's buffer when nobody else holds it: its pages are mapped already
                p = PyList_GET_ITEM(self.buffers, j)
                if Py_REFCNT(p) == 1 and fits(<object>p, self.res_ndim, oshape, self.typenums[j]):
                    out = <object>p
                else:
                    out = cnp.PyArray_EMPTY(self.res_ndim, oshape, self.typenums[j], 0)
                    self.buffers[j] = out
            arr = <cnp.ndarray>out
            describe(&args[n_in + j], arr, dtype_code(arr))
            store[self.node_outs[j]] = out
        ctx.nthreads = runner.nthreads
        ctx.status = 0
        ctx.parallel_threshold = runner.threshold
        ctx.message[0] = 0
        if runner.recording:
            self.ran_native = True
            for d in range(ndim):
                self.last_shape[d] = shape[d]
        if n >= runner.threshold:
            with nogil:
                self.fn(args, n_in + self.n_out, <const int64_t *>shape, ndim, &ctx)
        else:
            self.fn(args, n_in + self.n_out, <const int64_t *>shape, ndim, &ctx)
        if ctx.status:
            self.recover(store, ctx.status, (<bytes>ctx.message).decode(errors="replace"))
        return 0

    cdef int recover(self, list store, int32_t bits, str message) except -1:
        """A kernel raised floating-point flags or an error: act as NumPy would."""
        node = self.node
        err = np.geterr()
        flagged = [(name, what) for bit, name, what in _FPE_CATEGORIES if bits & bit]
        if bits & ~0xF == 0 and all(err[name] == "ignore" for name, _ in flagged):
            return 0  # np.errstate ignores them: keep the native result
        if self.dest < 0:  # inputs intact: NumPy reruns the node and warns or raises itself
            self.run_numpy(store)
            if bits & ~0xF:  # an error NumPy did not raise: report it rather than return garbage
                raise with_context(RuntimeError(message), f"{node.op.name} at {node.loc.describe()}")
            return 0
        # written in place over an input: say it ourselves, as NumPy would have
        if bits & ~0xF:
            raise with_context(ValueError(message), f"{node.op.name} at {node.loc.describe()}")
        for name, what in flagged:
            if err[name] == "raise":
                raise with_context(FloatingPointError(f"{what} encountered in {node.op.name}"),
                                   f"{node.op.name} at {node.loc.describe()}")
            if err[name] != "ignore":
                warnings.warn(f"{what} encountered in {node.op.name} (at {node.loc.describe()})",
                              RuntimeWarning, stacklevel=4)
        return 0


cdef class Runner:
    """A program as steps over value slots; `run` for the general call protocol, `fast_call`
    for calls whose arguments are plain distinct ndarrays of the compiled signature."""
    cdef list steps, template
    cdef int n_inputs, n_roots
    cdef int *in_slots
    cdef int *root_slots
    cdef public object timer          # callable(node, seconds) timing every step (profile=True)
    cdef int nthreads, cpus
    cdef int64_t threshold
    cdef bint recording               # keep every slot's value, write no input in place (LoopPlan.record)
    cdef dict config                  # tc.config's values: threads and threshold are read every call
    # fast calls
    cdef readonly bint fast_ready
    cdef int n_args, result_kind, n_shared, n_updates, n_writebacks
    cdef int *arg_typenums
    cdef int *wb_positions            # argument receiving each write-back
    cdef int *wb_slots
    cdef int *arg_ndims
    cdef uint8_t *arg_bcast           # n_args x TC_MAX_NDIM
    cdef int *shared_slots
    cdef int *update_slots
    cdef list shared, update_targets, update_dtypes, root_dtypes

    def __cinit__(self, steps, template, in_slots, root_slots, dict config, int cpus):
        self.steps, self.template = list(steps), list(template)
        self.config, self.cpus = config, cpus
        self.n_inputs, self.n_roots = len(in_slots), len(root_slots)
        self.in_slots, self.root_slots = int_array(in_slots), int_array(root_slots)
        self.arg_typenums = self.arg_ndims = self.shared_slots = self.update_slots = NULL
        self.wb_positions = self.wb_slots = NULL
        self.arg_bcast = NULL

    def __dealloc__(self):
        free(self.in_slots)
        free(self.root_slots)
        free(self.arg_typenums)
        free(self.arg_ndims)
        free(self.arg_bcast)
        free(self.shared_slots)
        free(self.update_slots)
        free(self.wb_positions)
        free(self.wb_slots)

    cdef int execute(self, list store) except -1:
        cdef Step step
        cdef int k
        self.nthreads = self.config["c_threads"] or self.cpus
        self.threshold = self.config["c_parallel_threshold"]
        timer = self.timer
        for step in self.steps:
            if timer is None:
                step.run(store, self)
            else:
                start = perf_counter()
                step.run(store, self)
                timer(step.node, perf_counter() - start)
            if not self.recording:
                for k in range(step.n_frees):
                    store[step.frees[k]] = None
        return 0

    def run(self, values):
        """Values of the program's roots for the values of all its inputs."""
        cdef int i
        cdef list store = list(self.template)
        for i in range(self.n_inputs):
            store[self.in_slots[i]] = values[i]
        self.execute(store)
        return [store[self.root_slots[i]] for i in range(self.n_roots)]

    def enable_fast_call(self, arg_types, shared, update_targets, update_dtypes, root_dtypes,
                         int result_kind, writebacks=()):
        """Let `fast_call` run calls with plain ndarrays of `arg_types` [(dtype, broadcastable)].

        The first len(arg_types) input slots are the arguments, the next ones the
        values of `shared`. The roots are the results, then new values for the
        `update_targets` shared variables, then one final value per write-back
        (the argument position in `writebacks`). result_kind 0 returns the single
        result, 1 a tuple, 2 a list.
        """
        cdef int i, d
        n = len(arg_types)
        if any(len(pattern) > TC_MAX_NDIM for _, pattern in arg_types):
            return
        self.n_args, self.result_kind = n, result_kind
        self.arg_typenums = int_array([np.dtype(dt).num for dt, _ in arg_types])
        self.arg_ndims = int_array([len(pattern) for _, pattern in arg_types])
        self.arg_bcast = <uint8_t *>malloc(max(n, 1) * TC_MAX_NDIM)
        if self.arg_bcast == NULL:
            raise MemoryError()
        for i, (_, pattern) in enumerate(arg_types):
            for d, b in enumerate(pattern):
                self.arg_bcast[i * TC_MAX_NDIM + d] = b
        self.shared = list(shared)
        self.n_shared = len(shared)
        self.shared_slots = int_array([self.in_slots[n + i] for i in range(len(shared))])
        self.update_targets, self.update_dtypes = list(update_targets), [np.dtype(t) for t in update_dtypes]
        self.n_updates = len(update_targets)
        self.n_writebacks = len(writebacks)
        first = self.n_roots - self.n_writebacks - self.n_updates
        self.update_slots = int_array([self.root_slots[first + i] for i in range(self.n_updates)])
        self.wb_positions = int_array(list(writebacks))
        self.wb_slots = int_array([self.root_slots[first + self.n_updates + i] for i in range(self.n_writebacks)])
        self.root_dtypes = [np.dtype(t) for t in root_dtypes]
        self.fast_ready = True

    def fast_call(self, tuple args):
        """The call's result, or NOMATCH when `args` are not plain distinct ndarrays of the signature."""
        cdef Py_ssize_t n = len(args)
        cdef int i, j, d, n_out
        cdef cnp.ndarray arr
        cdef list store
        if not self.fast_ready or n != self.n_args:
            return NOMATCH
        for i in range(n):
            obj = args[i]
            if not cnp.PyArray_CheckExact(obj):
                return NOMATCH
            arr = <cnp.ndarray>obj
            if cnp.PyArray_TYPE(arr) != self.arg_typenums[i] or cnp.PyArray_NDIM(arr) != self.arg_ndims[i] \
                    or not cnp.PyArray_ISNOTSWAPPED(arr):
                return NOMATCH
            for d in range(self.arg_ndims[i]):
                if (cnp.PyArray_DIMS(arr)[d] == 1) != self.arg_bcast[i * TC_MAX_NDIM + d]:
                    return NOMATCH
            for j in range(i):
                if <PyObject *>args[j] == <PyObject *>obj:
                    return NOMATCH  # the same array twice: the general path handles aliasing
        for i in range(self.n_writebacks):  # a mutated argument: writeable, overlapping no other one
            arr = <cnp.ndarray>args[self.wb_positions[i]]
            if not cnp.PyArray_ISWRITEABLE(arr):
                return NOMATCH  # the general path raises, naming the argument
            for j in range(n):
                if j != self.wb_positions[i] and extents_overlap(arr, <cnp.ndarray>args[j]):
                    return NOMATCH  # the general path decides exactly
        store = list(self.template)
        for i in range(n):
            store[self.in_slots[i]] = args[i]
        for i in range(self.n_shared):
            store[self.shared_slots[i]] = self.shared[i]._value
        self.execute(store)
        for i in range(self.n_writebacks):  # into the caller's arrays, after every output is computed
            value = store[self.wb_slots[i]]
            if not cnp.PyArray_CheckExact(value):
                value = np.asarray(value)
            if cnp.PyArray_CopyInto(<cnp.ndarray>args[self.wb_positions[i]], <cnp.ndarray>value) < 0:
                raise ValueError("write-back failed")
        for i in range(self.n_updates):
            value = store[self.update_slots[i]]
            if not cnp.PyArray_CheckExact(value):
                value = np.asarray(value, dtype=self.update_dtypes[i])
            self.update_targets[i]._value = value
        n_out = self.n_roots - self.n_updates - self.n_writebacks
        if self.result_kind == 0:
            return self.result(store, 0)
        results = [self.result(store, i) for i in range(n_out)]
        return tuple(results) if self.result_kind == 1 else results

    cdef object result(self, list store, int i):
        value = store[self.root_slots[i]]
        if cnp.PyArray_CheckExact(value) and cnp.PyArray_NDIM(<cnp.ndarray>value) == 0:
            return (<cnp.ndarray>value)[()]  # 0-d results are NumPy scalars, as NumPy's reductions return
        if not cnp.PyArray_CheckExact(value):
            return np.asarray(value, dtype=self.root_dtypes[i])[()] if np.ndim(value) == 0 else value
        return value

    @property
    def steps_list(self):
        return list(self.steps)


cdef class IndexStep(Step):
    """x[key] for a key known when the function is built (basic slices, ints, newaxis): the view
    straight from NumPy's indexing, without the generic op call. Errors rerun through NumPy."""
    cdef object key

    def __cinit__(self, node, ins, outs, frees, key):
        self.key = key

    cdef int run(self, list store, Runner runner) except -1:
        x = store[self.node_ins[0]]
        if cnp.PyArray_CheckExact(x):
            try:
                store[self.node_outs[0]] = x[self.key]
                return 0
            except (IndexError, ValueError, TypeError):
                pass  # NumPy raises again below, naming the op and the user's line
        return self.run_numpy(store)


cdef class IfElseStep(Step):
    """tc.ifelse run natively: the condition picks one branch's Runner; the other never runs."""
    cdef Runner then_runner, else_runner
    cdef int n_then
    cdef list dtypes

    def __cinit__(self, node, ins, outs, frees, Runner then_runner, Runner else_runner):
        info = node.params["info"]
        self.then_runner, self.else_runner = then_runner, else_runner
        self.n_then = len(info.then_graph.captured)
        self.dtypes = [v.dtype for v in node.outputs]

    cdef int run(self, list store, Runner runner) except -1:
        cdef int i
        if store[self.node_ins[0]]:
            outs = self.then_runner.run([store[self.node_ins[1 + i]] for i in range(self.n_then)])
        else:
            outs = self.else_runner.run([store[self.node_ins[i]] for i in range(1 + self.n_then, self.n_node_in)])
        for i in range(self.n_node_out):
            value = outs[i]
            if not cnp.PyArray_CheckExact(value) or cnp.PyArray_TYPE(<cnp.ndarray>value) != \
                    (<cnp.dtype>self.dtypes[i]).type_num:
                value = np.asarray(value, dtype=self.dtypes[i])
            store[self.node_outs[i]] = value
        return 0


include "_blas_step.pxi"
include "_scan_step.pxi"
include "_loop_plan.pxi"
