# Included by _native.pyx: a scan loop's steps replayed in C.
#
# When every node of a loop body is a C kernel or a BLAS call, one step is run
# through the normal checked path while its values are recorded (no slot
# freed, nothing written in place). Every later step has the same shapes --
# sequence rows, states and non-sequences keep theirs -- so the plan only moves
# data pointers: sequence rows, and for each state a ring of depth+1 buffers
# that the step writes its new value into while its taps read the older ones.
# No Python object is made per step. A kernel raising a floating-point flag
# NumPy would act on, or an error, hands the loop back to the checked path at
# that step, which reruns it through NumPy to warn or raise.

from cpython.exc cimport PyErr_CheckSignals

cdef enum:
    PLAN_MIN_STEPS = 4      # fewer steps: building the plan costs more than it saves
    KIND_KERNEL = 0
    KIND_GEMM = 1
    KIND_GEMV = 2
    KIND_VIEW = 3           # args (src, out): out's data = src's + offset
    KIND_INDEXED_VIEW = 4   # args (src, index, out): out's data = src's + offset + index * stride, index checked


cdef struct PlanCall:
    int kind
    tc_kernel_fn fn
    int nargs
    int first               # its argument table indices start at LoopPlan.arg_idx[first]
    int has_c
    int ndim
    double alpha, beta
    int64_t shape[TC_MAX_NDIM]
    int64_t offset, length, stride   # views: byte offset; indexed views: the indexed axis too


cdef struct PointerUpdate:
    int idx                 # table entry whose data pointer moves every step
    int ring                # state: which ring (-1: a sequence row)
    Py_ssize_t offset       # sequence: row offset from the step; state: the tap (0: the step's own value)
    char *base              # sequence: its data and row stride
    Py_ssize_t stride


# ops whose output views their first input's memory (checked at the recorded step)
_VIEW_OPS = frozenset(["transpose", "reshape", "expand_dims", "squeeze", "broadcast_to", "getitem", "flip"])


def _indexes_first_axis(spec):
    """Is `spec` x[i, <static parts>] with i the only traced part?"""
    return len(spec) > 0 and tuple(spec[0]) == ("int", "?") and all("?" not in entry[1:] for entry in spec[1:])


cdef object view_offset(object src, object out, bint of_state):
    """Bytes from `src`'s data to `out`'s, out viewing src's memory; else why not (a str)."""
    if not (cnp.PyArray_CheckExact(src) and cnp.PyArray_CheckExact(out)) or _owner(src) is not _owner(out):
        return "copies its input"
    if of_state and not (<cnp.ndarray>src).flags.c_contiguous:
        return "views a state's initial value laid out unlike the state"
    return <Py_ssize_t>(<char *>cnp.PyArray_DATA(<cnp.ndarray>out) - <char *>cnp.PyArray_DATA(<cnp.ndarray>src))


def _same_layout(a, b):
    return a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype


def _owner(a):
    """The array owning `a`'s memory."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


cdef inline int64_t read_index(const tc_array *a, int64_t length) nogil:
    """The integer in 0-d array `a` as an index into `length` items (negative from the end); -1 if out of range."""
    cdef int64_t i
    cdef int32_t size = a.dtype & 0xFF
    if (a.dtype >> 8) == 117:  # 'u'
        if size == 8 and (<uint64_t *>a.data)[0] > <uint64_t>length:
            return -1
        i = (<uint8_t *>a.data)[0] if size == 1 else (<uint16_t *>a.data)[0] if size == 2 else \
            (<uint32_t *>a.data)[0] if size == 4 else <int64_t>(<uint64_t *>a.data)[0]
    else:
        i = (<int8_t *>a.data)[0] if size == 1 else (<int16_t *>a.data)[0] if size == 2 else \
            (<int32_t *>a.data)[0] if size == 4 else (<int64_t *>a.data)[0]
    if i < 0:
        i += length
    return i if 0 <= i < length else -1


cdef inline Py_ssize_t ring_pos(Py_ssize_t step, Py_ssize_t size):
    cdef Py_ssize_t r = step % size
    return r + size if r < 0 else r


cdef class LoopPlan:
    """The recorded calls of one loop step over a table of array descriptors."""
    cdef tc_array *table
    cdef int64_t *dims                # per table entry: shape then strides, 2 * TC_MAX_NDIM
    cdef int n_table, n_calls, n_updates, n_pushes, until_idx
    cdef PlanCall *calls
    cdef int *arg_idx
    cdef PointerUpdate *updates
    cdef int *push_idx
    cdef char **ring_data             # per state: ring_start[j] .. + ring_size[j]
    cdef int *ring_start
    cdef int *ring_size
    cdef int32_t ignored              # floating-point flags np.geterr ignores
    cdef list keep_alive, rings, push_stacks
    cdef public bint stopped          # a tc.until condition held
    cdef public bint handed_back      # a step needs the checked path

    def __dealloc__(self):
        free(self.table)
        free(self.dims)
        free(self.calls)
        free(self.arg_idx)
        free(self.updates)
        free(self.push_idx)
        free(self.ring_data)
        free(self.ring_start)
        free(self.ring_size)

    cdef int add_entry(self, dict index, object slot, object value) except -2:
        """The table entry of `slot` (added from its recorded value); -1 if the value is no plain array."""
        cdef int e, d
        cdef cnp.ndarray arr
        if slot in index:
            return index[slot]
        if not cnp.PyArray_CheckExact(value) or cnp.PyArray_NDIM(<cnp.ndarray>value) > TC_MAX_NDIM:
            return -1
        arr = <cnp.ndarray>value
        e = len(index)
        index[slot] = e
        self.keep_alive.append(arr)
        describe(&self.table[e], arr, dtype_code(arr))
        for d in range(arr.ndim):
            self.dims[e * 2 * TC_MAX_NDIM + d] = cnp.PyArray_DIMS(arr)[d]
            self.dims[e * 2 * TC_MAX_NDIM + TC_MAX_NDIM + d] = cnp.PyArray_STRIDES(arr)[d]
        self.table[e].shape = &self.dims[e * 2 * TC_MAX_NDIM]
        self.table[e].strides = &self.dims[e * 2 * TC_MAX_NDIM + TC_MAX_NDIM]
        return e

    cdef void retarget(self, int e, cnp.ndarray arr):
        """Entry `e` now describes arrays laid out like `arr` (a state's ring buffer)."""
        cdef int d
        for d in range(arr.ndim):
            self.dims[e * 2 * TC_MAX_NDIM + TC_MAX_NDIM + d] = cnp.PyArray_STRIDES(arr)[d]
        self.table[e].data = <char *>cnp.PyArray_DATA(arr)

    cdef Py_ssize_t replay(self, Py_ssize_t t, Py_ssize_t n, Runner inner) except -1:
        """Steps t, t+1, ... until n, a tc.until stop, or a step the checked path must run; returns the next step."""
        cdef tc_array args[MAX_ARGS]
        cdef tc_ctx ctx
        cdef PlanCall *c
        cdef PointerUpdate *u
        cdef int i, k, rc
        cdef int64_t index
        cdef Py_ssize_t since_check = 0
        ctx.nthreads, ctx.parallel_threshold = inner.nthreads, inner.threshold
        while t < n:
            for k in range(self.n_updates):
                u = &self.updates[k]
                if u.ring < 0:
                    self.table[u.idx].data = u.base + (t + u.offset) * u.stride
                else:
                    self.table[u.idx].data = self.ring_data[self.ring_start[u.ring] +
                                                            ring_pos(t + u.offset, self.ring_size[u.ring])]
            for k in range(self.n_calls):
                c = &self.calls[k]
                if c.kind == KIND_VIEW:
                    self.table[self.arg_idx[c.first + 1]].data = self.table[self.arg_idx[c.first]].data + c.offset
                    continue
                if c.kind == KIND_INDEXED_VIEW:
                    index = read_index(&self.table[self.arg_idx[c.first + 1]], c.length)
                    if index < 0:  # out of range: the checked path raises NumPy's IndexError
                        self.handed_back = True
                        return t
                    self.table[self.arg_idx[c.first + 2]].data = \
                        self.table[self.arg_idx[c.first]].data + c.offset + index * c.stride
                    continue
                for i in range(c.nargs):
                    args[i] = self.table[self.arg_idx[c.first + i]]
                ctx.status = 0
                ctx.message[0] = 0
                rc = 0
                if c.kind == KIND_KERNEL:
                    c.fn(args, c.nargs, <const int64_t *>c.shape, c.ndim, &ctx)
                elif c.kind == KIND_GEMM:
                    rc = tc_gemm(&BLAS, c.alpha, &args[0], &args[1], c.beta, &args[2] if c.has_c else NULL,
                                 &args[c.nargs - 1], &ctx)
                else:
                    rc = tc_gemv(&BLAS, c.alpha, &args[0], &args[1], c.beta, &args[2] if c.has_c else NULL,
                                 &args[c.nargs - 1], &ctx)
                if rc or (ctx.status & ~self.ignored):
                    self.handed_back = True
                    return t
            for k in range(self.n_pushes):
                (<Stack>self.push_stacks[k]).push_raw(self.table[self.push_idx[k]].data)
            t += 1
            if self.until_idx >= 0 and (<uint8_t *>self.table[self.until_idx].data)[0]:
                self.stopped = True
                return t
            since_check += 1
            if since_check == 4096:  # Ctrl-C stops a long loop
                since_check = 0
                PyErr_CheckSignals()
        return t

    cdef list histories(self, Py_ssize_t t, list depths):
        """Per state, copies of its last values before step t (the checked path's histories)."""
        out = []
        for j, depth in enumerate(depths):
            ring = <list>self.rings[j]
            out.append([np.array(ring[ring_pos(s, len(ring))]) for s in range(t - depth, t)])
        return out


cdef int32_t ignored_fp_flags():
    err = np.geterr()
    return sum(bit for bit, name, _ in _FPE_CATEGORIES if err[name] == "ignore")


cdef object build_plan(ScanStep scan, list istore, list seqs, list histories, list stacks):
    """The plan replaying the step just recorded in `istore`, or why it cannot be replayed (a str)."""
    cdef Runner inner = scan.inner
    cdef LoopPlan plan = LoopPlan.__new__(LoopPlan)
    cdef KernelStep ks
    cdef GemmStep gs
    cdef int i, j, k, e, n_slots = len(istore), n_args = 0
    cdef PlanCall *c
    cdef PointerUpdate *u
    cdef cnp.ndarray arr, ring_arr
    n_taps = sum(map(len, scan.seq_taps)) + sum(map(len, scan.state_taps))
    varying = {inner.in_slots[i] for i in range(n_taps)}  # slots whose value changes from step to step
    state_taps = {inner.in_slots[i] for i in range(sum(map(len, scan.seq_taps)), n_taps)}
    call_steps, call_slots = [], []  # kernels, BLAS calls and views, in the step's order
    synthesized = {}  # slot -> the 0-d view the plan reads where NumPy's indexing gave a scalar
    same_as = {}      # slot -> the slot whose array it is, seen through views that change nothing
    for step in inner.steps:
        name = step.node.op.name
        ins = [(<Step>step).node_ins[i] for i in range((<Step>step).n_node_in)]
        outs = [(<Step>step).node_outs[i] for i in range((<Step>step).n_node_out)]
        if isinstance(step, KernelStep):
            ks = <KernelStep>step
            if not ks.ran_native:
                return f"{name} ran through NumPy at the recorded step"
            slots = [ks.ins[i] for i in range(ks.n_in)] + outs
        elif isinstance(step, GemmStep):
            gs = <GemmStep>step
            if not gs.ran_native:
                return f"{name} ran through NumPy at the recorded step"
            slots = [gs.a, gs.b] + ([gs.c] if gs.c >= 0 else []) + outs
        elif name == "shape_i" or not varying.intersection(ins):
            continue  # the same value at every step (shapes do not change): kept from the recorded one
        elif name in _VIEW_OPS and len(outs) == 1 and ins[0] in varying and not varying.intersection(ins[1:]) \
                or name == "sum_to" and istore[outs[0]] is istore[ins[0]] and not varying.intersection(ins[1:]):
            # (sum_to returning its input: the sizes agree, and sizes are the same at every step)
            why = view_offset(istore[ins[0]], istore[outs[0]], ins[0] in state_taps)
            if isinstance(why, str):
                return f"{name} {why}"
            if why == 0 and _same_layout(istore[ins[0]], istore[outs[0]]):
                same_as[outs[0]] = same_as.get(ins[0], ins[0])  # the same array under another name
            slots = [ins[0], outs[0]]
        elif name == "getitem" and len(ins) == 2 and _indexes_first_axis(step.node.params["spec"]):
            if not cnp.PyArray_CheckExact(istore[outs[0]]) and cnp.PyArray_CheckExact(istore[ins[0]]):
                # every axis indexed: NumPy made a scalar; the plan reads the element through a 0-d view
                key = rebuild_key(step.node.params["spec"], [istore[ins[1]]]) + (Ellipsis,)
                synthesized[outs[0]] = istore[ins[0]][key]
            why = view_offset(istore[ins[0]], synthesized.get(outs[0], istore[outs[0]]), ins[0] in state_taps)
            if isinstance(why, str):
                return f"{name} {why}"
            slots = [ins[0], ins[1], outs[0]]
        else:
            scan.refusal = f"{name} runs through NumPy in the loop body"  # so does it at every run
            return scan.refusal
        varying.update(outs)
        call_steps.append(step)
        call_slots.append(slots)
        n_args += len(slots)
    plan.keep_alive, plan.rings, plan.push_stacks = [], [], []
    plan.until_idx = -1
    plan.table = <tc_array *>malloc(sizeof(tc_array) * max(n_slots, 1))
    plan.dims = <int64_t *>malloc(sizeof(int64_t) * 2 * TC_MAX_NDIM * max(n_slots, 1))
    plan.calls = <PlanCall *>malloc(sizeof(PlanCall) * max(len(call_slots), 1))
    plan.arg_idx = <int *>malloc(sizeof(int) * max(n_args, 1))
    if plan.table == NULL or plan.dims == NULL or plan.calls == NULL or plan.arg_idx == NULL:
        raise MemoryError()
    index, produced, first = {}, set(), 0
    for k, (step, slots) in enumerate(zip(call_steps, call_slots)):
        c = &plan.calls[k]
        c.first, c.nargs, c.has_c = first, len(slots), 0
        converted = dict((<KernelStep>step).converted) if isinstance(step, KernelStep) else {}
        for i, slot in enumerate(slots):
            if i in converted:  # a Python number (a size, say) as the kernel's array: fixed values only
                value = converted[i]
                if slot in synthesized and synthesized[slot].dtype == value.dtype:
                    e = index[slot]  # a scalar the plan reads as a 0-d view
                elif slot in varying:
                    return f"{step.node.op.name} converts a value that changes from step to step"
                else:
                    e = plan.add_entry(index, (slot, value.dtype.str), value)
            elif cnp.PyArray_CheckExact(synthesized.get(slot, istore[slot])) or slot not in varying:
                value = synthesized.get(slot, istore[slot])  # (a fixed Python int indexing a view: as its array)
                e = plan.add_entry(index, slot, value if cnp.PyArray_CheckExact(value) else np.asarray(value))
            else:
                e = -1
            if e < 0:
                return f"{step.node.op.name} reads a value that is not a plain array"
            plan.arg_idx[first + i] = e
        first += len(slots)
        if not isinstance(step, (KernelStep, GemmStep)):  # a view
            src = <cnp.ndarray>istore[slots[0]]
            c.kind = KIND_VIEW if len(slots) == 2 else KIND_INDEXED_VIEW
            c.offset = view_offset(src, synthesized.get(slots[len(slots) - 1], istore[slots[len(slots) - 1]]), False)
            if c.kind == KIND_INDEXED_VIEW:  # the recorded index's part of the offset is added per step
                c.length, c.stride = src.shape[0], src.strides[0]
                c.offset -= (int(istore[slots[1]]) % c.length) * c.stride
        elif isinstance(step, KernelStep):
            ks = <KernelStep>step
            c.kind, c.fn, c.ndim = KIND_KERNEL, ks.fn, ks.ndim
            for i in range(ks.ndim):
                c.shape[i] = ks.last_shape[i]
            produced.update(ks.node_outs[j] for j in range(ks.n_out))
        else:
            gs = <GemmStep>step
            c.kind = KIND_GEMV if gs.last_gemv else KIND_GEMM
            c.has_c, c.alpha, c.beta = gs.c >= 0, gs.last_alpha, gs.last_beta
            produced.add(gs.node_outs[0])
        plan.n_calls = k + 1
    for step in call_steps:  # alpha and beta are read once, at the recorded step
        if isinstance(step, GemmStep) and (<GemmStep>step).c >= 0:
            if (<GemmStep>step).alpha in varying or (<GemmStep>step).beta in varying:
                return "a matrix product's alpha or beta changes from step to step"
    n_roots = inner.n_roots
    roots = [inner.root_slots[i] for i in range(n_roots)]
    state_roots = [same_as.get(r, r) for r in roots[:scan.n_states]]  # where each new state is computed
    if len(set(state_roots)) != len(state_roots) or not all(r in produced for r in state_roots):
        scan.refusal = "a state's new value is an input, a constant or another state's"
        return scan.refusal  # the checked path copies such values; the rings cannot
    for r in roots[scan.n_states:]:  # other outputs are read where they are, even inputs and views
        value = synthesized.get(r, istore[r])
        if r not in index and (not cnp.PyArray_CheckExact(value) or plan.add_entry(index, r, value) < 0):
            return "an output is not a plain array"
    # per-step pointer moves: sequence rows, then state taps and each state's new value
    moves = []
    k = 0
    for j, taps in enumerate(scan.seq_taps):
        arr = <cnp.ndarray>seqs[j]
        for tap in taps:
            slot = inner.in_slots[k]
            k += 1
            if slot in index:
                moves.append((index[slot], -1, tap - min(taps), <size_t>cnp.PyArray_DATA(arr),
                              cnp.PyArray_STRIDES(arr)[0]))
    for j, taps in enumerate(scan.state_taps):
        root = istore[state_roots[j]]
        depth = -min(taps)
        for value in histories[j]:  # every state keeps its shape and dtype from step to step
            if not isinstance(value, np.ndarray) or value.shape != root.shape or value.dtype != root.dtype:
                return "a state changes its shape or dtype"
        ring = [np.empty_like(root, order="C") for _ in range(depth + 1)]
        plan.rings.append(ring)
        for tap in taps:
            slot = inner.in_slots[k]
            k += 1
            if slot in index:
                if np.shape(istore[slot]) != root.shape or np.asarray(istore[slot]).dtype != root.dtype:
                    return "a state changes its shape or dtype"
                plan.retarget(index[slot], <cnp.ndarray>ring[0])
                moves.append((index[slot], j, tap, 0, 0))
        plan.retarget(index[state_roots[j]], <cnp.ndarray>ring[0])
        moves.append((index[state_roots[j]], j, 0, 0, 0))
    plan.n_updates = len(moves)
    plan.updates = <PointerUpdate *>malloc(sizeof(PointerUpdate) * max(len(moves), 1))
    if plan.updates == NULL:
        raise MemoryError()
    for k, (e, ring_j, offset, base, stride) in enumerate(moves):
        u = &plan.updates[k]
        u.idx, u.ring, u.offset, u.base, u.stride = e, ring_j, offset, <char *><size_t>base, stride
    n_rings = sum(len(r) for r in plan.rings)
    plan.ring_data = <char **>malloc(sizeof(char *) * max(n_rings, 1))
    plan.ring_start = int_array([sum(len(r) for r in plan.rings[:j]) for j in range(len(plan.rings))])
    plan.ring_size = int_array([len(r) for r in plan.rings])
    if plan.ring_data == NULL:
        raise MemoryError()
    e = 0
    for ring in plan.rings:
        for ring_arr in ring:
            plan.ring_data[e] = <char *>cnp.PyArray_DATA(ring_arr)
            e += 1
    # stacked outputs: each step's row is copied from its table entry
    stacked = roots[:scan.n_rec] + roots[scan.n_states:scan.n_states + scan.n_plain]
    plan.push_idx = int_array([index[r] for r in stacked])
    plan.n_pushes = len(stacked)
    for r, stack in zip(stacked, stacks):
        arr = <cnp.ndarray>synthesized.get(r, istore[r])
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not (<Stack>stack).takes_rows_of(arr):
            return "a stacked output is not laid out like its rows"
        plan.push_stacks.append(stack)
    if scan.has_until:
        arr = <cnp.ndarray>synthesized.get(roots[n_roots - 1], istore[roots[n_roots - 1]])
        if cnp.PyArray_TYPE(arr) != cnp.NPY_BOOL or cnp.PyArray_NDIM(arr) != 0:
            return "the tc.until condition is not a boolean scalar"
        plan.until_idx = index[roots[n_roots - 1]]
    plan.ignored = ignored_fp_flags()
    return plan


cdef int fill_rings(LoopPlan plan, list histories, Py_ssize_t t) except -1:
    """Put each state's last values (steps t-depth .. t-1) where the ring reads them."""
    for j, hist in enumerate(histories):
        ring = <list>plan.rings[j]
        for s, value in zip(range(t - len(hist), t), hist):
            np.copyto(ring[ring_pos(s, len(ring))], value)
    return 0
