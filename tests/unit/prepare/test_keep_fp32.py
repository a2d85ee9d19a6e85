"""keep_fp32 after the fp16 model cast (TensorRT 11 / strongly typed builds): the kept nodes
compute in float32 and ONNX Runtime shows the overflow gone (trtops.prepare.keep_fp32)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_overflow_model

from trtops.prepare.cast import cast_model
from trtops.prepare.keep_fp32 import keep_fp32_file, keep_nodes_fp32

ort = pytest.importorskip("onnxruntime")


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.fixture
def models(tmp_path):
    path = make_overflow_model(tmp_path / "chain.onnx")
    original = onnx.load(str(path))
    return path, original, cast_model(original, "fp16")[0]


X = np.linspace(0.1, 0.9, 32, dtype=np.float32).reshape(2, 16)


def test_the_cast_model_is_wrong_and_keeping_the_chain_makes_it_exact(models):
    _, original, cast = models
    reference = _run(original, X)
    assert not np.allclose(_run(cast, X)[0], reference[0], rtol=1e-2)
    kept, report = keep_nodes_fp32(cast, "fp16", ["overflow", "scale_down"], original=original)
    onnx.checker.check_model(kept)
    y, z = _run(kept, X)
    np.testing.assert_allclose(y, reference[0], rtol=1e-6)  # float32 end to end: graph input, weights
    np.testing.assert_allclose(z, reference[1], rtol=1e-2)  # the rest stays fp16
    assert report.kept == ["overflow", "scale_down"] and report.weights_restored == 2
    assert not report.missing


def test_one_kept_node_alone_still_overflows_downstream(models):
    _, original, cast = models
    kept, _ = keep_nodes_fp32(cast, "fp16", ["overflow"], original=original)
    assert not np.allclose(_run(kept, X)[0], _run(original, X)[0], rtol=1e-2)


def test_unnamed_nodes_by_output_and_missing_names_reported(models):
    _, original, cast = models
    for node in cast.graph.node:
        if node.name == "scale_down":
            node.name = ""
    kept, report = keep_nodes_fp32(cast, "fp16", ["overflow", "gone"], ["y"], original=original)
    np.testing.assert_allclose(_run(kept, X)[0], _run(original, X)[0], rtol=1e-6)
    assert report.missing == ["gone"]


def test_files_resolve_patterns_on_the_original_graph(models, tmp_path):
    path, original, cast = models
    cast_path = tmp_path / "cast.onnx"
    onnx.save(cast, str(cast_path))
    out, report = keep_fp32_file(cast_path, path, tmp_path / "kept.onnx", "fp16", ["overflow", "scale_*"])
    assert report.kept == ["overflow", "scale_down", "scale_up"]
    np.testing.assert_allclose(_run(onnx.load(str(out)), X)[0], _run(original, X)[0], rtol=1e-6)
