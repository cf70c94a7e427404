"""What an op is: one table entry holding everything about it.

Each entry has its NumPy implementation (the reference every backend is
tested against) and its type rule. The slots `grad`, `c_expr` and `cuda_expr`
are filled by the autodiff rules and the code generators, keyed by op name,
so an op never has to be looked for in five places.
"""
import weakref

from ..graph import Node, user_source_loc

OPS = {}  # name -> Op: the op table
KNOWN_SIZES = weakref.WeakKeyDictionary()  # Variable -> its sizes known when tracing (ops/sizes.py)


class Params(dict):
    """Static parameters of a node; hashable so equal nodes can be merged."""

    def __hash__(self):
        return hash(tuple(sorted(self.items())))

    def __setitem__(self, key, value):
        raise TypeError("node parameters are immutable")


def with_context(exc, message):
    """A copy of `exc` (same class when possible) whose text starts with `message`."""
    text = f"{message}: {exc}" if str(exc) else message
    for cls in type(exc).__mro__:  # e.g. NumPy's UFuncTypeError needs extra args: use TypeError
        try:
            return cls(text)
        except Exception:
            continue
    return RuntimeError(text)


class Op:
    """An operation of the IR.

    Parameters
    ----------
    name : str
        Unique name, the key of the op table.
    impl : callable
        ``impl(*input_values, **params)``: the NumPy reference implementation,
        returning one value or, for multi-output ops, a tuple.
    infer : callable
        ``infer(inputs, **params) -> list of TensorType``: the type rule. It
        receives the input Variables (constants carry their values) and raises
        TypeError/ValueError for input it cannot accept.
    kind : str
        Family of the op ('elemwise', 'reduce', 'linalg', 'shape', 'index',
        'create', 'other'), used by the printers, tests and later passes.
    """

    def __init__(self, name, impl, infer, kind="other", doc=""):
        if name in OPS:
            raise ValueError(f"op {name!r} is already in the op table")
        self.name = name
        self.impl = impl
        self.infer = infer
        self.kind = kind
        self.doc = doc
        self.grad = None       # derivative rule: filled by the autodiff issue
        self.shape = None      # symbolic shape rule: filled by the shape-inference pass
        self.sizes = None      # sizes known when tracing, and certain shape errors: ops/sizes.py
        self.c_expr = None     # C rendering: filled by the C backend
        self.cuda_expr = None  # CUDA rendering: filled by the GPU backend
        OPS[name] = self

    def make_node(self, inputs, params=None, loc=None):
        params = params if isinstance(params, Params) else Params(params or {})
        loc = loc or user_source_loc()
        known = None
        try:
            types = self.infer(inputs, **params)
            if self.sizes is not None:
                known = self.sizes(inputs, types, params)  # raises for shape errors certain now
        except (TypeError, ValueError, IndexError, OverflowError, NotImplementedError) as exc:
            raise with_context(exc, f"{self.name} at {loc.describe()}") from None
        node = Node(self, inputs, params, types, loc)
        if known is not None:
            for var, shape in zip(node.outputs, known):
                if shape is not None:
                    KNOWN_SIZES[var] = shape
        return node

    def __call__(self, *inputs, **params):
        """Build a node; return its output variable (or tuple of them)."""
        node = self.make_node(inputs, params)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def perform(self, values, params):
        """Run the NumPy implementation; always returns a list of outputs."""
        out = self.impl(*values, **params)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def __repr__(self):
        return f"<Op {self.name}>"
