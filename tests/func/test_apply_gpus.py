"""`trtops apply --gpus`: one worker process per GPU, with the toolchain test double
pretending to be a 2-GPU machine (TRTOPS_FAKE_GPUS=2) and recording which
CUDA_VISIBLE_DEVICES and process built each engine. The worker processes, pipes, crash
handling, timing-cache merging and publishing are the real code paths; tests/gpu and
benchmarks/multi_gpu.py run them on real GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import PLATFORM, builds, make_project, trtops

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

BUILT = ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = {"TRTOPS_FAKE_GPUS": "2", "TRTOPS_FAKE_DEVICE_LOG": str(project / "devices.log")}
    env.update(extra)
    return env


def _devices(project: Path) -> list[dict[str, str]]:
    log = project / "devices.log"
    rows = []
    for line in log.read_text().splitlines() if log.exists() else []:
        engine, *fields = line.split()
        rows.append({"id": engine, **dict(f.split("=", 1) for f in fields)})
    return rows


def _engines(result) -> dict[str, dict]:
    return {e["id"]: e for e in json.loads(result.stdout)["engines"]}


def test_gpus_all_builds_on_every_gpu_and_the_parent_publishes(project):
    result = trtops(project, "apply", "--gpus", "all", "--json",
                    env=_env(project, TRTOPS_FAKE_BUILD_SECONDS="0.5"))
    assert result.returncode == 0, result.stderr[-3000:]
    engines = _engines(result)
    assert sorted(i for i, e in engines.items() if e["status"] == "built") == BUILT
    assert all(engines[i]["accuracy"]["state"] == "accepted" for i in BUILT)
    devices = _devices(project)
    assert sorted(d["id"] for d in devices) == BUILT  # each engine built exactly once
    assert {d["cuda"] for d in devices} == {"0", "1"}  # one worker per GPU, pinned
    # workers are isolated already: no parse preflight child (trtops.trt.parse_preflight)
    assert {d["preflight"] for d in devices} == {"False"}
    assert len({d["pid"] for d in devices}) == 2
    for engine in BUILT:
        key = engines[engine]["key"]
        entry = project / "cache" / "engines" / key[:2] / key
        assert "executor=gpus" in (entry / "build.log").read_text()
        assert json.loads((entry / "meta.json").read_text())["gpu"]["name"] == "NVIDIA H200"
    # builds that ran side by side each added to the timing cache, none was lost
    (timing,) = (project / "cache" / "timing").rglob("*.cache")
    assert timing.read_bytes().split() == [b"timing:conv/fp16", b"timing:conv/fp32", b"timing:heavy/fp32"]
    # loaders come from the parent as before; no worker left files behind
    assert any((project / "out" / "python").rglob("*.py"))
    assert not any((project / "cache" / "tmp").iterdir())

    # engines built on GPU 1 have the keys of the plan (GPU 0's model): nothing to do now
    plan = trtops(project, "plan", *PLATFORM, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    again = trtops(project, "apply", "--gpus", "all", "--json", env=_env(project))
    assert again.returncode == 0
    assert {e["status"] for e in _engines(again).values()} == {"reused", "skipped"}
    assert len(_devices(project)) == 3


def test_gpus_subset_pins_the_chosen_gpu_and_unknown_gpus_are_refused(project):
    result = trtops(project, "apply", "--gpus", "1", "--no-emit", "--json", env=_env(project))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {d["cuda"] for d in _devices(project)} == {"1"}
    assert sorted(builds(project)) == BUILT

    unknown = trtops(project, "apply", "--gpus", "3", env=_env(project))
    assert unknown.returncode == 1
    assert "no GPU 3" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = trtops(project, "apply", "--gpus", "first", env=_env(project))
    assert bad.returncode == 1 and "--gpus" in bad.stderr


def test_a_crashed_worker_fails_its_engine_and_a_new_worker_goes_on(project):
    result = trtops(project, "apply", "--gpus", "0", "--keep-going", "--json",
                    env=_env(project, TRTOPS_FAKE_CRASH="conv"))
    assert result.returncode == 3, result.stderr[-3000:]
    engines = _engines(result)
    for engine in ("demo/conv/fp32/lab", "demo/conv/fp16/lab"):
        failed = engines[engine]
        assert failed["status"] == "build_failed"
        assert "crashed (killed by SIGSEGV)" in failed["message"]
        assert "Segmentation fault" in failed["details"]  # the worker's fault report
        assert not (project / "cache" / "engines" / failed["key"][:2] / failed["key"]).exists()
    assert engines["demo/heavy/fp32/lab"]["status"] == "built"
    # every crash took its process down; each next engine got a fresh worker
    assert len({d["pid"] for d in _devices(project)}) == 3
    assert not any((project / "cache" / "tmp").iterdir())


def test_without_keep_going_no_new_build_starts_after_a_failure(project):
    result = trtops(project, "apply", "--gpus", "all", "--json",
                    env=_env(project, TRTOPS_FAKE_BUILD_FAIL="conv"))
    assert result.returncode == 3
    engines = _engines(result)
    assert engines["demo/conv/fp32/lab"]["status"] in ("build_failed", "skipped")
    assert "node 3" in engines["demo/conv/fp32/lab"]["message"] or \
        "not attempted" in engines["demo/conv/fp32/lab"]["message"]
    assert engines["demo/heavy/fp32/lab"]["status"] == "skipped"
    assert "not attempted" in engines["demo/heavy/fp32/lab"]["message"]
    assert "demo/heavy/fp32/lab" not in builds(project)


@pytest.mark.parametrize("args, message", [
    (["--gpus", "all", "--executor", "ray"], "--gpus goes with --executor gpus"),
    (["--address", "127.0.0.1:6379"], "--address needs --executor ray"),
    (["--executor", "gpus", "--ray-timeout", "5"], "--ray-timeout needs --executor ray"),
])
def test_scale_out_flags_that_do_not_go_together(project, args, message):
    result = trtops(project, "apply", *args, env=_env(project))
    assert result.returncode == 1
    assert message in result.stderr
    assert builds(project) == []
