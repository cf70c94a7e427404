"""The NumPy reference interpreter: runs a Program node by node.

It is the FAST_COMPILE backend and the oracle every other backend and every
rewrite is tested against, so it also checks that each node produced the
dtype and rank its type promised.
"""
import numpy as np

from .graph import Constant, toposort
from .ops.base import with_context


class NodeTypeError(AssertionError):
    """An op's implementation disagreed with its own type rule (a tracec bug)."""


def describe_values(values):
    parts = []
    for v in values:
        if isinstance(v, np.ndarray):
            parts.append(f"{v.dtype}{list(v.shape)}")
        else:
            parts.append(f"{type(v).__name__} {v!r}")
    return ", ".join(parts)


def run_node(node, values):
    """Run one node on concrete input values; errors name the op and the user's line."""
    try:
        outs = node.op.perform(values, node.params)
    except (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError,
            FloatingPointError, MemoryError) as exc:
        raise with_context(exc, f"{node.op.name} at {node.loc.describe()} "
                                f"(inputs: {describe_values(values)})") from exc
    for var, out in zip(node.outputs, outs):
        if var.type.weak:
            continue
        if not isinstance(out, np.ndarray) and not isinstance(out, np.generic):
            raise NodeTypeError(f"{node.op.name} returned {type(out).__name__}, not an array")
        if out.dtype != var.dtype or out.ndim != var.ndim:
            raise NodeTypeError(f"{node.op.name} produced {out.dtype} with {out.ndim} dims, its type "
                                f"rule said {var.type.short()} (built at {node.loc})")
    return [o.item() if v.type.weak and isinstance(o, np.generic) else o
            for v, o in zip(node.outputs, outs)]


class Interpreter:
    """Executes a Program with the op table's NumPy implementations."""

    def __init__(self, program):
        self.program = program
        inputs = program.all_inputs()
        roots = program.roots()
        self.nodes = toposort(roots, stop=inputs)
        slot = {}
        for v in inputs:
            slot.setdefault(id(v), len(slot))
        self.n_inputs = len(inputs)
        self.constants = []
        for node in self.nodes:
            for v in node.inputs:
                if isinstance(v, Constant) and id(v) not in slot:
                    slot[id(v)] = len(slot)
                    self.constants.append((slot[id(v)], v.value))
            for v in node.outputs:
                slot[id(v)] = len(slot)
        for v in roots:
            if isinstance(v, Constant) and id(v) not in slot:
                slot[id(v)] = len(slot)
                self.constants.append((slot[id(v)], v.value))
        self.n_slots = len(slot)
        self.root_slots = [slot[id(v)] for v in roots]
        # free each intermediate after its last use, so peak memory stays near NumPy's
        last_use = {}
        for step, node in enumerate(self.nodes):
            for v in node.inputs:
                last_use[slot[id(v)]] = step
        keep = set(self.root_slots)
        frees = [[] for _ in self.nodes]
        for s, step in last_use.items():
            if s not in keep:
                frees[step].append(s)
        self.steps = [(node, [slot[id(v)] for v in node.inputs], [slot[id(v)] for v in node.outputs],
                       frees[step]) for step, node in enumerate(self.nodes)]
        self._input_positions = [slot[id(v)] for v in inputs]

    keep_values = False  # True: no intermediate is freed (`self.store` keeps them all)

    def run(self, input_values):
        """Values of ``program.roots()`` for the values of ``program.all_inputs()``."""
        store = [None] * self.n_slots
        for pos, value in zip(self._input_positions, input_values):
            store[pos] = value
        for pos, value in self.constants:
            store[pos] = value
        run_step, keep = self.run_step, self.keep_values
        for step, (node, ins, outs, frees) in enumerate(self.steps):
            results = run_step(step, node, [store[i] for i in ins])
            for i, r in zip(outs, results):
                store[i] = r
            if not keep:
                for i in frees:
                    store[i] = None
        self.store = store if keep else None
        return [store[i] for i in self.root_slots]

    def run_step(self, step, node, inputs):
        """Run one node; subclasses (DEBUG mode, checks, profiling) hook in here."""
        return run_node(node, inputs)
