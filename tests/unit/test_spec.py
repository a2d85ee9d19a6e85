"""make_engine_spec: the one place an EngineSpec is assembled."""

from __future__ import annotations

import pytest

from trtops.spec import BUILD_DEFAULTS, DIRECT_TOLERANCE, TargetSpec, make_engine_spec, profile


def test_make_engine_spec_normalizes(tmp_path):
    spec = make_engine_spec(
        tmp_path / "m.onnx",
        "fp16",
        profiles=[profile(b=([1], [2], [3]), a=([1, 2], [1, 2], [1, 2]))],
        tactic_sources=["jit_convolutions", "cudnn"],
        loaders=["triton", "python"],
    )
    assert [r.name for r in spec.build.profiles[0]] == ["a", "b"]
    assert spec.build.profiles[0][1].max == (3,)
    assert spec.build.tactic_sources == ("cudnn", "jit_convolutions")
    assert spec.loaders == ("python", "triton")
    assert spec.id == "direct/m/fp16/local"
    assert spec.source.path == str(tmp_path / "m.onnx")


def test_defaults_are_the_build_defaults(tmp_path):
    spec = make_engine_spec(tmp_path / "my-model.v2.onnx")
    assert spec.model == "my_model_v2" and spec.precision == "fp32"
    for name, value in BUILD_DEFAULTS.items():
        owner = spec if name in ("timing_cache", "prepare") else spec.build  # per spec, not per build
        assert getattr(owner, name) == value, name
    assert spec.accuracy.enabled and spec.accuracy.tolerance == DIRECT_TOLERANCE
    assert spec.target.gpu == "any" and spec.target.tensorrt == ""


def test_build_portability_is_the_targets(tmp_path):
    named = make_engine_spec(tmp_path / "m.onnx", target="lab", hardware_compatibility="ampere_plus",
                             version_compatible=True)
    assert named.target.hardware_compatibility == named.build.hardware_compatibility == "ampere_plus"
    assert named.target.version_compatible and named.build.version_compatible

    h100 = TargetSpec("h100", "NVIDIA H100*", None, ">=10", "same_compute_capability", False)
    spec = make_engine_spec(tmp_path / "m.onnx", target=h100)
    assert spec.build.hardware_compatibility == "same_compute_capability"
    assert spec.build.version_compatible is False
    with pytest.raises(ValueError, match="differs from target 'h100'"):
        make_engine_spec(tmp_path / "m.onnx", target=h100, hardware_compatibility="none")
    with pytest.raises(ValueError, match="differs from target 'h100'"):
        make_engine_spec(tmp_path / "m.onnx", target=h100, version_compatible=True)
