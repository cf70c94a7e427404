"""`python -m tracec ops` says how FAST_RUN runs each op; the NumPy list stays short."""
import tracec as tc
from tracec.__main__ import main
from tracec.cgen.executor import how_op_runs


def test_every_op_has_a_way_to_run_and_the_main_ones_are_native():
    ways = {name: how_op_runs(op) for name, op in tc.OPS.items()}
    assert set(ways.values()) <= {"C kernel", "C reduction", "BLAS", "native loop", "native branch", "view", "copy",
                                 "NumPy"}
    assert ways["exp"] == ways["fused_elemwise"] == "C kernel"
    assert ways["sum"] == "C reduction" and ways["matmul"] == ways["gemm"] == "BLAS"
    assert ways["scan"] == "native loop" and ways["reshape"] == "view"
    computing_in_numpy = [n for n, w in ways.items() if w == "NumPy"]
    assert len(computing_in_numpy) <= 25, computing_in_numpy


def test_the_command_prints_the_numpy_list(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    numpy_line = [line for line in out.splitlines() if line.strip().startswith("NumPy (")]
    assert len(numpy_line) == 1
    listed = numpy_line[0].split(":", 1)[1].split()
    assert sorted(listed) == sorted(n for n, op in tc.OPS.items() if how_op_runs(op) == "NumPy")
