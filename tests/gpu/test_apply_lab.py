"""`trtops apply` on real TensorRT: the lab manifest end to end through the CLI.

Covers: fp32/fp16/int8 (calibrated and Q/DQ) builds with dynamic profiles, an engine with
two profiles, a hardware-compatible (ampere_plus) engine, accuracy gate, loaders, a second
apply that builds nothing, changed external weights that rebuild exactly one engine, a
version-compatible build turned into a clear build error where the TensorRT lacks the lean
runtime, and a too-tight tolerance that is rejected (exit 4) with nothing emitted.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lab_cli import trtops

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(trt, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    (root / "manifests").mkdir()
    shutil.copy(REPO / "manifests" / "lab.yaml", root / "manifests" / "lab.yaml")
    made = subprocess.run(
        [sys.executable, "-m", "trtops.examples", "-q", "--dest", str(root / "manifests" / "models"),
         "--only", "tiny_cnn", "two_inputs", "tiny_qdq", "tiny_seg", "tiny_external",
         "tiny_cnn_calib"],
        cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    return root


def engines(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {e["id"]: e for e in json.loads(result.stdout)["engines"]}


def test_platform_detection_sees_the_gpu_and_tensorrt(trt):
    from trtops.keys.platform import detect_platform

    platform = detect_platform(sm_count=True)
    print(platform.describe())
    assert platform.tensorrt == trt.__version__
    assert platform.gpus and platform.gpus[0].name.startswith("NVIDIA")
    assert platform.gpus[0].sm_count and platform.gpus[0].sm_count > 0


def test_apply_lab_manifest_end_to_end(lab):
    first = trtops(lab, "apply", "--json", "--keep-going")
    assert first.returncode == 0, first.stdout[-3000:]
    result = engines(first)
    expected = {"lab/tiny_cnn/fp32/lab", "lab/tiny_cnn/fp16/lab", "lab/tiny_cnn/int8/lab",
                "lab/tiny_cnn_portable/fp16/ampere_plus", "lab/two_inputs/fp32/lab",
                "lab/two_inputs/fp16/lab", "lab/tiny_qdq/int8/lab", "lab/tiny_seg/fp16/lab",
                "lab/tiny_external/fp32/lab"}
    assert set(result) == expected
    for engine_id, engine in result.items():
        print(f"{engine_id}: {engine['status']} in {engine['seconds']:.1f}s, "
              f"{engine['engine_bytes']} bytes; {engine['accuracy']['summary']}")
        assert engine["status"] == "built", engine
        assert engine["accuracy"]["state"] == "accepted"
    cache = lab / "cache"
    portable = result["lab/tiny_cnn_portable/fp16/ampere_plus"]["key"]
    meta = json.loads((cache / "engines" / portable[:2] / portable / "meta.json").read_text())
    assert meta["components"]["gpu"] == "ampere_plus"
    int8 = result["lab/tiny_cnn/int8/lab"]["key"]
    assert (cache / "engines" / int8[:2] / int8 / "calibration.cache").stat().st_size > 0
    two = result["lab/two_inputs/fp16/lab"]["key"]
    meta = json.loads((cache / "engines" / two[:2] / two / "meta.json").read_text())
    assert len(meta["io"]["profiles"]) == 2
    assert list((cache / "timing").rglob("*.cache")), "timing cache not kept"

    # The emitted loader runs its engine (no trtops needed) and agrees with ONNX Runtime.
    loaders = sorted((lab / "out" / "python").rglob("*.py"))
    assert loaders, "no python loaders written"
    seg = next(p for p in loaders if "tiny_seg" in p.name)
    spec = importlib.util.spec_from_file_location("seg_loader", seg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    image = np.random.default_rng(0).random((1, 3, 100, 130), dtype=np.float32)
    with module.Engine() as engine:
        out = engine.infer(input=image)
    import onnxruntime as ort

    reference = ort.InferenceSession(str(lab / "manifests" / "models" / "tiny_seg.onnx"),
                                     providers=["CPUExecutionProvider"]).run(None, {"input": image})[0]
    got = next(iter(out.values()))
    assert got.shape == reference.shape
    assert float(np.median(np.abs(got - reference))) < 1e-2
    assert list((lab / "out" / "triton").rglob("config.pbtxt"))

    # A second apply builds nothing.
    second = trtops(lab, "apply", "--json")
    assert second.returncode == 0
    assert {e["status"] for e in engines(second).values()} == {"reused"}

    # New external weights (the .onnx file itself unchanged): exactly one rebuild.
    from trtops.examples.models import make_external_data

    make_external_data(lab / "manifests" / "models" / "tiny_external.onnx", seed=99)
    third = trtops(lab, "apply", "--json")
    assert third.returncode == 0
    rebuilt = [i for i, e in engines(third).items() if e["status"] == "built"]
    assert rebuilt == ["lab/tiny_external/fp32/lab"]


VERSION_COMPATIBLE = """
version: 1
targets:
  portable: {gpu: any, version_compatible: true}
models:
  - name: tiny_cnn
    source: models/tiny_cnn.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [8, 3, 32, 32], max: [32, 3, 32, 32]}
"""

TOO_TIGHT = """
version: 1
targets:
  lab: {gpu: any}
models:
  - name: strict
    source: models/tiny_cnn.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [8, 3, 32, 32], max: [32, 3, 32, 32]}
    accuracy:
      tolerances:
        fp16: {atol: 0.0000001, rtol: 0.0000001, stat: max}
    loaders: [python]
"""


def _project(lab: Path, name: str, text: str) -> Path:
    root = lab.parent / name
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    shutil.copytree(lab / "manifests" / "models", root / "manifests" / "models", dirs_exist_ok=True)
    (root / "manifests" / f"{name}.yaml").write_text(text)
    return root


def test_version_compatible_build_fails_clearly_on_8_and_works_on_10(lab, trt_version):
    root = _project(lab, "vc", VERSION_COMPATIBLE)
    result = trtops(root, "apply", "--json")
    engine = engines(result)["vc/tiny_cnn/fp16/portable"]
    print(engine["status"], engine["message"])
    assert "Traceback" not in result.stderr
    if trt_version < (10,):
        # TensorRT 8.6's wheel carries no lean runtime: its version-compatible builds end
        # in "Invalid Engine", which trtops reports as a clear build failure (exit 3).
        assert result.returncode == 3, result.stdout[-2000:]
        assert engine["status"] == "build_failed"
        assert "lean runtime" in engine["message"] or "version-compatible" in engine["message"]
        assert not list((root / "cache" / "engines").rglob("meta.json"))
    else:
        assert result.returncode == 0, result.stdout[-2000:]
        assert engine["status"] == "built"


def test_too_tight_tolerance_is_rejected_and_nothing_is_emitted(lab):
    root = _project(lab, "tight", TOO_TIGHT)
    result = trtops(root, "apply", "--json")
    assert result.returncode == 4, result.stdout[-2000:]
    engine = engines(result)["tight/strict/fp16/lab"]
    print(engine["message"])
    assert engine["status"] == "accuracy_failed" and engine["accuracy"]["state"] == "rejected"
    assert not (root / "out").exists() or not list((root / "out").rglob("*.py"))
    plan = trtops(root, "plan")
    assert "rejected" in plan.stdout
