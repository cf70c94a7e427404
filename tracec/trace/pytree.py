"""Nested tuples, lists and dicts of leaves: flatten to a list and back.

The tree definition is hashable, so it can be part of a signature key. Dict
keys are sorted, as JAX does, so equal dicts give equal definitions.
"""


class Static:
    """A value carried in the tree definition instead of as a leaf (static arguments)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def flatten(tree):
    """(leaves, treedef) of a nested structure."""
    leaves = []

    def walk(node):
        if isinstance(node, Static):
            return ("static", node.value)
        if node is None:
            return ("none",)
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return ("namedtuple", type(node), tuple(walk(c) for c in node))
        if isinstance(node, (tuple, list)):
            return (type(node).__name__, tuple(walk(c) for c in node))
        if isinstance(node, dict):
            keys = sorted(node, key=repr)
            return ("dict", tuple(keys), tuple(walk(node[k]) for k in keys))
        leaves.append(node)
        return ("leaf",)

    return leaves, walk(tree)


def unflatten(treedef, leaves):
    """Inverse of `flatten`."""
    it = iter(leaves)

    def build(d):
        kind = d[0]
        if kind == "leaf":
            return next(it)
        if kind == "none":
            return None
        if kind == "static":
            return d[1]
        if kind == "namedtuple":
            return d[1](*[build(c) for c in d[2]])
        if kind == "dict":
            return {k: build(c) for k, c in zip(d[1], d[2])}
        children = [build(c) for c in d[1]]
        return tuple(children) if kind == "tuple" else children

    return build(treedef)


def leaf_paths(treedef, root="args"):
    """Readable names of the leaves, e.g. ``x`` or ``params['W']``, in flatten order."""
    paths = []

    def walk(d, path):
        kind = d[0]
        if kind == "leaf":
            paths.append(path)
        elif kind in ("tuple", "list", "namedtuple"):
            for i, c in enumerate(d[-1]):
                walk(c, f"{path}[{i}]")
        elif kind == "dict":
            for k, c in zip(d[1], d[2]):
                walk(c, f"{path}[{k!r}]")

    walk(treedef, root)
    return paths
