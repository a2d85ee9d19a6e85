"""The preparation stage's cast for strongly typed builds (TensorRT 11): fp16/bf16, checked
with ONNX Runtime; files go through the runner, as apply and `trtops prepare` do."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtops.examples import models as examples
from trtops.prepare.cast import (
    PrepareError,
    bfloat16_bits_to_float32,
    cast_model,
    float32_to_bfloat16_bits,
    infer_types,
)
from trtops.prepare.options import KeepLists
from trtops.prepare.runner import prepare_file

ort = pytest.importorskip("onnxruntime")


def run(model_or_path, feeds):
    source = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def io_types(model):
    return (
        [(v.name, v.type.tensor_type.elem_type) for v in model.graph.input],
        [(v.name, v.type.tensor_type.elem_type) for v in model.graph.output],
    )


def prepare_model(source, out_dir, cast):
    """The source cast to ``cast`` by the runner (no other step): ``(path, report)``."""
    return prepare_file(source, None, out_dir, cast=cast)


def assert_close(reference, candidate, atol, rtol=1e-2):
    assert reference.keys() == candidate.keys()
    for name, expected in reference.items():
        got = candidate[name]
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol, err_msg=name)


rng = np.random.default_rng(0)
EXAMPLES = {
    "tiny_cnn": (examples.make_tiny_cnn, {"input": rng.random((2, 3, 32, 32), dtype=np.float32)}),
    "two_inputs": (
        examples.make_two_inputs,
        {"image": rng.random((2, 3, 20, 24), dtype=np.float32), "scale": rng.random((2, 8), dtype=np.float32)},
    ),
    "tiny_seg": (examples.make_tiny_seg, {"input": rng.random((1, 3, 37, 45), dtype=np.float32)}),
    "external": (examples.make_external_data, {"input": rng.random((3, 64), dtype=np.float32)}),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fp16_examples_match_onnxruntime(tmp_path, name):
    make, feeds = EXAMPLES[name]
    original = make(tmp_path / f"{name}.onnx")
    prepared, report = prepare_model(original, tmp_path / "prepared", "fp16")
    onnx.checker.check_model(str(prepared))
    before = onnx.load(str(original), load_external_data=False)
    after = onnx.load(str(prepared))
    assert io_types(after) == io_types(before)
    assert report.cast_initializers > 0 and report.cast_nodes_converted > 0
    assert all(t.data_type != TensorProto.FLOAT for t in after.graph.initializer if len(t.dims) > 1)
    assert_close(run(original, feeds), run(prepared, feeds), atol=1e-2)


def test_tiny_seg_keeps_shape_arithmetic(tmp_path):
    original = examples.make_tiny_seg(tmp_path / "seg.onnx")
    prepared, report = prepare_model(original, tmp_path / "prepared", "fp16")
    model = onnx.load(str(prepared))
    kept = {n.op_type for n in model.graph.node if n.op_type in ("Shape", "Slice", "Concat")}
    assert kept == {"Shape", "Slice", "Concat"}
    assert report.cast_nodes_kept >= 5


def _value(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def tricky_model(scale: float = 1.0) -> onnx.ModelProto:
    """Shape arithmetic in float, Range, If with an outer-scope float, value_float constants,
    Cast(to=FLOAT), a weight shared by shape and data paths, an output read internally."""
    g = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(g.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(g.normal(0, 0.1, (4,)).astype(np.float32), "b"),
        numpy_helper.from_array(np.array(scale, np.float32), "scale"),  # shared by shape and data paths
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([2], np.int64), "s1"),
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(1000.0, np.float32), "thousand"),
        numpy_helper.from_array(np.array(2, np.int64), "two_i"),
        numpy_helper.from_array(np.array([0, 1, 3], np.int64), "unsq_axes"),
    ]
    then_branch = helper.make_graph(
        [helper.make_node("Relu", ["mixed"], ["then_out"])], "then", [], [_value("then_out", TensorProto.FLOAT, ["N", 4, "H2", "W2"])]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["mixed"], ["else_out"])], "else", [], [_value("else_out", TensorProto.FLOAT, ["N", 4, "H2", "W2"])]
    )
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Shape", ["c1"], ["c1_shape"]),
        helper.make_node("Slice", ["c1_shape", "s0", "s1", "ax0"], ["nc"]),
        # H/W (indices 2:4) through Constant nodes, in float: shape arithmetic.
        helper.make_node("Constant", [], ["hw_start"], value=numpy_helper.from_array(np.array([2], np.int64))),
        helper.make_node("Constant", [], ["hw_end"], value=numpy_helper.from_array(np.array([4], np.int64))),
        helper.make_node("Slice", ["c1_shape", "hw_start", "hw_end", "ax0"], ["hw"]),
        helper.make_node("Cast", ["hw"], ["hw_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["hw_f", "scale"], ["hw_scaled"]),
        helper.make_node("Cast", ["hw_scaled"], ["hw_i"], to=TensorProto.INT64),
        helper.make_node("Concat", ["nc", "hw_i"], ["sizes"], axis=0),
        helper.make_node("Resize", ["c1", "", "", "sizes"], ["up"], mode="nearest"),
        # Range over the (resized) height, in float: shape arithmetic again.
        helper.make_node("Shape", ["up"], ["up_shape"]),
        helper.make_node("Gather", ["up_shape", "two_i"], ["up_h"], axis=0),
        helper.make_node("Cast", ["up_h"], ["up_h_f"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["zero", "up_h_f", "one"], ["rows"]),
        helper.make_node("Div", ["rows", "thousand"], ["rows_small"]),
        helper.make_node("Unsqueeze", ["rows_small", "unsq_axes"], ["rows_4d"]),
        helper.make_node("Add", ["up", "rows_4d"], ["biased"]),
        helper.make_node("Mul", ["biased", "scale"], ["mixed"]),
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Constant", [], ["half"], value_float=0.5),
        helper.make_node("Mul", ["branch", "half"], ["halved"]),
        helper.make_node("Cast", ["halved"], ["y"], to=TensorProto.FLOAT),
        helper.make_node("Sigmoid", ["y"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tricky",
        [_value("x", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        [_value("y", TensorProto.FLOAT, ["N", 4, "H2", "W2"]), _value("z", TensorProto.FLOAT, ["N", 4, "H2", "W2"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def test_tricky_graph_fp16_matches_and_keeps_exact_shapes():
    # 2049 is not representable in fp16: a converted shape path would produce 2048 rows.
    model = tricky_model(scale=1.0)
    feeds = {"x": np.random.default_rng(1).random((1, 4, 2049, 3), dtype=np.float32)}
    prepared, report = cast_model(model, "fp16")
    onnx.checker.check_model(prepared)
    assert io_types(prepared) == io_types(model)
    reference, candidate = run(model, feeds), run(prepared, feeds)
    assert candidate["y"].shape == reference["y"].shape == (1, 4, 2049, 3)
    assert_close(reference, candidate, atol=2e-2)

    by_output = {o: n for n in prepared.graph.node for o in n.output}
    assert by_output["hw_scaled"].op_type == "Mul"
    types = infer_types(prepared)
    # Shape arithmetic, Range and the If stay float32; the data path is fp16.
    for name in ("hw_f", "hw_scaled", "rows", "rows_small", "branch"):
        assert types[name] == TensorProto.FLOAT, name
    for name in ("c1", "up", "biased", "halved"):
        assert types[name] == TensorProto.FLOAT16, name
    # The weight read by both paths is fp16 and cast back for the shape path.
    scale = next(t for t in prepared.graph.initializer if t.name == "scale")
    assert scale.data_type == TensorProto.FLOAT16
    # The If branch reads a float32 copy of the outer tensor.
    if_node = next(n for n in prepared.graph.node if n.op_type == "If")
    then_inputs = [i for n in if_node.attribute[0].g.node for i in n.input]
    assert then_inputs == ["mixed__to_fp32"]
    # Cast(to=FLOAT) inside the region casts to fp16; a final Cast restores float32 'y'.
    assert any(n.op_type == "Cast" and n.output == ["y"] and n.attribute[0].i == TensorProto.FLOAT for n in prepared.graph.node)
    assert report.casts_inserted >= 4


def test_bf16_model_is_valid_and_weights_round(tmp_path):
    model = tricky_model()
    prepared, _ = cast_model(model, "bf16")
    # Structure only: ONNX's type constraints lag (Conv accepts bfloat16 from opset 22),
    # TensorRT's parser does not apply them.
    onnx.checker.check_model(prepared)
    w = next(t for t in prepared.graph.initializer if t.name == "w")
    assert w.data_type == TensorProto.BFLOAT16
    original = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    bits = np.frombuffer(w.raw_data, dtype="<u2").reshape(original.shape)
    np.testing.assert_allclose(bfloat16_bits_to_float32(bits), original, rtol=2 ** -8)
    types = infer_types(prepared)
    assert types["c1"] == TensorProto.BFLOAT16 and types["hw_scaled"] == TensorProto.FLOAT
    assert io_types(prepared) == io_types(model)


def test_bfloat16_rounding():
    values = np.array([1.0, 1.00390625, 1.01171875, -2.5, 0.0, np.inf, -np.inf, np.nan, 3.4e38], np.float32)
    bits = float32_to_bfloat16_bits(values)
    back = bfloat16_bits_to_float32(bits)
    assert back[0] == 1.0
    assert back[1] == 1.0  # halfway: round to even
    assert back[2] == 1.015625  # halfway: round to even (up)
    assert back[3] == -2.5 and back[4] == 0.0
    assert np.isposinf(back[5]) and np.isneginf(back[6]) and np.isnan(back[7])
    assert np.isfinite(back[8]) or back[8] == np.inf


def test_fp16_saturates_instead_of_inf():
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "big"], ["y"])],
        "g",
        [_value("x", TensorProto.FLOAT, [2])],
        [_value("y", TensorProto.FLOAT, [2])],
        initializer=[numpy_helper.from_array(np.array([-1e9, 1e9], np.float32), "big")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    prepared, _ = cast_model(model, "fp16")
    big = numpy_helper.to_array(prepared.graph.initializer[0])
    assert big.dtype == np.float16 and np.all(np.isfinite(big)) and big[1] == 65504


def test_refusals():
    model = tricky_model()
    with pytest.raises(PrepareError, match="expected one of"):
        cast_model(model, "int8")
    old = onnx.ModelProto()
    old.CopyFrom(model)
    old.opset_import[0].version = 11
    with pytest.raises(PrepareError, match="opset >= 13"):
        cast_model(old, "bf16")


def test_input_left_unchanged():
    model = tricky_model()
    before = model.SerializeToString()
    cast_model(model, "fp16")
    assert model.SerializeToString() == before


def test_external_data_model_written_inline_when_small(tmp_path):
    original = examples.make_external_data(tmp_path / "mlp.onnx")
    prepared, _ = prepare_model(original, tmp_path / "out", "fp16")
    assert prepared.parent == tmp_path / "out"
    assert not list((tmp_path / "out").glob("*.data"))


def kept_add_model():
    """x -> Mul(x, 1) 'scale' -> Add(., 1/3) 'add' -> y (fp16 holds 1/3 as 0.33325)."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "one"], ["scaled"], name="scale"),
         helper.make_node("Add", ["scaled", "third"], ["y"], name="add")],
        "kept", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        initializer=[numpy_helper.from_array(np.ones(4, np.float32), "one"),
                     numpy_helper.from_array(np.full(4, 1 / 3, np.float32), "third")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_kept_node_computes_in_fp32():
    model = kept_add_model()
    feeds = {"x": np.ones(4, np.float32)}
    exact = np.float32(1) + np.float32(1 / 3)
    cast, _ = cast_model(model, "fp16")
    # ONNX Runtime's CPU kernels may compute fp16 in fp32, but the fp16 weight shows.
    assert np.all(np.abs(run(cast, feeds)["y"] - exact) > 5e-5)
    kept, report = cast_model(model, "fp16", keep=KeepLists(("add",)))
    onnx.checker.check_model(kept)
    np.testing.assert_array_equal(run(kept, feeds)["y"], np.full(4, exact))
    assert report.kept_nodes == 1 and report.converted_nodes == 1  # the Mul is still fp16
    by_name = {n.name: n for n in kept.graph.node}
    types = {t.name: t.data_type for t in kept.graph.initializer}
    assert types == {"one": TensorProto.FLOAT16, "third": TensorProto.FLOAT}
    producer = {o: n for n in kept.graph.node for o in n.output}
    cast_in = producer[by_name["add"].input[0]]
    assert cast_in.op_type == "Cast" and cast_in.attribute[0].i == TensorProto.FLOAT


def test_keep_fp32_entries_matching_no_node_are_reported_not_refused():
    # The manifest check found them in the source; a preparation step may have folded them.
    kept, report = cast_model(kept_add_model(), "fp16", keep=KeepLists(("add", "nope"), ("gone",)))
    assert report.kept_fp32 == ["add"] and report.keep_unmatched == ["nope", "output gone"]
    assert "matching no node of the prepared model (folded?): nope, output gone" in report.keep_summary("fp16")


def test_types_are_inferred_with_the_weights_set_aside():
    model = kept_add_model()
    big = numpy_helper.from_array(np.ones(4096, np.float32), "big")
    model.graph.initializer.append(big)
    before = model.SerializeToString()
    types = infer_types(model)
    assert types["scaled"] == TensorProto.FLOAT and types["y"] == TensorProto.FLOAT
    assert model.SerializeToString() == before  # the weights are back, byte for byte
