"""The performance gate on real TensorRT (the GPU lab): `apply` measures every accepted
engine into perf.json with sane numbers, `select: fastest` picks fp32 or fp16 and says why,
`bench` measures again without rebuilding, and a regression against the previous engine
is caught by max_regression (exit 6) in `apply` and in `bench`.

A tiny model's real speed differences are within the GPU's noise, so the regressions are
made deterministic by doctoring the previous measurement (perf.json is mutable; the
baseline is read from it) to be 10x faster than the engine really is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from lab_cli import trtops

MANIFEST = """\
version: 1
defaults:
  builder_optimization_level: {level}
  performance: {{warmup: 10, iterations: 50, repeats: 3{extra}}}
targets:
  lab: {{gpu: any}}
models:
  - name: tiny
    source: models/tiny_cnn.onnx
    precisions: [fp32, fp16]
    select: fastest
    profiles:
      - input: {{min: [1, 3, 32, 32], opt: [8, 3, 32, 32], max: [16, 3, 32, 32]}}
    accuracy:
      tolerances: {{fp16: {{atol: 0.01, rtol: 0.01}}}}
    performance:
      shapes: {{b1: {{input: [1, 3, 32, 32]}}}}
    loaders: [python]
"""


def _write(root: Path, *, level: int = 0, regression: str | None = None) -> None:
    extra = f", max_regression: {regression}" if regression else ""
    (root / "m.yaml").write_text(MANIFEST.format(level=level, extra=extra))


@pytest.fixture(scope="module")
def project(trt, tmp_path_factory) -> Path:
    from trtops.examples import models as examples

    root = tmp_path_factory.mktemp("perf")
    examples.make_tiny_cnn(root / "models" / "tiny_cnn.onnx")
    (root / "trtops.lock").mkdir()
    _write(root)
    return root


def _engines(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {e["id"]: e for e in json.loads(result.stdout)["engines"]}


def _perf_path(root: Path, key: str) -> Path:
    return root / "cache" / "engines" / key[:2] / key / "perf.json"


def _doctor_faster(path: Path, factor: float = 10.0) -> None:
    """Make a stored measurement look ``factor`` times faster, with no spread."""
    document = json.loads(path.read_text(encoding="utf-8"))
    for case in document["cases"]:
        for stats in ("latency_ms", "gpu_ms"):
            if case.get(stats):
                case[stats] = {k: v / factor for k, v in case[stats].items()}
        case["repeat_medians_ms"] = [v / factor for v in case["repeat_medians_ms"]]
        case["throughput"] *= factor
        case["cv"] = 0.0
    path.write_text(json.dumps(document))


def test_apply_measures_selects_and_records(project):
    result = trtops(project, "apply", "m.yaml", "--json", "--emit-dir", "out")
    assert result.returncode == 0
    engines = _engines(result)
    for precision in ("fp32", "fp16"):
        engine = engines[f"m/tiny/{precision}/lab"]
        assert engine["status"] == "built"
        perf = json.loads(_perf_path(project, engine["key"]).read_text())
        assert perf["gpu"]["name"].startswith("NVIDIA") and perf["tensorrt"]
        assert [c["label"] for c in perf["cases"]] == ["opt", "b1"]
        opt, b1 = perf["cases"]
        assert opt["shapes"] == {"input": [8, 3, 32, 32]} and opt["batch"] == 8
        assert b1["batch"] == 1 and opt["iterations"] == 50
        assert len(opt["repeat_medians_ms"]) == 3
        for case in perf["cases"]:
            stats = case["latency_ms"]
            assert 0 < stats["min"] <= stats["median"] <= stats["p90"] <= stats["p99"] < 1000
            assert case["throughput"] == pytest.approx(case["batch"] / stats["median"] * 1000, rel=0.01)
            assert 0 <= case["cv"] < 0.5
        print(precision, engine["message"])
    choice = json.loads(result.stdout)["selections"]["m/tiny/lab"]
    assert choice["precision"] in ("fp32", "fp16") and " ms at opt" in choice["reason"]
    print("select: fastest chose", choice["precision"], "-", choice["reason"])
    assert f"from tiny_{choice['precision']}_lab import *" in (project / "out" / "python" / "tiny_lab.py").read_text()
    lock = json.loads(next((project / "trtops.lock").glob("*.json")).read_text())
    assert lock["engines"]["m/tiny/fp16/lab"]["performance"]["cases"]["opt"]["median_ms"] > 0

    status = trtops(project, "status", "m.yaml")
    assert status.returncode == 0 and "ms " in status.stdout and "/s" in status.stdout


def test_bench_measures_again_and_catches_a_regression(project):
    before = _engines(trtops(project, "apply", "m.yaml", "--json", "--no-emit"))
    key = before["m/tiny/fp32/lab"]["key"]
    bench = trtops(project, "bench", "m.yaml", "--json")
    assert bench.returncode == 0
    assert _engines(bench)["m/tiny/fp32/lab"]["status"] == "benched"
    # the measurement bench replaces looked 10x faster: a regression beyond any noise
    _doctor_faster(_perf_path(project, key))
    _write(project, regression="10%")
    bench = trtops(project, "bench", "m.yaml", "--json", "--engine", "m/tiny/fp32/lab")
    assert bench.returncode == 6
    engine = _engines(bench)["m/tiny/fp32/lab"]
    assert engine["status"] == "perf_failed" and "limit 10%" in engine["message"]


def test_apply_catches_a_regression_against_the_previous_engine(project):
    _write(project)
    first = trtops(project, "apply", "m.yaml", "--json", "--no-emit")
    old = _engines(first)["m/tiny/fp32/lab"]["key"]
    _doctor_faster(_perf_path(project, old))
    # another engine of the same logical engine (optimization level 1): compared with the
    # doctored previous one
    _write(project, level=1, regression="10%")
    result = trtops(project, "apply", "m.yaml", "--json", "--no-emit", "--junit", "junit.xml")
    assert result.returncode == 6
    engine = _engines(result)["m/tiny/fp32/lab"]
    assert engine["status"] == "perf_failed" and engine["key"] != old
    assert "before (+" in engine["message"] and "limit 10%" in engine["message"]
    assert 'type="perf_failed"' in (project / "junit.xml").read_text()
