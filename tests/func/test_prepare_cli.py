"""`trtops prepare` and the preparation stage through plan and apply, on the CLI (the
toolchain double stands in for TensorRT: its "engine" is the model it is given, so apply
here shows the builder gets the prepared model and the gate compares against it)."""

from __future__ import annotations

import json
import re

import pytest
from apply_helpers import PLATFORM, trtops
from helpers import (
    make_rate_branching_model,
    make_shared_dims_classifier,
    write_manifest,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx_graphsurgeon")

MANIFEST = """
version: 1
targets: {lab: {gpu: any}}
models:
  - name: cls
    source: models/cls.onnx
    precisions: [fp32]
    prepare: {}
    profiles:
      - x: {min: [1, 3, 16, 16], opt: [2, 3, 32, 48], max: [4, 3, 48, 64]}
  - name: vad
    source: models/vad.onnx
    precisions: [fp32]
    prepare: {constants: {sr: 16000}}
    profiles:
      - x: {min: [1, 256], opt: [1, 512], max: [4, 512]}
  - name: plain
    source: models/cls.onnx
    precisions: [fp32]
    profiles:
      - x: {min: [1, 3, 16, 16], opt: [2, 3, 32, 32], max: [4, 3, 48, 48]}
"""


@pytest.fixture
def project(tmp_path):
    make_shared_dims_classifier(tmp_path / "manifests" / "models" / "cls.onnx")
    make_rate_branching_model(tmp_path / "manifests" / "models" / "vad.onnx")
    write_manifest(tmp_path / "manifests", MANIFEST, name="real.yaml")
    return tmp_path


def test_prepare_writes_into_the_cache_once_and_says_what_changed(project):
    first = trtops(project, "prepare")
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "real/cls: " in out and "dim renamed: x[2]: '?' -> 'x_dim2'" in out
    assert "real/vad: " in out and "constant: sr = 16000 (int64)" in out and "If nodes: 1 inlined, 0 left" in out
    assert "real/plain: skipped: no prepare: options" in out
    prepared = sorted((project / "cache" / "prepared").glob("*/model.onnx"))
    assert len(prepared) == 2
    stamps = [p.stat().st_mtime_ns for p in prepared]
    second = trtops(project, "prepare")
    assert second.returncode == 0 and second.stdout == first.stdout  # the cached report
    assert [p.stat().st_mtime_ns for p in prepared] == stamps


def test_prepare_out_dir(project):
    result = trtops(project, "prepare", "--out", "inspect", "--model", "vad")
    assert result.returncode == 0, result.stderr
    assert (project / "inspect" / "real" / "vad" / "model.onnx").is_file()
    report = json.loads((project / "inspect" / "real" / "vad" / "report.json").read_text())
    assert report["ifs_inlined"] == 1 and report["inputs"] == {"x": ["N", "T"]}
    assert not (project / "cache" / "prepared").exists()


def test_prepare_failure_is_a_user_error(project):
    write_manifest(project / "manifests", MANIFEST.replace("{sr: 16000}", "{sr: [1, 2]}"), name="real.yaml")
    result = trtops(project, "prepare", "--model", "vad")
    assert result.returncode == 1
    assert "prepare.constants.sr: a value of shape [2] does not fit the input's shape []" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_names_the_steps(project):
    result = trtops(project, "plan", *PLATFORM)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[2]: line for line in result.stdout.splitlines() if line.strip().startswith("+")}
    assert "prepared first: bind sr=16000, distinct dim names, fold constants and inline If, infer shapes" \
        in lines["real/vad/fp32/lab"]
    assert "prepared first" not in lines["real/plain/fp32/lab"]


def test_apply_builds_from_the_prepared_model_and_the_gate_passes(project):
    result = trtops(project, "apply", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {e["id"]: e["status"] for e in doc["engines"]} == {
        "real/cls/fp32/lab": "built", "real/vad/fp32/lab": "built", "real/plain/fp32/lab": "built"}
    for engine in doc["engines"]:
        entry = project / "cache" / "engines" / engine["key"][:2] / engine["key"]
        meta = json.loads((entry / "meta.json").read_text())
        log = (entry / "build.log").read_text()
        if engine["id"] == "real/plain/fp32/lab":
            assert "prepare" not in meta["components"] and "prepared model" not in log
            continue
        assert meta["components"]["prepare"]["steps"]["fold_constants"] is True
        assert "[trtops] built from the prepared model" in log
        assert engine["accuracy"]["state"] == "accepted"
    # the engine's inputs are the prepared model's: sr is bound
    vad = next(e for e in doc["engines"] if e["id"] == "real/vad/fp32/lab")
    meta = json.loads((project / "cache" / "engines" / vad["key"][:2] / vad["key"] / "meta.json").read_text())
    assert [t["name"] for t in meta["io"]["tensors"] if t["mode"] == "input"] == ["x"]
    # `trtops verify` compares with what the gate compared with: the prepared model
    verify = trtops(project, "verify", "--json")
    assert verify.returncode == 0, verify.stderr
    assert {e["status"] for e in json.loads(verify.stdout)["engines"]} == {"verified"}


CAST_MANIFEST = """
version: 1
targets: {lab: {gpu: any}}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16, bf16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
  - name: folded
    source: models/conv.onnx
    precisions: [fp32, fp16]
    prepare: {}
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
"""
TRT11 = ("--tensorrt", "11.0.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0")


@pytest.fixture
def cast_project(tmp_path):
    from helpers import make_conv_model

    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx", seed=3)
    write_manifest(tmp_path / "manifests", CAST_MANIFEST, name="cast.yaml")
    return tmp_path


def test_prepare_shows_the_tensorrt_11_cast(cast_project):
    result = trtops(cast_project, "prepare", *TRT11)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cast/conv: skipped: no prepare: options and no cast" in out  # fp32: built as it is
    for name in ("cast/conv [fp16 cast]", "cast/conv [bf16 cast]", "cast/folded [fp16 cast]"):
        assert f"{name}: " in out, out
    assert re.search(r"cast to fp16: \d+ initializers, \d+ Cast nodes inserted", out), out
    # fp16 and bf16 of conv, the folded model and its fp16 cast
    assert len(list((cast_project / "cache" / "prepared").glob("*/model.onnx"))) == 4
    out_dir = trtops(cast_project, "prepare", *TRT11, "--out", "inspect", "--model", "conv")
    assert out_dir.returncode == 0, out_dir.stderr
    assert sorted(p.parent.name for p in (cast_project / "inspect" / "cast" / "conv").glob("*/model.onnx")) == [
        "bf16", "fp16"]
    # 8.6 casts nothing: the same manifests prepare only what prepare: asks for
    old = trtops(cast_project, "prepare", *PLATFORM)
    assert old.returncode == 0 and "cast to" not in old.stdout and " cast]" not in old.stdout
    assert "cast/folded: " in old.stdout


def test_plan_and_apply_on_tensorrt_11_build_fp16_from_the_cast_model(cast_project):
    plan = trtops(cast_project, "plan", *TRT11)
    assert plan.returncode == 0, plan.stderr
    lines = {line.split()[2]: line for line in plan.stdout.splitlines() if line.strip().startswith("+")}
    assert "prepared first: cast to fp16 (strongly typed build" in lines["cast/conv/fp16/lab"]
    assert "prepared first" not in lines["cast/conv/fp32/lab"]
    device_log = cast_project / "device.log"
    env = {"TRTOPS_FAKE_TENSORRT": "11.0.0", "TRTOPS_FAKE_DEVICE_LOG": str(device_log)}
    # bf16 Conv is valid ONNX only from opset 22, so ONNX Runtime cannot stand in for a
    # TensorRT bf16 engine (the double's "engine" is the model): fp32 and fp16 here.
    write_manifest(cast_project / "manifests", CAST_MANIFEST.replace("[fp32, fp16, bf16]", "[fp32, fp16]"),
                   name="cast.yaml")
    result = trtops(cast_project, "apply", "--json", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {e["status"] for e in doc["engines"]} == {"built"}
    parsed = dict(line.split()[0::4] for line in device_log.read_text().splitlines())
    # in process: the builder parses in a child first (trtops.trt.parse_preflight)
    assert all(line.endswith(" preflight=True") for line in device_log.read_text().splitlines())
    parsed = {spec_id: path.removeprefix("model=") for spec_id, path in parsed.items()}
    # the preflight's verdict is kept in the cache under the parsed model's content digest:
    # the source's model_digest, or the prepared model's name (trtops.trt.preflight_verdicts)
    fields = {line.split()[0]: dict(f.split("=", 1) for f in line.split()[1:])
              for line in device_log.read_text().splitlines()}
    for engine in doc["engines"]:
        meta = json.loads((cast_project / "cache" / "engines" / engine["key"][:2] / engine["key"] / "meta.json")
                          .read_text())
        found = fields[engine["id"]]
        assert found["verdicts"] == str(cast_project / "cache" / "preflight")
        if "/prepared/" in parsed[engine["id"]]:
            assert found["digest"] == parsed[engine["id"]].split("/")[-2]
        else:
            assert found["digest"] == meta["components"]["model_digest"]
    source = str(cast_project / "manifests" / "models" / "conv.onnx")
    assert parsed["cast/conv/fp32/lab"] == source
    for spec_id in ("cast/conv/fp16/lab", "cast/folded/fp16/lab"):
        assert "/prepared/" in parsed[spec_id], spec_id
    for engine in doc["engines"]:
        entry = cast_project / "cache" / "engines" / engine["key"][:2] / engine["key"]
        meta = json.loads((entry / "meta.json").read_text())
        cast = (meta["components"].get("prepare") or {}).get("steps", {}).get("cast")
        assert cast == (engine["id"].split("/")[2] if "/fp32/" not in engine["id"] else None), engine["id"]
        if cast:
            log = (entry / "build.log").read_text()
            assert f"cast to {cast}: " in log
            reference = re.search(r"the accuracy gate compares with (\S+)\)", log).group(1)
            if engine["id"].startswith("cast/conv/"):
                assert reference == source  # the cast is all conv's preparation does
            else:  # the folded model, before the cast
                assert "/prepared/" in reference and reference != parsed[engine["id"]]
        # the gate ran the fp16/bf16 "engine" (the cast model) against the fp32 reference
        assert engine["accuracy"]["state"] == "accepted", engine
    verify = trtops(cast_project, "verify", "--json", env=env)
    assert verify.returncode == 0, verify.stderr
    assert {e["status"] for e in json.loads(verify.stdout)["engines"]} == {"verified"}


KEEP_MANIFEST = """
version: 1
targets: {lab: {gpu: any}}
models:
  - name: chain
    source: models/chain.onnx
    precisions: [fp32, fp16]
    accuracy:
      tolerances: {fp16: {atol: 1e-3, rtol: 1e-3, stat: max}}
"""


def test_keep_fp32_on_tensorrt_11_is_applied_by_the_preparation_stages_cast(tmp_path):
    """The double's "engine" is the model it is given: on TensorRT 11 that is the cast model,
    so ONNX Runtime shows what the cast did. The chain x*s*s/s**2 fails fp16 (overflow) unless
    keep_fp32 holds it, which only the preparation stage's cast can do on 11.x."""
    from helpers import make_overflow_model

    make_overflow_model(tmp_path / "manifests" / "models" / "chain.onnx")
    write_manifest(tmp_path / "manifests", KEEP_MANIFEST, name="demo.yaml")
    env = {"TRTOPS_FAKE_TENSORRT": "11.0.0"}
    failed = trtops(tmp_path, "apply", "--json", "--keep-going", env=env)
    assert failed.returncode == 4, failed.stdout + failed.stderr  # fp16 overflows: the gate fails
    kept = KEEP_MANIFEST.replace("    precisions:", "    keep_fp32: [overflow, scale_down]\n    precisions:")
    write_manifest(tmp_path / "manifests", kept, name="demo.yaml")

    prepared = trtops(tmp_path, "prepare", *TRT11)
    assert prepared.returncode == 0, prepared.stderr
    assert "cast to fp16 keeping 2 nodes in fp32 (keep_fp32): overflow, scale_down" in prepared.stdout
    plan = trtops(tmp_path, "plan", *TRT11)
    assert plan.returncode == 0, plan.stderr
    line = next(x for x in plan.stdout.splitlines() if "demo/chain/fp16/lab" in x)
    assert "cast to fp16 keeping 2 nodes in fp32 (overflow, scale_down)" in line, plan.stdout
    assert "keep_fp32" in line  # the rebuild says the build changed too

    applied = trtops(tmp_path, "apply", "--json", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    (engine,) = [e for e in json.loads(applied.stdout)["engines"] if "/fp16/" in e["id"]]
    assert engine["status"] == "built" and engine["accuracy"]["state"] == "accepted", engine
    meta = json.loads((tmp_path / "cache" / "engines" / engine["key"][:2] / engine["key"] / "meta.json").read_text())
    assert meta["components"]["prepare"]["steps"]["cast_keep_fp32"] == {"nodes": ["overflow", "scale_down"]}
