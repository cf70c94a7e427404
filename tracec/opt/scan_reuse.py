"""Backward loops that read what the forward loop stored instead of recomputing it.

The gradient of a scan is a reverse scan whose step recomputes the forward
step (``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``) to differentiate it. The
forward loop already stacked those values: when a reverse loop's sequences are
the forward loop's inputs read back step by step (``xs[0:n][::-1]``, the
state history ``concatenate([h0[None], hs])[0:n][::-1]``) and a value in its
step is the forward step's output computed from exactly those inputs, the
reverse loop reads the forward loop's stacked output (``hs[::-1]``) instead.
The rule runs in the pass ``scan_reuse``, before ``scan_pushout`` changes
either loop.
"""
import numpy as np

from ..trace.graph import Constant, Variable
from ..trace.ops.index import DYN
from .engine import on
from .scan_pushout import _Loop, _is_const, _label, _reverse


# -- values another loop already stacked ------------------------------------------------------
def _slice_spec(var):
    """The spec of a getitem node computing `var` with one slice entry, else None."""
    node = var.owner
    if node is None or node.op.name != "getitem" or len(node.params["spec"]) != 1:
        return None
    entry = node.params["spec"][0]
    return entry if entry[0] == "slice" else None


def _rows_read_back(outer):
    """(loop node, start, rows) when ``outer = rows[start:start + n][::-1]`` with n the trip count of
    a loop (the rows of one of its stacked outputs): a backward pass's view of what the loop read."""
    if _slice_spec(outer) != ("slice", None, None, -1):
        return None
    part = outer.owner.inputs[0]
    entry = _slice_spec(part)
    if entry is None or entry[2] != DYN or entry[3] is not None or DYN == entry[1]:
        return None
    start, stop = entry[1] or 0, part.owner.inputs[1]
    if stop.owner is not None and stop.owner.op.name == "add":
        a, b = stop.owner.inputs
        if _is_const(a, start):
            stop = b
        elif _is_const(b, start):
            stop = a
    size = stop.owner
    if size is None or size.op.name != "shape_i" or size.params["i"] != 0:
        return None
    loop = size.inputs[0].owner
    if loop is None or loop.op.name != "scan" or loop.params["info"].keep is not None \
            or size.inputs[0].index >= _n_stacked(loop.params["info"]):
        return None
    return loop, start, part.owner.inputs[0]


def _n_stacked(info):
    return info.n_states - info.n_updates + info.n_plain_outputs


def _read_by(loop, start, rows):
    """The inner input of `loop` whose value at step t is ``rows[start + t]``, else None."""
    info, node = loop.params["info"], loop
    n_seq = len(info.seq_taps)
    inner = iter(info.inner.inner_inputs)
    for j, taps in enumerate(info.seq_taps):
        mine = [next(inner) for _ in taps]
        seq = node.inputs[1 + j]
        ordered = rows.owner.inputs[0] if _slice_spec(rows) == ("slice", None, None, -1) else None
        if (seq is rows and not info.go_backwards) or (seq is ordered and info.go_backwards):
            k = start + min(taps)
            return mine[taps.index(k)] if k in taps else None
    for s, taps in enumerate(info.state_taps):
        mine = [next(inner) for _ in taps]
        depth = -min(taps)
        if s < info.n_states - info.n_updates and _history_of(rows, node.inputs[1 + n_seq + s], node.outputs[s], depth):
            k = start - depth
            return mine[taps.index(k)] if k in taps else None
    return None


def _history_of(rows, init, stacked, depth):
    """Is `rows` ``concatenate([initial window, stacked])``, a state's values from before step 0 on?"""
    node = rows.owner
    if node is None or node.op.name != "concatenate" or node.params["axis"] != 0 or len(node.inputs) != 2:
        return False
    window, stack = node.inputs
    if stack is not stacked:
        return False
    if depth == 1:
        w = window.owner
        return w is not None and w.op.name == "expand_dims" and w.params["axes"] == (0,) and w.inputs[0] is init
    sliced = False  # the window is init[-depth:] (taken once or more)
    while _slice_spec(window) == ("slice", -depth, None, None):
        window, sliced = window.owner.inputs[0], True
    return sliced and window is init


class _SameStep:
    """Does a backward loop's inner value equal a forward loop's step output, value for value?"""

    def __init__(self, mapping):
        self.mapping, self.memo = mapping, {}

    def __call__(self, f, w):
        key = (id(f), id(w))
        if key not in self.memo:
            self.memo[key] = self._same(f, w)
        return self.memo[key]

    def _same(self, f, w):
        if id(f) in self.mapping:
            return self.mapping[id(f)] is w
        if isinstance(f, Constant) or f.owner is None or w.owner is None:
            return f is w or (isinstance(f, Constant) and isinstance(w, Constant) and f.type == w.type
                              and np.array_equal(f.value, w.value))
        a, b = f.owner, w.owner
        return (a.op is b.op and a.op.kind != "debug" and f.index == w.index and a.params == b.params
                and len(a.inputs) == len(b.inputs) and all(self(x, y) for x, y in zip(a.inputs, b.inputs)))


def _forward_match(loop):
    """(forward loop, {id(its inner input or captured value): our inner variable}) for a loop
    whose sequences include a forward loop's inputs read back step by step, else None."""
    found, mapping = None, {}
    for outer, _, inner in loop.seqs:
        back = _rows_read_back(outer)
        if back is None or (found is not None and back[0] is not found):
            continue
        fwd, start, rows = back
        mine = _read_by(fwd, start, rows)
        if mine is not None and len(inner) == 1:
            found = fwd
            mapping[id(mine)] = inner[0]
    if found is None:
        return None
    info = found.params["info"]
    n_in = 1 + len(info.seq_taps) + info.n_states
    others = info.inner.inner_inputs[len(info.inner.inner_inputs) - info.n_nonseq:] + info.inner.captured
    by_outer = {id(o): v for o, v in zip(found.inputs[n_in:], others)}
    ours = [(o, v) for o, v in loop.nonseqs] + [(loop.captured_outer[id(c)], c) for c in loop.captured]
    for outer, inner in ours:
        if id(outer) in by_outer:
            mapping.setdefault(id(by_outer[id(outer)]), inner)
    return found, mapping


@on("scan")
def reuse_stacked_steps(node):
    """# a backward loop recomputing the forward loop's step outputs -> reads the stacked outputs instead"""
    loop = _Loop(node)
    match = _forward_match(loop)
    if match is None:
        return None
    fwd, mapping = match
    info = fwd.params["info"]
    n_states, n_rec = info.n_states, info.n_states - info.n_updates
    stacked = [(j, j) for j in range(n_rec)] + [(n_states + p, n_rec + p) for p in range(info.n_plain_outputs)]
    same = _SameStep(mapping)
    found = {}
    for n in loop.nodes():
        for w in n.outputs:
            for j, out_index in stacked:
                f = info.inner.outputs[j]
                if f.owner is not None and f.owner.op is n.op and f.type == w.type and same(f, w):
                    found[id(w)] = (w, out_index)
                    break
    if not found:
        return None
    fresh = {}
    for w, out_index in found.values():
        back = _reverse(node.loc, fwd.outputs[out_index])
        fresh[w] = Variable(w.type, name=f"{_label(loop)}.stacked{out_index}[t]")
        loop.seqs.append([back, (0,), [fresh[w]]])
    loop.substitute(fresh)
    return list(loop.build().outputs)


SCAN_REUSE = [reuse_stacked_steps]
