"""`trtops apply --executor ray` on a local Ray cluster whose two nodes stand in for two GPU
models (tests/ray/conftest.py): every build lands on the node with its GPU model, inputs
travel through the object store, the parent publishes; builds no node can run are reported
at once; a task past --ray-timeout or a crashed worker fails only its engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import make_conv_model, write_manifest
from ray_helpers import H200, L4, TESTS

PROFILE = "      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}"

MANIFEST = f"""
version: 1
targets:
  h200: {{gpu: "NVIDIA H200"}}
  l4: {{gpu: "NVIDIA L4"}}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    profiles:
{PROFILE}
    targets: [h200, l4]
  - name: heavy
    source: models/heavy.onnx
    precisions: [fp32]
    profiles:
{PROFILE}
    targets: [l4]
"""


def _project(root: Path, manifest: str, models: dict[str, bool]) -> Path:
    for seed, (name, external) in enumerate(models.items(), start=1):
        make_conv_model(root / "manifests" / "models" / f"{name}.onnx", seed=seed, external_data=external)
    write_manifest(root / "manifests", manifest, name="demo.yaml")
    return root


def _trtops(project: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_", "GITHUB_"))}
    environ.update({
        "TRTOPS_TEST_TOOLCHAIN": "doubles:FakeToolchain",
        "PYTHONPATH": os.pathsep.join([str(TESTS), environ.get("PYTHONPATH", "")]),
        "RAY_AUTH_MODE": "disabled",
        "CI": "true",
    })
    return subprocess.run([sys.executable, "-m", "trtops", *args], cwd=project, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


def _devices(log: Path) -> dict[str, dict[str, str]]:
    """engine id -> fields of its (last) line in the device log."""
    seen = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        engine, *fields = line.split()
        seen[engine] = dict(f.split("=", 1) for f in fields)
    return seen


def test_each_build_runs_on_the_node_with_its_gpu_model(ray_cluster, tmp_path):
    address, device_log = ray_cluster
    project = _project(tmp_path, MANIFEST, {"conv": False, "heavy": True})
    first = _trtops(project, "apply", "--executor", "ray", "--address", address, "--json", "--no-emit")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-4000:]
    engines = {e["id"]: e for e in json.loads(first.stdout)["engines"]}
    assert {i: e["status"] for i, e in engines.items()} == {
        "demo/conv/fp32/h200": "built", "demo/conv/fp32/l4": "built", "demo/heavy/fp32/l4": "built"}

    devices = _devices(device_log)
    assert devices["demo/conv/fp32/h200"]["gpu"] == "NVIDIA_H200"
    assert devices["demo/conv/fp32/l4"]["gpu"] == "NVIDIA_L4"
    assert devices["demo/heavy/fp32/l4"]["gpu"] == "NVIDIA_L4"
    for engine in engines:
        assert devices[engine]["cuda"] == "0"  # Ray gave the task the node's one GPU
        assert devices[engine]["preflight"] == "False"  # a Ray worker is isolated already
        # the model (external weights included) came through the object store
        assert not devices[engine]["model"].startswith(str(project))
        assert "trtops-ray-build-" in devices[engine]["model"]

    for engine_id, signature, gpu in [("demo/conv/fp32/h200", H200, "NVIDIA H200"),
                                      ("demo/heavy/fp32/l4", L4, "NVIDIA L4")]:
        key = engines[engine_id]["key"]
        entry = project / "cache" / "engines" / key[:2] / key
        assert json.loads((entry / "meta.json").read_text())["gpu"]["name"] == gpu
        assert engines[engine_id]["accuracy"]["state"] == "accepted"
        log = (entry / "build.log").read_text()
        assert "executor=ray" in log and f"trtops_gpu:{signature}" in log
    timing = list((project / "cache" / "timing").rglob("*.cache"))
    assert sorted(p.stem for p in timing) == sorted([H200, L4])

    second = _trtops(project, "apply", "--executor", "ray", "--address", address, "--json", "--no-emit")
    assert second.returncode == 0, second.stderr[-4000:]
    assert {e["status"] for e in json.loads(second.stdout)["engines"]} == {"reused"}


def test_builds_no_node_can_run_are_reported_at_once(ray_cluster, tmp_path, monkeypatch):
    from doubles import FakeToolchain

    from trtops.cache import open_store
    from trtops.executors.ray_executor import RayExecutor
    from trtops.keys.platform import GpuInfo, Platform
    from trtops.ops.apply import ApplyOptions, apply_plan
    from trtops.plan import make_plan
    from trtops.process_exit import teardown_skipped_for

    address, _ = ray_cluster
    manifest = MANIFEST.replace('l4: {gpu: "NVIDIA L4"}', 'a100: {gpu: "NVIDIA A100*"}').replace(
        "targets: [h200, l4]", "targets: [h200, a100]").replace("targets: [l4]", "targets: [a100]")
    project = _project(tmp_path, manifest, {"conv": False, "heavy": False})
    monkeypatch.chdir(project)
    # planned for a machine with an A100 too (a saved plan, a node that left the cluster)
    platform = Platform(tensorrt="8.6.0", gpus=(GpuInfo(0, "NVIDIA H200", "9.0"),
                                                GpuInfo(1, "NVIDIA A100-SXM4-80GB", "8.0")))
    store = open_store(project / "cache")
    plan = make_plan([project / "manifests"], store, platform)
    # a build that waited for a node that never comes would end by this timeout, with
    # "did not finish" in its message (the assertion below, not a wall-clock bound)
    executor = RayExecutor(address, timeout=600)
    try:
        result = apply_plan(plan, store, toolchain=FakeToolchain(),
                            options=ApplyOptions(keep_going=True, executor=executor))
    finally:
        executor.close()
    # the CLI would end this process without Ray's teardown, which can hang (process_exit)
    assert "ray" in teardown_skipped_for()
    outcomes = {o.id: o for o in result.outcomes}
    assert outcomes["demo/conv/fp32/h200"].status == "built"
    for engine in ("demo/conv/fp32/a100", "demo/heavy/fp32/a100"):
        assert outcomes[engine].status == "skipped"
        assert "trtops_gpu:cc8.0-nvidia-a100-sxm4-80gb" in outcomes[engine].message
        assert "ray start" in outcomes[engine].message
        assert "did not finish" not in outcomes[engine].message
    assert int(result.exit_code()) == 0


# Two tests, not one: a crash and a timeout in one run raced (under load the timeout of a
# task queued behind the crash could fire first). Neither test below depends on how fast
# the machine is: the slow build waits 120 s for nothing, far past its 2 s limit, and the
# crash test has no time limit at all.
ONE_MODEL = """
version: 1
targets:
  h200: {{gpu: "NVIDIA H200"}}
models:
  - name: {name}
    source: models/{name}.onnx
    precisions: [fp32]
    profiles:
{profile}
"""


def test_a_task_past_the_timeout_fails_only_its_engine_and_frees_its_gpu(ray_cluster, tmp_path):
    address, _ = ray_cluster
    project = _project(tmp_path, ONE_MODEL.format(name="slow", profile=PROFILE), {"slow": False, "conv": False})
    write_manifest(project / "manifests", ONE_MODEL.format(name="conv", profile=PROFILE), name="conv.yaml")
    timed_out = _trtops(project, "apply", "manifests/demo.yaml", "--executor", "ray", "--address",
                        address, "--ray-timeout", "2", "--json", "--no-emit")
    assert timed_out.returncode == 3, timed_out.stdout[-2000:] + timed_out.stderr[-4000:]
    engines = {e["id"]: e for e in json.loads(timed_out.stdout)["engines"]}
    assert engines["demo/slow/fp32/h200"]["status"] == "build_failed"
    assert "did not finish within 2s" in engines["demo/slow/fp32/h200"]["message"]
    # The cancelled task gave the node's only GPU back: it builds the next engine (without
    # a time limit, so how long that takes on a loaded machine does not matter).
    after = _trtops(project, "apply", "manifests/conv.yaml", "--executor", "ray", "--address",
                    address, "--json", "--no-emit")
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-4000:]
    engines = {e["id"]: e for e in json.loads(after.stdout)["engines"]}
    assert engines["conv/conv/fp32/h200"]["status"] == "built"


def test_a_crashed_worker_fails_only_its_engine(ray_cluster, tmp_path):
    address, _ = ray_cluster
    manifest = f"""
version: 1
targets:
  h200: {{gpu: "NVIDIA H200"}}
  l4: {{gpu: "NVIDIA L4"}}
models:
  - name: crashy
    source: models/crashy.onnx
    precisions: [fp32]
    profiles:
{PROFILE}
    targets: [l4]
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    profiles:
{PROFILE}
    targets: [h200, l4]
"""
    project = _project(tmp_path, manifest, {"crashy": False, "conv": False})
    result = _trtops(project, "apply", "--executor", "ray", "--address", address,
                     "--keep-going", "--json", "--no-emit")
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-4000:]
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    assert engines["demo/crashy/fp32/l4"]["status"] == "build_failed"
    assert "Ray task building demo/crashy/fp32/l4 failed" in engines["demo/crashy/fp32/l4"]["message"]
    # the crash freed the L4: the other engines were built on both nodes
    assert engines["demo/conv/fp32/h200"]["status"] == "built"
    assert engines["demo/conv/fp32/l4"]["status"] == "built"
