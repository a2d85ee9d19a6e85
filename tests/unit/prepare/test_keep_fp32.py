"""keep_fp32 in the model cast of strongly typed builds (TensorRT 11): the kept nodes compute
in float32 and ONNX Runtime shows the overflow gone (trtops.prepare.cast.cast_model with
KeepLists, the one implementation), and the cast model records what it kept
(trtops.prepare.kept) for the builder to check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_overflow_model
from onnx import TensorProto, helper, numpy_helper

from trtops.prepare.cast import cast_model
from trtops.prepare.kept import KeptRecord, kept_problem, parse_record, read_record
from trtops.prepare.options import KeepLists

ort = pytest.importorskip("onnxruntime")


def _run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.fixture
def original(tmp_path):
    return onnx.load(str(make_overflow_model(tmp_path / "chain.onnx")))


X = {"x": np.linspace(0.1, 0.9, 32, dtype=np.float32).reshape(2, 16)}
CHAIN = KeepLists(("overflow", "scale_down"))


def test_the_cast_model_overflows_and_keeping_the_chain_makes_it_exact(original):
    reference = _run(original, X)
    cast, _ = cast_model(original, "fp16")
    # x*s*s ~ 1e9 and the weight s*s are past fp16's 65504 (ONNX Runtime's CPU kernels may
    # compute in fp32 inside, but the saturated fp16 weight shows): far off without keep_fp32
    assert not np.allclose(_run(cast, X)[0], reference[0], rtol=1e-2)
    kept, report = cast_model(original, "fp16", keep=CHAIN)
    onnx.checker.check_model(kept)
    y, z = _run(kept, X)
    np.testing.assert_array_equal(y, reference[0])  # float32 end to end: exact
    np.testing.assert_allclose(z, reference[1], rtol=1e-2)  # the rest stays fp16
    assert report.kept_fp32 == ["overflow", "scale_down"] and not report.keep_unmatched
    # the kept nodes read float32 weights (the originals: only kept nodes read them)
    weights = {t.name: t.data_type for t in kept.graph.initializer}
    assert weights["s2"] == weights["s3"] == TensorProto.FLOAT and weights["half"] == TensorProto.FLOAT16
    by_name = {n.name: n for n in kept.graph.node}
    assert by_name["scale_down"].input[0] == "b"  # kept-to-kept: no Cast between them


def test_one_kept_node_alone_still_overflows_downstream(original):
    kept, _ = cast_model(original, "fp16", keep=KeepLists(("overflow",)))
    assert not np.allclose(_run(kept, X)[0], _run(original, X)[0], rtol=1e-2)


def test_patterns_and_outputs_name_nodes_unnamed_ones_too(original):
    for node in original.graph.node:
        if node.name == "scale_down":
            node.name = ""
    kept, report = cast_model(original, "fp16", keep=KeepLists(("over*",), ("y",)))
    np.testing.assert_array_equal(_run(kept, X)[0], _run(original, X)[0])
    assert report.kept_fp32 == ["overflow", "y"]


def test_a_weight_shared_with_converted_nodes_is_read_in_its_original_float32():
    third = np.full(4, 1 / 3, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "third"], ["a"], name="converted"),
         helper.make_node("Add", ["x", "third"], ["b"], name="kept")],
        "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])],
        initializer=[numpy_helper.from_array(third, "third")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    kept, report = cast_model(model, "fp16", keep=KeepLists(("kept",)))
    onnx.checker.check_model(kept)
    a, b = _run(kept, {"x": np.ones(4, np.float32)})
    np.testing.assert_array_equal(b, np.float32(1) + third)  # not 1 + fp16(1/3)
    assert np.all(np.abs(a - (np.float32(1) + third)) > 5e-5)  # the converted reader is fp16
    assert report.weights_fp32 == 1 and "1 shared weights read in float32" in report.keep_summary("fp16")


def test_the_cast_model_records_what_it_kept_and_only_then(original, tmp_path):
    kept, _ = cast_model(original, "fp16", keep=KeepLists(("overflow", "scale_*")))
    path = tmp_path / "kept.onnx"
    onnx.save(kept, str(path))
    record = read_record(path)
    assert record == KeptRecord(KeepLists(("overflow", "scale_*")), ("scale_up", "overflow", "scale_down"))
    plain, _ = cast_model(original, "fp16")
    assert not plain.metadata_props  # cast models without keep lists are what they were
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    assert read_record(tmp_path / "plain.onnx") is None
    assert parse_record("not json") is None


def test_the_builder_check_refuses_a_cast_for_other_lists():
    record = KeptRecord(CHAIN, ("overflow", "scale_down"))
    assert kept_problem(CHAIN, record, "fp16") is None
    assert kept_problem(KeepLists(), None, "fp16") is None
    missing = kept_problem(CHAIN, None, "fp16")
    assert "keep_fp32 holds 2 nodes in fp32 (overflow, scale_down)" in missing and "without them" in missing
    assert "does not ask for" in kept_problem(KeepLists(), record, "fp16")
    assert "asks for 1 node in fp32 (overflow)" in kept_problem(KeepLists(("overflow",)), record, "fp16")
