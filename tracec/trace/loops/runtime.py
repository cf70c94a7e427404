"""What converted code calls: loops and ifs that pick, at trace time, between
running as ordinary Python (concrete conditions and bounds) and becoming one
`scan` / `ifelse` node (traced ones).

Converted code (see convert.py) turns a loop body into a function from the
loop state to the new loop state, ``body(item, *state) -> state``, and calls
``for_stmt`` / ``while_stmt`` / ``if_stmt`` here with the state's initial
values. `line` arguments are line numbers in the caller's file.
"""
import builtins
import itertools
import sys
import warnings

import numpy as np

from ...config import config
from ..shared import SharedVariable
from ..tensor import Tensor, TracedValueError
from . import objects


class LoopConversionError(TracedValueError):
    """Python control flow on traced values that cannot become scan/ifelse as written."""


class _Undefined:
    """The value of a loop or branch variable that has not been assigned yet."""

    def __repr__(self):
        return "<undefined>"


UNDEFINED = _Undefined()
_PY_NUMBERS = (bool, int, float, complex)
_CONTAINER_CHANGERS = ("append", "extend", "insert", "pop", "remove", "clear", "update",
                       "setdefault", "popitem", "add", "discard")


def ld(scope, name):
    """The value of `name` in `scope` (a locals() dict), or UNDEFINED."""
    return scope.get(name, UNDEFINED)


def _where(line, depth=2):
    return f"{sys._getframe(depth).f_code.co_filename}:{line}"


def _ops():
    from .. import numpy_api, scan, ifelse
    return numpy_api, scan, ifelse


def _is_array_like(v):
    return isinstance(v, (Tensor, np.ndarray, np.generic) + _PY_NUMBERS)


def call(f):
    """What converted code calls instead of `f` (user functions get converted too)."""
    from .convert import convert_callee
    return convert_callee(f)


# -- boolean operators in conditions -------------------------------------------------------
def not_(x):
    """``not x``, also for a traced x."""
    return np.logical_not(x) if isinstance(x, Tensor) else not x


def and_(*thunks):
    """``a and b and ...`` (each operand a thunk); traced operands combine with logical_and."""
    value = thunks[0]()
    for thunk in thunks[1:]:
        if isinstance(value, Tensor):
            value = np.logical_and(value, thunk())
        elif not value:
            return value
        else:
            value = thunk()
    return value


def or_(*thunks):
    """``a or b or ...`` (each operand a thunk); traced operands combine with logical_or."""
    value = thunks[0]()
    for thunk in thunks[1:]:
        if isinstance(value, Tensor):
            value = np.logical_or(value, thunk())
        elif value:
            return value
        else:
            value = thunk()
    return value


_COMPARE = {"Lt": np.less, "LtE": np.less_equal, "Gt": np.greater, "GtE": np.greater_equal,
            "Eq": np.equal, "NotEq": np.not_equal}


def compare(left, *steps):
    """A chained comparison ``a < b <= c`` as (left, op, thunk, op, thunk, ...); each
    operand is evaluated once, and only while the chain is not already false."""
    import operator
    value = True
    for op_name, thunk in zip(steps[::2], steps[1::2]):
        right = thunk()
        traced = isinstance(left, Tensor) or isinstance(right, Tensor)
        part = _COMPARE[op_name](left, right) if traced else \
            getattr(operator, {"LtE": "le", "GtE": "ge", "NotEq": "ne"}.get(op_name, op_name.lower()))(left, right)
        if isinstance(value, Tensor) or isinstance(part, Tensor):
            value = np.logical_and(value, part)
        elif not part:
            return part
        else:
            value = part
        left = right
    return value


def no_jump(*flags):
    """True while no `break`/`continue` flag of the current loop step is set."""
    return not_(or_(*[lambda f=f: f for f in flags]))


def if_exp(cond, then, orelse):
    """``then() if cond else orelse()``; a traced cond gives tc.ifelse of both."""
    if not isinstance(cond, Tensor):
        return then() if cond else orelse()
    _, _, ifelse = _ops()
    return ifelse.ifelse(_scalar_condition(cond, "the conditional expression"), then(), orelse())


# -- guards for loops and ifs left as plain Python -------------------------------------------
_OR_STATIC = ("; or, if the value is really a setting, pass that argument as static "
              "(static_argnums/static_argnames)")


def py_iter(iterable, line, why):
    """The iterable of a loop that stays Python; traced ones cannot be iterated."""
    if isinstance(iterable, (Tensor, TracedIterable)):
        raise LoopConversionError(
            f"{_where(line)}: this loop iterates over a traced value, so it has to become a "
            f"scan, but {why}{_OR_STATIC}")
    return iterable


def py_cond(value, line, why):
    """The condition of an if/while that stays Python; a traced one cannot be decided."""
    if isinstance(value, Tensor):
        raise LoopConversionError(f"{_where(line)}: this condition is traced (known only when "
                                  f"the compiled function runs), but {why}{_OR_STATIC}")
    return value


# -- iterables with traced bounds ---------------------------------------------------------
class TracedIterable:
    """range/enumerate/zip over traced values: the sequences a scan walks and how to
    build each step's item from (counter, sequence slices)."""

    def __init__(self, kind, sequences=(), start=None, stop=None, step=None):
        self.kind, self.sequences = kind, list(sequences)
        self.start, self.stop, self.step = start, stop, step

    def n_steps(self):
        """The trip count as a traced int (range) or None (set by the sequences)."""
        if self.kind != "range":
            return None
        if getattr(self, "_n", None) is None:
            self._n = self._count()
        return self._n

    def _count(self):
        a, b, s = self.start, self.stop, self.step
        up = (b - a + s - 1) // s
        down = (a - b - s - 1) // (-s) if not isinstance(s, int) or s < 0 else 0
        n = up if isinstance(s, int) and s > 0 else down if isinstance(s, int) else np.where(s > 0, up, down)
        return np.maximum(n, 0)

    def has_steps(self):
        """A traced bool (or Python bool) telling whether the loop runs at least once."""
        if self.kind == "range":
            return self.n_steps() > 0
        lengths = [s.shape[0] for s in self.sequences]
        cond = True
        for n in lengths:
            if isinstance(n, Tensor):
                cond = np.logical_and(cond, n > 0) if isinstance(cond, Tensor) else n > 0
        return cond

    def counter_start(self):
        if self.kind == "range":
            return self.start
        return 0 if self.kind == "enumerate" else None

    def counter_step(self):
        return self.step if self.kind == "range" else 1

    def item(self, counter, rows):
        if self.kind == "range":
            return counter
        if self.kind == "enumerate":
            return (counter, rows[0])
        if self.kind == "zip":
            return tuple(rows)
        return rows[0]


def _int_bound(v, what, where):
    if isinstance(v, Tensor):
        if v.ndim != 0 or v.dtype.kind not in "iub":
            raise LoopConversionError(f"{where}: range() needs integer bounds; {what} is a "
                                      f"traced {v.type.short()} (use .astype(int) on a scalar)")
        return v
    return int(v)


def iterable(fn, *args, line=0):
    """``fn(*args)`` for fn in range/enumerate/zip, or a TracedIterable when traced."""
    if not any(isinstance(a, Tensor) for a in args):
        return fn(*args)
    where = _where(line)
    if fn is builtins.range:
        bounds = [_int_bound(a, f"argument {i}", where) for i, a in enumerate(args)]
        start, stop, step = (0, bounds[0], 1) if len(bounds) == 1 else (tuple(bounds) + (1,))[:3]
        if isinstance(step, int) and step == 0:
            raise ValueError("range() arg 3 must not be zero")
        return TracedIterable("range", start=start, stop=stop, step=step)
    if fn is builtins.enumerate and len(args) == 1 and isinstance(args[0], Tensor):
        return TracedIterable("enumerate", [_sequence(args[0], where)])
    if fn is builtins.zip and all(isinstance(a, Tensor) for a in args):
        return TracedIterable("zip", [_sequence(a, where) for a in args])
    return fn(*args)


def _sequence(x, where):
    if x.ndim == 0:
        raise LoopConversionError(f"{where}: cannot loop over a 0-d traced array "
                                  f"({x.type.short()}); index it or use it as a bound: range(n)")
    return x


# -- watching captured arrays for changes the converter could not see -----------------------
def _code_names(code, out):
    out.update(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            _code_names(c, out)


def _watch(*fns):
    """(label, tensor, variable) for every array a function reads from outside."""
    seen, watched = set(), []
    for fn in fns:
        cells = zip(fn.__code__.co_freevars, fn.__closure__ or ())
        names = set()
        _code_names(fn.__code__, names)
        found = [(n, c.cell_contents) for n, c in cells if _cell_full(c)]
        found += [(n, fn.__globals__[n]) for n in sorted(names) if n in fn.__globals__]
        for name, value in found:
            if isinstance(value, Tensor) and id(value) not in seen:
                seen.add(id(value))
                watched.append((name, value, value.variable))
    return watched


def _cell_full(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _restore(watched):
    """Undo changes to watched arrays; returns the names of those that had changed."""
    changed = []
    for name, t, var in watched:
        if t.variable is not var:
            changed.append(name)
            if isinstance(t, SharedVariable):
                from .. import context
                t._state(context.current())[0] = var
            else:
                t._var = var
    return changed


def _check_untouched(watched, where, what):
    changed = _restore(watched)
    if changed:
        raise LoopConversionError(
            f"{where}: `{changed[0]}` is changed in place inside {what} by a call tracec cannot "
            f"follow (a function it calls, np.copyto, out=...). Assign it in the body itself, e.g. "
            f"`{changed[0]}[...] = new_value`, so the change is carried from step to step")


def _handle(v):
    """A fresh handle on a traced array, so a traced branch or step can change it privately."""
    if isinstance(v, Tensor):
        return Tensor(v.variable, mutable=v._mutable or isinstance(v, SharedVariable))
    return v


# -- if --------------------------------------------------------------------------------------
def _scalar_condition(cond, what, where=""):
    if cond.ndim != 0:
        raise LoopConversionError(
            f"{where + ': ' if where else ''}{what} is a traced array of {cond.ndim} dimension(s) "
            f"({cond.type.short()}); use a scalar condition such as (x > 0).any() or .all()")
    return cond if cond.dtype == np.bool_ else np.not_equal(cond, 0)


def if_stmt(cond, then, orelse, init, names, n_rebound, line, unsupported=()):
    """An if statement; a traced condition runs both branches into one tc.ifelse."""
    if not isinstance(cond, Tensor):
        out = then(*init) if cond else orelse(*init)
        return tuple(out[:n_rebound])
    where = _where(line)
    _refuse(unsupported, where, "this `if` has a traced condition, so both branches are traced")
    if not names:
        raise LoopConversionError(
            f"{where}: this `if` has a traced condition but assigns no variable, so it has no "
            f"value to select (checks such as `raise` cannot run on traced values). Compute the "
            f"result with np.where(cond, a, b), or assign variables in the branches")
    state = select(cond, then, orelse, list(init), names, where)
    return tuple(state[:n_rebound])


def select(cond, then, orelse, init, names, where):
    """The state after `then(*init)` or `orelse(*init)`, chosen by a traced cond (one ifelse).

    Arrays from before the `if` that a branch changes in place get the chosen contents; a
    name holding the same such array in both branches stays bound to it, and one holding
    different arrays is marked with the choice (objects.py), so loops around it follow it.
    """
    _, _, ifelse = _ops()
    cond = _scalar_condition(cond, "the condition", where)
    branches = [_run_branch(fn, init, where) for fn in (then, orelse)]
    _refuse_aliased_writes(init, names, [b[2] for b in branches], where, "a branch of this traced `if`")
    (t_out, t_args, t_writes, t_src), (e_out, e_args, e_writes, e_src) = branches
    result, pairs = list(init), []
    for i, old in enumerate(init):
        if isinstance(old, Tensor) and (t_writes[i] or e_writes[i]):
            pairs.append((None, i, Tensor(t_args[i].variable), Tensor(e_args[i].variable)))
    for j, name in enumerate(names):
        a, b, old = t_out[j], e_out[j], init[j]
        if isinstance(t_src[j], int) and t_src[j] == e_src[j]:
            result[j] = init[t_src[j]]  # the same array in both branches, changed in place or not
            continue
        if isinstance(t_src[j], Tensor) and t_src[j] is e_src[j]:
            result[j] = t_src[j]  # the same array from outside the `if` in both branches
            continue
        if _same(a, old) and _same(b, old):
            continue
        if a is UNDEFINED or b is UNDEFINED:
            branch = "else" if a is not UNDEFINED else "then"
            raise LoopConversionError(
                f"{where}: `{name}` has no value after the {branch}-branch of this `if`, whose "
                f"condition is traced; give `{name}` a value before the `if` or in both branches")
        if not (_is_array_like(a) and _is_array_like(b)):
            if a is b:
                result[j] = a
                continue
            raise LoopConversionError(
                f"{where}: `{name}` is {_describe(a)} in one branch and {_describe(b)} in the "
                f"other of this `if` on a traced condition; only arrays and numbers can be selected")
        if type(a) in _PY_NUMBERS and type(a) is type(b) and a == b:
            result[j] = a
            continue
        pairs.append((name, j, *_unify(name, a, b, where)))
    if pairs:
        chosen = ifelse.ifelse(cond, [t for *_, t, _ in pairs], [e for *_, e in pairs])
        chosen = chosen if isinstance(chosen, list) else [chosen]
        for (name, i, _, _), value in zip(pairs, chosen):
            if name is None:
                init[i]._assign(value.variable)  # an array changed in place (B[i] = ...) in a branch
        for (name, j, _, _), value in zip(pairs, chosen):
            if name is not None:
                result[j] = _chosen(value, cond, t_src[j], e_src[j], init, name, where)
    return result


def _run_branch(fn, init, where):
    """(outputs, handles given, per handle whether it was changed in place, per output the
    handle it is: objects.resolve) of one branch run on fresh handles."""
    watched = _watch(fn)
    args = [_handle(v) for v in init]
    before = [a.variable if isinstance(a, Tensor) else None for a in args]
    out = list(fn(*args))
    _check_untouched(watched, where, "a branch of this traced `if`")
    writes = [isinstance(a, Tensor) and a.variable is not v for a, v in zip(args, before)]
    outer = [t for _, t, _ in watched]  # arrays the branch reads from the enclosing code
    return out, args, writes, [objects.resolve(o, args, outer) for o in out]


def _refuse_aliased_writes(init, names, writes, where, what):
    for i, j in itertools.combinations(range(len(init)), 2):
        if isinstance(init[i], Tensor) and init[i] is init[j] and any(w[i] or w[j] for w in writes):
            k, other = (i, j) if any(w[i] for w in writes) else (j, i)
            raise LoopConversionError(
                f"{where}: `{names[k]}` and `{names[other]}` name the same array, and {what} changes "
                f"`{names[k]}` in place; each name's value is traced separately there. Give one of "
                f"them its own copy, e.g. `{names[other]} = {names[k]}.copy()`")


def _chosen(value, cond, t_src, e_src, init, name, where):
    """The value of a name after a traced `if` that gives it different arrays; when one of
    them is from before the `if`, the name's array is a run-time choice (objects.py)."""
    if t_src is None and e_src is None:
        return value

    def objs(src):  # handle indices -> the arrays from before the if
        if isinstance(src, objects.Choice):
            return objects.Choice([(c, objs(a)) for c, a in src.cases], objs(src.default))
        return init[src] if isinstance(src, int) else src

    return objects.undecided(value, objects.Choice([(cond, objs(t_src))], objs(e_src)), where, name)


def _same(v, old):
    if isinstance(v, Tensor) and isinstance(old, Tensor):
        return v.variable is old.variable
    return v is old


def _describe(v):
    if isinstance(v, Tensor):
        return f"a traced {v.type.short()}"
    if v is UNDEFINED:
        return "undefined"
    return f"a {type(v).__name__}"


def _unify(name, a, b, where):
    """Both branch values as Tensors of one dtype (Python numbers promote like NumPy's)."""
    numpy_api = _ops()[0]
    ta, tb = numpy_api.as_tensor(a), numpy_api.as_tensor(b)
    if ta.ndim != tb.ndim:
        raise LoopConversionError(
            f"{where}: `{name}` has {ta.ndim} dimension(s) in the then-branch and {tb.ndim} in the "
            f"else-branch of this `if` on a traced condition; both branches must give it the same "
            f"number of dimensions (e.g. np.full_like(x, value) instead of a number)")
    if ta.dtype != tb.dtype:
        weak_a, weak_b = ta.type.weak, tb.type.weak
        if weak_a or weak_b:
            sample = lambda t: {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}[t.dtype.kind]  # noqa: E731
            if weak_a and weak_b:
                dtype = np.result_type(sample(ta), sample(tb))
            else:
                strong, weak = (tb, ta) if weak_a else (ta, tb)
                dtype = np.result_type(strong.dtype, sample(weak))
            ta, tb = numpy_api.astype(ta, dtype), numpy_api.astype(tb, dtype)
        else:
            raise LoopConversionError(
                f"{where}: `{name}` is {ta.dtype} in the then-branch and {tb.dtype} in the "
                f"else-branch of this `if` on a traced condition; cast one of them with "
                f".astype(np.{np.result_type(ta.dtype, tb.dtype)}) so both have one dtype")
    return ta, tb


# -- loops ------------------------------------------------------------------------------------
def _refuse(unsupported, where, context_text):
    for line, text in unsupported:
        if text == "raise":
            raise LoopConversionError(
                f"{where}: {context_text}, but line {line} raises an exception, which cannot "
                f"depend on traced values while tracing. Compute the result with "
                f"np.where(cond, a, b), or check the inputs before calling the compiled function")
        raise LoopConversionError(
            f"{where}: {context_text}, but line {line} changes a Python container (`{text}`), "
            f"which only happens once while tracing. Write the values into an array instead, "
            f"e.g. `ys = np.zeros((n,) + y.shape)` before the loop and `ys[i] = y` in it")


def _has_tensor(state):
    return any(isinstance(v, Tensor) for v in state)


def _flag_set(state, brk):
    if brk is None:
        return False
    flag = state[brk]
    return not isinstance(flag, Tensor) and bool(flag)


def _python_step(body, args, state, brk, names, where):
    """One step run as Python; once a traced `break` may have happened, a guarded one."""
    if brk is not None and isinstance(state[brk], Tensor):
        return select(state[brk], lambda *s: list(s), lambda *s: list(body(*args, *s)),
                      state, names, where)
    return list(body(*args, *state))


def for_stmt(iterable, body, init, names, n_rebound, brk, line, unsupported=()):
    """A for loop: one scan over a traced iterable, Python iteration otherwise.

    A concrete range longer than tc.config.unroll_limit becomes one scan as
    soon as the loop state holds a traced array.
    """
    where = _where(line)
    state = list(init)
    if isinstance(iterable, Tensor):
        iterable = TracedIterable("array", [_sequence(iterable, where)])
    if isinstance(iterable, TracedIterable):
        _refuse(unsupported, where, "this loop runs over a traced value, so it becomes a scan")
        state = _scan_for(iterable, body, state, names, brk, where)
        return tuple(state[:n_rebound])
    if isinstance(iterable, range) and len(iterable) > config.unroll_limit and not unsupported:
        done = 0
        while done < len(iterable) and not _has_tensor(state) and not _flag_set(state, brk):
            state = _python_step(body, (iterable[done],), state, brk, names, where)
            done += 1
        rest = iterable[done:]
        if len(rest) and not _flag_set(state, brk):
            scanned = _try_scan_for(rest, body, state, names, brk, where)
            if scanned is not None:
                return tuple(scanned[:n_rebound])
            iterable = rest
        else:
            return tuple(state[:n_rebound])
    for item in iterable:
        state = _python_step(body, (item,), state, brk, names, where)
        if _flag_set(state, brk):
            break
    return tuple(state[:n_rebound])


def _try_scan_for(r, body, state, names, brk, where):
    """A scan over the concrete range `r`, or None (with a warning) when the body needs
    concrete values; the loop then runs as Python."""
    trav = TracedIterable("range", start=r.start, stop=r.stop, step=r.step)
    try:
        return _scan_for(trav, body, state, names, brk, where, n_known=len(r))
    except (TracedValueError, LoopConversionError) as exc:
        warnings.warn(f"{where}: this loop of {len(r)} steps runs unrolled, not as one scan, "
                      f"because {exc}", stacklevel=4)
        return None


def while_stmt(test, body, init, names, n_rebound, brk, line, unsupported=()):
    """A while loop: Python while the condition is concrete; one scan (with tc.until)
    from the point where it becomes traced, or after tc.config.unroll_limit steps
    when the loop state holds traced arrays."""
    where = _where(line)
    state, steps = list(init), 0
    while not _flag_set(state, brk):
        cond = test(*state)
        traced_brk = brk is not None and isinstance(state[brk], Tensor)
        if isinstance(cond, Tensor) or traced_brk:
            _refuse(unsupported, where, "this loop's condition is traced, so it becomes a scan")
            state = _scan_while(test, body, state, names, brk, where)
            break
        if not cond:
            break
        if steps >= config.unroll_limit and _has_tensor(state) and not unsupported:
            try:
                state = _scan_while(test, body, state, names, brk, where)
                break
            except (TracedValueError, LoopConversionError) as exc:
                warnings.warn(f"{where}: this loop runs unrolled past {steps} steps, not as one "
                              f"scan, because {exc}", stacklevel=2)
                unsupported = ((0, "unrolled"),)
        state = list(body(*state))
        steps += 1
    return tuple(state[:n_rebound])


def _scan_for(*args, **kwargs):
    from .scanned import scan_for  # scanned.py builds on the helpers above
    return scan_for(*args, **kwargs)


def _scan_while(*args, **kwargs):
    from .scanned import scan_while
    return scan_while(*args, **kwargs)
