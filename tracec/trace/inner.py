"""Inner graphs: the sub-programs that control-flow ops (scan, ifelse) run.

An inner graph has explicit inner inputs (fresh variables standing for a
step's slices and states) and captures every outer value it reads: outer
variables that do not depend on the inner inputs become extra inputs of the
op's node, so the outer graph stays a DAG and the inner one self-contained.
"""
import contextlib
import threading

from .graph import Constant, toposort
from .program import Program


def captured_values(inner_inputs, outputs, cut=None):
    """Outer variables the inner computation reads, in first-use order.

    With `cut` None (scan), everything that does not depend on the inner
    inputs is computed once outside and captured. With a `cut` list (ifelse,
    which has no inner inputs), the inner graph reaches down to the leaves
    except at the `cut` variables, values the outer graph computes anyway.
    """
    inner_ids = {id(v) for v in inner_inputs}
    captured, seen = [], set()

    def capture(v):
        if id(v) not in seen and not isinstance(v, Constant):
            seen.add(id(v))
            captured.append(v)

    if cut is None:
        dependent = set(inner_ids)
        nodes = toposort(outputs, stop=inner_inputs)
        for node in nodes:
            if any(id(v) in dependent for v in node.inputs):
                dependent.update(id(o) for o in node.outputs)
        for node in nodes:
            if id(node.outputs[0]) in dependent:
                for v in node.inputs:
                    if id(v) not in dependent:
                        capture(v)
        for v in outputs:
            if id(v) not in dependent:
                capture(v)
        return captured
    cut_ids = {id(v) for v in cut}
    for node in toposort(outputs, stop=list(inner_inputs) + list(cut)):
        for v in node.inputs:
            if id(v) not in inner_ids and (v.owner is None or id(v) in cut_ids):
                capture(v)
    for v in outputs:
        if id(v) not in inner_ids and (v.owner is None or id(v) in cut_ids):
            capture(v)
    return captured


_inner_runner = threading.local()


@contextlib.contextmanager
def inner_graphs_run_by(interpreter_class):
    """Inner graphs (scan steps, ifelse branches) run with `interpreter_class` in this block."""
    previous = getattr(_inner_runner, "cls", None)
    _inner_runner.cls = interpreter_class
    try:
        yield
    finally:
        _inner_runner.cls = previous


class InnerGraph:
    """A Program over (inner inputs + captured outer values), with its interpreter."""

    def __init__(self, inner_inputs, outputs, name, cut=None):
        self.inner_inputs = list(inner_inputs)
        self.captured = captured_values(inner_inputs, outputs, cut)
        self.outputs = list(outputs)
        self.program = Program(self.inner_inputs + self.captured, self.outputs, name=name)
        self._interpreter = None

    def run(self, values):
        runner = getattr(_inner_runner, "cls", None)
        if runner is not None:  # e.g. the DEBUG mode checks the nodes of loop bodies too
            cache = self.__dict__.setdefault("_runners", {})
            if runner not in cache:
                cache[runner] = runner(self.program)
            return cache[runner].run(values)
        if self._interpreter is None:
            from .interp import Interpreter
            self._interpreter = Interpreter(self.program)
        return self._interpreter.run(values)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other
