"""`trtops apply` end to end on the CLI, with the toolchain test double standing in for
TensorRT (tests/doubles.py). Everything else is real: manifests, ONNX models, ONNX Runtime,
the cache on disk, the planner, emitters and reports. The same flows run on real TensorRT in
tests/gpu/test_apply_lab.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import PLATFORM, builds, make_project, trtops
from helpers import make_conv_model

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_apply_builds_verifies_publishes_and_emits_then_is_a_no_op(project):
    first = trtops(project, "apply", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    status = {e["id"]: e["status"] for e in doc["engines"]}
    assert status == {
        "demo/conv/fp32/lab": "built", "demo/conv/fp16/lab": "built",
        "demo/heavy/fp32/lab": "built",
        "demo/conv/fp32/h100": "skipped", "demo/conv/fp16/h100": "skipped",
    }
    assert sorted(builds(project)) == ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    # every built engine passed the gate and says so in the cache
    for engine in doc["engines"]:
        if engine["status"] == "built":
            assert engine["accuracy"]["state"] == "accepted"
            entry = project / "cache" / "engines" / engine["key"][:2] / engine["key"]
            assert {"engine.plan", "meta.json", "accuracy.json", "build.log"} <= {p.name for p in entry.iterdir()}
    # loaders for the model that asked for them, only
    emitted = {p.relative_to(project / "out").as_posix() for p in (project / "out").rglob("*") if p.is_file()}
    assert any(p.startswith("python/") and p.endswith(".py") for p in emitted)
    assert any(p.startswith("triton/") and p.endswith("config.pbtxt") for p in emitted)
    assert not any("heavy" in p for p in emitted)

    second = trtops(project, "apply", "--json")
    assert second.returncode == 0, second.stderr
    assert {e["status"] for e in json.loads(second.stdout)["engines"]} == {"reused", "skipped"}
    assert len(builds(project)) == 3  # nothing rebuilt

    plan = trtops(project, "plan", *PLATFORM, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_changed_external_weights_rebuild_exactly_one_engine(project):
    assert trtops(project, "apply").returncode == 0
    make_conv_model(project / "manifests" / "models" / "heavy.onnx", seed=3, external_data=True)
    plan = trtops(project, "plan", *PLATFORM, "--detailed-exitcode")
    assert plan.returncode == 2
    assert "heavy" in plan.stdout and "weights" in plan.stdout.lower()
    result = trtops(project, "apply", "--json")
    assert result.returncode == 0, result.stderr
    rebuilt = [e["id"] for e in json.loads(result.stdout)["engines"] if e["status"] == "built"]
    assert rebuilt == ["demo/heavy/fp32/lab"]
    assert builds(project).count("demo/heavy/fp32/lab") == 2 and len(builds(project)) == 4


def test_build_failure_exits_3_and_leaves_no_entry(project):
    result = trtops(project, "apply", "--json", env={"TRTOPS_FAKE_BUILD_FAIL": "conv"})
    assert result.returncode == 3, result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    failed = engines["demo/conv/fp32/lab"]
    assert failed["status"] == "build_failed" and "node 3" in failed["message"]
    # stopped at the first failure: the rest were not attempted
    assert engines["demo/heavy/fp32/lab"]["status"] == "skipped"
    assert "not attempted" in engines["demo/heavy/fp32/lab"]["message"]
    assert not (project / "cache" / "engines" / failed["key"][:2] / failed["key"]).exists()

    going = trtops(project, "apply", "--keep-going", "--json", env={"TRTOPS_FAKE_BUILD_FAIL": "conv"})
    assert going.returncode == 3
    statuses = {e["id"]: e["status"] for e in json.loads(going.stdout)["engines"]}
    assert statuses["demo/heavy/fp32/lab"] == "built"
    leftovers = list((project / "cache" / "tmp").glob("*")) if (project / "cache" / "tmp").exists() else []
    assert leftovers == []


def test_accuracy_failure_exits_4_keeps_the_engine_rejected_and_emits_nothing(project):
    result = trtops(project, "apply", "--keep-going", "--json", env={"TRTOPS_FAKE_PERTURB": "conv"})
    assert result.returncode == 4, result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    rejected = engines["demo/conv/fp32/lab"]
    assert rejected["status"] == "accuracy_failed"
    assert rejected["accuracy"]["state"] == "rejected"
    assert "accuracy: FAILED" in rejected["message"]
    assert engines["demo/heavy/fp32/lab"]["status"] == "built"
    assert not (project / "out" / "python").exists() or not any(
        "conv" in p.name for p in (project / "out").rglob("*"))
    # the planner remembers: no blind rebuild, and apply keeps failing until fixed
    plan = trtops(project, "plan", *PLATFORM)
    assert "rejected" in plan.stdout
    again = trtops(project, "apply")
    assert again.returncode == 4
    assert builds(project).count("demo/conv/fp32/lab") == 1


def test_saved_plan_is_applied_exactly_and_refused_once_stale(project):
    saved = trtops(project, "plan", *PLATFORM, "-o", "plan.json")
    assert saved.returncode == 0, saved.stderr
    assert trtops(project, "apply", "plan.json").returncode == 0
    assert len(builds(project)) == 3
    stale = trtops(project, "apply", "plan.json")
    assert stale.returncode == 1
    assert "out of date" in stale.stderr and "Traceback" not in stale.stderr


def test_target_restriction_and_unknown_target(project):
    result = trtops(project, "apply", "--target", "h100", "--json")
    assert result.returncode == 0
    assert {e["target"] for e in json.loads(result.stdout)["engines"]} == {"h100"}
    assert builds(project) == []
    unknown = trtops(project, "apply", "--target", "a100")
    assert unknown.returncode == 1 and "a100" in unknown.stderr


def test_apply_without_tensorrt_is_an_environment_error(project):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_")}
    environ["CI"] = "true"
    result = subprocess.run([sys.executable, "-m", "trtops", "apply"], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    if "tensorrt" in sys.modules or _has_tensorrt():
        pytest.skip("TensorRT is installed here")
    assert result.returncode == 5, result.stdout + result.stderr
    # One upfront error: no cascade of "not attempted" lines, no message said twice.
    assert result.stderr.count("error:") == 1, result.stderr
    assert "TensorRT is not installed here" in result.stderr
    assert "not attempted" not in result.stdout + result.stderr
    assert "not installed here) (" not in result.stdout + result.stderr
    # verify too: one error, exit 5 (docs/exit-codes.md), not a table of skipped engines
    verify = subprocess.run([sys.executable, "-m", "trtops", "verify"], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 5, verify.stdout + verify.stderr
    assert verify.stderr.count("error:") == 1 and "cannot check the" in verify.stderr
    assert "skipped" not in verify.stdout


def _has_tensorrt() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def test_verify_rechecks_cached_engines_with_new_tolerances(project):
    assert trtops(project, "apply", "--no-emit").returncode == 0
    ok = trtops(project, "verify", "--json")
    assert ok.returncode == 0, ok.stderr
    statuses = {e["id"]: e["status"] for e in json.loads(ok.stdout)["engines"]}
    assert statuses["demo/conv/fp32/lab"] == "verified"
    # A corrupted engine file is caught by its sha256 before anything deserializes it.
    key = next(e["key"] for e in json.loads(ok.stdout)["engines"] if e["id"] == "demo/heavy/fp32/lab")
    plan_file = project / "cache" / "engines" / key[:2] / key / "engine.plan"
    plan_file.chmod(0o644)
    plan_file.write_bytes(plan_file.read_bytes()[:-1] + b"\0")
    bad = trtops(project, "verify", "--json")
    assert bad.returncode == 1
    engines = {e["id"]: e for e in json.loads(bad.stdout)["engines"]}
    assert "sha256" in engines["demo/heavy/fp32/lab"]["message"]


def test_concurrent_applies_on_one_cache_build_each_engine_once(project):
    """8 applies at once on one local cache: every engine is built exactly once."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: trtops(project, "apply", "--no-emit", "--json"), range(8)))
    assert [r.returncode for r in results] == [0] * 8, [r.stderr[-500:] for r in results]
    assert sorted(builds(project)) == ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    check = trtops(project, "cache", "verify")
    assert check.returncode == 0, check.stdout + check.stderr
