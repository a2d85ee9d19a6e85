"""The seed scenarios of manifests/vision.yaml built and checked on real TensorRT through
`trtops apply`: ResNet-50 at fixed batch 64 in fp32 and fp16, and the FCN segmentation net
with dynamic H/W (profile 1x3x256x256 / 1x3x1026x1282 / 1x3x1440x2560, fp16, 64 MiB
workspace); and, when its model is present, the PP-OCR detector of manifests/ocr.yaml.

These builds take minutes (2.5 min for the vision scenarios on an H200 with TensorRT 8.6;
the detector's fp32 build at up to 2016x2016 took longer than 4 min, so its test
scales the profile down): marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _apply(root: Path, manifest: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_TEST")}
    # The build log streams to stderr, so a build cut off by the timeout still shows where
    # it was (set TRTOPS_LAB_APPLY_TIMEOUT below the lab call's own limit).
    env.update(CI="true", PYTHONPATH=str(REPO), TRTOPS_TRT_LOG=env.get("TRTOPS_TRT_LOG", "info"))
    timeout = float(os.environ.get("TRTOPS_LAB_APPLY_TIMEOUT", "1800"))
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "trtops", "apply", manifest, "--target", "lab",
                                 "--json", "--keep-going"],
                                cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        partial = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"trtops apply did not finish in {timeout:.0f} s; its log so far:\n{partial[-6000:]}")
    print(result.stderr[-3000:])
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    wall = time.monotonic() - started
    measuring = 0.0
    for engine_id, engine in engines.items():
        print(f"{engine_id}: {engine['status']} in {engine['seconds'] or 0:.1f}s, "
              f"{engine['engine_bytes']} bytes; {(engine['accuracy'] or {}).get('summary')}")
        perf = root / "cache" / "engines" / engine["key"][:2] / engine["key"] / "perf.json"
        if perf.is_file():
            measured = json.loads(perf.read_text(encoding="utf-8"))
            measuring += measured.get("seconds") or 0.0
            print(f"  performance: {engine.get('message')} (measuring took {measured.get('seconds')} s)")
    # The performance gate's cost (issue: at most 10% of apply's wall time): printed for
    # RESULTS.md, not asserted (a timing, not a behaviour).
    print(f"LAB: apply {manifest}: {wall:.1f} s wall, measuring {measuring:.1f} s "
          f"({100 * measuring / max(wall - measuring, 1e-9):.1f}% added)")
    return result, engines


def test_vision_seed_scenarios_build_and_pass_the_gate(trt, tmp_path):
    (tmp_path / "manifests").mkdir()
    shutil.copy(REPO / "manifests" / "vision.yaml", tmp_path / "manifests")
    made = subprocess.run([sys.executable, "-m", "trtops.examples", "-q", "--dest",
                           str(tmp_path / "manifests" / "models"), "--only", "resnet50", "fcn_resnet"],
                          cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    result, engines = _apply(tmp_path, "manifests/vision.yaml")
    assert result.returncode == 0
    assert engines["vision/resnet50/fp32/lab"]["status"] == "built"
    assert engines["vision/resnet50/fp16/lab"]["status"] == "built"
    assert engines["vision/fcn_resnet/fp16/lab"]["status"] == "built"


def test_ppocr_detector_builds_and_passes_the_gate(trt, tmp_path):
    """The real PP-OCR detector of manifests/ocr.yaml in fp32, fp16 and calibrated int8,
    with a dynamic H/W profile scaled down for the lab (opt 640x640, max 1280x1280, where
    ocr.yaml has 736x1280 and 2016x2016) and builder optimization level 0.

    Why level 0: the detector has ~50 fused pointwise layers (hard-swish, SE gates) and at
    the default level 3 TensorRT 8.6 times many PointWiseV2 tactics for each of them and
    every format combination, each kernel generated and compiled for the trial on one CPU
    core: in the lab (H100) the fp32 build took 402.6 s at level 3, 306 s of it timing
    PointWiseV2 tactics, and 45.3 s at level 0 (benchmarks/RESULTS.md). A shared timing
    cache makes later level-3 builds fast; this test is about the pipeline, not the tactics."""
    import numpy as np
    import yaml

    model = REPO / "manifests" / "models" / "ch_PP-OCRv4_det_infer.onnx"
    if not model.exists():
        pytest.skip("PP-OCR detector not present: python -m trtops.examples --only ppocr_det "
                    "--download")
    models_dir = tmp_path / "manifests" / "models"
    models_dir.mkdir(parents=True)
    shutil.copy(model, models_dir)
    doc = yaml.safe_load((REPO / "manifests" / "ocr.yaml").read_text())
    (detector,) = doc["models"]
    detector["precisions"] = ["fp32", "fp16", "int8"]
    detector["profiles"] = [{"x": {"min": [1, 3, 32, 32], "opt": [1, 3, 640, 640],
                                   "max": [1, 3, 1280, 1280]}}]
    # Calibration batches at the profile's opt shape, in the range the check feeds it.
    samples = np.random.default_rng(7).uniform(-1, 1, (16, 1, 3, 640, 640)).astype(np.float32)
    np.savez(models_dir / "ppocr_calib.npz", x=samples.reshape(16, 3, 640, 640))
    detector["calibration"] = {"data": "models/ppocr_calib.npz", "batch_size": 1}
    detector["accuracy"]["tolerances"]["int8"] = {"atol": 0.05, "rtol": 0.05, "stat": "median"}
    detector["loaders"] = []
    detector["builder_optimization_level"] = int(os.environ.get("TRTOPS_LAB_PPOCR_LEVEL", "0"))
    (tmp_path / "manifests" / "ocr.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    result, engines = _apply(tmp_path, "manifests/ocr.yaml")
    assert result.returncode == 0
    assert sorted(engines) == [f"ocr/ppocr_det/{p}/lab" for p in ("fp16", "fp32", "int8")]
    assert all(e["status"] == "built" for e in engines.values())
