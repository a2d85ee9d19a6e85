"""The planner refuses exactly what the builder refuses.

For every (precision, TensorRT release, compute capability, hardware compatibility,
calibration, Q/DQ model, strongly typed) combination, ``match_target`` on a platform with
that TensorRT and GPU gives the same verdict as the check the builder runs
(:func:`trtops.capabilities.unsupported_reason` with the release's features). The models
are real ONNX files, so the planner's own Q/DQ read is part of what is compared.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from helpers import make_conv_model, make_qdq_model

from trtops.capabilities import PRECISIONS, features_for_version, unsupported_reason
from trtops.keys.platform import GpuInfo, Platform
from trtops.onnx_facts import model_has_qdq
from trtops.plan import match_target
from trtops.spec import CalibrationSpec, ModelSource, make_engine_spec

RELEASES = ("8.6.0", "9.2.0", "10.0.1", "10.9.0", "10.13.3.9", "11.0.0")
CCS = ("7.5", "8.0", "8.6", "8.9", "9.0", "10.0")
HARDWARE = ("none", "ampere_plus", "same_compute_capability")
CALIBRATION = CalibrationSpec(data="/data/calib.npz", batch_size=8, algorithm="entropy", max_batches=None)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    plain = make_conv_model(root / "conv.onnx")
    qdq = make_qdq_model(root / "qdq.onnx")
    assert not model_has_qdq(plain) and model_has_qdq(qdq)
    return {False: str(plain), True: str(qdq)}


def _verdicts(models, precision, hardware, calibrated, qdq, strongly_typed):
    spec = make_engine_spec(models[qdq], precision, hardware_compatibility=hardware,
                            calibration=CALIBRATION if calibrated else None)
    spec = replace(spec, build=replace(spec.build, strongly_typed=strongly_typed))
    for release, cc in itertools.product(RELEASES, CCS):
        platform = Platform(release, (GpuInfo(0, f"GPU cc {cc}", cc),))
        planned = match_target(spec, platform).problem
        built = unsupported_reason(spec.build, features_for_version(release), cc, model_has_qdq=qdq)
        yield release, cc, planned, built


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("hardware", HARDWARE)
def test_plan_verdict_equals_builder_verdict(models, precision, hardware):
    refused = allowed = 0
    for calibrated, qdq, strongly_typed in itertools.product((False, True), repeat=3):
        for release, cc, planned, built in _verdicts(models, precision, hardware, calibrated, qdq, strongly_typed):
            assert planned == built, (precision, release, cc, hardware, calibrated, qdq, strongly_typed)
            refused += built is not None
            allowed += built is None
    assert allowed, f"{precision}/{hardware}: nothing can be built anywhere"
    assert refused


@pytest.mark.parametrize(
    "precision, release, cc, calibrated, qdq, expected",
    [
        # The three combinations the planner used to let through.
        ("int8", "11.0.0", "9.0", True, False, "Q/DQ"),
        ("fp8", "9.2.0", "9.0", False, True, "fp8 needs TensorRT >= 10.0"),
        ("tf32", "10.13.3.9", "7.5", False, False, "tf32 needs a GPU of compute capability >= 8.0"),
    ],
)
def test_named_disagreements_are_refused_by_both(models, precision, release, cc, calibrated, qdq, expected):
    spec = make_engine_spec(models[qdq], precision, calibration=CALIBRATION if calibrated else None)
    problem = match_target(spec, Platform(release, (GpuInfo(0, "GPU", cc),))).problem
    assert problem is not None and expected in problem
    assert problem == unsupported_reason(spec.build, features_for_version(release), cc, model_has_qdq=qdq)


def test_unreadable_model_keeps_the_old_behaviour(tmp_path):
    spec = make_engine_spec(tmp_path / "missing.onnx", "int8")
    assert match_target(spec, Platform("10.13.3.9", (GpuInfo(0, "GPU", "9.0"),))).problem is None
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xff not protobuf")
    spec = replace(spec, source=ModelSource(path=str(garbage)))
    assert match_target(spec, Platform("10.13.3.9", (GpuInfo(0, "GPU", "9.0"),))).problem is None


def test_strongly_typed_on_86_is_skipped_with_the_reason(models):
    spec = make_engine_spec(models[False], "fp16")
    spec = replace(spec, build=replace(spec.build, strongly_typed=True))
    problem = match_target(spec, Platform("8.6.0", (GpuInfo(0, "GPU", "9.0"),))).problem
    assert problem and "no strongly typed networks" in problem
