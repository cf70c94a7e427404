"""Static facts about a function's statements that the loop converter needs.

- which names a statement reads, binds, or changes in place (``B[i] = v``);
- liveness (backward): the names whose current value may still be read after
  a statement, so a loop carries only what is used later or in its next step;
- definite assignment (forward): the names surely bound before a statement, so
  the converted code knows where a name may still be unbound.

Results are stored on the AST nodes as ``_tc_live_out``, ``_tc_live_in``
(of a loop body or branch) and ``_tc_defined``. All are conservative: when in
doubt a name counts as read (carried) or as possibly unbound.
"""
import ast

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def walk_scope(node):
    """ast.walk that yields nested functions, lambdas and classes but does not enter them."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if n is node or not isinstance(n, _SCOPES):
            todo.extend(ast.iter_child_nodes(n))


def reads(node):
    """Names loaded anywhere in `node`, nested functions included (their free reads)."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            found.add(n.id)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            found.add(n.target.id)
    return found


def _target_names(target, out):
    if isinstance(target, ast.Name):
        out.add(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for e in target.elts:
            _target_names(e, out)
    elif isinstance(target, ast.Starred):
        _target_names(target.value, out)


def binds(node):
    """Names (re)bound by `node` in the current scope, not entering nested scopes."""
    found = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    for n in walk_scope(node):
        if n is not node and isinstance(n, _SCOPES):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            found.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for alias in n.names:
                found.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            found.add(n.name)
    return found


def _store_roots(target, out):
    if isinstance(target, (ast.Tuple, ast.List)):
        for e in target.elts:
            _store_roots(e, out)
    elif isinstance(target, ast.Starred):
        _store_roots(target.value, out)
    elif isinstance(target, (ast.Subscript, ast.Attribute)):
        name = _root_name(target)
        if name:
            out.add(name)


def _root_name(expr):
    while isinstance(expr, (ast.Subscript, ast.Attribute)):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


_MUTATING_METHODS = {"fill", "sort", "resize", "itemset", "put"}


def mutates(node):
    """Names whose object `node` changes in place: ``B[i] = v``, ``B[:] += 1``,
    ``s.x = v``, ``B.fill(0)``, ``np.copyto(B, v)``, ``f(..., out=B)``."""
    found = set()
    for n in walk_scope(node):
        targets = []
        if isinstance(n, ast.Assign):
            targets = n.targets
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
            targets = [n.target]
        elif isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Attribute) and f.attr in _MUTATING_METHODS:
                targets = [ast.Subscript(value=f.value, slice=ast.Constant(0))]
            if isinstance(f, ast.Attribute) and f.attr == "copyto" and n.args:
                targets = [ast.Subscript(value=n.args[0], slice=ast.Constant(0))]
            targets += [ast.Subscript(value=k.value, slice=ast.Constant(0)) for k in n.keywords if k.arg == "out"]
        for t in targets:
            _store_roots(t, found)
    return found


# -- liveness (backward) -------------------------------------------------------------------
class _LoopExits:
    def __init__(self, at_break, at_continue):
        self.at_break, self.at_continue = at_break, at_continue


def live_before(stmts, live_after, loop=None):
    """Names that may be read after the start of `stmts`, given those live after them."""
    live = set(live_after)
    for stmt in reversed(stmts):
        live = _live_stmt(stmt, live, loop)
    return live


def _live_stmt(s, live, loop):
    if isinstance(s, ast.If):
        s._tc_live_out = set(live)
        body_in = live_before(s.body, live, loop)
        else_in = live_before(s.orelse, live, loop)
        s._tc_live_in = body_in | else_in
        return reads(s.test) | body_in | else_in
    if isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
        s._tc_live_out = set(live)
        exit_live = live_before(s.orelse, live, loop)
        is_for = not isinstance(s, ast.While)
        target = binds(s.target) if is_for else set()
        test = set() if is_for else reads(s.test)
        flag = getattr(s, "_tc_break", None)  # a lowered `break`: the loop reads it every step
        test = test | {flag} if flag else test
        head = exit_live | test
        for _ in range(8):  # sets only grow: a fixed point is reached quickly
            body_in = live_before(s.body, head, _LoopExits(live, head))
            new_head = exit_live | test | (body_in - target if is_for else body_in)
            if new_head == head:
                break
            head = new_head
        s._tc_live_in = body_in - target if is_for else body_in
        s._tc_live_head = head
        return (reads(s.iter) if is_for else set()) | head
    if isinstance(s, ast.Break):
        return set(loop.at_break) if loop else set()
    if isinstance(s, ast.Continue):
        return set(loop.at_continue) if loop else set()
    if isinstance(s, (ast.Return, ast.Raise)):
        return reads(s)
    if isinstance(s, (ast.With, ast.AsyncWith)):
        inner = live_before(s.body, live, loop)
        return reads(ast.Module(body=[ast.Expr(i.context_expr) for i in s.items], type_ignores=[])) | inner
    if isinstance(s, ast.Try) or type(s).__name__ in ("TryStar", "Match"):
        parts = set(live)
        for block in ("body", "orelse", "finalbody"):
            parts |= live_before(getattr(s, block, []), live, loop)
        for h in getattr(s, "handlers", []):
            parts |= live_before(h.body, live, loop)
        for c in getattr(s, "cases", []):
            parts |= live_before(c.body, live, loop)
        return parts | reads(getattr(s, "subject", ast.Pass()))
    if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (live - {s.name}) | reads(s)
    # a simple statement: uses happen before the binding
    return (live - binds(s)) | reads(s)


# -- definite assignment (forward) ----------------------------------------------------------
def defined_after(stmts, defined):
    """Names surely bound after `stmts` run normally, given those bound before."""
    defined = set(defined)
    for s in stmts:
        defined = _defined_stmt(s, defined)
    return defined


def _defined_stmt(s, defined):
    s._tc_defined = set(defined)
    if isinstance(s, ast.If):
        return defined_after(s.body, defined) & defined_after(s.orelse, defined)
    if isinstance(s, (ast.For, ast.AsyncFor)):
        defined_after(s.body, defined | binds(s.target))
        defined_after(s.orelse, defined)
        return defined
    if isinstance(s, ast.While):
        defined_after(s.body, defined)
        defined_after(s.orelse, defined)
        return defined
    if isinstance(s, (ast.With, ast.AsyncWith)):
        targets = set()
        for item in s.items:
            if item.optional_vars is not None:
                _target_names(item.optional_vars, targets)
        return defined_after(s.body, defined | targets)
    if isinstance(s, ast.Try):
        defined_after(s.body, defined)
        for h in s.handlers:
            defined_after(h.body, defined)
        defined_after(s.orelse, defined)
        defined_after(s.finalbody, defined)
        return defined
    if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return defined | {s.name}
    if isinstance(s, ast.Delete):
        return defined - binds(s)
    return defined | binds(s)


def local_names(fdef):
    """Names local to the function: parameters and names bound in its body,
    minus those declared global or nonlocal."""
    args = fdef.args
    params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    bound = set()
    declared = set()
    for s in fdef.body:
        bound |= binds(s)
        for n in walk_scope(s):
            if isinstance(n, (ast.Global, ast.Nonlocal)):
                declared |= set(n.names)
    return (params | bound) - declared, params


def annotate(fdef):
    """Attach liveness and definite-assignment facts to the statements of `fdef`."""
    live_before(fdef.body, set())
    _, params = local_names(fdef)
    defined_after(fdef.body, params)
