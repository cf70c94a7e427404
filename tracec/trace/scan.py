"""Symbolic loops: tc.scan (Theano's semantics) and tc.until, plus map/reduce/foldl/foldr.

A scan node holds the step function as an inner graph. Its outer inputs are
[n_steps, *sequences, *initial states, *non-sequences, *captured values];
its outputs are one stacked array per step output, then the final value of
each final-only state (the shared variables the step function updates), then,
with ``checkpoint=N``, one stack of saved states per state and the trip count.
"""
import copy
import sys
from collections import OrderedDict, deque


import numpy as np

from . import context
from .graph import Constant, Variable, clone_replace, user_source_loc
from .inner import InnerGraph
from .ops.base import Op
from .shared import SharedVariable
from .tensor import Tensor
from .types import TensorType


class until:
    """Returned from a scan step function to stop after this step when `condition` holds."""

    def __init__(self, condition):
        from .numpy_api import as_tensor
        cond = as_tensor(condition)
        if cond.ndim != 0:
            raise TypeError(f"tc.until needs a scalar condition, got {cond.type.short()}")
        self.condition = cond


class ScanInfo:
    """Static description of one scan loop (a node parameter; hashed by identity)."""

    def __init__(self, inner, seq_taps, state_taps, n_plain_outputs, n_updates, n_nonseq,
                 has_until, go_backwards, truncate_gradient, name, loc, checkpoint=None):
        self.inner = inner                   # InnerGraph of one step
        self.seq_taps = seq_taps             # per sequence: tuple of taps
        self.state_taps = state_taps         # per recurrent state: tuple of negative taps
        self.n_plain_outputs = n_plain_outputs  # outputs not fed back (outputs_info None)
        self.n_updates = n_updates           # final-only states (shared variables), last of the states
        self.n_nonseq = n_nonseq
        self.has_until = has_until
        self.go_backwards = go_backwards
        self.truncate_gradient = truncate_gradient
        self.name = name
        self.loc = loc
        self.keep = None  # per stacked output: store only the last k steps (set by the optimizer)
        self.checkpoint = checkpoint  # N: also save the states at steps 0, N, 2N, ... for the gradient

    def with_keep(self, keep):
        """A copy storing only the last keep[j] steps of stacked output j (None: all)."""
        new = copy.copy(self)
        new.keep = tuple(keep)
        return new

    def stacking_all_states(self):
        """A copy that stacks every state, final-only ones too, and saves no checkpoint
        (the gradient replays the loop this way to get the histories it needs)."""
        new = copy.copy(self)
        new.n_updates, new.keep, new.checkpoint = 0, None, None
        return new

    @property
    def n_states(self):
        return len(self.state_taps)

    @property
    def depths(self):
        """Per state: how many past values it feeds back (1 for taps=[-1])."""
        return [-min(taps) for taps in self.state_taps]

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __repr__(self):
        return f"ScanInfo({self.name or 'scan'})"


def _span(taps):
    return max(taps) - min(taps)


def scan_setup(n_steps, values, info):
    """(trip count, sequences in step order, per state its last values, non-sequence values, initial
    states) for a scan node's input values; errors for trip counts the sequences cannot serve."""
    n_seq = len(info.seq_taps)
    seqs = [np.asarray(s) for s in values[:n_seq]]
    inits = values[n_seq:n_seq + info.n_states]
    rest = list(values[n_seq + info.n_states:])
    if info.go_backwards:
        seqs = [s[::-1] for s in seqs]
    available = [len(s) - _span(t) for s, t in zip(seqs, info.seq_taps)]
    n = int(n_steps)
    if n < 0:
        if not seqs and not info.has_until:
            raise ValueError("scan: n_steps must be given when there are no sequences")
        n = min(available) if seqs else sys.maxsize  # no sequences: run until tc.until holds
    elif seqs and n > min(available):
        raise ValueError(f"scan: n_steps={n} is larger than the sequences allow ({min(available)} steps)")
    if min(available, default=0) < 0:
        raise ValueError("scan: a sequence is shorter than its taps need")
    histories = []
    for init, taps in zip(inits, info.state_taps):
        depth = -min(taps)
        histories.append([init] if depth == 1 else list(np.asarray(init)[-depth:]))
    return n, seqs, histories, rest, inits


def _scan_impl(n_steps, *values, info):
    n, seqs, histories, rest, inits = scan_setup(n_steps, values, info)
    n_rec = info.n_states - info.n_updates
    keep = info.keep or (None,) * (n_rec + info.n_plain_outputs)
    collected = [deque(maxlen=k) if k else [] for k in keep]  # only the last k steps when k is set
    saved = [[] for _ in histories]
    t = -1
    for t in range(n):
        if info.checkpoint and t % info.checkpoint == 0:
            _save_windows(saved, histories)
        step_in = []
        for s, taps in zip(seqs, info.seq_taps):
            base = t - min(taps)
            step_in.extend(s[base + k] for k in taps)
        for hist, taps in zip(histories, info.state_taps):
            step_in.extend(hist[k] for k in taps)
        outs = info.inner.run(step_in + rest)
        for j, hist in enumerate(histories):
            hist.append(outs[j])
            if len(hist) > -min(info.state_taps[j]):
                hist.pop(0)
        for j in range(n_rec):
            collected[j].append(outs[j])
        for j in range(info.n_plain_outputs):
            collected[n_rec + j].append(outs[info.n_states + j])
        if info.has_until and bool(outs[-1]):
            break
    results = []
    out_vars = info.inner.outputs
    for j, values_j in enumerate(collected):
        var = out_vars[j] if j < n_rec else out_vars[info.n_states + j - n_rec]
        if values_j:
            results.append(np.stack([np.asarray(v, dtype=var.dtype) for v in values_j]))
        else:
            if j < n_rec:  # no step ran: a state's rows still have its initial value's shape
                shape = np.shape(inits[j]) if -min(info.state_taps[j]) == 1 else np.shape(inits[j])[1:]
            else:
                shape = (0,) * var.ndim
            results.append(np.zeros((0,) + tuple(shape), var.dtype))
    finals = [np.asarray(h[-1], dtype=out_vars[n_rec + j].dtype)
              for j, h in enumerate(histories[n_rec:])]
    if not info.checkpoint:
        return tuple(results + finals)
    taken = t + 1
    if taken % info.checkpoint == 0:  # the state after the loop, so the last stretch has a start
        _save_windows(saved, histories)
    windows = [np.stack([np.asarray(w, dtype=out_vars[j].dtype) for w in ws]) for j, ws in enumerate(saved)]
    return tuple(results + finals + windows + [np.array(taken, dtype=np.int64)])


def _save_windows(saved, histories):
    for ws, hist in zip(saved, histories):
        ws.append(hist[0] if len(hist) == 1 else np.stack([np.asarray(h) for h in hist]))


def _scan_infer(inputs, info):
    outs = info.inner.outputs
    n_rec = info.n_states - info.n_updates
    types = [TensorType(v.dtype, (False,) + (False,) * v.ndim) for v in outs[:n_rec]]
    types += [TensorType(v.dtype, (False,) * (v.ndim + 1))
              for v in outs[info.n_states:info.n_states + info.n_plain_outputs]]
    types += [TensorType(v.dtype, (False,) * v.ndim) for v in outs[n_rec:info.n_states]]
    if info.checkpoint:  # saved windows: a depth-d state saves its last d values
        types += [TensorType(v.dtype, (False,) * (v.ndim + (1 if d == 1 else 2)))
                  for v, d in zip(outs, info.depths)]
        types.append(TensorType(np.int64, ()))
    return types


scan_op = Op("scan", _scan_impl, _scan_infer, kind="control",
             doc="a loop over an inner step graph (tc.scan)")


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _tensor(x):
    from .numpy_api import as_tensor
    return as_tensor(x)


def _strong(t):
    """Initial states are arrays, not Python-scalar-like weak values."""
    if t.variable.type.weak:
        from .numpy_api import astype
        return astype(t, t.dtype)
    return t


def _fresh(var_type, name):
    return Tensor(Variable(TensorType(var_type.dtype, (False,) * var_type.ndim), name=name))


def _split_return(ret):
    """(outputs, updates, until) from what a step function returned."""
    stop = None
    updates = {}
    items = list(ret) if isinstance(ret, tuple) else [ret]
    if items and isinstance(items[-1], until):
        stop = items.pop()
    if items and isinstance(items[-1], (dict, OrderedDict)):
        updates = items.pop()
    elif len(items) == 2 and isinstance(items[1], list) and items[1] and \
            all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], SharedVariable) for p in items[1]):
        updates = dict(items.pop())
    if len(items) == 1:
        outs, single = items[0], not isinstance(items[0], (list, tuple))
    else:
        outs, single = items, False
    outs = [outs] if single else list(outs)
    return outs, single, dict(updates), stop


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         truncate_gradient=-1, go_backwards=False, name=None, mode=None, strict=False,
         checkpoint=None):
    """Loop `fn` over sequences and recurrent states (Theano's ``scan``).

    `fn` receives, in order: the taps of each sequence, the taps of each
    recurrent output, then the non-sequences. It returns the step's outputs,
    optionally a dict of shared-variable updates and/or ``tc.until(cond)``.

    ``checkpoint=N`` (Theano's ``scan_checkpoints(save_every_N=N)``, JAX's
    ``jax.checkpoint`` around the step) makes the gradient store the loop's
    state only every N steps and recompute each stretch of N steps from its
    checkpoint during the backward pass: about n/N + N states in memory
    instead of n, for one more forward pass.

    Returns
    -------
    (outputs, updates)
        `outputs` stacks every step's values (a list when `fn` returned a list);
        `updates` maps shared variables to their values after the loop, to be
        passed to ``tc.function(..., updates=updates)``.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> A, k = tc.vector('A'), tc.iscalar('k')
    >>> result, updates = tc.scan(fn=lambda prior, A: prior * A,
    ...                           outputs_info=np.ones_like(A), non_sequences=A, n_steps=k)
    >>> power = tc.function([A, k], result[-1], updates=updates)
    >>> power(range(10), 2)
    array([ 0.,  1.,  4.,  9., 16., 25., 36., 49., 64., 81.])
    """
    loc = user_source_loc()
    checkpoint = _checkpoint_every(checkpoint, loc)
    seq_entries = []
    for s in _as_list(sequences):
        if isinstance(s, dict):
            taps = tuple(s.get("taps", [0]) or [0])
            seq_entries.append((_tensor(s["input"]), taps))
        else:
            seq_entries.append((_tensor(s), (0,)))
    states, plain_slots = [], []
    for i, o in enumerate(_as_list(outputs_info) if outputs_info is not None else []):
        if o is None:
            plain_slots.append(i)
            continue
        if isinstance(o, dict):
            if o.get("initial") is None:
                plain_slots.append(i)
                continue
            taps = tuple(o.get("taps", [-1]) or [-1])
            init = _strong(_tensor(o["initial"]))
        else:
            init, taps = _strong(_tensor(o)), (-1,)
        if any(k >= 0 for k in taps):
            raise ValueError(f"scan: output taps must be negative (past steps), got {taps}")
        states.append((i, init, taps))
    nonseqs = [_tensor(v) for v in _as_list(non_sequences)]
    for t, taps in seq_entries:
        if t.ndim == 0:
            raise TypeError("scan: sequences must have at least one dimension to loop over")

    # fresh inner inputs, in fn's argument order
    seq_inputs, fn_args = [], []
    for j, (t, taps) in enumerate(seq_entries):
        elem = TensorType(t.dtype, t.broadcastable[1:])
        for k in taps:
            v = _fresh(elem, f"{name or 'scan'}.seq{j}[t{k:+d}]" if k else f"{name or 'scan'}.seq{j}[t]")
            seq_inputs.append(v)
            fn_args.append(v)
    state_inputs = []
    for j, (i, init, taps) in enumerate(states):
        depth = -min(taps)
        state_type = init.variable.type if depth == 1 else TensorType(init.dtype, init.broadcastable[1:])
        per_state = [_fresh(state_type, f"{name or 'scan'}.out{i}[t{k:+d}]") for k in taps]
        state_inputs.append(per_state)
        fn_args.extend(per_state)
    nonseq_inputs = [_fresh(v.variable.type, f"{name or 'scan'}.nonseq{j}") for j, v in enumerate(nonseqs)]
    fn_args.extend(nonseq_inputs)

    ctx = context.current()
    shared_before = {sv: state[0] for sv, state in ctx.shared.items()} if ctx is not None else {}
    # the step's inputs as they are now: fn may change its arguments in place (B[i] = ...)
    arg_vars = {id(t): t.variable for t in fn_args}
    outs, single, updates, stop = _split_return(fn(*fn_args))
    outs = [_tensor(o) for o in outs]
    n_expected = len(states) + len(plain_slots) if outputs_info is not None else len(outs)
    if outputs_info is not None and len(outs) != n_expected:
        raise ValueError(f"scan at {loc.describe()}: the step function returned {len(outs)} output(s) "
                         f"but outputs_info describes {n_expected}")
    if outputs_info is None:
        plain_slots = list(range(len(outs)))
    for (i, init, taps) in states:
        o, depth = outs[i], -min(taps)
        want = init.variable.type if depth == 1 else TensorType(init.dtype, init.broadcastable[1:])
        if o.dtype != want.dtype or o.ndim != want.ndim:
            raise TypeError(f"scan at {loc.describe()}: output {i} of the step function is "
                            f"{o.type.short()} but its initial value (outputs_info) is {want.short()}; "
                            f"a recurrent output must keep its dtype and rank (use .astype or reshape)")

    # shared variables updated by the step become extra recurrent states
    upd_items = list(updates.items())
    upd_inputs = []
    for sv, new in upd_items:
        if not isinstance(sv, SharedVariable):
            raise TypeError(f"scan: updates must map shared variables to new values, got key {sv!r}")
        upd_inputs.append(_fresh(sv.leaf.type, f"{sv.name or 'shared'}[t-1]"))
    inner_out = [outs[i].variable for i, _, _ in states]
    inner_out += [_tensor(new).variable for _, new in upd_items]
    inner_out += [outs[i].variable for i in plain_slots]
    if stop is not None:
        inner_out.append(stop.condition.variable)
    # the step reads the running value; it starts from the value the shared variable has here
    starts = [shared_before.get(sv, sv.leaf) for sv, _ in upd_items]
    if upd_items:
        inner_out = clone_replace(inner_out, {v: u.variable for v, u in zip(starts, upd_inputs)})
    inner_inputs = [arg_vars[id(v)] for v in seq_inputs] + [arg_vars[id(v)] for per in state_inputs for v in per]
    inner_inputs += [u.variable for u in upd_inputs] + [arg_vars[id(v)] for v in nonseq_inputs]
    inner = InnerGraph(inner_inputs, inner_out, name=name or "scan step")

    info = ScanInfo(inner, tuple(t for _, t in seq_entries),
                    tuple(t for _, _, t in states) + ((-1,),) * len(upd_items),
                    len(plain_slots), len(upd_items), len(nonseqs), stop is not None,
                    bool(go_backwards), truncate_gradient, name, loc, checkpoint)
    from .numpy_api import int_scalar_var
    n_var = Constant(-1) if n_steps is None else int_scalar_var(n_steps, "scan n_steps")
    if n_steps is None and not seq_entries and stop is None:
        raise ValueError(f"scan at {loc.describe()}: give n_steps or at least one sequence")
    outer = [n_var] + [t.variable for t, _ in seq_entries] + [init.variable for _, init, _ in states]
    outer += starts + [v.variable for v in nonseqs] + inner.captured
    node = scan_op.make_node(outer, {"info": info}, loc=loc)
    n_rec = len(states)
    by_slot = {}
    for j, (i, _, _) in enumerate(states):
        by_slot[i] = Tensor(node.outputs[j])
    for j, i in enumerate(plain_slots):
        by_slot[i] = Tensor(node.outputs[n_rec + j])
    results = [by_slot[i] for i in sorted(by_slot)]
    final_updates = OrderedDict()
    for j, (sv, _) in enumerate(upd_items):
        final_updates[sv] = Tensor(node.outputs[n_rec + len(plain_slots) + j])
    if context.current() is not None:  # inside tc.compile: updates apply like in-place changes
        for sv, value in final_updates.items():
            sv._assign(value.variable)
    return (results[0] if single and len(results) == 1 else results), final_updates


def _checkpoint_every(checkpoint, loc):
    if checkpoint is None:
        return None
    is_int = isinstance(checkpoint, (int, np.integer)) and not isinstance(checkpoint, (bool, np.bool_))
    if not is_int or checkpoint < 1:
        raise (ValueError if is_int else TypeError)(
            f"scan at {loc.describe()}: checkpoint must be a positive Python int N (save the state "
            f"every N steps, recompute the rest for the gradient), got {checkpoint!r}")
    return int(checkpoint)


def scan_carry(fn, sequences, carries, non_sequences=(), n_steps=None, name=None):
    """A loop whose carries give only their final value, for the gradient's accumulators.

    ``fn(*sequence elements, *carries, *non_sequences)`` returns ``(new carries,
    per-step outputs)``; the result is ``(final carries, stacked per-step outputs)``.
    With no step run, the final carries are their initial values.
    """
    loc = user_source_loc()
    seqs = [_tensor(s) for s in sequences]
    inits = [_strong(_tensor(c)) for c in carries]
    nonseqs = [_tensor(v) for v in non_sequences]
    seq_in = [_fresh(TensorType(s.dtype, s.broadcastable[1:]), f"{name}.seq{j}[t]") for j, s in enumerate(seqs)]
    carry_in = [_fresh(c.variable.type, f"{name}.carry{j}") for j, c in enumerate(inits)]
    nonseq_in = [_fresh(v.variable.type, f"{name}.nonseq{j}") for j, v in enumerate(nonseqs)]
    arg_vars = [v.variable for v in seq_in + carry_in + nonseq_in]  # before fn can change them in place
    new_carries, outs = fn(*seq_in, *carry_in, *nonseq_in)
    new_carries, outs = [_tensor(c) for c in new_carries], [_tensor(o) for o in outs]
    for j, (c, new) in enumerate(zip(inits, new_carries)):
        if c.dtype != new.dtype or c.ndim != new.ndim:
            raise TypeError(f"{name}: carry {j} is {c.type.short()} but the step returns {new.type.short()}")
    inner = InnerGraph(arg_vars,
                       [v.variable for v in new_carries + outs], name=name)
    info = ScanInfo(inner, ((0,),) * len(seqs), ((-1,),) * len(inits), len(outs), len(inits), len(nonseqs),
                    False, False, -1, name, loc)
    from .numpy_api import int_scalar_var
    n_var = Constant(-1) if n_steps is None else int_scalar_var(n_steps, "scan n_steps")
    outer = [n_var] + [v.variable for v in seqs + inits + nonseqs] + inner.captured
    node = scan_op.make_node(outer, {"info": info}, loc=loc)
    results = [Tensor(v) for v in node.outputs]
    return results[len(outs):], results[:len(outs)]


# -- the value a loop leaves behind: its last step's, or its initial value after no step ----------
def _scan_last_impl(stacked, init):
    return stacked[-1] if len(stacked) else init


def _scan_last_infer(inputs):
    stacked, init = inputs
    if stacked.ndim != init.ndim + 1 or stacked.dtype != init.dtype:
        raise TypeError(f"scan_last needs a stack of steps and an initial value of one row's type, "
                        f"got {stacked.type.short()} and {init.type.short()}")
    row = stacked.broadcastable[1:]
    return [TensorType(init.dtype, tuple(a and b for a, b in zip(row, init.broadcastable)))]


def _scan_last_grad_impl(g, stacked):
    out = np.zeros(np.shape(stacked), np.asarray(stacked).dtype)
    if len(out):
        out[-1] = g
    return out


def _scan_last_grad_infer(inputs):
    g, stacked = inputs
    if stacked.ndim != g.ndim + 1:
        raise TypeError(f"scan_last_grad: a row gradient {g.type.short()} for a stack {stacked.type.short()}")
    return [TensorType(stacked.dtype, (False,) * stacked.ndim)]


scan_last_op = Op("scan_last", _scan_last_impl, _scan_last_infer, kind="control",
                  doc="the last row of a scan's stacked output, or the initial value when no step ran")
scan_last_grad_op = Op("scan_last_grad", _scan_last_grad_impl, _scan_last_grad_infer, kind="control",
                       doc="zeros shaped like a stack, its last row (if any) set: the gradient of scan_last")


def scan_last(stacked, init):
    """``stacked[-1]`` when the loop ran, else `init`: a loop's final value, zero steps included.

    The optimizer's scan_memory pass sees that only the last row is read, so the
    loop stores one step; the gradient reads the history, so one forward pass serves both.
    """
    return Tensor(scan_last_op(_tensor(stacked).variable, _tensor(init).variable))


def map(fn, sequences, non_sequences=None, go_backwards=False, name=None):
    """``fn`` applied to each element of the sequences: ``tc.map(np.square, x)``."""
    return scan(fn, sequences=sequences, non_sequences=non_sequences, go_backwards=go_backwards,
                name=name or "map")


def reduce(fn, sequences, outputs_info, non_sequences=None, go_backwards=False, name=None, checkpoint=None):
    """Like scan, but returns only the last step's value of each output (its initial value
    when no step runs, as ``functools.reduce`` with an initial value)."""
    outs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info, non_sequences=non_sequences,
                         go_backwards=go_backwards, name=name or "reduce", checkpoint=checkpoint)
    infos = _as_list(outputs_info)
    last = [_last(o, infos[i] if i < len(infos) else None)
            for i, o in enumerate(outs if isinstance(outs, list) else [outs])]
    return (last if isinstance(outs, list) else last[0]), updates


def _last(stacked, info):
    """The last row of a scan output, or its initial value (a one-tap state) when no step ran."""
    init, taps = (info.get("initial"), info.get("taps", [-1])) if isinstance(info, dict) else (info, [-1])
    if init is None or list(taps or [-1]) != [-1]:
        return stacked[-1]
    return scan_last(stacked, _strong(_tensor(init)))


def foldl(fn, sequences, outputs_info, non_sequences=None, name=None, checkpoint=None):
    """Left fold: ``reduce`` from the first element."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=False, name=name or "foldl",
                  checkpoint=checkpoint)


def foldr(fn, sequences, outputs_info, non_sequences=None, name=None, checkpoint=None):
    """Right fold: ``reduce`` from the last element."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=True, name=name or "foldr",
                  checkpoint=checkpoint)


def _attach_grad():
    from .control_grad import scan_grad, scan_last_grad, scan_last_grad_grad
    scan_op.grad = scan_grad
    scan_last_op.grad = scan_last_grad
    scan_last_grad_op.grad = scan_last_grad_grad


_attach_grad()
