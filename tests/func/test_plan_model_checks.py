"""`trtops plan` checks every model and data file of every engine, skipped ones included: a
broken model is exit 1 whatever the platform (this machine, where engines without their
TensorRT or GPU are skipped, or another one given with --platform / --tensorrt ...)."""

from __future__ import annotations

import json

import pytest
from helpers import make_conv_model

from trtops.cli import main

H100_FILE = {
    "format": "trtops-platform", "version": 1, "tensorrt": "10.13.3.9",
    "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}],
}
PROFILE = "      - {input}: {{min: [1, 3, 8, 8], opt: [1, 3, 16, 16], max: [1, 3, 32, 32]}}"


def _manifest(source="models/conv.onnx", precision="fp32", input_name="input", extra=""):
    return (
        "version: 1\n"
        "targets:\n"
        '  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}\n'
        "models:\n"
        "  - name: conv\n"
        f"    source: {source}\n"
        f"    precisions: [{precision}]\n"
        "    profiles:\n"
        + PROFILE.format(input=input_name) + "\n" + extra
    )


def _truncate(project):
    model = project / "models" / "conv.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])


CASES = {
    # case: (manifest text, what breaks the files, a phrase the error must contain)
    "missing-onnx": (_manifest(source="models/gone.onnx"), None, "gone.onnx"),
    "truncated-onnx": (_manifest(), _truncate, "conv.onnx"),
    "profile-input-the-model-lacks": (_manifest(input_name="image"), None, "image"),
    "int8-without-calibration": (_manifest(precision="int8"), None, "calibration"),
    "missing-calibration-file": (
        _manifest(precision="int8", extra="    calibration: {data: data/calib.npz}\n"), None,
        "calib.npz"),
}
PLATFORMS = {
    "this-machine": [],
    "platform-file": ["--platform", "h100.json"],
    "flags": ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3",
              "--compute-capability", "9.0"],
}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_model_is_exit_1_whatever_the_platform(case, platform, tmp_path, monkeypatch, capsys):
    text, breaker, phrase = CASES[case]
    make_conv_model(tmp_path / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    if breaker:
        breaker(tmp_path)
    (tmp_path / "m.yaml").write_text(text)
    (tmp_path / "h100.json").write_text(json.dumps(H100_FILE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    code = main(["plan", "m.yaml", "--detailed-exitcode", *PLATFORMS[platform]])
    err = capsys.readouterr().err
    assert code == 1, err
    assert phrase in err
    assert "m.yaml" in err or "conv.onnx" in err or "gone.onnx" in err  # names the file
    assert "internal error" not in err


def test_the_same_manifest_with_a_good_model_plans(tmp_path, monkeypatch, capsys):
    """The cases above fail for their breakage, not for the setup they share."""
    make_conv_model(tmp_path / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (tmp_path / "m.yaml").write_text(_manifest())
    (tmp_path / "h100.json").write_text(json.dumps(H100_FILE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    for flags in PLATFORMS.values():
        assert main(["plan", "m.yaml", *flags]) == 0, capsys.readouterr().err
