"""The preparation steps on onnx.helper models that reproduce two real export quirks
(tests/helpers.py): paddle2onnx's one name for H and W, and a torch export whose Slice axes
are computed and whose If branches on a sample-rate input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_rate_branching_model, make_shared_dims_classifier

from trtops.prepare.constants import bind_constants
from trtops.prepare.dims import (
    make_dims_distinct,
    repeated_within_an_input,
    shared_dim_names,
)
from trtops.prepare.graph import PreparationFailed, count_ops
from trtops.prepare.runner import run_steps
from trtops.spec import BoundInput, PrepareSpec

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx_graphsurgeon")


def test_shared_names_and_the_ones_repeated_within_an_input():
    inputs = {"x": (None, 3, "?", "?"), "a": ("batch", 4), "b": ("batch", 5)}
    assert shared_dim_names(inputs) == {"?": [("x", 2), ("x", 3)], "batch": [("a", 0), ("b", 0)]}
    # a batch dim shared by two inputs is a real tie; one input naming two axes alike is not
    assert repeated_within_an_input(inputs) == {"?": [("x", 2), ("x", 3)]}


def test_distinct_dims_renames_the_paddle_placeholder(tmp_path):
    model = onnx.load(str(make_shared_dims_classifier(tmp_path / "cls.onnx")))
    notes = make_dims_distinct(model)
    assert notes == ["x[2]: '?' -> 'x_dim2'", "x[3]: '?' -> 'x_dim3'"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [-1, 3, "x_dim2", "x_dim3"]
    assert make_dims_distinct(model) == []  # nothing left to rename


def _run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString() if hasattr(model, "SerializeToString") else str(model))
    return session.run(None, feeds)


def test_binding_the_rate_folds_the_computed_axes_and_inlines_the_if(tmp_path):
    path = make_rate_branching_model(tmp_path / "vad.onnx")
    spec = PrepareSpec(constants=(BoundInput("sr", (), (16000,)),))
    prepared, report = run_steps(onnx.load(str(path)), spec, str(path))

    assert count_ops(prepared.graph, "If") == 0 and report.ifs_inlined == 1 and report.ifs_left == 0
    assert report.constants_bound == ["sr = 16000 (int64)"]
    assert [v.name for v in prepared.graph.input] == ["x"]  # sr is no longer an input
    # every Slice reads its axes from an initializer now (what TensorRT 8.6 needs)
    initializers = {t.name for t in prepared.graph.initializer}
    slices = [n for n in prepared.graph.node if n.op_type == "Slice"]
    assert slices and all(n.input[3] in initializers for n in slices)
    assert report.nodes_folded > 0 and report.nodes_after < report.nodes_before
    onnx.checker.check_model(prepared)
    x = np.random.default_rng(0).standard_normal((2, 300)).astype(np.float32)
    expected = _run(str(path), {"x": x, "sr": np.array(16000)})[0]
    assert expected.shape == (2, 256)
    np.testing.assert_array_equal(_run(prepared, {"x": x})[0], expected)


def test_the_other_rate_takes_the_other_branch(tmp_path):
    path = make_rate_branching_model(tmp_path / "vad.onnx")
    prepared, _ = run_steps(onnx.load(str(path)), PrepareSpec(constants=(BoundInput("sr", (), (8000,)),)))
    x = np.ones((1, 300), np.float32)
    assert _run(prepared, {"x": x})[0].shape == (1, 128)


def test_without_folding_the_if_stays(tmp_path):
    path = make_rate_branching_model(tmp_path / "vad.onnx")
    spec = PrepareSpec(fold_constants=False, constants=(BoundInput("sr", (), (16000,)),))
    prepared, report = run_steps(onnx.load(str(path)), spec)
    assert count_ops(prepared.graph, "If") == 1 and report.ifs_left == 1


@pytest.mark.parametrize("bound, message", [
    (BoundInput("rate", (), (16000,)), "not an input of the model"),
    (BoundInput("sr", (2,), (1, 2)), "does not fit the input's shape"),
    (BoundInput("sr", (), (16000.5,)), "is not"),
])
def test_binding_refuses_what_cannot_be_bound(tmp_path, bound, message):
    model = onnx.load(str(make_rate_branching_model(tmp_path / "vad.onnx")))
    with pytest.raises(PreparationFailed, match=message) as info:
        bind_constants(model, [bound])
    assert info.value.exit_code == 1


def test_opset_conversion(tmp_path):
    path = make_rate_branching_model(tmp_path / "vad.onnx")
    prepared, report = run_steps(onnx.load(str(path)), PrepareSpec(fold_constants=False, opset=17))
    assert report.opset == "opset 16 -> 17"
    assert max(o.version for o in prepared.opset_import if o.domain == "") == 17
