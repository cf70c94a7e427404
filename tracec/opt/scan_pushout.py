"""Push work out of scan loops (the ideas of Theano's scan push-out rewrites).

A loop body runs once per step; much of what it computes does not need to:
- invariants: nodes that read only non-sequences and outer values give the
  same value at every step; they run once, before the loop, and reach it as
  non-sequences (``W.T`` in a gradient loop);
- sequence work: nodes that read only sequence elements (and invariants)
  become one op over the whole sequence, whose rows are a new sequence
  (``x_t @ Wx`` -> one matrix product ``xs @ Wx`` on the rows of all steps);
- accumulations: a final-only state ``acc = acc + f(...)`` (the gradient
  loop's ``dW += x_t.T @ delta_t``) leaves the loop: the loop stacks the
  per-step values it needs, and one sum or one matrix product adds them
  up afterwards.

Each rewrite is a rule ``scan node -> replacements of its outputs | None``
run by the engine in the pass ``scan_pushout``, before the loop bodies are
optimized (`inner_graphs`); `scan_reuse.py` runs just before it, so that a
gradient's reverse loop reads the forward loop's stored steps. The NumPy reference interpreter is the oracle:
every rewrite keeps the values of all outputs, also for loops with taps,
``go_backwards``, ``tc.until`` (only rows of steps that ran are summed) and
loops that run zero times.
"""
import copy

import numpy as np

from ..trace.graph import Constant, Variable, built_for, toposort
from ..trace.inner import InnerGraph
from ..trace.ops import OPS
from ..trace.ops.index import DYN
from ..trace.scan import scan_op
from .engine import on

INV, ROWS = "invariant", "rows"
_STAYS_IN = {"control", "debug", "fused", "inplace"}  # kinds never moved: side effects, nested loops
_LIFTED_REDUCTIONS = {"sum", "prod", "mean", "max", "min", "any", "all", "var", "std"}
_VIEWS = {"transpose", "expand_dims"}  # lifting these alone saves nothing
# integer ops that raise for some values (x // 0 in C, negative integer powers): moved out of a
# loop they would also meet rows no step reads (past a tc.until), or run for a loop of no step
_RAISING_ON_INTEGERS = {"floor_divide", "remainder", "fmod", "divmod", "power", "float_power",
                        "left_shift", "right_shift"}


# a rewrite moving more nodes than this would trip the engine's guard against a pass growing the
# graph (it counts the nodes outside loops only), which keeps nothing of the pass: leave those
_MAX_MOVED = 100


class _CannotMove(ValueError):
    """A pushed-out node would not compute what the loop did (the rule gives up)."""


# -- a scan node taken apart, and put together again -----------------------------------------
class _Loop:
    """A scan node by role (the layout is in tracec.trace.scan); `build` makes a new node."""

    def __init__(self, node):
        info = self.info = node.params["info"]
        inner = info.inner
        self.node, self.n_steps = node, node.inputs[0]
        n_seq, n_states = len(info.seq_taps), info.n_states
        inputs = iter(inner.inner_inputs)
        seq_outer = node.inputs[1:1 + n_seq]
        self.seqs = [[s, taps, [next(inputs) for _ in taps]] for s, taps in zip(seq_outer, info.seq_taps)]
        inits = node.inputs[1 + n_seq:1 + n_seq + n_states]
        self.n_rec = n_states - info.n_updates
        # per state: initial value, taps, inner inputs, final-only?
        self.states = [[init, taps, [next(inputs) for _ in taps], j >= self.n_rec]
                       for j, (init, taps) in enumerate(zip(inits, info.state_taps))]
        rest = node.inputs[1 + n_seq + n_states:]
        self.nonseqs = [[outer, next(inputs)] for outer in rest[:info.n_nonseq]]
        self.captured = list(inner.captured)
        # the node's own inputs for them: a graph rebuilt around the loop (givens, a retrace) may
        # have replaced those, while the inner graph still names the values it was traced with
        self.captured_outer = {id(c): o for c, o in zip(self.captured, rest[info.n_nonseq:])}
        self.outputs = list(inner.outputs)  # states, plain outputs, then the until condition
        self.n_plain = info.n_plain_outputs

    # the inner graph
    def inner_inputs(self):
        return ([v for s in self.seqs for v in s[2]] + [v for s in self.states for v in s[2]]
                + [v for _, v in self.nonseqs])

    def nodes(self):
        return toposort(self.outputs, stop=self.inner_inputs() + self.captured)

    def uses(self):
        """id(inner variable) -> how many inner nodes and outputs read it."""
        count = {}
        for n in self.nodes():
            for v in n.inputs:
                count[id(v)] = count.get(id(v), 0) + 1
        for v in self.outputs:
            count[id(v)] = count.get(id(v), 0) + 1
        return count

    def substitute(self, mapping):
        """The inner outputs with inner variables replaced per {old: new}."""
        memo = {id(k): v for k, v in mapping.items()}
        for n in toposort(self.outputs, stop=self.inner_inputs() + self.captured + list(mapping)):
            ins = [memo.get(id(v), v) for v in n.inputs]
            if any(a is not b for a, b in zip(ins, n.inputs)):
                new = n.op.make_node(ins, n.params, loc=n.loc)
                memo.update((id(o), f) for o, f in zip(n.outputs, new.outputs))
        self.outputs = [memo.get(id(o), o) for o in self.outputs]

    def build(self):
        """A scan node for the current parts (unused non-sequences dropped)."""
        used = self.uses()
        self.nonseqs = [p for p in self.nonseqs if id(p[1]) in used]
        info = copy.copy(self.info)
        inner = InnerGraph(self.inner_inputs(), self.outputs, name=self.info.inner.program.name)
        info.inner, info.keep, info.inner_optimized = inner, None, False
        info.seq_taps = tuple(taps for _, taps, _ in self.seqs)
        info.state_taps = tuple(s[1] for s in self.states)
        info.n_updates = sum(s[3] for s in self.states)
        info.n_plain_outputs, info.n_nonseq = self.n_plain, len(self.nonseqs)
        outer = [self.n_steps] + [s[0] for s in self.seqs] + [s[0] for s in self.states]
        outer += [v for v, _ in self.nonseqs] + [self.captured_outer.get(id(c), c) for c in inner.captured]
        return scan_op.make_node(outer, {"info": info}, loc=self.node.loc)

    # facts about the loop
    def seq_of(self, var):
        """(sequence index, tap) when `var` is a sequence element input, else None."""
        for j, (_, taps, inner) in enumerate(self.seqs):
            for k, v in zip(taps, inner):
                if v is var:
                    return j, k
        return None

    def outer_of(self):
        """id(inner leaf) -> outer value, for non-sequence inputs and captured values."""
        mapping = {id(v): self.captured_outer[id(v)] for v in self.captured}
        for outer, inner in self.nonseqs:
            if outer.type.weak and not inner.type.weak:  # the step saw a strong value: keep its promotion
                outer = OPS["cast"].make_node([outer], {"dtype": inner.dtype}, loc=self.node.loc).outputs[0]
            mapping[id(inner)] = outer
        return mapping


def _glue(loc, op_name, *inputs, **params):
    """One new node (the reshapes, slices and sizes the moved work needs)."""
    node = OPS[op_name].make_node(list(inputs), params, loc=loc)
    return node.outputs[0] if len(node.outputs) == 1 else node.outputs


def _dims(loc, x):
    return [_glue(loc, "shape_i", x, i=i) for i in range(x.ndim)]


# -- which inner values can move -----------------------------------------------------------
def _liftable(node, rows):
    """Can `node` run once on whole sequences, given which inputs are per-step rows?"""
    name = node.op.name
    if node.op.kind == "elemwise" or name in _VIEWS or name in _LIFTED_REDUCTIONS:
        return True
    if name == "matmul":
        (a, b), (ra, rb) = node.inputs, rows
        if ra and not rb:
            return b.ndim == 2
        if rb and not ra:
            return a.ndim <= 2 and b.ndim >= 2
        return a.ndim == b.ndim >= 2
    return False


def _stays_in(node):
    """Nodes never moved: side effects, nested loops, and ops whose values may make them raise
    (indexing, but for slices; integer division)."""
    if node.op.kind in _STAYS_IN:
        return True
    if node.op.kind == "index":
        return node.op.name != "getitem" or any(e[0] not in ("slice", "newaxis") for e in node.params["spec"])
    return node.op.name in _RAISING_ON_INTEGERS and any(v.dtype.kind in "iub" for v in node.inputs)


def _classify(loop):
    """id(inner variable) -> INV (the same at every step) or ROWS (a function of sequence rows)."""
    kinds = {id(v): INV for v in loop.captured}
    kinds.update((id(v), INV) for _, v in loop.nonseqs)
    kinds.update((id(v), ROWS) for s in loop.seqs for v in s[2])
    for node in loop.nodes():
        if _stays_in(node):
            continue
        ins = [INV if isinstance(v, Constant) else kinds.get(id(v)) for v in node.inputs]
        if all(k == INV for k in ins):
            kind = INV
        elif node.op.name == "shape_i" and loop.seq_of(node.inputs[0]) is not None:
            kind = INV  # every row of a sequence has the same shape
        elif all(k in (INV, ROWS) for k in ins) and _liftable(node, [k == ROWS for k in ins]):
            kind = ROWS
        else:
            continue
        kinds.update((id(o), kind) for o in node.outputs)
    return kinds


def _cone_size(loop, values):
    """How many inner nodes compute `values` (from the loop's inputs)."""
    return len(toposort(values, stop=loop.inner_inputs() + loop.captured))


def _frontier(loop, kinds, kind):
    """Computed inner values of `kind` read by a node of another kind or by an output."""
    made = {id(o) for n in loop.nodes() for o in n.outputs if kinds.get(id(o)) == kind}
    found, seen = [], set()

    def add(v):
        if id(v) in made and id(v) not in seen:
            seen.add(id(v))
            found.append(v)

    for n in loop.nodes():
        if kinds.get(id(n.outputs[0])) != kind:
            for v in n.inputs:
                add(v)
    for v in loop.outputs:
        add(v)
    return found


class _Outer:
    """Builds, outside the loop, what inner values compute: an invariant as it is, a ROWS
    value lifted to all steps at once (one more leading axis: the step)."""

    def __init__(self, loop, kinds, rows_of=None):
        self.loop, self.kinds, self.rows_of = loop, kinds, rows_of
        self.memo = loop.outer_of()

    def __call__(self, var):
        if isinstance(var, Constant):
            return var
        if id(var) not in self.memo:
            if var.owner is None:
                self._leaf(var)
            stop = {id(v) for v in self.loop.inner_inputs() + self.loop.captured} | set(self.memo)
            for node in toposort([var], stop_ids=stop):  # inputs first: no recursion on long chains
                self._node(node)
        return self.memo[id(var)]

    def _leaf(self, var):
        seq = self.loop.seq_of(var)
        if seq is None or self.rows_of is None:
            raise _CannotMove(f"{var!r} changes from step to step")
        self._keep([var], [self.rows_of(*seq)])

    def _node(self, node):
        kind = self.kinds.get(id(node.outputs[0]))
        if kind == INV and node.op.name == "shape_i" and self.loop.seq_of(node.inputs[0]) is not None:
            j, _ = self.loop.seq_of(node.inputs[0])  # the size of a row: of the sequence, one axis further
            self._keep(node.outputs, [_glue(node.loc, "shape_i", self.loop.seqs[j][0], i=node.params["i"] + 1)])
            return
        ins = []
        for v in node.inputs:
            if not isinstance(v, Constant) and id(v) not in self.memo:
                self._leaf(v)  # an inner input: a sequence element, else it varies
            ins.append(v if isinstance(v, Constant) else self.memo[id(v)])
        if kind == INV:
            out = list(node.op.make_node(ins, node.params, loc=node.loc).outputs)
        elif kind == ROWS and self.rows_of is not None:
            out = _lift(node, ins, [self.kinds.get(id(v)) == ROWS for v in node.inputs])
        else:
            raise _CannotMove(f"{node.op.name} at {node.loc} changes from step to step")
        self._keep(node.outputs, out)

    def _keep(self, olds, news):
        for old, new in zip(olds, news):
            rank = old.ndim + (self.kinds.get(id(old)) == ROWS)
            if new.dtype != old.dtype or new.ndim != rank:
                raise _CannotMove(f"{old!r} would become {new!r} outside the loop")
            self.memo[id(old)] = new


def _lift(node, ins, rows):
    """`node` applied to all steps at once; `ins` are outer values, `rows[i]` marks those with a
    leading step axis."""
    name, loc, params = node.op.name, node.loc, dict(node.params)
    if node.op.kind == "elemwise":
        rank = node.outputs[0].ndim
        ins = [_glue(loc, "expand_dims", x, axes=tuple(range(1, 1 + rank - v.ndim)))
               if r and v.ndim < rank else x for x, v, r in zip(ins, node.inputs, rows)]
        return list(node.op.make_node(ins, params, loc=loc).outputs)
    if name == "transpose":
        params["axes"] = (0,) + tuple(a + 1 for a in params["axes"])
    elif name == "expand_dims":
        params["axes"] = tuple(a + 1 for a in params["axes"])
    elif name in _LIFTED_REDUCTIONS:
        axes = params["axis"] if params["axis"] is not None else range(node.inputs[0].ndim)
        params["axis"] = tuple(a + 1 for a in axes)
    elif name == "matmul" and rows == [True, False] and node.inputs[0].ndim == 2:
        return [_stacked_product(loc, *ins)]
    return list(node.op.make_node(ins, params, loc=loc).outputs)


def _stacked_product(loc, rows, w):
    """(T, B, K) rows @ (K, N) as one (T*B, K) @ (K, N) product (one BLAS call), reshaped back."""
    t, b, k = _dims(loc, rows)
    flat = _glue(loc, "reshape", rows, _glue(loc, "multiply", t, b), k)
    return _glue(loc, "reshape", _glue(loc, "matmul", flat, w), t, b, _glue(loc, "shape_i", w, i=1))


# -- sequences as rows ----------------------------------------------------------------------
def _reverse(loc, x):
    return _glue(loc, "getitem", x, spec=(("slice", None, None, -1),))


def _first(loc, x, n, start=0):
    """x[start:start + n]"""
    stop = n if start == 0 else _glue(loc, "add", Constant(start), n)
    return _glue(loc, "getitem", x, stop, spec=(("slice", start or None, DYN, None),))


def _available(loop, j):
    """How many steps sequence j can serve (its length less the span of its taps)."""
    outer, taps, _ = loop.seqs[j]
    length = _glue(loop.node.loc, "shape_i", outer, i=0)
    span = max(taps) - min(taps)
    return length if span == 0 else _glue(loop.node.loc, "subtract", length, Constant(span))


def _step_rows(loop, j, k, n):
    """Rows 0..n-1: what tap k of sequence j reads at steps 0..n-1."""
    outer, taps, _ = loop.seqs[j]
    loc = loop.node.loc
    ordered = _reverse(loc, outer) if loop.info.go_backwards else outer
    return _first(loc, ordered, n, k - min(taps))


# -- the rewrites -----------------------------------------------------------------------------
@on("scan")
def push_out_invariants(node):
    """# loop-invariant nodes (reading only non-sequences and outer values) -> computed once, before the loop"""
    loop = _Loop(node)
    kinds = _classify(loop)
    moved = _frontier(loop, kinds, INV)
    if not moved or _cone_size(loop, moved) > _MAX_MOVED:
        return None
    outer = _Outer(loop, kinds)
    try:
        values = [outer(v) for v in moved]
    except _CannotMove:
        return None
    fresh = [Variable(v.type, name=f"{_label(loop)}.invariant{i}") for i, v in enumerate(moved)]
    loop.nonseqs += [[o, f] for o, f in zip(values, fresh)]
    loop.substitute(dict(zip(moved, fresh)))
    return list(loop.build().outputs)


def _worth_lifting(var, kinds):
    """Does the computation of ROWS value `var` do arithmetic (not only views of rows)?"""
    stack, seen = [var], set()
    while stack:
        v = stack.pop()
        n = v.owner
        if n is None or id(v) in seen or kinds.get(id(v)) != ROWS:
            continue
        seen.add(id(v))
        if n.op.name not in _VIEWS:
            return True
        stack.extend(n.inputs)
    return False


def _sources(var, loop, kinds):
    """The (sequence, tap) pairs a ROWS value reads."""
    found, stack, seen = set(), [var], set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        seq = loop.seq_of(v)
        if seq is not None:
            found.add(seq)
        elif v.owner is not None and kinds.get(id(v)) == ROWS:
            stack.extend(v.owner.inputs)
    return found


@on("scan")
def push_out_sequences(node):
    """# step work on sequence elements only (x_t @ W, exp(x_t)) -> one op on whole sequences, a new sequence"""
    loop = _Loop(node)
    kinds = _classify(loop)
    moved = [v for v in _frontier(loop, kinds, ROWS) if _worth_lifting(v, kinds)]
    if not moved or _cone_size(loop, moved) > _MAX_MOVED:
        return None
    sources = set().union(*(_sources(v, loop, kinds) for v in moved))
    loc = node.loc
    source_seqs = sorted({j for j, _ in sources})
    aligned = len(sources) > 1 or len(loop.seqs[source_seqs[0]][1]) > 1
    if not aligned:  # one single-tap sequence: the rows as they are (a row-wise op keeps their order)
        rows_of = lambda j, k: loop.seqs[j][0]  # noqa: E731
    else:  # the rows each step reads, in step order, as many as the shortest source serves
        n = _available(loop, source_seqs[0])
        for j in source_seqs[1:]:
            n = _glue(loc, "minimum", n, _available(loop, j))
        rows_of = lambda j, k: _step_rows(loop, j, k, n)  # noqa: E731
    try:
        values = [_Outer(loop, kinds, rows_of)(v) for v in moved]
    except _CannotMove:
        return None
    if aligned and loop.info.go_backwards:  # the loop reverses its sequences: hand them over reversed
        values = [_reverse(loc, v) for v in values]
    fresh = [Variable(v.type, name=f"{_label(loop)}.pushed{i}[t]") for i, v in enumerate(moved)]
    loop.substitute(dict(zip(moved, fresh)))
    used = loop.uses()
    # a sequence no longer read goes when new ones came from it: they have as many rows as it served
    loop.seqs = [s for j, s in enumerate(loop.seqs)
                 if any(id(v) in used for v in s[2]) or j not in source_seqs]
    loop.seqs += [[v, (0,), [f]] for v, f in zip(values, fresh)]
    return list(loop.build().outputs)


def _label(loop):
    return loop.info.name or "scan"


# -- accumulations ----------------------------------------------------------------------------
def _linear_in(node, i, kinds):
    """Is `node` linear in input i, and the same map at every step (its other inputs invariant)?"""
    others = [v for k, v in enumerate(node.inputs) if k != i]
    if not all(isinstance(v, Constant) or kinds.get(id(v)) == INV for v in others):
        return False
    name = node.op.name
    if name in ("sum", "mean"):
        return node.params.get("dtype") is None
    if name in ("sum_to", "reshape", "transpose", "expand_dims", "negative", "divide"):
        return i == 0
    return name in ("multiply", "matmul")


def _peel(term, kinds):
    """(maps, core) with term = maps(core): the linear maps a sum over steps passes through."""
    chain = []
    while term.owner is not None and len(term.owner.outputs) == 1:
        node = term.owner
        varying = [i for i, v in enumerate(node.inputs)
                   if not (isinstance(v, Constant) or kinds.get(id(v)) == INV)]
        if len(varying) != 1 or not _linear_in(node, varying[0], kinds):
            break
        chain.append((node, varying[0]))
        term = node.inputs[varying[0]]
    return chain, term


def _accumulated_term(loop, j, uses):
    """The per-step term when final-only state j is ``acc = acc + term``, else None."""
    _, taps, inner, final_only = loop.states[j]
    out = loop.outputs[j]
    if not final_only or len(inner) != 1 or out.dtype.kind not in "fc" or out.owner is None:
        return None
    carry, node = inner[0], out.owner
    if node.op.name != "add" or uses.get(id(carry)) != 1 or uses.get(id(out)) != 1:
        return None  # the running value is read elsewhere: the steps need it
    a, b = node.inputs
    term = b if a is carry else a if b is carry else None
    if term is None or term.dtype != carry.dtype or term.ndim > carry.ndim:
        return None
    return term


def _stack_source(loop, var, kinds):
    """Where the per-step values of `var` are found stacked: ('rows', var) for a function of
    sequence rows (computed from them after the loop), ('out', output index) or ('new', var)
    for a value the loop must stack as a new output."""
    if kinds.get(id(var)) == ROWS:
        return ("rows", var)
    n_states = len(loop.states)
    for i, v in enumerate(loop.outputs[:n_states + loop.n_plain]):
        if v is var and i < loop.n_rec:
            return ("out", i)
        if v is var and i >= n_states:
            return ("out", loop.n_rec + i - n_states)
    return ("new", var)


class _Accumulation:
    """One final-only state ``acc += maps(core)``; the core is a product of two 2-d per-step values
    (summed as one matrix product) or one value (summed over the steps)."""

    def __init__(self, loop, j, term, kinds):
        self.j = j
        self.chain, core = _peel(term, kinds)
        self.term, self.core, self.transposed = term, core, False
        node = core.owner
        if node is not None and node.op.name == "matmul" and all(
                v.ndim == 2 and kinds.get(id(v)) != INV and not isinstance(v, Constant) for v in node.inputs):
            a, b = node.inputs
            t = a.owner
            if t is not None and t.op.name == "transpose" and t.params["axes"] == (1, 0):
                a, self.transposed = t.inputs[0], True  # stack u for u.T: its rows reshape without a copy
            self.operands = [_stack_source(loop, a, kinds), _stack_source(loop, b, kinds)]
        else:
            self.operands = [_stack_source(loop, core, kinds)]

    @property
    def is_product(self):
        return len(self.operands) == 2


def _accumulations(loop, kinds):
    """The accumulations worth moving: every product; a plain sum when its values are stacked anyway."""
    uses = loop.uses()
    found = []
    for j in range(len(loop.states)):
        term = _accumulated_term(loop, j, uses)
        acc = _Accumulation(loop, j, term, kinds) if term is not None else None
        if acc is not None and acc.core.dtype.kind in "fc":  # integer sums would widen, or wrap
            found.append(acc)
    stacked = {id(src[1]) for acc in found if acc.is_product for src in acc.operands if src[0] == "new"}
    return [acc for acc in found if acc.is_product or acc.operands[0][0] != "new"
            or id(acc.operands[0][1]) in stacked]


def _summed(loc, acc, rows):
    """The sum over steps of the core, from the stacked per-step values of its operands."""
    if not acc.is_product:
        return _glue(loc, "sum", rows[0], axis=(0,), dtype=None, keepdims=False)
    a, b = rows
    t, j, n = _dims(loc, b)
    tj = _glue(loc, "multiply", t, j)
    b2 = _glue(loc, "reshape", b, tj, n)
    if acc.transposed:  # a rows are u_t (j, m): stacked (t*j, m), transposed
        a2 = _glue(loc, "transpose", _glue(loc, "reshape", a, tj, _glue(loc, "shape_i", a, i=2)), axes=(1, 0))
    else:  # a rows (m, j)
        a2 = _glue(loc, "reshape", _glue(loc, "transpose", a, axes=(1, 0, 2)), _glue(loc, "shape_i", a, i=1), tj)
    return _glue(loc, "matmul", a2, b2)


def _as_type(loc, var, ty):
    """`var` given exactly type `ty` (same dtype and rank; weak-ness and broadcastable flags fixed)."""
    if var.dtype != ty.dtype or var.ndim != ty.ndim:
        raise _CannotMove(f"{var!r} is not {ty.short()}")
    if var.type.weak and not ty.weak:
        var = _glue(loc, "cast", var, dtype=ty.dtype)
    if var.broadcastable != ty.broadcastable:
        if any(want and not have for want, have in zip(ty.broadcastable, var.broadcastable)):
            raise _CannotMove(f"{var!r} is not known to be {ty.short()}")
        dims = [Constant(1) if want else _glue(loc, "shape_i", var, i=i) for i, want in enumerate(ty.broadcastable)]
        var = _glue(loc, "reshape", var, *dims)
    if var.type != ty:
        raise _CannotMove(f"{var!r} is not {ty.short()}")
    return var


@on("scan")
def push_out_accumulations(node):
    """# acc = acc + f(step) (a final-only state) -> acc + one sum or matrix product of stacked values, after"""
    loop = _Loop(node)
    info = loop.info
    if info.checkpoint or info.keep is not None:
        return None
    kinds = _classify(loop)
    accs = _accumulations(loop, kinds)
    if not accs:
        return None
    stacked_somewhere = any(src[0] != "rows" for acc in accs for src in acc.operands)
    has_stacked_output = loop.n_rec + loop.n_plain > 0
    if not stacked_somewhere and (info.has_until or not _is_const(loop.n_steps, -1)) and not has_stacked_output:
        return None  # nothing would say how many steps ran
    outer = _Outer(loop, kinds)  # made before the loop drops the non-sequences it no longer reads
    steps = []  # how many steps ran, once known
    lifted = _Outer(loop, kinds, lambda j, k: _step_rows(loop, j, k, steps[0]))
    old_plain = loop.n_plain
    new_values = []  # values the loop now stacks, as plain outputs
    for acc in accs:
        for src in acc.operands:
            if src[0] == "new" and all(src[1] is not v for v in new_values):
                new_values.append(src[1])
    removed = {acc.j for acc in accs}
    n_states = len(loop.states)
    plain = loop.outputs[n_states:n_states + loop.n_plain]
    loop.outputs = ([v for j, v in enumerate(loop.outputs[:n_states]) if j not in removed] + plain + new_values
                    + loop.outputs[n_states + loop.n_plain:])
    kept_finals = [j for j in range(loop.n_rec, n_states) if j not in removed]
    inits = {acc.j: loop.states[acc.j][0] for acc in accs}
    loop.states = [s for j, s in enumerate(loop.states) if j not in removed]
    loop.n_plain += len(new_values)
    new = loop.build()
    loc = node.loc

    def stacked(src):
        if src[0] == "out":
            return new.outputs[src[1]]
        return new.outputs[loop.n_rec + old_plain + next(i for i, v in enumerate(new_values) if v is src[1])]

    try:
        n_run, guard = _steps_run(loop, accs, stacked, new, loc)
        steps.append(n_run)
        finals = {}
        for acc in accs:
            rows = [lifted(src[1]) if src[0] == "rows" else stacked(src) for src in acc.operands]
            value = _summed(loc, acc, rows)
            for map_node, i in reversed(acc.chain):
                ins = [value if k == i else outer(v) for k, v in enumerate(map_node.inputs)]
                value = map_node.op.make_node(ins, map_node.params, loc=map_node.loc).outputs[0]
            if value.dtype != acc.term.dtype or value.ndim != acc.term.ndim:
                return None
            final_type = node.outputs[old_plain + acc.j].type  # after n_rec stacks and the plain ones
            finals[acc.j] = (_as_type(loc, _glue(loc, "add", inits[acc.j], value), final_type),
                             _as_type(loc, inits[acc.j], final_type))
    except _CannotMove:
        return None
    if guard:  # a loop that ran no step stacked nothing to read shapes from: the finals are the inits
        finals = _unless_no_step(loc, n_run, finals)
    else:
        finals = {j: done for j, (done, _) in finals.items()}
    out = list(new.outputs[:loop.n_rec + old_plain])
    for j in range(loop.n_rec, n_states):
        out.append(finals[j] if j in removed else new.outputs[loop.n_rec + loop.n_plain + kept_finals.index(j)])
    return out


def _is_const(var, value):
    return isinstance(var, Constant) and np.ndim(var.value) == 0 and var.value == value


def _steps_run(loop, accs, stacked, new, loc):
    """(how many steps ran, whether a run of zero steps needs its own branch)."""
    found = [src for acc in accs for src in acc.operands if src[0] != "rows"]
    if found:  # plain outputs of a loop that ran no step have no trailing shape to go by
        plain = any(src[0] == "new" or src[1] >= loop.n_rec for src in found)
        return _glue(loc, "shape_i", stacked(found[0]), i=0), plain
    if not loop.info.has_until and _is_const(loop.n_steps, -1):
        n = _available(loop, 0)
        for j in range(1, len(loop.seqs)):
            n = _glue(loc, "minimum", n, _available(loop, j))
        return n, False
    return _glue(loc, "shape_i", new.outputs[0], i=0), False


def _unless_no_step(loc, n_run, finals):
    """{state: ifelse(steps ran, value after the loop, initial value)} (lazy: no sum over nothing)."""
    from ..trace.ifelse import ifelse
    from ..trace.tensor import Tensor
    keys = list(finals)
    with built_for(loc, "sum after the loop"):
        ran = Tensor(_glue(loc, "greater", n_run, Constant(0)), mutable=False)
        done = ifelse(ran, [Tensor(finals[j][0], mutable=False) for j in keys],
                      [Tensor(finals[j][1], mutable=False) for j in keys])
    done = done if isinstance(done, (list, tuple)) else [done]
    return {j: d.variable for j, d in zip(keys, done)}


SCAN_PUSHOUT = [push_out_invariants, push_out_sequences, push_out_accumulations]
