"""The builder's own view of a TensorRT module (``trt_compat.detect_features``, attribute
lookups on the imported module) gives the same verdicts as the planner's view of that release
(``capabilities.features_for_version``), for every build the capability table can judge.

The modules here are fakes that carry what each generation's Python API has (8.6 from its
wheel, 10.x from the tensorrt-stubs 10.13 API, 11 from its release notes: the weak-typing
flags and implicit INT8 calibration are gone). The same check runs on the real module in the
GPU lab (tests/gpu/test_build.py::test_detected_features_give_the_planners_verdicts).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import verdict_disagreements

from trtops.trt.trt_compat import detect_features

TACTICS = ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS")


def _members(*names: str) -> SimpleNamespace:
    return SimpleNamespace(**{name: object() for name in names})


def fake_tensorrt(version: str, *, flags: tuple[str, ...], network_flags: tuple[str, ...],
                  levels: tuple[str, ...], calibrators: bool, dtypes: tuple[str, ...]) -> SimpleNamespace:
    module = SimpleNamespace(
        __version__=version,
        BuilderFlag=_members(*flags),
        NetworkDefinitionCreationFlag=_members(*network_flags),
        HardwareCompatibilityLevel=_members("NONE", *levels),
        TacticSource=_members(*TACTICS),
        DataType=_members(*dtypes),
        IBuilderConfig=_members(*(("int8_calibrator",) if calibrators else ())),
        ICudaEngine=_members("num_io_tensors", "get_tensor_name"),
        Builder=_members(),
    )
    if calibrators:
        module.IInt8EntropyCalibrator2 = object
        module.IInt8MinMaxCalibrator = object
    return module


GENERATIONS = {
    # The 8.6 wheel: FP8 exists only for plugins; no BF16 flag; implicit batch by default.
    "8.6.0": fake_tensorrt("8.6.0", flags=("FP16", "INT8", "TF32", "FP8", "VERSION_COMPATIBLE"),
                           network_flags=("EXPLICIT_BATCH",), levels=("AMPERE_PLUS",), calibrators=True,
                           dtypes=("FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8")),
    "10.0.1": fake_tensorrt("10.0.1", flags=("FP16", "BF16", "INT8", "TF32", "FP8", "VERSION_COMPATIBLE"),
                            network_flags=("EXPLICIT_BATCH", "STRONGLY_TYPED"), levels=("AMPERE_PLUS",),
                            calibrators=True,
                            dtypes=("FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8", "FP8")),
    "10.13.3.9": fake_tensorrt("10.13.3.9", flags=("FP16", "BF16", "INT8", "TF32", "FP8", "VERSION_COMPATIBLE"),
                               network_flags=("EXPLICIT_BATCH", "STRONGLY_TYPED"),
                               levels=("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"), calibrators=True,
                               dtypes=("FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8",
                                       "FP8", "INT4", "FP4")),
    "11.0.0": fake_tensorrt("11.0.0", flags=("TF32", "VERSION_COMPATIBLE"), network_flags=("STRONGLY_TYPED",),
                            levels=("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"), calibrators=False,
                            dtypes=("FLOAT", "HALF", "BF16", "INT8", "INT32", "INT64", "BOOL", "UINT8",
                                    "FP8", "INT4", "FP4")),
}


@pytest.mark.parametrize("release", list(GENERATIONS))
def test_detected_features_give_the_planners_verdicts(release):
    detected = detect_features(GENERATIONS[release])
    assert detected.version_text == release
    assert verdict_disagreements(detected, release) == []


def test_a_missing_attribute_changes_the_verdict():
    """The comparison bites: a 10.x module without STRONGLY_TYPED is judged differently."""
    module = GENERATIONS["10.13.3.9"]
    broken = SimpleNamespace(**vars(module))
    broken.NetworkDefinitionCreationFlag = _members("EXPLICIT_BATCH")
    assert verdict_disagreements(detect_features(broken), "10.13.3.9")
