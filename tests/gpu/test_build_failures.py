"""Real TensorRT build failures, each diagnosed by cause (trtops/trt/failure_causes.py) with
the hint that helps for it. Tiny onnx.helper models, each fails in about a second. Written
for the lab (TensorRT 8.6.0) and valid on 10.x: the causes asserted are the ones the
recorded 8.6 messages give (tests/unit/trt/test_trt_failure_causes.py)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from trtops.errors import BuildError
from trtops.spec import make_engine_spec, profile
from trtops.trt.builder import BuildRequest, build_engine

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_tensorrt_and_gpu(trt):
    """Every test here runs TensorRT's parser and builder."""


def _build(tmp_path, model, **spec_kw):
    spec = make_engine_spec(model, "fp32", timing_cache="off", builder_optimization_level=0, **spec_kw)
    return build_engine(BuildRequest(spec=spec, model_path=model, workdir=tmp_path / "work"))


def _save(model, path):
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_dynamic_dims_that_share_a_name_are_a_shapes_failure(tmp_path):
    # The paddle2onnx export of issue 17: input [N, 3, '?', '?']; H and W get different
    # sizes in the profile, TensorRT holds dims of one name equal.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("ReduceMean", ["r"], ["y"], name="pool", axes=[2, 3], keepdims=0)],
        "shared_names",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "?", "?"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "shared.onnx")
    shapes = profile(x=([1, 3, 16, 32], [1, 3, 32, 64], [2, 3, 48, 128]))
    with pytest.raises(BuildError) as info:
        _build(tmp_path, path, profiles=[shapes])
    print(info.value.render())
    assert info.value.cause == "shapes"
    assert "share the name '?'" in info.value.message and "x[2], x[3]" in info.value.message
    assert "own name" in info.value.hint and "may help" not in info.value.hint


def test_an_op_the_parser_refuses_is_an_unsupported_node_named_by_name(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="relu0"),
         helper.make_node("TotallyUnknownOp", ["a"], ["y"], name="mystery_node", domain="trtops.test")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("trtops.test", 1)])
    path = _save(model, tmp_path / "custom.onnx")
    with pytest.raises(BuildError) as info:
        _build(tmp_path, path)
    print(info.value.render())
    message = info.value.message
    assert info.value.cause == "unsupported_node"
    assert "mystery_node" in message and "TotallyUnknownOp" in message and "opset 1" in message
    # the error code's name, not "<bound method PyCapsule.name of ...>"
    assert "bound method" not in message and "UNSUPPORTED_NODE" in message
    assert "plugin" in info.value.hint
