# Included by _native.pyx: scan loops run natively (the stacked outputs and the checked step loop).

cdef object row_view(cnp.ndarray a, Py_ssize_t i):
    """Row `i` of `a` as an array view (a 0-d array for a vector, never a NumPy scalar)."""
    cdef cnp.dtype descr = <cnp.dtype>(<PyObject *>cnp.PyArray_DESCR(a))
    cnp.Py_INCREF(descr)  # PyArray_NewFromDescr steals a reference
    view = PyArray_NewFromDescr(np.ndarray, descr, cnp.PyArray_NDIM(a) - 1, cnp.PyArray_DIMS(a) + 1,
                                    cnp.PyArray_STRIDES(a) + 1,
                                    <char *>cnp.PyArray_DATA(a) + i * cnp.PyArray_STRIDES(a)[0],
                                    cnp.PyArray_FLAGS(a) & ~cnp.NPY_ARRAY_OWNDATA, None)
    cnp.Py_INCREF(a)
    cnp.PyArray_SetBaseObject(<cnp.ndarray>view, a)
    return view


cdef class Stack:
    """The rows a scan output collects, one per step: all of them, or the last `keep`."""
    cdef cnp.ndarray buf
    cdef Py_ssize_t count, capacity, keep, expected
    cdef object dtype
    cdef int row_ndim, typenum
    cdef cnp.npy_intp row_shape[TC_MAX_NDIM]
    cdef Py_ssize_t row_bytes
    cdef list recent  # keeping the last rows: the arrays of the steps not yet copied into `buf`

    def __cinit__(self, dtype, int row_ndim, Py_ssize_t keep, Py_ssize_t expected):
        self.dtype, self.row_ndim, self.keep, self.expected = np.dtype(dtype), row_ndim, keep, expected
        self.typenum = self.dtype.num

    cdef int push(self, object value, object where) except -1:
        cdef cnp.ndarray arr
        cdef cnp.npy_intp shape[TC_MAX_NDIM + 1]
        cdef int d
        cdef Py_ssize_t pos
        if not cnp.PyArray_CheckExact(value) or cnp.PyArray_TYPE(<cnp.ndarray>value) != self.typenum:
            value = np.asarray(value, dtype=self.dtype)
        arr = <cnp.ndarray>value
        if cnp.PyArray_NDIM(arr) != self.row_ndim:
            raise ValueError(f"scan at {where}: a step output has {cnp.PyArray_NDIM(arr)} dimensions, "
                             f"its type says {self.row_ndim}")
        if self.buf is None:
            for d in range(self.row_ndim):
                self.row_shape[d] = shape[d + 1] = cnp.PyArray_DIMS(arr)[d]
            self.capacity = self.keep if self.keep else max(1, min(self.expected, 1 << 20))
            shape[0] = self.capacity
            self.buf = cnp.PyArray_EMPTY(self.row_ndim + 1, shape, self.dtype.num, 0)
            self.row_bytes = cnp.PyArray_NBYTES(arr)
        else:
            for d in range(self.row_ndim):
                if cnp.PyArray_DIMS(arr)[d] != self.row_shape[d]:
                    raise ValueError(f"scan at {where}: step {self.count} produced an output of shape "
                                     f"{np.shape(arr)}, step 0 one of shape {np.shape(self.buf)[1:]}; every step "
                                     "must return the same shape")
        if self.keep:  # hold the step's array; only the last `keep` of them are ever copied
            if self.recent is None:
                self.recent = []
            self.recent.append(arr)
            if len(self.recent) > self.keep:
                del self.recent[0]
            self.count += 1
            return 0
        if self.count == self.capacity:  # a loop that stops with tc.until: grow
            self.buf = np.concatenate([self.buf, np.empty_like(self.buf)])
            self.capacity *= 2
        self.copy_row(self.count, arr)
        self.count += 1
        return 0

    cdef int copy_row(self, Py_ssize_t pos, cnp.ndarray arr) except -1:
        if cnp.PyArray_IS_C_CONTIGUOUS(arr):
            memcpy(<char *>cnp.PyArray_DATA(self.buf) + pos * self.row_bytes, cnp.PyArray_DATA(arr), self.row_bytes)
        else:
            cnp.PyArray_CopyInto(<cnp.ndarray>row_view(self.buf, pos), arr)
        return 0

    cdef int flush(self) except -1:
        """Copy the held arrays into their ring rows."""
        cdef Py_ssize_t first, i
        if self.recent:
            first = self.count - len(self.recent)
            for i in range(len(self.recent)):
                self.copy_row((first + i) % self.keep, <cnp.ndarray>self.recent[i])
            self.recent = None
        return 0

    cdef bint takes_rows_of(self, cnp.ndarray arr):
        """Can `push_raw` take the data of arrays like `arr` (C-contiguous rows of this stack)?"""
        cdef int d
        if self.buf is None or cnp.PyArray_TYPE(arr) != self.typenum or cnp.PyArray_NDIM(arr) != self.row_ndim:
            return False
        for d in range(self.row_ndim):
            if cnp.PyArray_DIMS(arr)[d] != self.row_shape[d]:
                return False
        return cnp.PyArray_NBYTES(arr) == self.row_bytes

    cdef int push_raw(self, const char *data) except -1:
        """Append a row from C-contiguous memory of the row's layout."""
        cdef Py_ssize_t pos
        if self.recent:
            self.flush()
        if not self.keep and self.count == self.capacity:
            self.buf = np.concatenate([self.buf, np.empty_like(self.buf)])
            self.capacity *= 2
        pos = self.count % self.keep if self.keep else self.count
        memcpy(<char *>cnp.PyArray_DATA(self.buf) + pos * self.row_bytes, data, self.row_bytes)
        self.count += 1
        return 0

    cdef object result(self):
        """The rows in step order (None when no step ran)."""
        cdef Py_ssize_t start
        if self.buf is None:
            return None
        self.flush()
        if self.keep and self.count > self.keep:
            start = self.count % self.keep
            return np.concatenate([self.buf[start:], self.buf[:start]])
        return self.buf[:self.count] if self.count < self.capacity else self.buf


cdef class ScanStep(Step):
    """A scan loop run natively: each step runs the inner program's Runner, no Python between steps.

    `setup(n_steps, values)` (tracec.trace.scan) checks the trip count and
    returns (n, sequences in step order, histories, non-sequence values);
    loops it does not handle (zero steps) run the NumPy scan; checkpointed loops save their states here too.
    """
    cdef Runner inner
    cdef object info, setup, where
    cdef list seq_taps, state_taps, out_dtypes, out_ndims, keep
    cdef int n_rec, n_plain, n_states, has_until
    cdef bint stopped
    cdef str refusal                   # why no run of this loop can be replayed (None: try each run)
    cdef readonly Py_ssize_t replayed  # steps of the last run replayed from a recorded plan (tests, profiles)
    cdef readonly str not_replayed     # why the last run was not replayed (None: it was, or it was too short)

    def __cinit__(self, node, ins, outs, frees, Runner inner, setup):
        info = node.params["info"]
        self.native = False  # its results are fresh stacks, but not from a kernel: keep the general protocol
        self.inner, self.info, self.setup = inner, info, setup
        self.where = info.loc.describe()
        self.seq_taps = [list(t) for t in info.seq_taps]
        self.state_taps = [list(t) for t in info.state_taps]
        self.n_states = info.n_states
        self.n_rec = info.n_states - info.n_updates
        self.n_plain = info.n_plain_outputs
        self.has_until = info.has_until
        outputs = info.inner.outputs
        stacked = outputs[:self.n_rec] + outputs[info.n_states:info.n_states + self.n_plain]
        self.out_dtypes = [v.dtype for v in stacked]
        self.out_ndims = [v.ndim for v in stacked]
        self.keep = list(info.keep or (None,) * len(stacked))

    cdef int run(self, list store, Runner runner) except -1:
        cdef Py_ssize_t n, t, k
        cdef list seqs, histories, rest, base_store, stacks, istore
        cdef Runner inner = self.inner
        cdef LoopPlan plan
        cdef int i
        values = [store[self.node_ins[i]] for i in range(self.n_node_in)]
        setup = self.setup(values[0], values[1:], self.info)
        if setup is None:
            return self.run_numpy(store)
        n, seqs, histories, rest = setup
        for hist in histories:  # NumPy scalars as 0-d arrays: kernels take them without converting
            for k in range(len(hist)):
                if not cnp.PyArray_CheckExact(hist[k]):
                    hist[k] = np.asarray(hist[k])
        base_store = list(inner.template)
        k = sum(map(len, self.seq_taps)) + sum(map(len, self.state_taps))
        for i in range(len(rest)):
            base_store[inner.in_slots[k + i]] = rest[i]
        stacks = [Stack(self.out_dtypes[j], self.out_ndims[j], self.keep[j] or 0, n)
                  for j in range(len(self.out_dtypes))]
        # a loop of C kernels and BLAS calls records a step, then replays it with no Python per step
        record = n >= PLAN_MIN_STEPS and inner.timer is None and self.refusal is None
        every = self.info.checkpoint or 0  # checkpoint=N: the states before steps 0, N, 2N, ... are saved
        depths = [-min(taps) for taps in self.state_taps]
        saved = [[] for _ in depths]
        plan = None
        t = 0
        self.stopped = False
        self.replayed = 0
        self.not_replayed = self.refusal
        while t < n and not self.stopped:
            if every and t % every == 0:
                if plan is not None:
                    histories = plan.histories(t, depths)
                save_windows(saved, histories)
            if plan is not None:  # replay up to the next checkpoint, the end, or a step it hands back
                k = t
                t = plan.replay(t, min(n, (t // every + 1) * every) if every else n, inner)
                self.replayed += t - k
                self.stopped = plan.stopped
                if plan.handed_back:
                    histories = plan.histories(t, depths)
                    plan = None
                continue
            if record and t < 2:  # step 0 may change a state's shape (broadcasting its initial value)
                inner.recording = True
                try:
                    istore = self.step(t, seqs, histories, base_store, stacks)
                finally:
                    inner.recording = False
                t += 1
                if self.stopped or t >= n:
                    break
                found = build_plan(self, istore, seqs, histories, stacks)
                del istore
                if isinstance(found, str):
                    self.not_replayed = found
                    continue
                plan = <LoopPlan>found
                self.not_replayed = None
                record = False
                fill_rings(plan, histories, t)
                for stack in stacks:  # rows held by reference: the replay writes over their buffers
                    (<Stack>stack).flush()
                continue
            self.step(t, seqs, histories, base_store, stacks)
            t += 1
        if plan is not None:
            histories = plan.histories(t, depths)
        if t == 0:
            return self.run_numpy(store)  # no step ran: the NumPy scan knows the empty shapes
        results = [(<Stack>s).result() for s in stacks]
        outputs = self.info.inner.outputs
        for j in range(self.n_rec, self.n_states):  # (no negative indexes: wraparound is off)
            hist = <list>histories[j]
            results.append(np.asarray(hist[len(hist) - 1], dtype=outputs[j].dtype))
        if every:  # the saved states, then the trip count, as the NumPy scan gives them
            if t % every == 0:
                save_windows(saved, histories)  # the state after the loop: the last stretch's start
            results += [np.stack([np.asarray(w, dtype=outputs[j].dtype) for w in ws]) for j, ws in enumerate(saved)]
            results.append(np.array(t, dtype=np.int64))
        for i in range(self.n_node_out):
            store[self.node_outs[i]] = results[i]
        return 0

    cdef list step(self, Py_ssize_t t, list seqs, list histories, list base_store, list stacks):
        """Run step t through the checked path: its inner values (self.stopped: tc.until held)."""
        cdef Py_ssize_t k, j, base
        cdef list istore, hist, outs, taps
        cdef Runner inner = self.inner
        cdef int i
        istore = list(base_store)
        k = 0
        for j in range(len(seqs)):
            taps = <list>self.seq_taps[j]
            base = t - <Py_ssize_t>min(taps)
            for tap in taps:
                istore[inner.in_slots[k]] = row_view(<cnp.ndarray>seqs[j], base + <Py_ssize_t>tap)
                k += 1
        for j in range(self.n_states):
            hist = <list>histories[j]
            for tap in <list>self.state_taps[j]:
                istore[inner.in_slots[k]] = hist[len(hist) + <Py_ssize_t>tap]
                k += 1
        inner.execute(istore)
        outs = [istore[inner.root_slots[i]] for i in range(inner.n_roots)]
        for j in range(self.n_states):
            hist = <list>histories[j]
            hist.append(outs[j])
            if len(hist) > -<Py_ssize_t>min(<list>self.state_taps[j]):
                del hist[0]
        for j in range(self.n_rec):
            (<Stack>stacks[j]).push(outs[j], self.where)
        for j in range(self.n_plain):
            (<Stack>stacks[self.n_rec + j]).push(outs[self.n_states + j], self.where)
        if self.has_until and outs[inner.n_roots - 1]:
            self.stopped = True
        return istore


cdef int save_windows(list saved, list histories) except -1:
    """Append each state's window (its last value, or its last `depth` values stacked) to `saved`."""
    for ws, hist in zip(saved, histories):
        ws.append(hist[0] if len(hist) == 1 else np.stack([np.asarray(h) for h in hist]))
    return 0
