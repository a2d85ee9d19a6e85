"""Tiny real ONNX models and Polygraphy ONNX Runtime runners for the verifier's CPU tests.

Imported by the tests of this directory as ``gate_helpers`` (pytest puts the directory of
a test module without ``__init__.py`` on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.spec import AccuracySpec, ToleranceSpec

HIDDEN = 16


def make_mlp(path: Path, *, seed: int = 0, logit_bias_delta: float = 0.0,
             weight_noise: float = 0.0, in_features: int = 8) -> Path:
    """``x`` [N, 8] -> ``logits`` [N, 4] (MatMul, Relu, MatMul + bias), ``probs`` = Softmax.

    ``logit_bias_delta`` adds a constant to the bias of the *last* logit only, so that
    exactly one element in four of ``logits`` differs by that delta: the statistics are
    known exactly (max = delta, mean = delta/4, median = 0).
    ``weight_noise`` perturbs every weight (a "different weights" model).
    ``in_features`` != 8 gives a model that cannot run on the usual inputs.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((in_features, HIDDEN)).astype(np.float32) * 0.5
    w2 = rng.standard_normal((HIDDEN, 4)).astype(np.float32) * 0.5
    b2 = rng.standard_normal(4).astype(np.float32)
    if weight_noise:
        noise = np.random.default_rng(seed + 1000)
        w1 = w1 + noise.standard_normal(w1.shape).astype(np.float32) * weight_noise
        w2 = w2 + noise.standard_normal(w2.shape).astype(np.float32) * weight_noise
    b2 = b2.copy()
    b2[-1] += np.float32(logit_bias_delta)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("MatMul", ["hr", "w2"], ["m"]),
            helper.make_node("Add", ["m", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_features])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4]),
        ],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2.astype(np.float32), "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def make_embedding(path: Path, *, vocab: int = 10, width: int = 4) -> Path:
    """``ids`` int64 [N, T] -> ``emb`` [N, T, width] (Gather): ONNX Runtime refuses ids
    outside [0, vocab), so a run proves the generated ids stayed in range."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.arange(vocab * width, dtype=np.float32).reshape(vocab, width) / 10.0
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0)],
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "T"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", "T", width])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def mlp_io(profiles=(((1, 8), (4, 8), (16, 8)),)) -> EngineIO:
    return EngineIO(
        tensors=(
            TensorIO("x", "input", "float32", (-1, 8)),
            TensorIO("logits", "output", "float32", (-1, 4)),
            TensorIO("probs", "output", "float32", (-1, 4)),
        ),
        profiles=tuple(ProfileShapes((("x", lo, opt, hi),)) for lo, opt, hi in profiles),
    )


def embedding_io(dtype: str = "int64") -> EngineIO:
    return EngineIO(
        tensors=(
            TensorIO("ids", "input", dtype, (-1, -1)),
            TensorIO("emb", "output", "float32", (-1, -1, 4)),
        ),
        profiles=(ProfileShapes((("ids", (1, 1), (2, 8), (4, 16)),)),),
    )


def accuracy_spec(tolerance: ToleranceSpec | None = None, *, seed: int = 1, ranges=(),
                  data: str | None = None, iterations: int = 1, enabled: bool = True) -> AccuracySpec:
    return AccuracySpec(
        enabled=enabled,
        reference="onnxruntime",
        tolerance=tolerance or ToleranceSpec(atol=1e-5, rtol=1e-5, stat="elemwise"),
        seed=seed,
        ranges=tuple(ranges),
        data=data,
        iterations=iterations,
    )


def ort_runner_factory(model_path: Path):
    """A zero/one-argument factory of fresh Polygraphy ONNX Runtime runners."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    def make(*_profile):
        return OnnxrtRunner(SessionFromOnnx(str(model_path), providers=["CPUExecutionProvider"]))

    return make
