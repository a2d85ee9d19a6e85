"""Constant folding through graph surgeon: If branches are folded with the model's own IR
version (an ONNX Runtime older than the onnx package refuses newer ones), and what the
libraries print goes to stderr, never into a ``--json`` document on stdout."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtops.prepare.fold import fold_constants

SOURCE_IR = 8


def _branch(name: str, scale: float) -> onnx.GraphProto:
    # Add(Constant, Constant) inside the branch is foldable; Mul by the outer input is not.
    a = helper.make_node("Constant", [], [f"{name}_a"], value=numpy_helper.from_array(np.float32([scale]), f"{name}_av"))
    b = helper.make_node("Constant", [], [f"{name}_b"], value=numpy_helper.from_array(np.float32([1.0]), f"{name}_bv"))
    add = helper.make_node("Add", [f"{name}_a", f"{name}_b"], [f"{name}_sum"], name=f"{name}_add")
    mul = helper.make_node("Mul", ["x", f"{name}_sum"], [f"{name}_out"], name=f"{name}_mul")
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [4])
    return helper.make_graph([a, b, add, mul], name, [], [out])


def _model_with_branches() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("If", ["flag"], ["y"], name="branch",
                            then_branch=_branch("then", 2.0), else_branch=_branch("else", 3.0))
    graph = helper.make_graph([node], "g", [x, flag], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = SOURCE_IR
    return model


class _OlderOnnxRuntime:
    """ONNX Runtime as the lab has it (1.23): models of a newer IR version are refused."""

    def __init__(self, real):
        self.real = real

    def __call__(self, model_bytes, *args, **kwargs):
        version = onnx.load_from_string(model_bytes).ir_version
        if version > SOURCE_IR:
            raise RuntimeError(f"Unsupported model IR version: {version}, max supported IR version: {SOURCE_IR}")
        return self.real(model_bytes, *args, **kwargs)


def _add_nodes(model: onnx.ModelProto) -> int:
    branches = [a.g for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
    return sum(1 for g in branches for n in g.node if n.op_type == "Add")


def test_if_branches_fold_with_the_models_ir_version(monkeypatch, capsys):
    monkeypatch.setattr(onnxruntime, "InferenceSession", _OlderOnnxRuntime(onnxruntime.InferenceSession))
    model = _model_with_branches()
    assert _add_nodes(model) == 2
    folded, _ = fold_constants(model)
    assert _add_nodes(folded) == 0, "the constant Adds inside the If branches were not folded"
    assert folded.ir_version == SOURCE_IR
    assert capsys.readouterr().out == ""


def test_what_graph_surgeon_prints_goes_to_stderr(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise RuntimeError("no runtime today")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    fold_constants(_model_with_branches())  # graph surgeon warns and folds nothing
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no runtime today" in captured.err


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
