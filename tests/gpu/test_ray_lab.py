"""One real engine through Ray (GPU lab): a local Ray cluster whose head node has the lab's
GPU and the ``trtops_gpu:<signature>`` resource for it; ``trtops apply --executor ray``
probes the cluster, plans for it, builds and checks a fp16 engine in a Ray task (TensorRT
and Polygraphy in the Ray worker), and the parent publishes it. Skipped without TensorRT,
a GPU or Ray (the optional extra ``trtops[ray]``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

MANIFEST = """
version: 1
defaults:
  workspace: 256MiB
targets:
  lab: {gpu: any}
models:
  - name: tiny_cnn
    source: models/tiny_cnn.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [8, 3, 32, 32], max: [32, 3, 32, 32]}
    accuracy:
      tolerances:
        fp16: {atol: 0.01, rtol: 0.01}
    targets: [lab]
"""


@pytest.fixture
def ray_gpu_cluster(trt, tmp_path):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from trtops.executors.ray_executor import node_resources
    from trtops.keys.platform import detect_platform

    platform = detect_platform(refresh=True)
    resources = node_resources(platform)
    gpu = platform.gpus[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # One GPU for Ray, and one unit of the GPU model's resource to match it.
        first = next(iter(resources))
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 4, "num_gpus": 1, "resources": {first: 1}, "include_dashboard": False,
            "env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                         "RAY_AUTH_MODE": "disabled"},
        })
        try:
            yield cluster.address, gpu, first
        finally:
            cluster.shutdown()


def test_a_real_engine_is_built_and_checked_in_a_ray_task(ray_gpu_cluster, tmp_path):
    from trtops.examples import models

    address, gpu, resource = ray_gpu_cluster
    (tmp_path / "manifests").mkdir()
    models.make_tiny_cnn(tmp_path / "manifests" / "models" / "tiny_cnn.onnx")
    (tmp_path / "manifests" / "ray.yaml").write_text(MANIFEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_TEST", "GITHUB_"))}
    env.update({"CI": "true", "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"})
    result = subprocess.run([sys.executable, "-m", "trtops", "apply", "--executor", "ray", "--address", address,
                             "--ray-timeout", "240", "--json", "--no-emit"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    print(result.stderr[-4000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (engine,) = json.loads(result.stdout)["engines"]
    assert engine["status"] == "built"
    assert engine["accuracy"]["state"] == "accepted"  # Polygraphy ran the engine in the Ray worker
    entry = tmp_path / "cache" / "engines" / engine["key"][:2] / engine["key"]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["gpu"]["name"] == gpu.name
    log = (entry / "build.log").read_text()
    assert "executor=ray" in log and resource in log

    # the plan is a real TensorRT engine for this GPU
    import tensorrt as trt

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    assert runtime.deserialize_cuda_engine((entry / "engine.plan").read_bytes()) is not None

    again = subprocess.run([sys.executable, "-m", "trtops", "apply", "--executor", "ray", "--address", address,
                            "--json", "--no-emit"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [e["status"] for e in json.loads(again.stdout)["engines"]] == ["reused"]
