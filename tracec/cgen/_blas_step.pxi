# Included by _native.pyx: matrix products through the BLAS NumPy loaded.

cdef extern from "tc_blas.h":
    ctypedef void (*tc_blas_fn)()
    ctypedef struct tc_blas:
        tc_blas_fn sgemm
        tc_blas_fn dgemm
        tc_blas_fn sgemv
        tc_blas_fn dgemv
        int32_t interface
        int32_t int_bytes
    int tc_gemm(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
                const tc_array *C, const tc_array *out, tc_ctx *ctx) nogil
    int tc_gemv(const tc_blas *bl, double alpha, const tc_array *A, const tc_array *B, double beta,
                const tc_array *C, const tc_array *out, tc_ctx *ctx) nogil

cdef tc_blas BLAS
BLAS.interface = 0


def set_blas(size_t sgemm, size_t dgemm, size_t sgemv, size_t dgemv, int interface, int int_bytes):
    """The BLAS functions (tracec/cgen/blas.py found them in the library NumPy loaded)."""
    BLAS.sgemm, BLAS.dgemm = <tc_blas_fn>sgemm, <tc_blas_fn>dgemm
    BLAS.sgemv, BLAS.dgemv = <tc_blas_fn>sgemv, <tc_blas_fn>dgemv
    BLAS.int_bytes, BLAS.interface = int_bytes, interface


cdef class GemmStep(Step):
    """A matrix product through BLAS: out = alpha * A @ B + beta * C (gemm, gemv, matmul, dot).

    Parameters after the Step's: slots of A, B, C (-1: none), alpha and beta
    (-1: 1 and 0), the operands' dtype, and the output's rank. Operands are
    all float32 or all float64; anything BLAS cannot take runs NumPy.
    """
    cdef int a, b, c, alpha, beta, typenum, out_ndim
    cdef int32_t code
    cdef object dtype
    cdef list buffer
    cdef bint ran_native, last_gemv  # the last run called BLAS on the slots' own arrays (gemv or gemm)
    cdef double last_alpha, last_beta

    def __cinit__(self, node, ins, outs, frees, int a, int b, int c, int alpha, int beta, dtype, int out_ndim):
        self.native = True
        self.a, self.b, self.c, self.alpha, self.beta = a, b, c, alpha, beta
        self.dtype = np.dtype(dtype)
        self.typenum = self.dtype.num
        self.code = (<int32_t>ord(self.dtype.kind) << 8) | <int32_t>self.dtype.itemsize
        self.out_ndim = out_ndim
        self.buffer = [None]

    cdef object output(self, int nd, cnp.npy_intp *shape):
        """The last call's product buffer when nobody else holds it and it fits, else a new one."""
        cdef PyObject *p = PyList_GET_ITEM(self.buffer, 0)
        if Py_REFCNT(p) == 1 and fits(<object>p, nd, shape, self.typenum):
            return <object>p
        out = cnp.PyArray_EMPTY(nd, shape, self.typenum, 0)
        self.buffer[0] = out
        return out

    cdef object operand(self, list store, int slot, tc_array *desc):
        obj = store[slot]
        if not cnp.PyArray_CheckExact(obj) or cnp.PyArray_TYPE(<cnp.ndarray>obj) != self.typenum:
            obj = np.asarray(obj, dtype=self.dtype)
        describe(desc, <cnp.ndarray>obj, self.code)
        return obj

    cdef int run(self, list store, Runner runner) except -1:
        cdef tc_array A, B, C, O
        cdef tc_ctx ctx
        cdef cnp.npy_intp shape[TC_MAX_NDIM]
        cdef int nd, k, d, rc
        cdef double alpha = 1.0, beta = 0.0
        cdef PyObject *p
        self.ran_native = False
        if BLAS.interface == 0:
            return self.run_numpy(store)
        a = self.operand(store, self.a, &A)
        b = self.operand(store, self.b, &B)
        if (A.ndim > 2 or B.ndim > 2) and self.c < 0 and A.ndim >= 2 and B.ndim >= 2:
            return self.run_batched(store, runner, a, b, &A, &B)
        if A.ndim > 2 or B.ndim > 2 or A.ndim == 0 or B.ndim == 0 or A.shape[A.ndim - 1] != B.shape[0]:
            return self.run_numpy(store)  # NumPy raises for mismatched operands, naming the line
        nd = 0  # the product's shape
        if A.ndim == 2:
            shape[nd] = A.shape[0]
            nd += 1
        if B.ndim == 2:
            shape[nd] = B.shape[1]
            nd += 1
        c = None
        if self.c >= 0:
            c = self.operand(store, self.c, &C)
            if C.ndim > TC_MAX_NDIM or C.ndim > self.out_ndim:
                return self.run_numpy(store)
            k = C.ndim - nd  # broadcast the product with C, right-aligned
            if k > 0:
                for d in range(nd - 1, -1, -1):
                    shape[d + k] = shape[d]
                for d in range(k):
                    shape[d] = 1
                nd = C.ndim
            k = nd - C.ndim
            for d in range(C.ndim):
                if C.shape[d] != 1:
                    if shape[k + d] == 1:
                        shape[k + d] = C.shape[d]
                    elif shape[k + d] != C.shape[d]:
                        return self.run_numpy(store)
            alpha = float(store[self.alpha])
            beta = float(store[self.beta])
        if nd != self.out_ndim:
            return self.run_numpy(store)
        out = self.output(nd, shape)
        describe(&O, <cnp.ndarray>out, self.code)
        ctx.nthreads, ctx.status, ctx.parallel_threshold = runner.nthreads, 0, runner.threshold
        ctx.message[0] = 0
        with nogil:
            if A.ndim == 2 and B.ndim == 2:
                rc = tc_gemm(&BLAS, alpha, &A, &B, beta, &C if self.c >= 0 else NULL, &O, &ctx)
            else:
                rc = tc_gemv(&BLAS, alpha, &A, &B, beta, &C if self.c >= 0 else NULL, &O, &ctx)
        if rc or ctx.status:
            return self.run_numpy(store)  # cases BLAS does not take, and errors: NumPy raises or runs them
        store[self.node_outs[0]] = out
        if runner.recording:  # (batched products are not replayed: they return before this)
            self.ran_native = a is store[self.a] and b is store[self.b] and (c is None or c is store[self.c])
            self.last_gemv, self.last_alpha, self.last_beta = not (A.ndim == 2 and B.ndim == 2), alpha, beta
        return 0


    cdef int run_batched(self, list store, Runner runner, object a, object b, tc_array *A, tc_array *B) except -1:
        """matmul of stacks of matrices: the batch dimensions broadcast as NumPy's do and each
        matrix goes through gemm; one gemm for all when B is one matrix and A's rows stack evenly."""
        cdef cnp.npy_intp shape[TC_MAX_NDIM]
        cdef int64_t a_step[TC_MAX_NDIM]
        cdef int64_t b_step[TC_MAX_NDIM]
        cdef int64_t index[TC_MAX_NDIM]
        cdef int64_t a_dims[2]
        cdef int64_t o_dims[2]
        cdef int64_t o_strides[2]
        cdef int64_t batch = 1, i, offa, offb, sa, sb, item
        cdef int nb, nd, d, da, db, rc = 0
        cdef tc_array A2, B2, O2
        cdef tc_ctx ctx
        cdef PyObject *p
        nb = max(A.ndim, B.ndim) - 2
        nd = nb + 2
        if nd > TC_MAX_NDIM or nd != self.out_ndim or A.shape[A.ndim - 1] != B.shape[B.ndim - 2]:
            return self.run_numpy(store)  # NumPy raises for mismatched operands, naming the line
        for d in range(nb):  # batch dimensions, right-aligned; a length-1 one broadcasts
            da, db = d - (nb - (A.ndim - 2)), d - (nb - (B.ndim - 2))
            sa = A.shape[da] if da >= 0 else 1
            sb = B.shape[db] if db >= 0 else 1
            if sa != sb and sa != 1 and sb != 1:
                return self.run_numpy(store)
            shape[d] = sb if sa == 1 else sa  # (0 against 1 is 0)
            a_step[d] = A.strides[da] if da >= 0 and sa != 1 else 0
            b_step[d] = B.strides[db] if db >= 0 and sb != 1 else 0
            index[d] = 0
            batch *= shape[d]
        shape[nb], shape[nb + 1] = A.shape[A.ndim - 2], B.shape[B.ndim - 1]
        out = self.output(nd, shape)
        item = self.dtype.itemsize
        A2, B2 = A[0], B[0]
        A2.ndim = B2.ndim = O2.ndim = 2
        A2.shape, A2.strides = A.shape + A.ndim - 2, A.strides + A.ndim - 2
        B2.shape, B2.strides = B.shape + B.ndim - 2, B.strides + B.ndim - 2
        O2.data, O2.dtype = <char *>cnp.PyArray_DATA(<cnp.ndarray>out), self.code
        o_dims[0], o_dims[1] = shape[nb], shape[nb + 1]
        o_strides[0], o_strides[1] = shape[nb + 1] * item, item
        O2.shape, O2.strides = o_dims, o_strides
        ctx.nthreads, ctx.status, ctx.parallel_threshold = runner.nthreads, 0, runner.threshold
        ctx.message[0] = 0
        if B.ndim == 2 and A.ndim == nd and stacks_rows(A):  # (..., m, k) @ (k, n): one (batch*m, k) gemm
            a_dims[0], a_dims[1] = batch * A.shape[A.ndim - 2], A.shape[A.ndim - 1]
            o_dims[0] = a_dims[0]
            A2.shape = a_dims
            with nogil:
                rc = tc_gemm(&BLAS, 1.0, &A2, &B2, 0.0, NULL, &O2, &ctx)
        else:
            with nogil:
                for i in range(batch):
                    offa = offb = 0
                    for d in range(nb):
                        offa += index[d] * a_step[d]
                        offb += index[d] * b_step[d]
                    A2.data, B2.data = A.data + offa, B.data + offb
                    rc = tc_gemm(&BLAS, 1.0, &A2, &B2, 0.0, NULL, &O2, &ctx)
                    if rc or ctx.status:
                        break
                    O2.data += shape[nb] * shape[nb + 1] * item
                    d = nb - 1
                    while d >= 0:  # the next batch index, last dimension fastest
                        index[d] += 1
                        if index[d] < shape[d]:
                            break
                        index[d] = 0
                        d -= 1
        if rc or ctx.status:
            return self.run_numpy(store)
        store[self.node_outs[0]] = out
        return 0


cdef bint stacks_rows(const tc_array *A):
    """Do A's leading dimensions stack its matrices' rows evenly (one (batch*m, k) matrix)?"""
    cdef int d
    for d in range(A.ndim - 2):
        if A.shape[d] != 1 and A.strides[d] != A.shape[d + 1] * A.strides[d + 1]:
            return False
    return True
