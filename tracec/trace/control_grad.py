"""Gradients of the control-flow ops: backpropagation through time for scan
(a reverse scan whose step is the vector-Jacobian product of the forward
step) and a lazy ifelse of the two branches' gradients.

The reverse scan carries, per floating-point state fed back from d steps
before, d pending adjoints (the gradients headed for the d values the step
read), and per floating-point outer value the step reads, the sum of its
gradient. It needs the states of every step, taken from one of three places:
- stored: the stacked outputs are the states' history;
- replayed: final-only states (shared variables the step updates) keep no
  history, so the loop runs once more with every state stacked;
- checkpointed (``scan(checkpoint=N)``): the loop saved its state every N
  steps; an outer reverse scan over the stretches of N steps replays each
  from its checkpoint and runs the reverse scan over it, so about n/N + N
  states are alive at once instead of n.
"""
import numpy as np

from .graph import Constant, Variable, clone_replace
from .ops import OPS
from .tensor import Tensor


def _t(var):
    return Tensor(var, mutable=False)


def _floats(tensors):
    return [t is not None and t.dtype.kind == "f" for t in tensors]


def _reversed(values):
    return [v[::-1] for v in values]


class _Take:
    """Consecutive slices of a step function's argument list."""

    def __init__(self, args):
        self.args, self.pos = list(args), 0

    def __call__(self, count):
        self.pos += count
        return self.args[self.pos - count:self.pos]


# -- seeds: the gradient of each stacked output, as the reverse steps read it ----------------
def _last_rows(var, ndim):
    """K when `var` is zero outside its last K rows (0: zero everywhere), None when unknown.

    The gradient of ``out[-k]`` is zeros with one row set; reading just those
    rows keeps the backward pass from allocating a full (n, ...) buffer, so a
    loop read only at its end needs no per-step storage for its seeds."""
    node = var.owner
    if node is None or var.ndim != ndim:
        return None
    if node.op.name == "alloc":
        fill = node.inputs[0]
        return 0 if isinstance(fill, Constant) and np.all(np.asarray(fill.value) == 0) else None
    if node.op.name == "setitem" and len(node.inputs) == 2:
        first = node.params["spec"][0] if node.params["spec"] else ("",)
        if first[0] != "int" or not isinstance(first[1], int) or first[1] >= 0:
            return None
        base = _last_rows(node.inputs[0], ndim)
        return None if base is None else max(base, -first[1])
    if node.op.name == "add":
        rows = [_last_rows(v, ndim) for v in node.inputs]
        return None if None in rows else max(rows)
    if node.op.name == "scan_last_grad":
        return 1
    return None


def _last_rows_only(var, k):
    """The last `k` rows of `var` (a form `_last_rows` accepted), built without its other rows."""
    node = var.owner
    if node.op.name == "alloc":
        return OPS["alloc"](node.inputs[0], Constant(k), *node.inputs[2:], **node.params)
    if node.op.name == "setitem":
        return OPS["setitem"](_last_rows_only(node.inputs[0], k), node.inputs[1], **node.params)
    if node.op.name == "scan_last_grad":
        row = np.expand_dims(_t(node.inputs[0]), 0)
        return np.concatenate([np.zeros_like(row)] * (k - 1) + [row]).variable if k > 1 else row.variable
    a, b = (_t(_last_rows_only(v, k)) for v in node.inputs)
    return (a + b).variable


def _seed(g):
    """None (no gradient), ('rows', last rows, K) or ('dense', g, None)."""
    if g is None:
        return None
    k = _last_rows(g.variable, g.ndim)
    if k == 0:
        return None
    if k is not None:
        return ("rows", _t(_last_rows_only(g.variable, k)), k)
    return ("dense", g, None)


def _step_seeds(seeds, t, dense, tails, n):
    """The gradient of each stacked output at step t (None: zero)."""
    dense, tails, out = iter(dense), iter(tails), []
    for s in seeds:
        if s is None:
            out.append(None)
        elif s[0] == "dense":
            out.append(next(dense))
        else:
            rows, k = next(tails), s[2]
            row = rows[np.clip(t - (n - k), 0, k - 1)]
            out.append(np.where(t >= n - k, row, np.zeros_like(row)))
    return out


# -- the forward step, recomputed and differentiated -----------------------------------------
class _Step:
    """The forward step of a scan node as the backward pass sees it."""

    def __init__(self, info, others, seqs, others_asked, seqs_asked):
        self.info, self.inner, self.others = info, info.inner, list(others)
        self.n_x = sum(len(t) for t in info.seq_taps)
        self.n_h = sum(len(t) for t in info.state_taps)
        self.n_rec = info.n_states - info.n_updates
        self.depths = info.depths
        outs = self.inner.outputs
        self.float_states = [j for j in range(info.n_states) if outs[j].dtype.kind == "f"]
        # the float outer values and sequence taps whose gradients are computed
        self.others_wanted = [f and w for f, w in zip(_floats(others), others_asked)]
        self.x_index = [(j, k - min(taps)) for j, taps in enumerate(info.seq_taps) for k in taps]
        self.x_wanted = [seqs[j].dtype.kind == "f" and seqs_asked[j] for j, _ in self.x_index]
        starts = np.cumsum([0] + [len(t) for t in info.state_taps])
        self.h_slots = [range(starts[j], starts[j + 1]) for j in range(info.n_states)]

    def forward(self, xs, hs, others):
        """The step's state and per-step outputs (Variables) for these inputs."""
        inner = self.inner
        mapping = dict(zip(inner.inner_inputs[:self.n_x + self.n_h], [v.variable for v in list(xs) + list(hs)]))
        mapping.update(zip(inner.inner_inputs[self.n_x + self.n_h:] + inner.captured,
                           [v.variable for v in others]))
        return clone_replace(inner.outputs[:self.info.n_states + self.info.n_plain_outputs], mapping)

    def zero_carries(self, inits, g_finals):
        """Initial pending adjoints (the final-only states' start from the gradient of
        their final value) and accumulators."""
        carries = []
        for j in self.float_states:
            zero = np.zeros_like(inits[j] if self.depths[j] == 1 else inits[j][-1])
            g = g_finals[j - self.n_rec] if j >= self.n_rec else None
            carries += [zero if g is None else g] + [zero] * (self.depths[j] - 1)
        return carries + [np.zeros_like(o) for o, w in zip(self.others, self.others_wanted) if w]

    @property
    def n_carries(self):
        return sum(self.depths[j] for j in self.float_states) + sum(self.others_wanted)

    def vjp(self, xs, hs, others, carries, g_out):
        """One reverse step: new carries and the gradients of the float sequence taps."""
        from .autodiff import backward
        fwd = self.forward(xs, hs, others)
        take = _Take(carries)
        pending = {j: take(self.depths[j]) for j in self.float_states}
        accs = take(sum(self.others_wanted))
        seeds = []
        for j in self.float_states:
            g = g_out[j]
            seeds.append((fwd[j], pending[j][0] if g is None else pending[j][0] + g))
        n_states = self.info.n_states
        for i, g in enumerate(g_out[n_states:]):
            if g is not None:
                seeds.append((fwd[n_states + i], g))
        wrt = [hs[i] for j in self.float_states for i in self.h_slots[j]]
        wrt += [o for o, w in zip(others, self.others_wanted) if w]
        wrt += [x for x, w in zip(xs, self.x_wanted) if w]
        got = [_t(g) for g in backward(seeds, [v.variable for v in wrt], disconnected_inputs="ignore",
                                       what="scan gradient")]
        take = _Take(got)
        new = []
        for j in self.float_states:
            taps, depth = self.info.state_taps[j], self.depths[j]
            reads = {}
            for k, c in zip(taps, take(len(taps))):
                reads[k] = reads[k] + c if k in reads else c
            for i in range(1, depth + 1):  # for the value i steps back: what was pending for the
                older = pending[j][i] if i < depth else None  # one i+1 steps back, plus this step's read
                read = reads.get(-i)
                new.append(older + read if older is not None and read is not None else
                           older if older is not None else read if read is not None else
                           np.zeros_like(pending[j][0]))
        new += [a + c for a, c in zip(accs, take(len(accs)))]
        return new, take(sum(self.x_wanted))


def _reverse(step, seeds, ts, xs, hs, dense, carries, n_steps, n):
    """The reverse scan over one stretch of steps; per-step inputs are in forward order.

    Returns the final carries and, per float sequence tap, the gradient rows of
    the last `n_steps` steps of the stretch, in forward order."""
    from .scan import scan_carry
    tails = [s[1] for s in seeds if s is not None and s[0] == "rows"]
    x_rows = [x for x, w in zip(xs, step.x_wanted) if w]

    def body(*args):
        take = _Take(args)
        t, x, h, g = take(1)[0], take(step.n_x), take(step.n_h), take(len(dense))
        carry, others, tail, n_in = take(step.n_carries), take(len(step.others)), take(len(tails)), take(1)[0]
        return step.vjp(x, h, others, carry, _step_seeds(seeds, t, g, tail, n_in))

    finals, rows = scan_carry(body, _reversed([ts] + list(xs) + list(hs) + list(dense)), carries,
                              step.others + tails + [n], n_steps=n_steps,
                              name=f"grad of {step.info.name or 'scan'}")
    # forward order; the explicit shape also covers a stretch where no step ran
    rows = [np.reshape(r[::-1], (np.shape(r)[0],) + tuple(np.shape(x)[1:])) for r, x in zip(rows, x_rows)]
    return finals, rows


def _tap_values(info, windows, stacks, length):
    """Per state and tap, the values the step read at each of `length` steps."""
    values = []
    for window, stack, taps, depth in zip(windows, stacks, info.state_taps, info.depths):
        history = np.concatenate([np.expand_dims(window, 0) if depth == 1 else window[-depth:], stack])
        values += [history[depth + k:depth + k + length] for k in taps]
    return values


def _replay(step, windows, xs, length):
    """The states of `length` steps run again from `windows`, stacked."""
    from .scan import scan
    info = step.info
    if not info.n_states:
        return []

    def body(*args):
        take = _Take(args)
        return [_t(v) for v in step.forward(take(step.n_x), take(step.n_h), take(len(step.others)))
                [:info.n_states]]

    starts = [dict(initial=w, taps=list(taps)) for w, taps in zip(windows, info.state_taps)]
    stacks, _ = scan(body, sequences=list(xs), outputs_info=starts, non_sequences=step.others,
                     n_steps=length, name=f"replay of {info.name or 'scan'}")
    return stacks


# -- the scan node's rule ---------------------------------------------------------------------
class _Parts:
    """A scan node's inputs, outputs and output gradients, by role."""

    def __init__(self, node, inputs, outputs, grads, wanted):
        info = self.info = node.params["info"]
        self.node = node
        n_seq, n_states = len(info.seq_taps), info.n_states
        n_stacked = n_states - info.n_updates + info.n_plain_outputs
        self.seqs = inputs[1:1 + n_seq]
        self.inits = inputs[1 + n_seq:1 + n_seq + n_states]
        self.others = inputs[1 + n_seq + n_states:]  # non-sequences, then captured outer values
        n_rec = n_states - info.n_updates
        self.stacked = outputs[:n_stacked]
        self.g_finals = grads[n_stacked:n_stacked + info.n_updates]
        # per state (final-only ones have no per-step gradient), then per plain output
        self.seeds = [_seed(g) for g in grads[:n_rec]] + [None] * info.n_updates
        self.seeds += [_seed(g) for g in grads[n_rec:n_stacked]]
        self.fwd_seqs = [s[::-1] if info.go_backwards else s for s in self.seqs]
        wanted = [True] * len(inputs) if wanted is None else wanted
        self.step = _Step(info, self.others, self.seqs, wanted[1 + n_seq + n_states:], wanted[1:1 + n_seq])
        self.first_rows = [i if d == 1 else i[-d:] for i, d in zip(self.inits, info.depths)]
        self.init_extra = [None] * n_states
        if info.checkpoint:
            self.saved = [_t(v) for v in node.outputs[n_stacked + info.n_updates:][:n_states]]
            self.n = _t(node.outputs[-1])
            g_saved = grads[n_stacked + info.n_updates:][:n_states]
            for j, (g, g_out) in enumerate(zip(g_saved, grads[:n_rec] + [None] * info.n_updates)):
                if g is not None and _last_rows(g.variable, g.ndim) != 0:
                    self._fold_saved(j, g, g_out)

    def _fold_saved(self, j, g, g_out):
        """Gradients reaching the saved checkpoints (a second derivative of a checkpointed
        loop) become per-step seeds of the state they saved, and of its initial value."""
        N, depth, init = self.info.checkpoint, self.info.depths[j], self.inits[j]
        rows = np.expand_dims(g, 1) if depth == 1 else g  # (saved, depth, ...)
        m = np.shape(g)[0]
        row_shape = np.shape(init) if depth == 1 else np.shape(init)[1:]
        history = np.zeros((self.n + depth,) + tuple(row_shape), g.dtype)  # initial rows, then each step
        for i in range(depth):  # saved window s, row i holds history[s * N + i]
            history[i:i + m * N:N] += rows[:, i]
        self.init_extra[j] = history[0] if depth == 1 else history[:depth]
        self.seeds[j] = ("dense", history[depth:] if g_out is None else g_out + history[depth:], None)

    def step_inputs(self, n):
        """Per sequence tap, its value at each of the n steps; the seeds given as full arrays."""
        xs = []
        for s, taps in zip(self.fwd_seqs, self.info.seq_taps):
            xs += [s[k - min(taps):k - min(taps) + n] for k in taps]
        return xs, [s[1] for s in self.seeds if s is not None and s[0] == "dense"]

    def truncated(self, n):
        """(steps differentiated, whether that is fewer than n) under truncate_gradient."""
        if self.info.truncate_gradient < 0:
            return n, None
        n_back = np.minimum(n, self.info.truncate_gradient)
        return n_back, n_back < n

    def input_grads(self, finals, seq_rows, cut):
        """Gradients of the node's inputs from the reverse pass's final carries and the
        gradient rows of each float sequence tap ((rows, first step) pieces)."""
        info, step = self.info, self.step
        n_seq, n_states = len(info.seq_taps), info.n_states
        grads = [None] * len(self.node.inputs)
        take = _Take(finals)
        for j in step.float_states:
            pending, depth, init = take(step.depths[j]), step.depths[j], self.inits[j]
            g = pending[0] if depth == 1 else \
                np.concatenate([np.zeros_like(init[:-depth]), np.stack(pending[::-1])])
            g = g if cut is None else np.where(cut, np.zeros_like(g), g)
            extra = self.init_extra[j]
            if extra is not None:  # the initial value is also checkpoint 0
                g = g + (extra if depth == 1 else np.concatenate([np.zeros_like(init[:-depth]), extra]))
            grads[1 + n_seq + j] = g
        for i, wanted in enumerate(step.others_wanted):
            if wanted:
                grads[1 + n_seq + n_states + i] = take(1)[0]
        seq_grads = {}
        taps = [jk for jk, w in zip(step.x_index, step.x_wanted) if w]
        for (j, shift), pieces in zip(taps, seq_rows):
            total = seq_grads.setdefault(j, np.zeros_like(self.fwd_seqs[j]))
            for rows, first in pieces:
                total[first + shift:first + shift + np.shape(rows)[0]] += rows
        for j, g in seq_grads.items():
            grads[1 + j] = g[::-1] if info.go_backwards else g
        return grads


def scan_grad(node, inputs, outputs, grads, wanted=None):
    """Reverse-mode rule of a scan node (see tracec.trace.scan for the input layout);
    `wanted` marks the inputs that need a gradient (None: every float one)."""
    parts = _Parts(node, inputs, outputs, grads, wanted)
    if parts.info.checkpoint:
        return _checkpointed(parts)
    return _stored(parts)


scan_grad.takes_wanted = True  # no per-step work for a sequence or weight no gradient is asked of


def _stored(parts):
    """BPTT from the stacked history (replayed when final-only states keep none)."""
    from .scan import scan_op
    info, step = parts.info, parts.step
    if info.n_updates:
        replay = scan_op.make_node(parts.node.inputs, {"info": info.stacking_all_states()},
                                   loc=parts.node.loc)
        stacks = [_t(v) for v in replay.outputs[:info.n_states]]
    else:
        stacks = parts.stacked[:info.n_states]
    if not (stacks or parts.stacked):
        raise NotImplementedError(f"gradient of a scan without outputs (at {info.loc.describe()})")
    n = (stacks or parts.stacked)[0].shape[0]  # the recorded trip count (until-loops stop early)
    n_back, cut = parts.truncated(n)
    xs, dense = parts.step_inputs(n)
    hs = _tap_values(info, parts.first_rows, stacks, n)
    carries = step.zero_carries(parts.inits, parts.g_finals)
    finals, rows = _reverse(step, parts.seeds, np.arange(n), xs, hs, dense, carries, n_back, n)
    return parts.input_grads(finals, [[(r, n - n_back)] for r in rows], cut)


def _stretch(parts, windows, xs, dense, ts, carries, length, n_back, n):
    """BPTT over `length` steps replayed from saved `windows`; the last `n_back` count."""
    stacks = _replay(parts.step, windows, xs, length)
    hs = _tap_values(parts.info, windows, stacks, length)
    return _reverse(parts.step, parts.seeds, ts, xs, hs, dense, carries, n_back, n)


def _checkpointed(parts):
    """BPTT replaying each stretch of N steps from the state the forward pass saved."""
    from .scan import scan_carry
    info, step, N = parts.info, parts.step, parts.info.checkpoint
    saved, n = parts.saved, parts.n  # the states at steps 0, N, 2N, ... <= n; the trip count
    n_full = n // N
    start = n_full * N
    n_back, cut = parts.truncated(n)
    first = n - n_back  # the first step differentiated
    xs, dense = parts.step_inputs(n)
    steps = np.arange(n)
    # the last stretch, shorter than N (maybe empty), from the checkpoint after the full ones
    carries = step.zero_carries(parts.inits, parts.g_finals)
    tail_back = n - np.maximum(first, start)
    carries, tail_rows = _stretch(parts, [w[n_full] for w in saved], [x[start:] for x in xs],
                                  [g[start:] for g in dense], steps[start:], carries, n - start, tail_back, n)

    def blocks(a):  # (n_full, N, ...) stretches, newest first
        return np.reshape(a[:start], (n_full, N) + tuple(np.shape(a)[1:]))[::-1]

    def stretch_step(*args):
        take = _Take(args)
        windows, x, g = take(info.n_states), take(step.n_x), take(len(dense))
        t, c = take(1)[0], take(step.n_carries)
        if cut is None:
            return _stretch(parts, windows, x, g, t, c, N, N, n)
        counted = np.clip(t[-1] + 1 - first, 0, N)
        new, rows = _stretch(parts, windows, x, g, t, c, N, counted, n)
        pad = [np.zeros((N - counted,) + tuple(np.shape(r)[1:]), r.dtype) for r in rows]
        return new, [np.concatenate([z, r]) for z, r in zip(pad, rows)]

    n_stretches = n_full if cut is None else n_full - np.minimum(first // N, n_full)
    sequences = [w[:n_full][::-1] for w in saved] + [blocks(a) for a in xs + dense + [steps]]
    finals, stretch_rows = scan_carry(stretch_step, sequences, carries, n_steps=n_stretches,
                                      name=f"checkpointed grad of {info.name or 'scan'}")
    pieces = []
    for tail, rows, x in zip(tail_rows, stretch_rows, [x for x, w in zip(xs, step.x_wanted) if w]):
        rows = np.reshape(rows[::-1], (n_stretches * N,) + tuple(np.shape(x)[1:]))
        pieces.append([(rows, start - n_stretches * N), (tail, n - tail_back)])
    return parts.input_grads(finals, pieces, cut)


def scan_last_grad(node, inputs, outputs, grads):
    """The last row of the stack gets the gradient when the loop ran, the initial value otherwise."""
    from .scan import scan_last_grad_op
    stacked, init = inputs
    g = grads[0]
    ran = np.shape(stacked)[0] > 0
    return [_t(scan_last_grad_op(g.variable, stacked.variable)), np.where(ran, np.zeros_like(g), g)]


def scan_last_grad_grad(node, inputs, outputs, grads):
    """scan_last_grad is linear in the row gradient: its transpose reads the last row back."""
    from .scan import scan_last
    g, _ = inputs
    return [scan_last(grads[0], np.zeros_like(g)), None]


def ifelse_grad(node, inputs, outputs, grads):
    """Gradient of a lazy conditional: each branch's gradient, still lazy."""
    from .autodiff import backward
    from .ifelse import ifelse
    info = node.params["info"]
    cond, values = inputs[0], inputs[1:]
    n_then = len(info.then_graph.captured)
    in_grads = [None]
    for taken, graph, vals in ((True, info.then_graph, values[:n_then]),
                               (False, info.else_graph, values[n_then:])):
        # each branch differentiates its own captured inputs; an outer value captured by both
        # branches is two node inputs, and the driver adds the two contributions
        # differentiate with respect to fresh stand-ins: captured values may depend on one
        # another (x and reshape(x)), and each must get only its own direct contribution
        fresh = [Variable(v.variable.type.with_weak(False) if v.variable.type.weak else v.variable.type)
                 for v in vals]
        fwd = clone_replace(graph.outputs, dict(zip(graph.captured, fresh)))
        seeds = [(f, g.variable) for f, g in zip(fwd, grads) if f.dtype.kind == "f" and g is not None]
        wanted = _floats(vals)
        wrt = [f for f, w in zip(fresh, wanted) if w]
        got = backward(seeds, wrt, disconnected_inputs="ignore", what="ifelse gradient") \
            if seeds and wrt else []
        got = iter(clone_replace(got, dict(zip(fresh, [v.variable for v in vals]))) if got else [])
        for v, w in zip(vals, wanted):
            if not w:
                in_grads.append(None)
                continue
            g = _t(next(got)) if seeds else np.zeros_like(v)
            zero = np.zeros_like(v)
            in_grads.append(ifelse(cond, g, zero) if taken else ifelse(cond, zero, g))
    return in_grads
