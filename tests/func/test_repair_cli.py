"""`trtops repair` on the CLI with the toolchain double (tests/doubles.py): in fp16 the double
computes the nodes named in TRTOPS_FAKE_FP16_BAD wrongly unless keep_fp32 holds them, so the
gate fails until repair finds them. Everything else is real (manifests, ONNX models, ONNX
Runtime, the gate, the cache, the planner). tests/gpu/test_repair.py does this on TensorRT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from apply_helpers import PLATFORM, builds, trtops
from helpers import make_overflow_model, write_manifest

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

MANIFEST = """\
version: 1
# the lab machine
targets:
  lab: {gpu: any}
models:
  - name: chain          # keep this comment
    source: models/chain.onnx
    precisions: [fp32, fp16]
    accuracy:
      tolerances: {fp16: {atol: 1e-3, rtol: 1e-3, stat: max}}
"""
BAD = {"TRTOPS_FAKE_FP16_BAD": "overflow,scale_down"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_overflow_model(tmp_path / "manifests" / "models" / "chain.onnx")
    write_manifest(tmp_path / "manifests", MANIFEST, name="demo.yaml")
    return tmp_path


def test_repair_finds_the_nodes_writes_the_patch_and_plan_reuses_the_engine(project):
    applied = trtops(project, "apply", "--json", "--keep-going", env=BAD)
    assert applied.returncode == 4, applied.stdout + applied.stderr
    before = json.loads(trtops(project, "plan", *PLATFORM, "--json").stdout)

    repaired = trtops(project, "repair", "--write", "--max-builds", "8", env=BAD)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    out = repaired.stdout
    assert "demo/chain/fp16/lab: repaired with 2 node(s) in fp32" in out
    assert "keep_fp32: overflow, scale_down" in out or "keep_fp32: scale_down, overflow" in out
    assert "+    keep_fp32: [" in out  # the unified diff
    # what the fp32 nodes cost: the repaired engine, the failed one (measured by repair) and fp32
    latency = next(line for line in out.splitlines() if line.startswith("  latency: "))
    assert re.fullmatch(r"  latency: [0-9.]+ ms at opt with keep_fp32; the failed fp16 engine [0-9.]+ ms "
                        r"\([+-][0-9.]+%\); the fp32 engine [0-9.]+ ms", latency), latency
    assert "probing intermediate tensors" in repaired.stderr and "try 1" in repaired.stderr
    # one probe and a few tries, within the budget
    assert len(builds(project)) - 2 <= 8

    text = (project / "manifests" / "demo.yaml").read_text()
    assert "# keep this comment" in text and "# the lab machine" in text
    assert "    keep_fp32: [" in text and "overflow" in text and "scale_down" in text
    assert "harmless" not in text and "scale_up" not in text

    # the manifest as written builds the engine repair published: reuse, same key; fp32 untouched
    after = json.loads(trtops(project, "plan", *PLATFORM, "--json").stdout)
    actions = {a["id"]: a for a in after["actions"]}
    assert actions["demo/chain/fp16/lab"]["kind"] == "reuse"
    fp32_before = {a["id"]: a for a in before["actions"]}["demo/chain/fp32/lab"]["key"]
    assert actions["demo/chain/fp32/lab"]["key"] == fp32_before
    again = trtops(project, "apply", env=BAD)
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_latency_line_leaves_out_a_measurement_of_another_gpu_model(project):
    # The fp32 engine's perf.json as a pull from a machine with another GPU of the same
    # compute capability leaves it: its numbers are no comparison for this GPU's.
    from trtops.cache.entries import read_perf, write_perf
    from trtops.cache.local import LocalStore

    assert trtops(project, "apply", "--json", "--keep-going", env=BAD).returncode == 4
    plan = json.loads(trtops(project, "plan", *PLATFORM, "--json").stdout)
    fp32 = {a["id"]: a for a in plan["actions"]}["demo/chain/fp32/lab"]["key"]
    store = LocalStore(project / "cache")
    document = read_perf(store, fp32)
    document["gpu"]["name"] = "NVIDIA H100 80GB HBM3"
    write_perf(store, fp32, document)

    repaired = trtops(project, "repair", "--max-builds", "8", env=BAD)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    latency = next(line for line in repaired.stdout.splitlines() if line.startswith("  latency: "))
    assert "the failed fp16 engine" in latency and "the fp32 engine" not in latency, latency


def test_repair_without_a_failed_engine_is_exit_1(project):
    assert trtops(project, "apply").returncode == 0
    result = trtops(project, "repair")
    assert result.returncode == 1
    assert "no engine of these manifests failed its accuracy gate" in result.stderr
    named = trtops(project, "repair", "--engine", "demo/chain/fp16/lab")
    assert named.returncode == 1 and "passed its accuracy gate" in named.stderr
    unknown = trtops(project, "repair", "--engine", "demo/chain/fp16/lap")
    assert unknown.returncode == 1 and "did you mean 'demo/chain/fp16/lab'" in unknown.stderr


def test_repair_within_too_small_a_budget_is_exit_4_and_says_what_was_tried(project):
    assert trtops(project, "apply", "--keep-going", env=BAD).returncode == 4
    result = trtops(project, "repair", "--max-builds", "2", env=BAD)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "no repair found: the build budget ran out" in result.stdout
    assert "keep_fp32" not in (project / "manifests" / "demo.yaml").read_text()


def test_apply_repair_repairs_what_failed_and_prints_the_patch(project):
    result = trtops(project, "apply", "--keep-going", "--repair", env=BAD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo/chain/fp16/lab: repaired with 2 node(s) in fp32" in result.stdout
    assert "+    keep_fp32: [overflow, scale_down]" in result.stdout
    assert "keep_fp32" not in (project / "manifests" / "demo.yaml").read_text()  # printed, not written


TRT11 = ("--tensorrt", "11.0.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0")


def test_repair_on_tensorrt_11_probes_and_tries_the_cast_model(project):
    """TensorRT 11 builds fp16 strongly typed from the preparation stage's cast model: the
    probe is that cast (of the model with its intermediate tensors as outputs) and each try
    is cast with its keep lists, so the written list plans the published engine (reuse). The
    double's "engine" is the model it is given: the chain x*s*s/s**2 overflows in the fp16
    cast itself, no injected fault. (Holding scale_down alone passes here, likely because ONNX
    Runtime's CPU runs fp16 Mul in float32 and drops
    the cast pairs between; TensorRT needs overflow
    too: tests/gpu/test_repair.py.)"""
    device_log = project / "device.log"
    env = {"TRTOPS_FAKE_TENSORRT": "11.0.0", "TRTOPS_FAKE_DEVICE_LOG": str(device_log)}
    assert trtops(project, "apply", "--keep-going", env=env).returncode == 4
    device_log.unlink()

    repaired = trtops(project, "repair", "--write", "--max-builds", "8", env=env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "demo/chain/fp16/lab: repaired with " in repaired.stdout, repaired.stdout
    probe, *tries = device_log.read_text().splitlines()
    # the probe: the cast of the model with its intermediate tensors marked, made per run
    assert "/repair-probe-" in probe and probe.split()[4].endswith("/cast/model.onnx"), probe
    # every try: a cast model of the cache's prepared/ (the one apply makes for those lists)
    assert tries and all("/prepared/" in line for line in tries), tries
    text = (project / "manifests" / "demo.yaml").read_text()
    written = re.search(r"    keep_fp32: \[(.*)\]", text)
    assert written and "scale_down" in written.group(1).split(", "), text

    after = json.loads(trtops(project, "plan", *TRT11, "--json").stdout)
    actions = {a["id"]: a for a in after["actions"]}
    assert actions["demo/chain/fp16/lab"]["kind"] == "reuse", actions
    assert f"engine: {actions['demo/chain/fp16/lab']['key']}" in repaired.stdout  # the same key
    again = trtops(project, "apply", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
