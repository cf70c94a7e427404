"""Which array each loop variable names, step after step, so that in-place changes
made in a traced loop reach the arrays NumPy would change, also when the loop
rebinds names: ``B[1:-1] = f(A); A, B = B, A`` writes into the caller's A and B
alternately.

One traced step is a map of the loop's arrays: after the step, a name holds
the array another name held before it (``A = B``), a new one (``A = A + 1``),
or, after a traced `if`, one of two chosen at run time (a `Choice`); the step
may also change arrays in place. Following that map from the arrays the names
hold before the loop gives the arrangements the loop can reach. Where the
arrangement after the loop depends on run-time values (the step count, an
`if`), the scan carries a *tag* per such name (the number of the original
array it holds, 0 for none), and the end of the loop picks each original
array's final contents by tag.
"""
import itertools
import weakref

import numpy as np

from ..tensor import Tensor, View

_MAX_STATES = 10_000  # arrangements followed before giving up (permutations repeat far sooner)
_MAX_CONDITIONS = 8   # traced ifs moving arrays in one step


class LoopObjectsError(ValueError):
    """Names and arrays used in a way the loop cannot follow (runtime.py words it for the user)."""


# -- arrays chosen at run time ----------------------------------------------------------------
class Choice:
    """The array a name holds when that is decided at run time (a traced `if`, a loop
    that swaps arrays): the one of the first (condition, array) case whose condition
    holds, else `default`. Arrays are array objects (or, in a StepMoves, a handle's
    index), other Choices, or None (an array made there)."""

    def __init__(self, cases, default):
        self.cases, self.default = list(cases), default

    def parts(self):
        return [a for _, a in self.cases] + [self.default]


_CHOICES = {}  # id(Tensor bound to a name whose array is a run-time choice) -> (weak reference, Choice)


def _choice_of(t):
    entry = _CHOICES.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def resolve(v, handles, outer=()):
    """`v` in terms of `handles`: the index of the handle it is, one of the `outer` arrays
    itself, a Choice of such, or None (an array of its own)."""
    if not isinstance(v, Tensor):
        return None
    for k, h in enumerate(handles):
        if v is h:
            return k
    if any(v is o for o in outer):
        return v
    choice = _choice_of(v)
    if choice is None:
        return None
    cases = [(c, resolve(a, handles, outer)) for c, a in choice.cases]
    default = resolve(choice.default, handles, outer)
    return None if default is None and all(a is None for _, a in cases) else Choice(cases, default)


def _arrays(choice, cond=None):
    """(condition, array) pairs, the conditions exclusive, for the arrays of a Choice tree."""
    found, earlier = [], None
    for c, a in choice.cases + [(None, choice.default)]:
        here = c if earlier is None else np.logical_not(earlier) if c is None else \
            np.logical_and(c, np.logical_not(earlier))
        earlier = c if earlier is None else earlier if c is None else np.logical_or(earlier, c)
        here = here if cond is None else cond if here is None else np.logical_and(cond, here)
        if isinstance(a, Choice):
            found += _arrays(a, here)
        elif a is not None:
            found.append((here, a))
    return found


def undecided(value, choice, where, name):
    """`value`, bound to a name whose array is the run-time `choice`. Changing it in place
    changes the array chosen; reading it after the first of its arrays changed reads the
    chosen one again. The result is marked, so enclosing loops and ifs follow it."""
    from .runtime import _ops
    ifelse = _ops()[2].ifelse
    cases = []
    for cond, a in _arrays(choice):
        same = next((k for k, (_, b) in enumerate(cases) if b is a), None)
        if same is None:
            cases.append((cond, a))
        else:
            cases[same] = (np.logical_or(cases[same][0], cond), a)
    holder = []

    def reread(base_var):
        out = Tensor(holder[0]._var)  # what it holds when no case applies: an array of its own
        for cond, a in reversed(cases):
            out = ifelse(cond, a, out)
        return out.variable

    def write(base_var, new_var):
        new = Tensor(new_var)
        for cond, a in cases[1:]:
            a._assign(ifelse(cond, new, a).variable)
        return ifelse(cases[0][0], new, Tensor(base_var)).variable

    t = Tensor(value.variable, mutable=value._mutable,
               view=View(cases[0][1], reread, write, f"`{name}` at {where} (chosen at run time)"))
    holder.append(t)
    _CHOICES[id(t)] = (weakref.ref(t, lambda _, key=id(t): _CHOICES.pop(key, None)), choice)
    return t


# -- one step of a loop -----------------------------------------------------------------------
class StepMoves:
    """What one traced step did to the loop's arrays, per carried name."""

    def __init__(self, outs, handles, before):
        # outs: the values the step gave the carried names; handles: the arrays it got, whose
        # variables were `before` when the step began
        self.src = [resolve(v, handles) for v in outs]  # handle index, Choice, or None (new)
        self.is_array = [isinstance(v, Tensor) for v in outs]
        self.alias_of = [next(i for i in range(j + 1) if outs[i] is v) for j, v in enumerate(outs)]
        self.writes = [h.variable is not b for h, b in zip(handles, before)]

    def conditions(self):
        """{id(condition): position} of the conditions the run-time choices depend on."""
        found = {}
        todo = [s for s in self.src if isinstance(s, Choice)]
        while todo:
            c = todo.pop()
            for cond, _ in c.cases:
                found.setdefault(id(cond), len(found))
            todo += [a for a in c.parts() if isinstance(a, Choice)]
        return found

    def pick(self, j, truth, conds):
        """The handle index name j holds after the step when the conditions are `truth`."""
        src = self.src[j]
        while isinstance(src, Choice):
            src = next((a for c, a in src.cases if truth[conds[id(c)]]), src.default)
        return src

    def shape(self):
        """What must be the same when the step is traced again (conditions by position)."""
        conds = self.conditions()

        def key(s):
            if not isinstance(s, Choice):
                return s
            return ("c", [(conds[id(c)], key(a)) for c, a in s.cases], key(s.default))
        return [key(s) for s in self.src], self.alias_of, self.is_array, self.writes


def _canonical(raw):
    """Labels with the new arrays numbered -1, -2, ... in order of first appearance."""
    fresh, out = {}, []
    for label in raw:
        if isinstance(label, int) and label >= 0:
            out.append(label)
        else:
            out.append(fresh.setdefault(label, -(len(fresh) + 1)))
    return tuple(out)


def initial_labels(values):
    """Per carried value: 1, 2, ... for distinct array objects (aliases share one), 0 for numbers."""
    ids, labels = {}, []
    for v in values:
        labels.append(ids.setdefault(id(v), len(ids) + 1) if isinstance(v, Tensor) else 0)
    return tuple(labels)


class Plan:
    """The arrangements a loop can reach, the checks on them, and the tags it needs.

    An arrangement gives, per carried name, the original array it holds (1, 2, ...),
    0 for a number, or a negative number for an array made inside the loop (names
    sharing one have the same). Without traced ifs moving arrays, `states[s]` is the
    arrangement after s steps, until they cycle back to `states[cycle_start]`."""

    def __init__(self, start, moves, names):
        self.moves, self.names = moves, names
        self.conds = moves.conditions()
        if len(self.conds) > _MAX_CONDITIONS:
            raise LoopObjectsError("too many traced ifs move arrays between names in one step")
        self.deterministic = not self.conds
        truths = list(itertools.product((True, False), repeat=len(self.conds)))
        self.states, seen, self.edges = [start], {start: 0}, []
        for i in itertools.count():
            if i == len(self.states):
                break
            for truth in truths:
                nxt = self._next(self.states[i], truth)
                if nxt not in seen:
                    if len(self.states) >= _MAX_STATES:
                        raise LoopObjectsError("the loop rearranges its arrays in too many ways to follow")
                    seen[nxt] = len(self.states)
                    self.states.append(nxt)
                self.edges.append((i, seen[nxt]))
        self.cycle_start = self.edges[-1][1] if self.deterministic else None
        self._check()
        written = set(self.written())  # only arrays changed in place need to be followed
        self.projected = [tuple(label if label in written else 0 for label in s) for s in self.states]
        self.tagged = [j for j in range(len(names)) if len({p[j] for p in self.projected}) > 1]

    def _next(self, state, truth):
        m = self.moves
        raw = []
        for j in range(len(m.src)):
            k = m.pick(j, truth, self.conds)
            raw.append(state[k] if k is not None else ("new", m.alias_of[j]) if m.is_array[j] else 0)
        return _canonical(raw)

    def _check(self):
        writes = self.moves.writes
        for state in self.states:
            groups = {}
            for j, label in enumerate(state):
                if label != 0:
                    groups.setdefault(label, []).append(j)
            for js in groups.values():
                if len(js) > 1 and any(writes[j] for j in js):
                    w = next(j for j in js if writes[j])
                    other = next(j for j in js if j != w)
                    raise LoopObjectsError(
                        f"`{self.names[w]}` and `{self.names[other]}` name the same array at the start "
                        f"of a step, and the step changes `{self.names[w]}` in place; a traced loop "
                        f"carries each name's value separately. Give one of them its own copy, e.g. "
                        f"`{self.names[other]} = {self.names[w]}.copy()`")
        written = set(self.written())
        for i, k in self.edges:
            for o in ({x for x in self.states[i] if x > 0} - set(self.states[k])) & written:
                j = next(j for j, label in enumerate(self.states[i]) if label == o)
                raise LoopObjectsError(
                    f"`{self.names[j]}` is changed in place and then bound to another array in this "
                    f"loop, so the array it named before keeps the contents of the step where that "
                    f"happened; a traced loop cannot keep them. Write the new value into the array "
                    f"(`{self.names[j]}[...] = ...`) instead of rebinding the name, or copy it "
                    f"before the loop (`{self.names[j]} = {self.names[j]}.copy()`) if the original "
                    f"array need not change")

    def needs_tags(self, n_known):
        return bool(self.tagged) and (n_known is None or not self.deterministic)

    # -- what the scan carries ---------------------------------------------------------------
    def initial_tags(self):
        return [self.projected[0][j] for j in self.tagged]

    def step_tags(self, moves, tags, constant):
        """The tags after a step traced with `moves`, from those before it; `constant(label)`
        makes a traced int."""
        def value(src):
            if src is None:
                return constant(0)
            if isinstance(src, Choice):
                out = value(src.default)
                for cond, a in reversed(src.cases):
                    out = np.where(cond, value(a), out)
                return out
            if src in self.tagged:
                return tags[self.tagged.index(src)]
            return constant(self.projected[0][src])
        return [value(moves.src[j]) for j in self.tagged]

    # -- after the loop ------------------------------------------------------------------------
    def _index(self, n):
        """The arrangement after n steps (deterministic loops)."""
        if n < len(self.states):
            return n
        return self.cycle_start + (n - self.cycle_start) % (len(self.states) - self.cycle_start)

    def final_labels(self, n_known, tags):
        """Per name: the original array it holds after the loop (an int), or a traced tag."""
        if not self.needs_tags(n_known):
            return list(self.projected[self._index(n_known) if n_known is not None else 0])
        labels = list(self.projected[0])
        for j, tag in zip(self.tagged, tags):
            labels[j] = tag
        return labels

    def bound_original(self, j, n_known):
        """The original array name `j` surely holds after the loop, or None."""
        if n_known is not None and self.deterministic:
            label = self.states[self._index(n_known)][j]
        else:
            label = self.states[0][j] if len({s[j] for s in self.states}) == 1 else 0
        return label if label > 0 else None

    def written(self):
        """The original arrays some step changes in place."""
        return sorted({label for s in self.states for label, w in zip(s, self.moves.writes) if label > 0 and w})

    def holders(self, o, labels):
        """Names that may hold original array `o` at the end: (name, static or traced label)."""
        return [(j, label) for j, label in enumerate(labels)
                if (label == o if isinstance(label, int) else any(p[j] == o for p in self.projected))]
