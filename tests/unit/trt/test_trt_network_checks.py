"""Profiles against network inputs; parser errors with node names (pure)."""

import onnx
from onnx import TensorProto, helper

from trtops.examples import models as examples
from trtops.onnx_facts import graph_nodes, model_has_qdq, read_graph
from trtops.spec import InputRange
from trtops.trt.network_checks import (
    InputInfo,
    ParserProblem,
    check_profiles,
    parser_error_message,
    resolve_nodes,
)

IMAGE = InputInfo("input", (-1, 3, 32, 32))
SCALE = InputInfo("scale", (-1, 8))


def rng(name, lo, opt, hi):
    return InputRange(name, tuple(lo), tuple(opt), tuple(hi))


def test_good_profiles():
    profiles = [
        (rng("input", [1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]),),
        (rng("input", [9, 3, 32, 32], [16, 3, 32, 32], [32, 3, 32, 32]),),
    ]
    assert check_profiles([IMAGE], profiles) == []
    assert check_profiles([InputInfo("x", (1, 4))], []) == []


def test_missing_profiles_for_dynamic_inputs():
    (problem,) = check_profiles([IMAGE, SCALE], [])
    assert "dynamic inputs" in problem and "input [?, 3, 32, 32]" in problem and "scale [?, 8]" in problem


def test_profile_problems():
    profiles = [(
        rng("input", [1, 3, 32, 32], [4, 3, 64, 32], [8, 3, 64, 32]),
        rng("ghost", [1], [1], [1]),
    ), (
        rng("input", [1, 3, 32], [1, 3, 32], [1, 3, 32]),
        rng("scale", [4, 8], [2, 8], [8, 8]),
    )]
    problems = check_profiles([IMAGE, SCALE], profiles)
    text = "\n".join(problems)
    assert "axis 2 is fixed to 32" in text
    assert "'ghost', which the model does not have" in text
    assert "profile 0 does not give min/opt/max for dynamic input 'scale'" in text
    assert "has rank 3" in text
    assert "needs 1 <= min <= opt <= max, got 4/2/8" in text


def test_shape_tensor_inputs_refused():
    (problem,) = check_profiles([InputInfo("shape", (2,), "int64", is_shape_tensor=True)], [])
    assert "shape tensor" in problem


def test_parser_messages(tmp_path):
    path = tmp_path / "m.onnx"
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"], name="first"),
            helper.make_node("FancyOp", ["a"], ["y"], name="fancy", domain="example.custom"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("example.custom", 1)]
    )
    onnx.save(model, path)
    nodes = graph_nodes(path)
    assert [(n.index, n.name, n.op_type) for n in nodes] == [(0, "first", "Relu"), (1, "fancy", "FancyOp")]

    raw = [
        ParserProblem("UNSUPPORTED_NODE", "No importer registered for op: FancyOp", node_index=1),
        ParserProblem("INVALID_GRAPH", "bad graph"),
        ParserProblem("UNSUPPORTED_NODE", "named by TensorRT 10", node_index=7, node_name="n7", op_type="Foo"),
    ]
    resolved = resolve_nodes(raw, nodes)
    message = parser_error_message(str(path), resolved)
    assert "node 1 'fancy' (FancyOp): UNSUPPORTED_NODE: No importer registered for op: FancyOp" in message
    assert "  INVALID_GRAPH: bad graph" in message
    assert "node 7 'n7' (Foo)" in message
    assert "no details" in parser_error_message("m.onnx", [])


def test_onnx_info(tmp_path):
    assert model_has_qdq(examples.make_qdq(tmp_path / "q.onnx"))
    tiny = examples.make_tiny_cnn(tmp_path / "t.onnx")
    assert not model_has_qdq(tiny)
    ((name, dims),) = read_graph(tiny).inputs.items()
    assert name == "input" and dims[1:] == (3, 32, 32) and isinstance(dims[0], str)
