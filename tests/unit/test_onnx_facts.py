"""onnx_facts: one reader for Q/DQ, external data and graph structure, without weights."""

from __future__ import annotations

import onnx
import pytest
from helpers import make_conv_model, make_qdq_model
from onnx import TensorProto, helper

from trtops.errors import InputError
from trtops.onnx_facts import model_facts, model_has_qdq, read_graph, try_model_has_qdq


def _identity_graph(name, nodes):
    return helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )


def _qdq_nodes(src, dst):
    scale = helper.make_node("Constant", [], [f"{dst}_s"], value=helper.make_tensor(f"{dst}_sv", TensorProto.FLOAT, [], [0.1]))
    return [scale,
            helper.make_node("QuantizeLinear", [src, f"{dst}_s"], [f"{dst}_q"]),
            helper.make_node("DequantizeLinear", [f"{dst}_q", f"{dst}_s"], [dst])]


def test_qdq_in_the_main_graph(tmp_path):
    assert model_has_qdq(make_qdq_model(tmp_path / "q.onnx"))
    assert not model_has_qdq(make_conv_model(tmp_path / "c.onnx"))


def test_qdq_inside_a_function(tmp_path):
    function = helper.make_function("local", "quant", ["a"], ["b"], _qdq_nodes("a", "b"),
                                    [helper.make_opsetid("", 17)])
    graph = _identity_graph("g", [helper.make_node("quant", ["x"], ["y"], domain="local")])
    model = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    path = tmp_path / "f.onnx"
    onnx.save_model(model, str(path))
    assert model_has_qdq(path)
    assert read_graph(path).has_qdq


def test_qdq_inside_a_subgraph(tmp_path):
    then = _identity_graph("then", _qdq_nodes("x", "y"))
    then.ClearField("input")
    other = _identity_graph("else", [helper.make_node("Identity", ["x"], ["y"])])
    other.ClearField("input")
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "if.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert model_has_qdq(path)


def test_external_data_and_structure_without_weights(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True)
    assert model_facts(path).external_data == ("conv.onnx.data",)
    info = read_graph(path)
    assert info.external_data == ("conv.onnx.data",) and not info.has_qdq
    assert list(info.inputs) and info.outputs


def test_unreadable_models(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff\xff not protobuf")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        model_has_qdq(bad)
    assert try_model_has_qdq(bad) is None
    assert try_model_has_qdq(tmp_path / "missing.onnx") is None


def test_import_onnx_facts_stays_light():
    import subprocess
    import sys

    code = "import sys, trtops.onnx_facts, trtops.capabilities; sys.exit('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
