"""`trtops repair` on real TensorRT: a small model built to fail fp16 (four heavy layers, 3x3
Convs over 256 channels by default, whose middle activation, x * 2**18, is past fp16's range
while every weight fits fp16, beside a harmless branch:
``tests/helpers.make_overflow_model(heavy=...)``) fails the gate on apply (exit 4);
repair finds the two nodes to keep in fp32 within a small budget, the repaired engine passes,
the written manifest plans to reuse it (same key) and the fp32 engine's key does not move.
The build log shows how keep_fp32 was applied on this TensorRT (layer precisions with
OBEY_PRECISION_CONSTRAINTS on 8.6/10, Casts in the cast model on 11).

Lab history (TensorRT 8.6.0, H100/H200, 2026-12-06): a 16-wide MatMul chain, a 64-channel
1x1 Conv chain with a 1/s**2 weight and a 128-channel 1x1 Conv chain (``conv1x1``) at levels
0 and 3 all *passed* the fp16 gate (TensorRT ran those small layers in fp32); ``conv3x3`` and
``gemm`` fail it (y all inf/nonfinite). On ``conv3x3`` repair found [overflow, scale_down] in
7 builds (6 tries: [overflow] alone and [scale_down] alone fail, so the pair is minimal), the
written manifest reused the engine, and these tests passed. On ``gemm`` the probe ranked
scale_up first and [scale_up] passed in 2 builds: with scale_up held in fp32, TensorRT (which
picks the precision of every layer without a constraint) ran ``overflow`` in fp32 too; a
repair is any list whose engine passes, and the engine it publishes is the one checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from lab_cli import trtops

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

# Which of tests/helpers.HEAVY_OVERFLOW_KINDS: the lab job runs a probe apply of each first and
# passes the one whose fp16 engine fails the gate on its TensorRT.
HEAVY = os.environ.get("TRTOPS_LAB_OVERFLOW_KIND", "conv3x3")

MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}   # the GPU this runs on
defaults:
  # not 0: level 0 takes the first tactic that runs, and on the lab's TensorRT 8.6 that was an
  # fp32 one for these small layers, so the fp16 engine never overflowed (2026-12-06)
  builder_optimization_level: 3
models:
  - name: chain   # fails fp16 without keep_fp32
    source: models/chain.onnx
    precisions: [fp32, fp16]
    accuracy:
      tolerances: {fp32: {atol: 1e-2, rtol: 1e-2, stat: max}, fp16: {atol: 1e-2, rtol: 1e-2, stat: max}}
"""


FP16_ONLY = MANIFEST.replace("[fp32, fp16]", "[fp16]").replace("{fp32: {atol: 1e-2, rtol: 1e-2, stat: max}, ", "{")


def _plan(root: Path) -> dict[str, dict]:
    result = trtops(root, "plan", "--json")
    assert result.returncode == 0
    return {a["id"]: a for a in json.loads(result.stdout)["actions"]}


def test_repair_finds_the_overflowing_nodes_and_the_manifest_reuses_the_engine(trt, tmp_path):
    _repair_and_reuse(tmp_path, MANIFEST)


def test_repair_of_a_strongly_typed_build_probes_and_tries_cast_models(trt, tmp_path):
    """strongly_typed: true (10.x; every fp16 build on 11): the probe and each try are built
    from the preparation stage's cast model (the try's keep lists in the cast), not refused."""
    from trtops.trt.trt_compat import strongly_typed_mode

    if strongly_typed_mode(trt) == "no":
        pytest.skip(f"TensorRT {trt.__version__} builds no strongly typed network")
    log = _repair_and_reuse(tmp_path, MANIFEST.replace("  builder_optimization_level: 3\n",
                                                       "  builder_optimization_level: 3\n  strongly_typed: true\n"))
    assert any("parsing the model cast to fp16" in line for line in log.splitlines())


def _repair_and_reuse(tmp_path: Path, manifest_text: str) -> str:
    """apply fails fp16, repair --write finds [overflow, scale_down], the manifest reuses the
    engine: its build log."""
    from helpers import make_overflow_model

    make_overflow_model(tmp_path / "manifests" / "models" / "chain.onnx", heavy=HEAVY)
    manifest = tmp_path / "manifests" / "demo.yaml"
    manifest.write_text(manifest_text)

    applied = trtops(tmp_path, "apply", "--json", "--keep-going", "--no-emit")
    assert applied.returncode == 4
    status = {e["id"]: e["status"] for e in json.loads(applied.stdout)["engines"]}
    assert status == {"demo/chain/fp32/lab": "built", "demo/chain/fp16/lab": "accuracy_failed"}
    fp32_key = _plan(tmp_path)["demo/chain/fp32/lab"]["key"]

    repaired = trtops(tmp_path, "repair", "--write", "--max-builds", "8")
    assert repaired.returncode == 0
    assert "demo/chain/fp16/lab: repaired with 2 node(s) in fp32" in repaired.stdout
    assert "keep_fp32: overflow, scale_down" in repaired.stdout
    builds = next(line for line in repaired.stdout.splitlines() if line.strip().startswith("builds:"))
    print(f"LAB: {builds.strip()}")
    latency = next(line for line in repaired.stdout.splitlines() if line.startswith("  latency: "))
    print(f"LAB: {latency.strip()}")
    assert "with keep_fp32; the failed fp16 engine" in latency and "the fp32 engine" in latency
    assert "try 1" in repaired.stderr

    text = manifest.read_text()
    assert "keep_fp32: [overflow, scale_down]" in text and "# fails fp16 without keep_fp32" in text
    actions = _plan(tmp_path)
    assert actions["demo/chain/fp16/lab"]["kind"] == "reuse"
    assert actions["demo/chain/fp32/lab"]["key"] == fp32_key
    key = actions["demo/chain/fp16/lab"]["key"]
    log = (tmp_path / "cache" / "engines" / key[:2] / key / "build.log").read_text()
    held = [line for line in log.splitlines() if "keep_fp32:" in line]
    print(f"LAB: {held}")
    assert held
    again = trtops(tmp_path, "apply", "--json", "--no-emit")
    assert again.returncode == 0
    assert {e["status"] for e in json.loads(again.stdout)["engines"]} == {"reused"}
    return log


def test_keep_fp32_in_the_manifest_builds_a_passing_engine_directly(trt, tmp_path):
    from helpers import make_overflow_model

    make_overflow_model(tmp_path / "manifests" / "models" / "chain.onnx", heavy=HEAVY)
    (tmp_path / "manifests" / "demo.yaml").write_text(
        FP16_ONLY.replace("    precisions: [fp16]\n", "    precisions: [fp16]\n"
                          "    keep_fp32_outputs: [b, y]\n"))
    applied = trtops(tmp_path, "apply", "--json", "--no-emit")
    assert applied.returncode == 0
    engine = json.loads(applied.stdout)["engines"][0]
    assert engine["status"] == "built" and engine["accuracy"]["state"] == "accepted"


def test_repair_says_what_it_tried_when_the_budget_is_too_small(trt, tmp_path):
    from helpers import make_overflow_model

    make_overflow_model(tmp_path / "manifests" / "models" / "chain.onnx", heavy=HEAVY)
    (tmp_path / "manifests" / "demo.yaml").write_text(FP16_ONLY)
    assert trtops(tmp_path, "apply", "--no-emit").returncode == 4
    result = trtops(tmp_path, "repair", "--max-builds", "2")
    assert result.returncode == 4
    assert "no repair found: the build budget ran out" in result.stdout


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
