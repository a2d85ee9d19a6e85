"""The probe model: intermediate float tensors as outputs (trtops.repair.probe)."""

from __future__ import annotations

import math

import onnx
from helpers import make_overflow_model

from trtops.repair.probe import tensor_errors, write_probe_model


def test_marks_the_intermediate_float_tensors(tmp_path):
    source = make_overflow_model(tmp_path / "m.onnx")
    marked = write_probe_model(source, tmp_path / "probe" / "p.onnx")
    assert marked == ["a", "b"]
    outputs = [o.name for o in onnx.load(str(tmp_path / "probe" / "p.onnx")).graph.output]
    assert outputs == ["y", "z", "a", "b"]


def test_tensor_errors_take_the_worst_case():
    class Out:
        def __init__(self, name, excess, nonfinite=0):
            self.name, self.excess, self.nonfinite = name, excess, nonfinite

    class Case:
        def __init__(self, *outputs):
            self.outputs = outputs

    class Report:
        cases = [Case(Out("a", 0.5), Out("b", 2.0)), Case(Out("a", 3.0), Out("b", 1.0, nonfinite=4))]

    assert tensor_errors(Report()) == {"a": 3.0, "b": math.inf}
