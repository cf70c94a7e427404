"""A Program: what a compiled function computes, before any backend sees it.

Inputs (explicit graph variables, plus the shared variables it reads),
outputs, shared-variable updates and argument write-backs. Every backend
(NumPy interpreter, C, CUDA) runs a Program; the optimizer rewrites one.
"""
from .graph import Constant, leaves


class MissingInputError(ValueError):
    """An output depends on a variable that is not an input of the function."""


class Program:
    def __init__(self, inputs, outputs, updates=(), writebacks=(), name=None):
        self.inputs = list(inputs)          # explicit input Variables, in call order
        self.outputs = list(outputs)        # output Variables
        self.updates = list(updates)        # (SharedVariable, Variable): new storage values
        self.writebacks = list(writebacks)  # (input position, Variable): final values of mutated arguments
        self.name = name or "<function>"
        roots = self.roots()
        input_ids = {id(v) for v in self.inputs}
        self.shared = []  # SharedVariables read, in graph order
        for leaf in leaves(roots, stop=self.inputs):
            if id(leaf) in input_ids or isinstance(leaf, Constant):
                continue
            if leaf.shared is not None:
                self.shared.append(leaf.shared)
            else:
                raise MissingInputError(
                    f"{self.name}: an output depends on {_describe(leaf)}, which is not among the "
                    f"inputs {[v.name or '?' for v in self.inputs]}; add it to the inputs or "
                    f"replace it with givens=")
        self.shared_leaves = [sv.leaf for sv in self.shared]

    def roots(self):
        """Every variable the program must compute."""
        return self.outputs + [v for _, v in self.updates] + [v for _, v in self.writebacks]

    def all_inputs(self):
        """Explicit inputs followed by the shared variables' storage leaves."""
        return self.inputs + self.shared_leaves

    def replace(self, mapping):
        """A copy with variables substituted (used by the optimizer)."""
        get = lambda v: mapping.get(v, v)  # noqa: E731
        return Program(self.inputs, [get(v) for v in self.outputs],
                       [(s, get(v)) for s, v in self.updates],
                       [(i, get(v)) for i, v in self.writebacks], self.name)


def _describe(var):
    name = f"{var.name!r}" if var.name else "an unnamed input"
    return f"the variable {name} of type {var.type.short()}"
