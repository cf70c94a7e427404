"""The AST conversion `tc.compile` applies before tracing.

Each `for`/`while`/`if` whose body a function can express becomes a call into
runtime.py with the body as a nested function from the loop state to the new
state; the runtime runs it as Python when the bounds or condition are concrete
and as one scan/ifelse when they are traced. `break`/`continue` become flags
first (``if c: break`` -> ``if c: _tc_brk = True`` and the rest of the step
guarded by ``if _tc_.no_jump(_tc_brk):``). Loops and ifs containing `return`,
`yield`, `global`, `nonlocal` or `del` stay Python; their iterable or condition
is wrapped so a traced one raises an error that says what to write instead.

``tc.converted_source(fn)`` shows the result.
"""
import ast
import builtins
import copy
import inspect
import io
import linecache
import os
import sysconfig
import textwrap
import types
import warnings
import weakref

import astunparse
import numpy as np

from . import analysis, runtime

RT = "_tc_"  # the name converted code uses for runtime.py
_SKIP_CALL_ROOTS = {"np", "numpy", "tc", "tracec", "math", "jnp", "scipy", "sp", RT}
_BUILTIN_NAMES = set(dir(builtins))
_ITERABLE_BUILTINS = {"range", "enumerate", "zip"}


class _Unparser(astunparse.Unparser):
    """astunparse, also writing ``B[1:-1, 2:]`` (a tuple of slices, Python >= 3.9) correctly."""

    def _Subscript(self, t):
        if isinstance(t.slice, ast.Tuple) and any(isinstance(e, ast.Slice) for e in t.slice.elts):
            self.dispatch(t.value)
            self.write("[")
            for i, e in enumerate(t.slice.elts):
                self.write(", " if i else "")
                self.dispatch(e)
            self.write("]")
        else:
            super()._Subscript(t)


def unparse(node):
    """Source text of an AST node."""
    out = io.StringIO()
    _Unparser(node, file=out)
    return out.getvalue()


# -- small AST builders -----------------------------------------------------------------------
def _name(id_, store=False):
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def _rt(attr):
    return ast.Attribute(value=_name(RT), attr=attr, ctx=ast.Load())


def _call(func, args=(), keywords=()):
    return ast.Call(func=func, args=list(args), keywords=list(keywords))


def _const(value):
    return ast.Constant(value=value)


def _tuple(elts, store=False):
    return ast.Tuple(elts=list(elts), ctx=ast.Store() if store else ast.Load())


def _lambda(body):
    args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                         kwarg=None, defaults=[])
    return ast.Lambda(args=args, body=body)


def _def(name, params, body):
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params], vararg=None,
                         kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    return ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None)


def _assign(name, value):
    return ast.Assign(targets=[_name(name, store=True)], value=value, type_comment=None)


def _located(nodes, origin):
    for n in nodes:
        ast.copy_location(n, origin)
        for sub in ast.walk(n):
            if not hasattr(sub, "lineno") and "lineno" in sub._attributes:
                ast.copy_location(sub, origin)
    return nodes


# -- what cannot go into a loop/branch function -----------------------------------------------
def _own_jumps(stmts):
    """break/continue statements in `stmts` that belong to the enclosing loop."""
    todo = list(stmts)
    while todo:
        s = todo.pop()
        if isinstance(s, (ast.Break, ast.Continue)):
            yield s
        elif isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
            todo.extend(s.orelse)  # a nested loop's else belongs to us
        elif not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for child in ast.iter_child_nodes(s):
                if isinstance(child, ast.stmt):
                    todo.append(child)
                elif isinstance(child, (ast.excepthandler,)) or type(child).__name__ == "match_case":
                    todo.extend(child.body)


def _blockers(stmts, jumps_block):
    """(line, description) of statements a body function cannot express."""
    found = []
    for s in stmts:
        for n in analysis.walk_scope(s):
            if isinstance(n, ast.Return):
                found.append((n.lineno, "`return`"))
            elif isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)):
                found.append((n.lineno, f"`{type(n).__name__.lower()}`"))
            elif isinstance(n, (ast.Global, ast.Nonlocal)):
                found.append((n.lineno, f"`{type(n).__name__.lower()}`"))
            elif isinstance(n, ast.Delete):
                found.append((n.lineno, "`del`"))
    if jumps_block:
        found += [(j.lineno, f"`{type(j).__name__.lower()}`") for j in _own_jumps(stmts)]
    return sorted(found)


def _container_changes(stmts, raises=False):
    """(line, source) of calls like ys.append(y) that a traced loop or branch cannot repeat
    (and, for the branches of an if, of `raise` statements)."""
    found = []
    for s in stmts:
        for n in analysis.walk_scope(s):
            if raises and isinstance(n, ast.Raise):
                found.append((n.lineno, "raise"))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and \
                    n.func.attr in runtime._CONTAINER_CHANGERS:
                text = unparse(n).strip()
                found.append((n.lineno, text if len(text) < 60 else text[:57] + "..."))
    return tuple(sorted(found))


def _why(blockers, kind):
    line, what = blockers[0]
    if what == "`return`":
        fix = ("assign the result to a variable (and `break` out of a loop), then return it "
               "after the " + kind + ("" if kind == "loop" else ", or compute it with np.where(cond, a, b)"))
    elif what in ("`break`", "`continue`"):
        fix = "turn the enclosing loop into one tracec can convert (no `return` in it), or use np.where"
    elif what.startswith("`yield"):
        fix = "collect the values in an array instead of yielding them"
    else:
        fix = f"move the {what} statement out of the {kind}"
    return (f"the {kind} contains {what} (line {line}), which tracec cannot capture in a "
            f"{'scan' if kind == 'loop' else 'traced if'}: {fix}")


# -- the converter -----------------------------------------------------------------------------
class FunctionConverter:
    """Rewrites one function definition (and the functions nested in it) in place."""

    def __init__(self):
        self.used_names = set()

    def fresh(self, kind, node):
        base = f"_tc_{kind}_{node.lineno}"
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def convert_function(self, fdef):
        fdef.body = self.lower_jumps(fdef.body)
        analysis.annotate(fdef)
        saved = getattr(self, "locals", set())
        self.locals, _ = analysis.local_names(fdef)
        fdef.body = self.block(fdef.body)
        self.locals = saved
        return fdef

    # break/continue -> flags ------------------------------------------------------------------
    def lower_jumps(self, stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.For, ast.While)) and not _blockers(s.body, jumps_block=False):
                out.extend(self.lower_loop(s))
                continue
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(s, field, None), list) and \
                        not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    setattr(s, field, self.lower_jumps(getattr(s, field)))
            for h in getattr(s, "handlers", []):
                h.body = self.lower_jumps(h.body)
            out.append(s)
        return out

    def lower_loop(self, loop):
        jumps = list(_own_jumps(loop.body))
        brk = self.fresh("brk", loop) if any(isinstance(j, ast.Break) for j in jumps) else None
        cont = self.fresh("cont", loop) if any(isinstance(j, ast.Continue) for j in jumps) else None
        body = self.guard(loop.body, brk, cont)
        if cont:
            body = _located([_assign(cont, _const(False))], loop.body[0]) + body
        loop.body = self.lower_jumps(body)
        loop._tc_break = brk
        before = _located([_assign(brk, _const(False))], loop) if brk else []
        after = []
        if loop.orelse:
            orelse = self.lower_jumps(loop.orelse)
            after = _located([ast.If(test=ast.UnaryOp(op=ast.Not(), operand=_name(brk)),
                                     body=orelse, orelse=[])], loop.orelse[0]) if brk else orelse
            loop.orelse = []
        return before + [loop] + after

    def guard(self, stmts, brk, cont):
        """`stmts` with this loop's jumps turned into flag assignments and what follows
        a possible jump guarded by ``if _tc_.no_jump(flags):``."""
        out = []
        for i, s in enumerate(stmts):
            if isinstance(s, (ast.Break, ast.Continue)):
                flag = brk if isinstance(s, ast.Break) else cont
                out.extend(_located([_assign(flag, _const(True))], s))
                return out
            jumps = list(_own_jumps([s]))
            if not jumps:
                out.append(s)
                continue
            self.guard_inside(s, brk, cont)
            out.append(s)
            rest = stmts[i + 1:]
            if rest:
                flags = [f for f, kind in ((brk, ast.Break), (cont, ast.Continue))
                         if f and any(isinstance(j, kind) for j in jumps)]
                test = _call(_rt("no_jump"), [_name(f) for f in flags])
                out.extend(_located([ast.If(test=test, body=self.guard(rest, brk, cont),
                                            orelse=[])], rest[0]))
            return out
        return out

    def guard_inside(self, s, brk, cont):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(s, field, None)
            if isinstance(block, list) and not isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
                setattr(s, field, self.guard(block, brk, cont) if block else block)
        if isinstance(s, (ast.For, ast.AsyncFor, ast.While)) and s.orelse:
            s.orelse = self.guard(s.orelse, brk, cont)
        for h in getattr(s, "handlers", []):
            h.body = self.guard(h.body, brk, cont)
        for c in getattr(s, "cases", []):
            c.body = self.guard(c.body, brk, cont)

    # statements -------------------------------------------------------------------------------
    def block(self, stmts):
        out = []
        for s in stmts:
            out.extend(self.stmt(s))
        return out

    def stmt(self, s):
        if isinstance(s, ast.FunctionDef):
            return [self.convert_function(s)]
        if isinstance(s, (ast.AsyncFunctionDef, ast.ClassDef)):
            return [s]
        if isinstance(s, ast.If):
            return self.if_stmt(s)
        if isinstance(s, ast.For):
            return self.for_stmt(s)
        if isinstance(s, ast.While):
            return self.while_stmt(s)
        blocks = {}
        for field in ("body", "orelse", "finalbody", "handlers"):
            value = getattr(s, field, None)
            if isinstance(value, list) and value:
                blocks[field] = value
                setattr(s, field, [])
        s = ExpressionConverter(self.locals).visit(s)
        for field, value in blocks.items():
            if field == "handlers":
                for h in value:
                    h.body = self.block(h.body) or [ast.Pass()]
            else:
                value = self.block(value) or ([ast.Pass()] if field == "body" else [])
            setattr(s, field, value)
        return [s]

    def test(self, expr):
        return ExpressionConverter(self.locals).visit(convert_test(expr))

    def init_value(self, name, stmt):
        if name in self.locals and name not in getattr(stmt, "_tc_defined", set()):
            return _call(_rt("ld"), [_call(_name("locals")), _const(name)])
        return _name(name)

    def state_call(self, stmt, call, names, n_rebound):
        """``(rebound,) = call`` plus, for names maybe unbound before, a del when still unbound."""
        rebound = names[:n_rebound]
        if rebound:
            out = [ast.Assign(targets=[_tuple([_name(n, True) for n in rebound], store=True)],
                              value=call, type_comment=None)]
        else:
            out = [ast.Expr(value=call)]
        for n in rebound:
            if n in self.locals and n not in getattr(stmt, "_tc_defined", set()):
                test = ast.Compare(left=_name(n), ops=[ast.Is()], comparators=[_rt("UNDEFINED")])
                out.append(ast.If(test=test, body=[ast.Delete(targets=[ast.Name(id=n, ctx=ast.Del())])], orelse=[]))
        return out

    def state_args(self, stmt, names, n_rebound, line):
        return [_tuple([self.init_value(n, stmt) for n in names]), _tuple([_const(n) for n in names]),
                _const(n_rebound)]

    def if_stmt(self, s):
        blockers = _blockers(s.body + s.orelse, jumps_block=True)
        if blockers:
            s.test = _call(_rt("py_cond"), [self.test(s.test), _const(s.lineno), _const(_why(blockers, "if"))])
            s.body = self.block(s.body) or [ast.Pass()]
            s.orelse = self.block(s.orelse)
            return [s]
        bound = analysis.binds(ast.Module(body=s.body + s.orelse, type_ignores=[]))
        rebound = sorted(bound & (s._tc_live_out | s._tc_live_in))
        changed = analysis.mutates(ast.Module(body=s.body + s.orelse, type_ignores=[]))
        names = rebound + sorted(changed - bound - set(rebound))
        ret = ast.Return(value=_tuple([_name(n) for n in names]))
        then_name, else_name = self.fresh("then", s), self.fresh("else", s)
        then_fn = _def(then_name, names, self.block(s.body) + [ret])
        else_fn = _def(else_name, names, self.block(s.orelse) + [ret])
        call = _call(_rt("if_stmt"), [self.test(s.test), _name(then_name), _name(else_name)]
                     + self.state_args(s, names, len(rebound), s.lineno)
                     + [_const(s.lineno), _const(_container_changes(s.body + s.orelse, raises=True))])
        return _located([then_fn, else_fn] + self.state_call(s, call, names, len(rebound)), s)

    def loop_state(self, s, extra_bound=(), extra_live=()):
        bound = analysis.binds(ast.Module(body=s.body, type_ignores=[])) | set(extra_bound)
        brk = getattr(s, "_tc_break", None)
        live = s._tc_live_in | s._tc_live_out | set(extra_live) | ({brk} if brk else set())
        rebound = sorted(bound & live)
        changed = analysis.mutates(ast.Module(body=s.body, type_ignores=[]))
        names = rebound + sorted(changed - bound - set(rebound))
        return names, len(rebound), (names.index(brk) if brk else None)

    def for_stmt(self, s):
        it = self.iterable(s.iter, s.lineno)
        blockers = _blockers(s.body, jumps_block=True) or \
            ([(s.lineno, "`else` after a loop with `break`")] if s.orelse else [])
        if blockers:
            s.iter = _call(_rt("py_iter"), [it, _const(s.lineno), _const(_why(blockers, "loop"))])
            s.body = self.block(s.body) or [ast.Pass()]
            s.orelse = self.block(s.orelse)
            return [s]
        names, n_rebound, brk = self.loop_state(s, extra_bound=analysis.binds(s.target))
        body_name = self.fresh("for", s)
        item = "_tc_item"
        body = [ast.Assign(targets=[s.target], value=_name(item), type_comment=None)]
        body += self.block(s.body) + [ast.Return(value=_tuple([_name(n) for n in names]))]
        fn = _def(body_name, [item] + names, _located(body[:1], s) + body[1:])
        call = _call(_rt("for_stmt"), [it, _name(body_name)] + self.state_args(s, names, n_rebound, s.lineno)
                     + [_const(brk), _const(s.lineno), _const(_container_changes(s.body))])
        return _located([fn] + self.state_call(s, call, names, n_rebound), s)

    def while_stmt(self, s):
        blockers = _blockers(s.body, jumps_block=True) or \
            ([(s.lineno, "`else` after a loop with `break`")] if s.orelse else [])
        if blockers:
            s.test = _call(_rt("py_cond"), [self.test(s.test), _const(s.lineno), _const(_why(blockers, "loop"))])
            s.body = self.block(s.body) or [ast.Pass()]
            s.orelse = self.block(s.orelse)
            return [s]
        names, n_rebound, brk = self.loop_state(s, extra_live=analysis.reads(s.test))
        test_name, body_name = self.fresh("test", s), self.fresh("while", s)
        test_fn = _def(test_name, names, [ast.Return(value=self.test(s.test))])
        body_fn = _def(body_name, names, self.block(s.body)
                       + [ast.Return(value=_tuple([_name(n) for n in names]))])
        call = _call(_rt("while_stmt"), [_name(test_name), _name(body_name)]
                     + self.state_args(s, names, n_rebound, s.lineno)
                     + [_const(brk), _const(s.lineno), _const(_container_changes(s.body))])
        return _located([test_fn, body_fn] + self.state_call(s, call, names, n_rebound), s)

    def iterable(self, expr, line):
        expr = ExpressionConverter(self.locals).visit(expr)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and \
                expr.func.id in _ITERABLE_BUILTINS and not expr.keywords:
            return _call(_rt("iterable"), [expr.func] + expr.args, [ast.keyword(arg="line", value=_const(line))])
        return expr


class ExpressionConverter(ast.NodeTransformer):
    """Calls go through ``_tc_.call`` (so called user functions are converted too) and
    ``a if c else b`` through ``_tc_.if_exp``. Nested functions are left to the
    statement converter."""

    def __init__(self, local_names):
        self.local_names = local_names

    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Call(self, node):
        self.generic_visit(node)
        if self._wrap(node.func):
            node.func = _call(_rt("call"), [node.func])
        return node

    def _wrap(self, func):
        if isinstance(func, ast.Attribute) and func.attr in ("zeros", "ones", "empty", "full"):
            return True  # np.zeros & co. in user code allocate traced buffers (numpy_shape.user_callable)
        if isinstance(func, ast.Name):
            return func.id not in _BUILTIN_NAMES and not func.id.startswith(RT)
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name) or root.id in _SKIP_CALL_ROOTS:
            return False
        return root.id in ("self", "cls") or root.id not in self.local_names

    def visit_IfExp(self, node):
        self.generic_visit(node)
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(node)):
            return node
        return ast.copy_location(_call(_rt("if_exp"), [convert_test(node.test), _lambda(node.body),
                                                       _lambda(node.orelse)]), node)


def convert_test(expr):
    """`not`, `and`, `or` and chained comparisons in a condition, made trace-safe."""
    if any(isinstance(n, ast.NamedExpr) for n in ast.walk(expr)):
        return expr
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return ast.copy_location(_call(_rt("not_"), [convert_test(expr.operand)]), expr)
    if isinstance(expr, ast.BoolOp):
        fn = "and_" if isinstance(expr.op, ast.And) else "or_"
        return ast.copy_location(_call(_rt(fn), [_lambda(convert_test(v)) for v in expr.values]), expr)
    if isinstance(expr, ast.Compare) and len(expr.ops) > 1 and \
            all(type(op).__name__ in runtime._COMPARE for op in expr.ops):
        args = [expr.left]
        for op, right in zip(expr.ops, expr.comparators):
            args += [_const(type(op).__name__), _lambda(right)]
        return ast.copy_location(_call(_rt("compare"), args), expr)
    return expr


# -- building converted functions ------------------------------------------------------------
_SKIP_DIRS = tuple(os.path.normpath(p) + os.sep for p in {
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),  # tracec
    os.path.dirname(os.path.abspath(np.__file__)),
    sysconfig.get_paths().get("stdlib", "/nonexistent"),
    sysconfig.get_paths().get("platstdlib", "/nonexistent"),
    sysconfig.get_paths().get("purelib", "/nonexistent"),
    sysconfig.get_paths().get("platlib", "/nonexistent"),
})
_converted = weakref.WeakKeyDictionary()   # original function -> converted (or itself)
_converted_codes = set()                   # code objects made by the conversion
_code_cache = {}                           # original code object -> (new code, source)
_tree_cache = {}                           # (file, first line, text) -> its AST (lambdas are found in it)


def _is_library(filename):
    path = os.path.abspath(filename)
    return path.startswith(_SKIP_DIRS) or os.sep + "site-packages" + os.sep in path or \
        os.sep + "dist-packages" + os.sep in path


def _mark(code):
    _converted_codes.add(code)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _mark(c)


def convert(fn):
    """The converted version of user function `fn` (cached); `fn` itself for library code,
    for functions with nothing to convert, and (with a warning) when the source is unavailable."""
    if not isinstance(fn, types.FunctionType):
        return fn
    try:
        return _converted[fn]
    except KeyError:
        pass
    result = fn
    code = fn.__code__
    if code not in _converted_codes and not _is_library(code.co_filename):
        try:
            result = _build(fn)
        except (OSError, TypeError, SyntaxError) as exc:
            warnings.warn(f"tracec could not read the source of {fn.__qualname__} "
                          f"({code.co_filename}:{code.co_firstlineno}: {exc}); it is traced "
                          f"as-is, so Python loops and ifs on traced values in it are not "
                          f"captured", stacklevel=3)
    _converted[fn] = result
    return result


def _build(fn):
    code = fn.__code__
    if code in _code_cache:
        new_code, source = _code_cache[code]
    else:
        lines, first = inspect.getsourcelines(fn)  # raises when the source is unavailable
        if fn.__name__ == "<lambda>":
            fdef = _lambda_def(code, lines, first)
        else:
            tree = ast.parse(textwrap.dedent("".join(lines)))
            fdef = tree.body[0] if tree.body else None
            if isinstance(fdef, ast.FunctionDef) and fdef.name == fn.__name__:
                ast.increment_lineno(tree, first - 1)
            else:
                fdef = None
        if fdef is None:
            _code_cache[code] = (None, None)
            return fn
        fdef.decorator_list = []
        FunctionConverter().convert_function(fdef)
        source = unparse(fdef).strip() + "\n"
        factory = _def("_tc_factory", [RT] + list(code.co_freevars), [fdef, ast.Return(value=_name(fdef.name))])
        module = ast.Module(body=[_located([factory], fdef)[0]], type_ignores=[])
        ast.fix_missing_locations(module)
        compiled = compile(module, code.co_filename, "exec")
        factory_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
        new_code = next(c for c in factory_code.co_consts
                        if isinstance(c, types.CodeType) and c.co_name == fdef.name)
        _mark(new_code)
        _code_cache[code] = (new_code, source)
    if new_code is None:
        return fn
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    cells[RT] = types.CellType(runtime)
    # a recursive function names itself: inside the factory that name is a closure cell
    self_cell = cells.setdefault(fn.__name__, types.CellType()) if fn.__name__ not in cells else None
    new = types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__,
                             tuple(cells[n] for n in new_code.co_freevars))
    if self_cell is not None:
        self_cell.cell_contents = new
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__, new.__module__, new.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    new.__dict__.update(fn.__dict__)
    new.__tc_source__ = source
    return new


def _source_trees(code, lines, first):
    """(module AST, columns removed from its lines) of the file holding `code`, then of
    the lines inspect found for it (dedented), each when it parses."""
    whole = "".join(linecache.getlines(code.co_filename))
    dedented = textwrap.dedent("".join(lines))
    for text, shift, offset in ((whole, 0, 0), (dedented, len(lines[0]) - len(dedented.splitlines(True)[0]), first - 1)):
        key = (code.co_filename, offset, text)
        if key not in _tree_cache:
            try:
                tree = ast.parse(text)
                ast.increment_lineno(tree, offset)
            except (SyntaxError, ValueError):  # not Python (a markdown page), or a piece of a statement
                tree = None
            if len(_tree_cache) > 32:
                _tree_cache.clear()
            _tree_cache[key] = tree
        if _tree_cache[key] is not None:
            yield _tree_cache[key], shift


def _lambda_def(code, lines, first):
    """``def _tc_lambda(args): return body`` for the lambda of `code`: the innermost lambda
    in its source whose body holds every position of its code; None when none is found."""
    spans = [(a, c, b, d) for a, b, c, d in code.co_positions()
             if None not in (a, b, c, d) and (a, c) != (b, d)]  # (empty spans: bookkeeping)
    if not spans:
        return None
    start, end = min((a, c) for a, c, _, _ in spans), max((b, d) for _, _, b, d in spans)
    for tree, shift in _source_trees(code, lines, first):
        found = [lam for lam in ast.walk(tree) if isinstance(lam, ast.Lambda)
                 and (lam.body.lineno, lam.body.col_offset + shift) <= start
                 and (lam.body.end_lineno, lam.body.end_col_offset + shift) >= end]
        if found:
            lam = min(found, key=lambda n: (n.body.end_lineno - n.body.lineno,
                                            n.body.end_col_offset - n.body.col_offset))
            lam = copy.deepcopy(lam)  # the conversion changes it; the parsed file is kept
            fdef = _def("_tc_lambda", [], [ast.copy_location(ast.Return(value=lam.body), lam.body)])
            fdef.args = lam.args
            return ast.copy_location(fdef, lam)
    return None


def convert_callee(f):
    """What converted code calls instead of `f`: the converted user function, else `f`."""
    from ...function import CompiledFunction
    from ..numpy_shape import user_callable
    f = user_callable(f)  # np.zeros & co. allocate traced buffers when user code calls them
    if isinstance(f, types.FunctionType):
        return convert(f)
    if isinstance(f, types.MethodType) and isinstance(f.__func__, types.FunctionType):
        new = convert(f.__func__)
        return f if new is f.__func__ else types.MethodType(new, f.__self__)
    if isinstance(f, CompiledFunction):
        from ..numpy_api import contains_tensor
        inner = convert(f.fn)

        def inline_or_call(*args, **kwargs):
            if contains_tensor(list(args)) or contains_tensor(list(kwargs.values())):
                return inner(*args, **kwargs)
            return f(*args, **kwargs)
        return inline_or_call
    return f


def converted_source(fn):
    """The source tracec traces for `fn` after capturing its loops and ifs.

    Examples
    --------
    >>> import tracec as tc
    >>> def count(x, n):
    ...     for i in range(n):
    ...         x = x + i
    ...     return x
    >>> print(tc.converted_source(count))  # doctest: +ELLIPSIS
    def count(x, n):
    ...
    """
    from ...function import CompiledFunction
    if isinstance(fn, CompiledFunction):
        fn = fn.fn
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if not isinstance(fn, types.FunctionType):
        raise TypeError(f"tc.converted_source needs a Python function, got {type(fn).__name__}")
    new = convert(fn)
    source = getattr(new, "__tc_source__", None)
    if source is None:
        raise ValueError(f"{fn.__qualname__} has no converted source: its source code is not "
                         f"available (or, for a lambda, could not be told apart from others on "
                         f"its lines), or it belongs to a library")
    return source
