"""The seed scenarios of manifests/vision.yaml (and the PP-OCR detector of manifests/ocr.yaml
when its model is present) built and checked on real TensorRT through `trtops apply`:
ResNet-50 at fixed batch 64 in fp32 and fp16, and the FCN segmentation net with dynamic H/W
(profile 1x3x256x256 / 1x3x1026x1282 / 1x3x1440x2560, fp16, 64 MiB workspace).

These builds take minutes: marked slow; run them in the lab with `-m gpu`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_seed_scenarios_build_and_pass_the_gate(trt, tmp_path):
    (tmp_path / "manifests").mkdir()
    names = ["vision.yaml"]
    ocr_model = REPO / "manifests" / "models" / "ch_PP-OCRv4_det_infer.onnx"
    shutil.copy(REPO / "manifests" / "vision.yaml", tmp_path / "manifests")
    made = subprocess.run([sys.executable, "-m", "trtops.examples", "-q", "--dest",
                           str(tmp_path / "manifests" / "models"), "--only", "resnet50", "fcn_resnet"],
                          cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    if ocr_model.exists():
        shutil.copy(REPO / "manifests" / "ocr.yaml", tmp_path / "manifests")
        shutil.copy(ocr_model, tmp_path / "manifests" / "models")
        names.append("ocr.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_TEST")}
    env.update(CI="true", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "trtops", "apply", "--target", "lab", "--json",
                             "--keep-going", *[f"manifests/{n}" for n in names]],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    print(result.stderr[-3000:])
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    for engine_id, engine in engines.items():
        print(f"{engine_id}: {engine['status']} in {engine['seconds'] or 0:.1f}s, "
              f"{engine['engine_bytes']} bytes; {(engine['accuracy'] or {}).get('summary')}")
    assert result.returncode == 0
    assert engines["vision/resnet50/fp32/lab"]["status"] == "built"
    assert engines["vision/resnet50/fp16/lab"]["status"] == "built"
    assert engines["vision/fcn_resnet/fp16/lab"]["status"] == "built"
    if "ocr.yaml" in names:
        assert any(e["status"] == "built" for i, e in engines.items() if i.startswith("ocr/"))
