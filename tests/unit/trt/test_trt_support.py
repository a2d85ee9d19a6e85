"""unsupported_reason: what the planner refuses up front (pure)."""

import dataclasses

import pytest

from trtops.trt.specs import make_engine_spec
from trtops.trt.support import unsupported_reason
from trtops.spec import CalibrationSpec

CALIB = CalibrationSpec(data="/data/calib.npz", batch_size=8, algorithm="entropy", max_batches=None)


def spec(precision="fp32", **kw):
    return make_engine_spec("/models/m.onnx", precision, **kw)


def reason(s, version="10.13.3.9", cc="9.0", qdq=False, **kw):
    return unsupported_reason(s, version, cc, model_has_qdq=qdq, **kw)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16"])
def test_plain_precisions_everywhere(precision):
    for version in ("8.6.0", "10.0.1", "10.13.3.9", "11.0.0"):
        assert reason(spec(precision), version) is None, version


def test_bf16():
    assert "TensorRT >= 9.0" in reason(spec("bf16"), "8.6.0")
    assert reason(spec("bf16"), "10.13.3") is None
    assert reason(spec("bf16"), "11.0.0") is None  # strongly typed, model cast
    assert "compute capability >= 8.0" in reason(spec("bf16"), "10.13.3", cc="7.5")
    assert reason(spec("bf16"), "10.13.3", cc=None) is None  # unknown GPU: no GPU check


def test_tf32_needs_ampere():
    assert "compute capability >= 8.0" in reason(spec("tf32"), cc="7.0")


def test_fp8():
    assert "TensorRT >= 10.0" in reason(spec("fp8"), "8.6.0", qdq=True)
    assert "ModelOpt" in reason(spec("fp8"), "10.13.3", cc="9.0")
    assert "8.9" in reason(spec("fp8"), "10.13.3", cc="8.6", qdq=True)
    assert reason(spec("fp8"), "10.13.3", cc="8.9", qdq=True) is None
    assert reason(spec("fp8"), "11.0.0", cc="9.0", qdq=True) is None


def test_int8():
    assert "calibration data" in reason(spec("int8"), "8.6.0")
    assert reason(spec("int8", calibration=CALIB), "8.6.0") is None
    assert reason(spec("int8"), "8.6.0", qdq=True) is None
    assert reason(spec("int8", calibration=CALIB), "10.13.3") is None
    text = reason(spec("int8", calibration=CALIB), "11.0.0")
    assert "ModelOpt" in text and "Q/DQ" in text
    assert reason(spec("int8"), "11.0.0", qdq=True) is None


def test_hardware_compatibility():
    assert reason(spec(hardware_compatibility="ampere_plus"), "8.6.0", cc="8.0") is None
    assert "Ampere" in reason(spec(hardware_compatibility="ampere_plus"), "8.6.0", cc="7.5")
    assert "10.9" in reason(spec(hardware_compatibility="same_compute_capability"), "10.8.0")
    assert reason(spec(hardware_compatibility="same_compute_capability"), "10.9.0") is None
    assert "10.9" in reason(spec(hardware_compatibility="same_compute_capability"), "8.6.0")
    text = reason(spec(hardware_compatibility="ampere_plus", tactic_sources=["cublas", "jit_convolutions"]))
    assert "cublas" in text and "tactic" in text


def test_version_compatible():
    assert reason(spec(version_compatible=True), "8.6.0") is None
    assert "lean runtime" in reason(spec(version_compatible=True, tactic_sources=["cudnn"]), "10.13.3")


def test_versions():
    assert "older than 8.6" in reason(spec(), "8.5.3")
    assert "not a version" in reason(spec(), "latest")


def test_unknown_tactic_source():
    s = spec()
    s = dataclasses.replace(s, build=dataclasses.replace(s.build, tactic_sources=("magic",)))
    assert "magic" in reason(s)


def test_strongly_typed_request():
    assert "no strongly typed" in reason(spec("fp16"), "8.6.0", strongly_typed=True)
    assert reason(spec("fp16"), "10.13.3", strongly_typed=True) is None
