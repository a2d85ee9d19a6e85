"""GPU lab fixtures: real TensorRT on a real GPU; everything here skips cleanly elsewhere.

Every test under tests/gpu gets the ``gpu`` marker. Tests that use the ``trt`` fixture are
skipped when ``tensorrt`` cannot be imported or no GPU is visible (through cuda-python or
pycuda, which the engine runs in these tests need anyway).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

_GPU_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _GPU_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session")
def trt():
    """The tensorrt module; skips without TensorRT or a GPU."""
    module = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from trtops.trt.cuda_mem import gpu_count

    if gpu_count() < 1:
        pytest.skip("no CUDA GPU visible (or neither cuda-python nor pycuda is installed)")
    return module


@pytest.fixture(scope="session")
def trt_version(trt) -> tuple[int, ...]:
    from trtops.trt.trt_compat import version_tuple

    return version_tuple(trt)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Small example ONNX models (trtops.examples.models), written once per session."""
    from trtops.examples import models as examples

    root = tmp_path_factory.mktemp("models")
    return {
        "tiny_cnn": examples.make_tiny_cnn(root / "tiny_cnn.onnx"),
        "two_inputs": examples.make_two_inputs(root / "two_inputs.onnx"),
        "qdq": examples.make_qdq(root / "tiny_qdq.onnx"),
        "tiny_seg": examples.make_tiny_seg(root / "tiny_seg.onnx"),
        "external": examples.make_external_data(root / "external" / "mlp.onnx"),
    }


@pytest.fixture(scope="session")
def calibration_npz(tmp_path_factory) -> Path:
    """64 samples for the tiny CNN's ``input`` [N, 3, 32, 32]."""
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    rng = np.random.default_rng(11)
    np.savez(path, input=rng.random((64, 3, 32, 32), dtype=np.float32))
    return path


@pytest.fixture
def ort_run():
    """Run an ONNX model with ONNX Runtime on CPU: ``ort_run(path, feeds) -> {name: array}``."""
    ort = pytest.importorskip("onnxruntime")

    def run(path, feeds):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, feeds)))

    return run
