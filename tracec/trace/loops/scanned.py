"""A traced loop as one scan node.

The loop state's arrays and numbers become the scan's carries; a step calls
the converted body on fresh handles. The state after the loop is read with
`scan_last` (the last step's values, or the initial ones when no step ran), so
the scan is an ordinary node of the program: it runs natively, stores one step
when only its end is read, and its gradient reuses the forward pass.

Arrays the body changes in place get their final contents written into the
array objects that held them before the loop (objects.py follows names that
swap arrays), which is how the caller's arguments see NumPy's changes.
"""
import numpy as np

from ..tensor import Tensor
from ..types import TensorType
from ..graph import Variable
from . import objects
from .runtime import (UNDEFINED, _PY_NUMBERS, LoopConversionError, _check_untouched, _describe,
                      _handle, _is_array_like, _ops, _restore, _scalar_condition, _watch, and_, not_)


class _Carries:
    """The loop state as scan sees it: which entries are carried arrays, their
    types, and how each step's values are checked against them."""

    def __init__(self, state, names, where):
        numpy_api = _ops()[0]
        self.names, self.where = names, where
        self.init = state
        self.carried = []        # positions of carried entries
        self.values = []         # their initial Tensors
        for j, (name, v) in enumerate(zip(names, state)):
            if v is UNDEFINED:
                raise LoopConversionError(
                    f"{where}: `{name}` has no value before this loop, but the loop runs on "
                    f"traced values, so how often (if at all) its body assigns `{name}` is only "
                    f"known when the compiled function runs. Give `{name}` a value before the "
                    f"loop, e.g. `{name} = np.zeros_like(...)` or `{name} = 0.0`")
            if _is_array_like(v):
                t = numpy_api.as_tensor(v)
                if t.type.weak or type(v) in _PY_NUMBERS:
                    t = numpy_api.astype(t, t.dtype)
                self.carried.append(j)
                self.values.append(t)

    @property
    def carried_names(self):
        return [self.names[j] for j in self.carried]

    def retype(self, j, dtype):
        numpy_api = _ops()[0]
        k = self.carried.index(j)
        self.values[k] = numpy_api.astype(self.values[k], dtype)

    def full_state(self, inner):
        state = list(self.init)
        for j, t in zip(self.carried, inner):
            state[j] = t
        return state

    def check(self, out):
        """The carried entries of a step's output state, checked and cast."""
        numpy_api = _ops()[0]
        new = []
        for j, name in enumerate(self.names):
            if j not in self.carried and out[j] is not self.init[j]:
                raise LoopConversionError(
                    f"{self.where}: `{name}` holds {_describe(self.init[j])}, and this traced loop "
                    f"assigns it {_describe(out[j])}; only arrays and numbers can be carried from "
                    f"step to step")
        for k, j in enumerate(self.carried):
            name, v, want = self.names[j], out[j], self.values[k]
            if v is UNDEFINED or not _is_array_like(v):
                raise LoopConversionError(f"{self.where}: `{name}` is {_describe(v)} after a step of "
                                          f"this traced loop; it must stay an array or number")
            t = numpy_api.as_tensor(v)
            if (t.type.weak or type(v) in _PY_NUMBERS) and t.ndim == want.ndim and \
                    np.can_cast(t.dtype, want.dtype, "same_kind"):
                t = numpy_api.astype(t, want.dtype)
            if t.dtype != want.dtype or t.ndim != want.ndim:
                raise LoopConversionError(self.changed_message(name, want, t))
            new.append(t)
        return new

    def changed_message(self, name, want, got):
        py = [n for n, v in zip(self.names, self.init) if type(v) in _PY_NUMBERS]
        hint = (f" (Python numbers carried by the loop, here {', '.join(f'`{n}`' for n in py)}, "
                f"become int64/float64 arrays; write e.g. `{py[0]} = np.float32(0)` to choose "
                f"another dtype)") if py and name not in py else ""
        if got.ndim != want.ndim:
            fix = f"give it its final shape before the loop, e.g. `{name} = np.zeros_like(...)`"
        else:
            fix = f"cast it before the loop: `{name} = {name}.astype(np.{got.dtype})`"
        return (f"{self.where}: `{name}` is {want.type.short()} before this loop but "
                f"{got.type.short()} after one step; a value carried through a traced loop must "
                f"keep its dtype and number of dimensions: {fix}{hint}")


def _placeholder(t):
    return Tensor(Variable(TensorType(t.dtype, (False,) * t.ndim), name="probe"))


def _probe_types(carries, run_body, item_args):
    """Give carries that start as Python numbers the dtype one real step gives them
    (``s = 0; s = s + x32[i]`` carries a float32, as under NumPy)."""
    numpy_api = _ops()[0]
    weak = [j for j in carries.carried if type(carries.init[j]) in _PY_NUMBERS
            or (isinstance(carries.init[j], Tensor) and carries.init[j].type.weak)]
    if not weak:
        return
    watched = _watch(*run_body.fns)
    try:
        out = run_body(item_args, [_handle(v) for v in carries.init])
    finally:
        _restore(watched)
    for j in weak:
        v = out[j]
        if isinstance(v, Tensor) and not v.type.weak and v.ndim == 0:
            carries.retype(j, v.dtype)
        elif isinstance(v, Tensor) or type(v) in _PY_NUMBERS:
            t = numpy_api.as_tensor(v)
            if t.ndim == 0 and t.dtype != carries.values[carries.carried.index(j)].dtype \
                    and not t.type.weak:
                carries.retype(j, t.dtype)


class _Body:
    """Calls the loop body (and, for while loops, the test) with (item args, state)."""

    def __init__(self, body, with_item):
        self.body, self.with_item, self.fns = body, with_item, (body,)

    def __call__(self, item_args, state):
        return list(self.body(*item_args, *state)) if self.with_item else list(self.body(*state))


def _tag(label):
    return _ops()[0].as_tensor(np.int64(label))


class _Stepper:
    """The body as the scan's step sees it: one call on fresh handles, the carries
    checked, and the tags (when the plan has any) moved as the arrays moved."""

    def __init__(self, carries, run, watched, plan):
        self.carries, self.run, self.watched, self.plan = carries, run, watched, plan
        self.moves = None  # what the step did to the arrays (objects.StepMoves), once traced

    def __call__(self, item_args, inner_values):
        """(new carries, new tags, full output state) of one step."""
        n = len(self.carries.values)
        inner = [_handle(t) for t in inner_values[:n]]  # scan reads its own inputs' variables afterwards
        before = [t.variable for t in inner]
        out = self.run(item_args, self.carries.full_state(inner))
        _check_untouched(self.watched, self.carries.where, "this traced loop")
        new = self.carries.check(out)
        self.moves = objects.StepMoves([out[j] for j in self.carries.carried], inner, before)
        tags = self.plan.step_tags(self.moves, inner_values[n:], _tag) if self.plan else []
        return new, tags, out


def _traced_scan(carries, build, run, watched, n_known):
    """The final values of the carries, then of the tags, from `build(stepper, tag inits)`;
    traced once more with tags when the loop moves arrays between names in a way only
    the run-time step count decides."""
    stepper = _Stepper(carries, run, watched, plan=None)
    finals = build(stepper, [])
    labels = objects.initial_labels([carries.init[j] for j in carries.carried])
    try:
        plan = objects.Plan(labels, stepper.moves, carries.carried_names)
    except objects.LoopObjectsError as exc:
        raise LoopConversionError(f"{carries.where}: {exc}") from None
    if plan.needs_tags(n_known):
        first = stepper.moves
        stepper = _Stepper(carries, run, watched, plan=plan)
        finals = build(stepper, [_tag(label) for label in plan.initial_tags()])
        if first.shape() != stepper.moves.shape():
            raise RuntimeError(f"{carries.where}: the loop body moved its arrays differently "
                               f"when traced again (a tracec bug)")
    return finals, plan


def _finals(outs, inits):
    scan = _ops()[1]
    return [scan.scan_last(o, i) for o, i in zip(outs, inits)]


def _finish(carries, finals, tags, plan, n_known):
    """The state after the loop. Each original array some step changed in place gets the
    final value of the name holding it; a name surely holding an original stays bound to it."""
    labels = plan.final_labels(n_known, tags)
    originals = {label: carries.init[j] for label, j in zip(plan.states[0], carries.carried) if label > 0}
    for o in plan.written():
        holders = plan.holders(o, labels)
        static = [k for k, label in holders if isinstance(label, int)]
        if static:
            value = finals[static[0]]
        else:  # which name holds it is decided at run time
            value = _select([(label == o, finals[k]) for k, label in holders[:-1]], finals[holders[-1][0]])
        originals[o]._assign(value.variable)
    state = list(carries.init)
    arrangements = _arrangements(plan, labels) if plan.needs_tags(n_known) else None
    for k, j in enumerate(carries.carried):
        o = plan.bound_original(k, n_known)
        if o is not None:
            state[j] = originals[o]
        elif arrangements and any(arr[k] for arr, _ in arrangements):
            # an original array or one of its own, decided at run time: one case per
            # arrangement the loop can end in, the same conditions for every name
            held = [(cond, originals.get(arr[k])) for arr, cond in arrangements]
            choice = objects.Choice(held[:-1], held[-1][1])
            state[j] = objects.undecided(finals[k], choice, carries.where, carries.names[j])
        else:
            state[j] = finals[k]
    return state


def _arrangements(plan, labels):
    """(arrangement, condition that the loop ended in it) for each arrangement of the
    changed original arrays the loop can end in (the last one's condition is not needed)."""
    found = list(dict.fromkeys(plan.projected))
    out = []
    for arr in found[:-1]:
        cond = None
        for j in plan.tagged:
            here = labels[j] == arr[j]
            cond = here if cond is None else np.logical_and(cond, here)
        out.append((arr, cond))
    return out + [(found[-1], None)]


def _select(cases, default):
    """The value of the first (condition, value) pair whose condition holds, else `default`."""
    value = default
    for cond, v in reversed(cases):
        value = np.where(cond, v, value)
    return _ops()[0].as_tensor(value)


def scan_for(trav, body, state, names, brk, where, n_known=None):
    """A for loop over a TracedIterable (or a concrete range of `n_known` steps) as one scan."""
    numpy_api, scan, _ = _ops()
    carries = _Carries(state, names, where)
    counter0 = trav.counter_start()
    seqs = trav.sequences
    run = _Body(body, with_item=True)
    probe_rows = [_placeholder(numpy_api.getitem(s, 0)) for s in seqs]
    probe_counter = _placeholder(numpy_api.astype(numpy_api.as_tensor(0), np.int64))
    _probe_types(carries, run, (trav.item(probe_counter, probe_rows),))
    has_counter = counter0 is not None
    n_carries = len(carries.values)

    def build(stepper, tag_inits):
        def step(*args):
            rows, rest = list(args[:len(seqs)]), list(args[len(seqs):])
            counter = rest.pop(0) if has_counter else None
            new, tags, out = stepper((trav.item(counter, rows),), rest)
            outs = ([counter + trav.counter_step()] if has_counter else []) + new + tags
            if brk is not None:
                stop = out[brk]
                return outs, scan.until(stop if isinstance(stop, Tensor) else bool(stop))
            return outs

        inits = ([numpy_api.astype(numpy_api.as_tensor(counter0), np.int64)] if has_counter else [])
        inits += carries.values + tag_inits
        outs, _ = scan.scan(step, sequences=seqs or None, outputs_info=inits,
                            n_steps=trav.n_steps() if trav.kind == "range" else None, name="for loop")
        outs = outs if isinstance(outs, list) else [outs]
        return _finals(outs[1:] if has_counter else outs, inits[1:] if has_counter else inits)

    finals, plan = _traced_scan(carries, build, run, _watch(body), n_known)
    return _finish(carries, finals[:n_carries], finals[n_carries:], plan, n_known)


def scan_while(test, body, state, names, brk, where):
    """A traced while loop: one scan whose step ends with tc.until(not test); it runs no
    step when the test fails at once (the step count is found at run time)."""
    numpy_api, scan, _ = _ops()
    carries = _Carries(state, names, where)
    run = _Body(body, with_item=False)
    run.fns = (body, test)
    _probe_types(carries, run, ())
    n_carries = len(carries.values)

    def keep_going(st):
        go = test(*st)
        if isinstance(go, Tensor):
            go = _scalar_condition(go, "the while condition", where)
        if brk is not None:
            go = and_(lambda: not_(st[brk]), lambda: go)
        return go

    go0 = keep_going(state)  # on the state as it is: a concrete answer needs no run-time check
    if not isinstance(go0, Tensor) and not go0:
        return list(state)

    def build(stepper, tag_inits):
        def step(*inner):
            new, tags, _ = stepper((), list(inner))
            go = keep_going(carries.full_state(new))
            return new + tags, scan.until(not_(go) if isinstance(go, Tensor) else not go)

        # n_steps -1: until tc.until stops it; 0 when the test fails before the first step
        n_steps = np.where(go0, -1, 0) if isinstance(go0, Tensor) else None
        inits = carries.values + tag_inits
        outs, _ = scan.scan(step, outputs_info=inits, n_steps=n_steps, name="while loop")
        return _finals(outs if isinstance(outs, list) else [outs], inits)

    finals, plan = _traced_scan(carries, build, run, _watch(body, test), None)
    return _finish(carries, finals[:n_carries], finals[n_carries:], plan, None)
