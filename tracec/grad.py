"""Differentiation, in Theano's form (on symbolic values) and JAX's (on functions).

Theano form: ``tc.grad(cost, wrt)``, ``tc.Lop``, ``tc.Rop``, ``tc.jacobian``,
``tc.hessian`` take symbolic values and return symbolic values (graphs), to be
compiled with ``tc.function`` or returned from a ``tc.compile`` function.

Functional form: ``tc.grad(fn)``, ``tc.value_and_grad(fn)``, ``tc.vjp``,
``tc.jvp`` (and ``tc.jacobian(fn)``, ``tc.hessian(fn)``) take a function. Called
on NumPy arrays they trace it, differentiate and run the result (compiled once
per argument signature); called on traced values (inside ``tc.compile``, inside
another ``tc.grad``) they build graph nodes, so they compose. Python loops and
ifs on traced values in `fn` are converted as ``tc.compile`` converts them, and
`fn` is treated as a pure function, as ``jax.grad`` does: in-place changes it
makes to shared variables or to its arguments are seen (and differentiated) by
the code after them, but are not applied.
"""
import contextlib
import functools
import weakref

import numpy as np

from .config import config
from .function import CompiledFunction
from .trace import context
from .trace.autodiff import DisconnectedInputError, GradientNotDefinedError, backward, carries_grad
from .trace.graph import Constant, Variable, clone_replace, leaves
from .trace.numpy_api import as_tensor
from .trace.numpy_shape import numpy_patched
from .trace.ops import OPS
from .trace.ops.special import InnerVJP
from .trace.program import Program
from .trace.pytree import flatten, unflatten
from .trace.tensor import Tensor

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "Lop", "Rop", "jacobian", "hessian",
           "stop_gradient", "verify_grad", "GradientError", "DisconnectedInputError",
           "GradientNotDefinedError"]


# -- helpers -------------------------------------------------------------------------
def _var(x, what):
    from .function import symbolic_variable
    return symbolic_variable(x, what, hint="; to differentiate a function, pass the function "
                                           "itself: tc.grad(fn)")


def _listify(x):
    single = not isinstance(x, (list, tuple))
    return single, ([x] if single else list(x))


def _one(var):
    return Constant(np.ones((), var.dtype))


def _wrap(vars_, single):
    out = [Tensor(v) for v in vars_]
    return out[0] if single else out


# -- Theano form ---------------------------------------------------------------------------
def _symbolic_grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", known_grads=None):
    single, wrt_list = _listify(wrt)
    wrt_vars = [_var(w, f"tc.grad: wrt[{i}]") for i, w in enumerate(wrt_list)]
    seeds = []
    if cost is not None:
        c = _var(cost, "tc.grad: cost")
        if c.ndim != 0:
            raise TypeError(f"tc.grad: the cost must be a scalar (0-d), got {c.type.short()}; sum it "
                            "first, or pass known_grads= / use tc.Lop for a vector-Jacobian product")
        seeds.append((c, _one(c)))
    for key, value in (known_grads or {}).items():
        seeds.append((_var(key, "tc.grad: known_grads key"), as_tensor(value).variable))
    if not seeds:
        raise ValueError("tc.grad: give a cost, or known_grads= (gradients of some variables)")
    const = [_var(v, "tc.grad: consider_constant item") for v in (consider_constant or [])]
    seeds = _stable_seeds(seeds, wrt_vars + const)
    return _wrap(backward(seeds, wrt_vars, const, disconnected_inputs), single)


def _stable_seeds(seeds, keep):
    """Seeds whose graphs went through the stabilize rewrites, so a naive
    ``np.log(sigmoid(z))`` differentiates into finite sigmoid/softplus forms."""
    from .opt import stabilized
    stable = stabilized([v for v, _ in seeds], stop=keep)
    return [(s, g) for s, (_, g) in zip(stable, seeds)]


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):
    """The L operator: ``eval_points`` times the Jacobian of `f` with respect to `wrt`.

    A vector-Jacobian product (reverse mode). `f` and `eval_points` are a
    variable or matching lists; the result has the structure of `wrt`.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x, v = tc.dvector('x'), tc.dvector('v')
    >>> vJ = tc.Lop(x ** 2, x, v)
    >>> tc.function([x, v], vJ)([1., 2.], [1., 1.])
    array([2., 4.])
    """
    _, fs = _listify(f)
    _, points = _listify(eval_points)
    if len(fs) != len(points):
        raise ValueError(f"tc.Lop: {len(fs)} expressions but {len(points)} eval_points")
    single, wrt_list = _listify(wrt)
    seeds = [(_var(y, f"tc.Lop: f[{i}]"), as_tensor(p).variable) for i, (y, p) in enumerate(zip(fs, points))]
    wrt_vars = [_var(w, f"tc.Lop: wrt[{i}]") for i, w in enumerate(wrt_list)]
    const = [_var(v, "tc.Lop: consider_constant item") for v in (consider_constant or [])]
    return _wrap(backward(seeds, wrt_vars, const, disconnected_inputs, "tc.Lop"), single)


def _rop(outputs, wrt, points, what):
    """Jacobian-vector products of `outputs` along `points`, by the double-vjp trick.

    u -> J^T u is linear in u, so the gradient of <J^T u, v> with respect to u
    is J v; the Jacobian itself is never formed. u only contributes its shape
    afterwards, so it is replaced by zeros shaped like the outputs.
    """
    dummies = [Variable(o.type.with_weak(False), name="cotangent") if carries_grad(o) else None
               for o in outputs]
    seeds = [(o, u) for o, u in zip(outputs, dummies) if u is not None]
    if not seeds:
        return [np.zeros_like(Tensor(o), dtype=float).variable for o in outputs]
    with numpy_patched():
        vjps = backward(seeds, wrt, disconnected_inputs="ignore", what=what)
        total = 0.0
        for g, v in zip(vjps, points):  # <J^T u, v>, a full contraction (no broadcast to undo)
            g, v = Tensor(g), Tensor(v)
            total = total + (np.tensordot(g, v, axes=g.ndim) if g.ndim else g * v)
        total = as_tensor(total).variable
        live = [u for u in dummies if u is not None]
        jvps = backward([(total, _one(total))], live, disconnected_inputs="ignore", what=what)
        zeros = {u: np.zeros_like(Tensor(o), dtype=u.dtype).variable
                 for o, u in zip(outputs, dummies) if u is not None}
    jvps = iter(clone_replace(jvps, zeros))
    return [next(jvps) if u is not None else np.zeros_like(Tensor(o), dtype=float).variable
            for o, u in zip(outputs, dummies)]


def Rop(f, wrt, eval_points):
    """The R operator: the Jacobian of `f` with respect to `wrt` times ``eval_points``.

    A Jacobian-vector product (forward mode), computed without forming the
    Jacobian. `wrt` and `eval_points` are a variable or matching lists; the
    result has the structure of `f`.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x, v = tc.dvector('x'), tc.dvector('v')
    >>> Jv = tc.Rop(np.sin(x), x, v)
    >>> tc.function([x, v], Jv)([0., 0.], [1., 2.])
    array([1., 2.])
    """
    single, fs = _listify(f)
    _, wrt_list = _listify(wrt)
    _, points = _listify(eval_points)
    if len(wrt_list) != len(points):
        raise ValueError(f"tc.Rop: {len(wrt_list)} wrt variables but {len(points)} eval_points")
    outs = [_var(y, f"tc.Rop: f[{i}]") for i, y in enumerate(fs)]
    wrt_vars = [_var(w, f"tc.Rop: wrt[{i}]") for i, w in enumerate(wrt_list)]
    point_vars = [as_tensor(p).variable for p in points]
    for w, p in zip(wrt_vars, point_vars):
        if p.ndim != w.ndim:
            raise ValueError(f"tc.Rop: an eval point of type {p.type.short()} for a wrt of type {w.type.short()}")
    return _wrap(_rop(outs, wrt_vars, point_vars, "tc.Rop"), single)


def _jacobian_vars(expr, wrt_vars, consider_constant, disconnected_inputs, what):
    if expr.ndim == 0:
        return backward([(expr, _one(expr))], wrt_vars, consider_constant, disconnected_inputs, what)
    u = Variable(expr.type.with_weak(False), name="cotangent")
    grads = backward([(expr, u)], wrt_vars, consider_constant, disconnected_inputs, what)
    inputs = [v for v in leaves([expr] + wrt_vars + grads) if not isinstance(v, Constant) and v is not u]
    inner = InnerVJP(Program(inputs, [expr] + wrt_vars, name="jacobian (forward)"),
                     Program(inputs + [u], grads, name="jacobian (vjp)"))
    outs = OPS["jacobian"](*inputs, inner=inner)
    return list(outs) if isinstance(outs, tuple) else [outs]


def jacobian(expression, wrt=None, consider_constant=None, disconnected_inputs="raise", *, argnums=0):
    """The Jacobian of `expression` with respect to `wrt`, of shape ``expression.shape + wrt.shape``.

    Theano form ``tc.jacobian(expr, wrt)`` on symbolic values (a list `wrt`
    gives a list); functional form ``tc.jacobian(fn, argnums=0)`` returns a
    function. It takes one reverse pass per element of the expression.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x = tc.dvector('x')
    >>> J = tc.jacobian(x ** 2, x)
    >>> tc.function([x], J)([1., 2.])
    array([[2., 0.],
           [0., 4.]])
    """
    if callable(expression) and not isinstance(expression, Tensor):
        return _functional("jacobian", expression, argnums if wrt is None else wrt)
    single, wrt_list = _listify(wrt)
    e = _var(expression, "tc.jacobian: expression")
    wrt_vars = [_var(w, f"tc.jacobian: wrt[{i}]") for i, w in enumerate(wrt_list)]
    const = [_var(v, "tc.jacobian: consider_constant item") for v in (consider_constant or [])]
    with numpy_patched():
        return _wrap(_jacobian_vars(e, wrt_vars, const, disconnected_inputs, "tc.jacobian"), single)


def hessian(cost, wrt=None, consider_constant=None, disconnected_inputs="raise", *, argnums=0):
    """The Hessian of a scalar `cost` with respect to `wrt` (shape ``wrt.shape * 2``).

    Theano form on symbolic values (a list `wrt` gives one Hessian per
    variable, as in Theano); functional form ``tc.hessian(fn, argnums=0)``.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x = tc.dvector('x')
    >>> H = tc.hessian(np.sum(x ** 3), x)
    >>> tc.function([x], H)([1., 2.])
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    if callable(cost) and not isinstance(cost, Tensor):
        return _functional("hessian", cost, argnums if wrt is None else wrt)
    single, wrt_list = _listify(wrt)
    out = []
    for i, w in enumerate(wrt_list):
        g = _symbolic_grad(cost, w, consider_constant, disconnected_inputs)
        out.append(jacobian(g, w, consider_constant, disconnected_inputs="ignore"))
    return out[0] if single else out


def stop_gradient(x):
    """`x`, through which no gradient flows (its derivative is taken as zero).

    Works on traced values and on nested tuples/lists/dicts of them; NumPy
    values are returned unchanged.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> f = tc.grad(lambda x: np.sum(x * tc.stop_gradient(x)))
    >>> f(np.array([1., 2.]))
    array([1., 2.])
    """
    leaves_, treedef = flatten(x)
    out = [Tensor(OPS["stop_gradient"](leaf.variable)) if isinstance(leaf, Tensor) else leaf
           for leaf in leaves_]
    return unflatten(treedef, out)


# -- functional form ---------------------------------------------------------------------------
def _converted(fn):
    """`fn` with its Python loops and ifs on traced values captured (as tc.compile does)."""
    from .trace.loops import convert
    return convert(fn)


@contextlib.contextmanager
def _effects_kept_inside():
    """Shared variables changed in place in this block get their values back at its end: a
    differentiated function is pure, so its updates never leak into the enclosing trace."""
    ctx = context.current()
    saved = {sv: state[0] for sv, state in ctx.shared.items()} if ctx is not None else {}
    try:
        yield
    finally:
        for sv, state in (ctx.shared.items() if ctx is not None else ()):
            before = saved.get(sv, sv.leaf)
            if state[0] is not before:
                state[0], state[1] = before, state[1] + 1


def _private(tree):
    """`tree` with its traced arrays replaced by fresh handles: in-place changes stay local."""
    leaves_, treedef = flatten(tree)
    return unflatten(treedef, [Tensor(leaf.variable, mutable=leaf._mutable) if isinstance(leaf, Tensor)
                               else leaf for leaf in leaves_])


def _pure_call(fn, args, kwargs):
    """``fn(*args, **kwargs)``, loops converted, without side effects on shared variables or arguments."""
    args, kwargs = _private((list(args), kwargs))
    with _effects_kept_inside():
        return _converted(fn)(*args, **kwargs)


class _Traced:
    """`fn` called on fresh variables standing for the differentiated arguments."""

    def __init__(self, fn, args, kwargs, argnums, what):
        self.single_arg = isinstance(argnums, int)
        argnums = (argnums,) if self.single_arg else tuple(argnums)
        args = list(args)
        for a in argnums:
            if not isinstance(a, int) or not -len(args) <= a < len(args):
                raise ValueError(f"{what}: argnums {argnums} out of range for {len(args)} positional argument(s)")
        argnums = tuple(a % len(args) for a in argnums)
        leaves_, self.treedef = flatten([args[a] for a in argnums])
        self.originals = [as_tensor(leaf).variable for leaf in leaves_]
        for v in self.originals:
            if not carries_grad(v):
                raise TypeError(f"{what} requires floating-point inputs for the differentiated "
                                f"arguments (argnums={argnums}), got {v.type.short()}; cast it, e.g. "
                                "x.astype(float), or leave it out of argnums")
        self.fresh = [Variable(v.type, name=v.name) for v in self.originals]
        trees = unflatten(self.treedef, [Tensor(v, mutable=True) for v in self.fresh])
        for a, tree in zip(argnums, trees):
            args[a] = tree
        self.out = _pure_call(fn, args, kwargs)

    def substitute(self, tree):
        """`tree` (of Tensors, Variables and other values) with the fresh variables replaced."""
        leaves_, treedef = flatten(tree)
        pos = [i for i, leaf in enumerate(leaves_) if isinstance(leaf, (Tensor, Variable))]
        vars_ = [leaves_[i].variable if isinstance(leaves_[i], Tensor) else leaves_[i] for i in pos]
        new = clone_replace(vars_, dict(zip(self.fresh, self.originals)))
        for i, v in zip(pos, new):
            leaves_[i] = Tensor(v)
        return unflatten(treedef, leaves_)

    def grad_tree(self, grads):
        trees = unflatten(self.treedef, grads)
        return trees[0] if self.single_arg else tuple(trees)

    def backward(self, seeds, what):
        seeds = _stable_seeds(seeds, list(self.fresh))
        # the fresh variables' types come from the actual arguments: no hidden broadcasting
        return backward(seeds, self.fresh, disconnected_inputs="ignore", what=what, declared_types=False)


def _scalar_output(out, what):
    t = as_tensor(out)
    if t.ndim != 0 or not carries_grad(t.variable):
        raise TypeError(f"{what}: the function must return a floating-point scalar, got "
                        f"{t.type.short()}; use tc.vjp or tc.jacobian for other outputs")
    return t


def _split_aux(out, has_aux, what):
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{what} with has_aux=True: the function must return a pair (output, aux)")
    return out[0], out[1]


def _sym_grad(fn, args, kwargs, argnums, has_aux, with_value, what):
    t = _Traced(fn, args, kwargs, argnums, what)
    out, aux = _split_aux(t.out, has_aux, what)
    out = _scalar_output(out, what)
    grads = t.backward([(out.variable, _one(out.variable))], what)
    value, grads, aux = t.substitute((out, grads, aux))
    grads = t.grad_tree(grads)
    if not with_value:
        return (grads, aux) if has_aux else grads
    return ((value, aux) if has_aux else value), grads


def _sym_vjp(fn, primals, cotangents, has_aux, what):
    t = _Traced(fn, primals, {}, tuple(range(len(primals))), what)
    out, aux = _split_aux(t.out, has_aux, what)
    out_leaves, out_def = flatten(out)
    ct_leaves, ct_def = flatten(cotangents)
    if out_def != ct_def:
        raise ValueError(f"{what}: the cotangent's structure does not match the function's output")
    seeds = [(as_tensor(o).variable, as_tensor(c).variable) for o, c in zip(out_leaves, ct_leaves)
             if isinstance(o, Tensor)]
    grads = t.backward(seeds, what)
    out, grads, aux = t.substitute((out, grads, aux))
    return out, tuple(unflatten(t.treedef, grads)), aux


def _sym_jvp(fn, primals, tangents, what):
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"{what}: {len(primals)} primals but {len(tangents)} tangents")
    t = _Traced(fn, primals, {}, tuple(range(len(primals))), what)
    out_leaves, out_def = flatten(t.out)
    tan_leaves, tan_def = flatten(list(tangents))
    if tan_def != t.treedef:
        raise ValueError(f"{what}: the tangents' structure does not match the primals'")
    outs = [as_tensor(o).variable for o in out_leaves]
    tangent_out = _rop(outs, t.fresh, [as_tensor(v).variable for v in tan_leaves], what)
    out, tangent_out = t.substitute((t.out, [Tensor(v) for v in tangent_out]))
    return out, unflatten(out_def, tangent_out)


def _sym_jacobian(fn, args, kwargs, argnums, what, hessian=False):
    if hessian:
        inner = lambda *a, **k: _sym_grad(fn, a, k, argnums, False, False, what)  # noqa: E731
        return _sym_jacobian(inner, args, kwargs, argnums, what)
    t = _Traced(fn, args, kwargs, argnums, what)
    out = as_tensor(t.out)
    with numpy_patched():
        jacs = _jacobian_vars(out.variable, t.fresh, [], "ignore", what)
    return t.grad_tree(t.substitute([Tensor(j) for j in jacs]))


def _symbolic_call(args, kwargs):
    """Are we building a graph (inside a trace, or given traced values)?"""
    if context.current() is not None:
        return True
    leaves_, _ = flatten((args, kwargs))
    return any(isinstance(leaf, Tensor) for leaf in leaves_)


def _owned(tree):
    """Results handed to the caller: writable arrays they own."""
    leaves_, treedef = flatten(tree)
    return unflatten(treedef, [leaf.copy() if isinstance(leaf, np.ndarray) and not leaf.flags.writeable
                               else leaf for leaf in leaves_])


_COMPILED = weakref.WeakKeyDictionary()  # fn -> {(kind, argnums, has_aux): CompiledFunction}


def _compiled(fn, key, build):
    """One CompiledFunction per (function, transformation, mode), so repeated calls never retrace."""
    key = key + (str(config.mode),)
    try:
        table = _COMPILED.setdefault(fn, {})
    except TypeError:  # not weak-referenceable: no cache
        table = {}
    if key not in table:
        table[key] = build()
    return table[key]


def _name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _functional(kind, fn, argnums=0, has_aux=False):
    what = f"tc.{kind}({_name(fn)})"
    if isinstance(argnums, list):
        argnums = tuple(argnums)

    def symbolic(*args, **kwargs):
        if kind == "grad":
            return _sym_grad(fn, args, kwargs, argnums, has_aux, False, what)
        if kind == "value_and_grad":
            return _sym_grad(fn, args, kwargs, argnums, has_aux, True, what)
        return _sym_jacobian(fn, args, kwargs, argnums, what, hessian=kind == "hessian")

    @functools.wraps(fn)
    def transformed(*args, **kwargs):
        if _symbolic_call(args, kwargs):
            return symbolic(*args, **kwargs)
        compiled = _compiled(fn, (kind, argnums, has_aux),
                             lambda: CompiledFunction(symbolic, name=what))
        return _owned(compiled(*args, **kwargs))

    transformed.__name__ = f"{kind}_{_name(fn)}"
    transformed.__qualname__ = transformed.__name__
    return transformed


def grad(cost, wrt=None, consider_constant=None, disconnected_inputs="raise", known_grads=None,
         *, argnums=0, has_aux=False):
    """Gradient, in Theano's form on symbolic values or JAX's form on a function.

    Theano form: ``tc.grad(cost, wrt)`` returns the symbolic gradient of the
    scalar `cost` with respect to `wrt` (a variable, a shared variable, or a
    list, which gives a list).

    Functional form: ``tc.grad(fn, argnums=0, has_aux=False)`` returns a
    function computing the gradient of the scalar result of `fn` with respect
    to its arguments `argnums` (an int, or a tuple giving a tuple); arguments
    may be nested dicts/lists/tuples of arrays. Python loops and ifs on traced
    values in `fn` are converted as in ``tc.compile``. `fn` is treated as pure,
    as in ``jax.grad``: an in-place change it makes to a shared variable or an
    argument (``W[...] = ...``) is seen by the code after it and differentiated,
    but not applied; return the new value (``has_aux=True``) to apply it yourself.

    Parameters
    ----------
    cost : scalar symbolic value, or a function
    wrt : variable or list of variables (Theano form); in the functional form,
        a second positional argument is taken as `argnums`
    consider_constant : list of variables
        No gradient flows past them.
    disconnected_inputs : {'raise', 'warn', 'ignore'}
        What to do when `cost` does not depend on a variable of `wrt` (its
        gradient is then zero).
    known_grads : dict
        Gradients of some variables, used as extra seeds (the cost may be None).

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> x = tc.dscalar('x')
    >>> gx = tc.grad(x ** 3, x)
    >>> tc.function([x], gx)(2.0)
    np.float64(12.0)
    >>> tc.grad(lambda x: np.sum(np.sin(x)))(np.zeros(2))
    array([1., 1.])
    """
    if callable(cost) and not isinstance(cost, Tensor):
        return _functional("grad", cost, argnums if wrt is None else wrt, has_aux)
    if wrt is None:
        raise TypeError("tc.grad(cost, wrt): wrt is missing")
    return _symbolic_grad(cost, wrt, consider_constant, disconnected_inputs, known_grads)


def value_and_grad(fn, argnums=0, has_aux=False):
    """A function returning ``(fn(*args), grad)`` (``((value, aux), grad)`` with `has_aux`).

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> value, g = tc.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1., 2.]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    return _functional("value_and_grad", fn, argnums, has_aux)


def vjp(fn, *primals, has_aux=False):
    """``(fn(*primals), vjp_fn)``, where ``vjp_fn(cotangent)`` is the tuple of
    cotangent-times-Jacobian products, one per primal (``(out, vjp_fn, aux)``
    with `has_aux`).

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> out, f_vjp = tc.vjp(lambda x: x ** 2, np.array([1., 2.]))
    >>> f_vjp(np.ones(2))
    (array([2., 4.]),)
    """
    what = f"tc.vjp({_name(fn)})"
    if _symbolic_call(primals, {}):
        traced = _Traced(fn, primals, {}, tuple(range(len(primals))), what)
        out, aux = _split_aux(traced.out, has_aux, what)

        def vjp_fn(cotangent):
            out_leaves, out_def = flatten(out)
            ct_leaves, ct_def = flatten(cotangent)
            if out_def != ct_def:
                raise ValueError(f"{what}: the cotangent's structure does not match the function's output")
            seeds = [(o.variable, as_tensor(c).variable) for o, c in zip(out_leaves, ct_leaves)
                     if isinstance(o, Tensor)]
            grads = traced.substitute(traced.backward(seeds, what))
            return tuple(unflatten(traced.treedef, grads))

        out, aux = traced.substitute((out, aux))
        return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)

    forward = _compiled(fn, ("forward",), lambda: CompiledFunction(
        lambda *p: _pure_call(fn, p, {}), name=_name(fn)))
    result = _owned(forward(*primals))
    out, aux = _split_aux(result, has_aux, what)
    backward_fn = _compiled(fn, ("vjp", has_aux), lambda: CompiledFunction(
        lambda p, c: _sym_vjp(fn, p, c, has_aux, what)[1], name=what))

    def vjp_fn(cotangent):
        return _owned(backward_fn(tuple(primals), cotangent))

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jvp(fn, primals, tangents):
    """``(fn(*primals), J @ tangents)``: a Jacobian-vector product (forward mode).

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> out, t = tc.jvp(np.sin, (np.zeros(2),), (np.array([1., 2.]),))
    >>> t
    array([1., 2.])
    """
    what = f"tc.jvp({_name(fn)})"
    if _symbolic_call(primals, {}) or _symbolic_call(tangents, {}):
        return _sym_jvp(fn, primals, tangents, what)
    compiled = _compiled(fn, ("jvp",), lambda: CompiledFunction(
        lambda p, t: _sym_jvp(fn, p, t, what), name=what))
    return _owned(compiled(tuple(primals), tuple(tangents)))


# -- checking gradients numerically -----------------------------------------------------------
class GradientError(AssertionError):
    """The gradient disagrees with central finite differences (raised by `verify_grad`)."""


def verify_grad(fn, args, n_tests=2, rng=None, eps=1e-6, abs_tol=1e-7, rel_tol=1e-5, mode=None):
    """Check the gradient of `fn` at `args` against central finite differences in float64.

    The (possibly array-valued) result of `fn` is reduced to a scalar by a
    random projection; for each floating-point argument and each of `n_tests`
    random directions `d`, ``(cost(x + eps d) - cost(x - eps d)) / (2 eps)`` is
    compared with ``<grad cost(x), d>``. Floating-point arguments are converted
    to float64; others (indices) are passed unchanged and not differentiated.
    `fn` is evaluated as a pure function (see `grad`): its in-place changes to
    shared variables and arguments are not applied, so every evaluation sees
    the same state.

    Raises
    ------
    GradientError
        Naming the argument, the numeric and analytic values and the tolerance.

    Examples
    --------
    >>> import numpy as np, tracec as tc
    >>> tc.verify_grad(lambda x, y: np.tanh(x) * y, [np.ones(3), np.arange(3.0)])
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    args = [np.asarray(a) for a in args]
    args = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in args]
    diff = tuple(i for i, a in enumerate(args) if a.dtype.kind == "f")
    if not diff:
        raise ValueError("verify_grad: no floating-point argument to differentiate")
    name = _name(fn)
    out = CompiledFunction(lambda *xs: _pure_call(fn, xs, {}), mode=mode, name=name)(*args)
    out_leaves, _ = flatten(out)
    projections = [rng.standard_normal(np.shape(o)) if np.asarray(o).dtype.kind == "f" else None
                   for o in out_leaves]
    if all(p is None for p in projections):
        raise ValueError(f"verify_grad: {name} has no floating-point output")

    def cost(*xs):
        total = 0.0
        for o, r in zip(flatten(_pure_call(fn, xs, {}))[0], projections):
            if r is not None:
                total = total + np.sum(o * r)
        return total

    cost_fn = CompiledFunction(cost, mode=mode, name=f"projected {name}")
    analytic = CompiledFunction(lambda *xs: _sym_grad(cost, xs, {}, diff, False, False, "verify_grad"),
                                mode=mode, name=f"gradient of {name}")(*args)
    for _ in range(n_tests):
        for i, g in zip(diff, analytic):
            d = rng.standard_normal(args[i].shape)
            shifted = lambda s: cost_fn(*[a + s * d if j == i else a for j, a in enumerate(args)])  # noqa: E731
            numeric = (float(shifted(eps)) - float(shifted(-eps))) / (2 * eps)
            exact = float(np.sum(np.asarray(g) * d))
            tol = abs_tol + rel_tol * max(abs(numeric), abs(exact))
            if not abs(numeric - exact) <= tol:
                raise GradientError(
                    f"verify_grad: the gradient of {name} with respect to argument {i} (shape "
                    f"{args[i].shape}) disagrees with finite differences along a random direction: "
                    f"analytic {exact!r}, numeric {numeric!r}, difference {abs(numeric - exact):.3g} "
                    f"> tolerance {tol:.3g} (abs_tol={abs_tol}, rel_tol={rel_tol}, eps={eps})")
