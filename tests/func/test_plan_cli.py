"""`trtops plan` and `trtops info` on real manifests, models and caches in temp dirs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import ENGINE_FILE
from trtops.cli import main
from trtops.keys.platform import load_platform_file
from trtops.plan import Plan, check_plan_current

H100_FLAGS = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]

MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {gpu: "NVIDIA L4", compute_capability: "8.9"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16]
    workspace: 64MiB
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [4, 3, 64, 64], max: [8, 3, 128, 128]}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_conv_model(tmp_path / "models" / "conv.onnx", external_data=True)
    (tmp_path / "demo.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plan_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "plan", "demo.yaml", "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def publish_all(cache: Path, data: dict, state: str = "accepted") -> None:
    """Stand in for `trtops apply`: publish a fake engine for every pending action."""
    store = LocalStore(cache)
    for action in Plan.from_json(data).unique_builds():
        publish_entry(store, action.key, action.id, {ENGINE_FILE: f"engine {action.id}".encode()},
                      accuracy={"state": state, "summary": f"median abs err 1e-3 ({state})"},
                      build_seconds=1.0, tensorrt_version=action.tensorrt)


def test_plan_build_then_no_changes(project, capsys):
    code, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS, "--detailed-exitcode")
    assert code == 2
    assert re.search(r"\+ build +demo/conv/fp32/h100 +[0-9a-f]{12}  not built yet", out)
    assert re.search(r"\+ build +demo/conv/fp16/h100 ", out)
    assert re.search(r"- skip +demo/conv/fp16/l4 +-{12}  needs a GPU matching 'NVIDIA L4' of compute "
                     r"capability 8.9; this platform has NVIDIA H100 80GB HBM3 \(cc 9.0\)", out)
    assert "Plan: 2 to build, 0 to rebuild, 0 to reuse, 2 skipped, 0 rejected." in out
    publish_all(project / "cache", plan_json(capsys, *H100_FLAGS))
    code, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS, "--detailed-exitcode")
    assert code == 0
    assert "Plan: 0 to build, 0 to rebuild, 2 to reuse, 2 skipped, 0 rejected." in out
    code, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS, "--all")
    assert re.search(r"= reuse +demo/conv/fp32/h100 +[0-9a-f]{12}  up to date", out)


def test_rebuild_reasons(project, capsys):
    publish_all(project / "cache", plan_json(capsys, *H100_FLAGS))
    # New weights in the external-data file: the .onnx file itself is unchanged.
    data = project / "models" / "conv.onnx.data"
    data.write_bytes(os.urandom(data.stat().st_size))
    code, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS, "--detailed-exitcode")
    assert code == 2
    assert re.search(r"~ rebuild +demo/conv/fp32/h100 +[0-9a-f]{12}  model weights changed \(conv.onnx.data\)", out)
    publish_all(project / "cache", plan_json(capsys, *H100_FLAGS))

    (project / "demo.yaml").write_text(MANIFEST.replace("workspace: 64MiB", "workspace: 128MiB"))
    _, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS)
    assert "build config changed: workspace 64 MiB → 128 MiB" in out
    assert out.count("~ rebuild") == 2

    (project / "demo.yaml").write_text(MANIFEST)
    _, out, _ = run(capsys, "plan", "demo.yaml", "--tensorrt", "10.13.3.12", *H100_FLAGS[2:])
    assert "TensorRT 10.13.3.9 → 10.13.3.12" in out


def test_rejected_engines_are_not_rebuilt(project, capsys):
    publish_all(project / "cache", plan_json(capsys, *H100_FLAGS), state="rejected")
    code, out, _ = run(capsys, "plan", "demo.yaml", *H100_FLAGS, "--detailed-exitcode")
    assert code == 0
    assert re.search(r"! rejected +demo/conv/fp16/h100 .*failed its accuracy check.*median abs err 1e-3", out)


def test_json_and_saved_plan(project, capsys):
    data = plan_json(capsys, *H100_FLAGS, "-o", "plan.json")
    assert data["summary"] == {"build": 2, "rebuild": 0, "reuse": 0, "skip": 2, "rejected": 0}
    action = data["actions"][0]
    assert action["kind"] == "build" and re.fullmatch(r"[0-9a-f]{64}", action["key"])
    assert set(action["components"]) == {"schema", "model_digest", "build", "tensorrt", "gpu", "plugins"}
    assert action["components"]["gpu"] == "cc9.0-nvidia-h100-80gb-hbm3"
    assert action["spec"]["model"] == "conv"
    saved = Plan.load(project / "plan.json")
    assert json.loads(json.dumps(saved.to_json()))["actions"] == data["actions"]
    store = LocalStore(project / "cache")
    check_plan_current(saved, store, saved.platform)
    publish_all(project / "cache", data)
    from trtops.errors import PlanMismatch

    with pytest.raises(PlanMismatch):
        check_plan_current(saved, store, saved.platform)


def test_spelled_out_defaults_give_the_same_keys(project, capsys):
    spelled = MANIFEST.replace(
        "    workspace: 64MiB\n",
        "    workspace: 67108864\n    builder_optimization_level: 3\n    timing_cache: shared\n"
        "    loaders: [python]\n    accuracy: {enabled: true, iterations: 1}\n",
    ).replace(
        'h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}',
        'h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13, <10.14", hardware_compatibility: none, '
        "version_compatible: false}",
    )
    other = project / "spelled"
    shutil.copytree(project / "models", other / "models")
    (other / "demo.yaml").write_text(spelled)
    plain = plan_json(capsys, *H100_FLAGS)
    code, out, err = run(capsys, "plan", str(other / "demo.yaml"), "--json", *H100_FLAGS)
    assert code == 0, err
    assert [a["key"] for a in json.loads(out)["actions"]] == [a["key"] for a in plain["actions"]]


def test_platform_file_from_info(project, capsys):
    code, out, _ = run(capsys, "info", "--json", "-o", "l4.json", "--tensorrt", "10.13.3.9",
                       "--gpu", "NVIDIA L4", "--compute-capability", "8.9")
    assert code == 0
    assert json.loads(out)["gpus"][0]["name"] == "NVIDIA L4"
    assert load_platform_file(project / "l4.json").tensorrt == "10.13.3.9"
    data = plan_json(capsys, "--platform", "l4.json")
    kinds = {a["id"]: a["kind"] for a in data["actions"]}
    assert kinds == {"demo/conv/fp32/h100": "skip", "demo/conv/fp32/l4": "build",
                     "demo/conv/fp16/h100": "skip", "demo/conv/fp16/l4": "build"}


def test_info_here(project, capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "TensorRT    not installed" in out and "GPUs        none" in out


def test_plan_on_this_machine_skips_everything(project, capsys):
    code, out, _ = run(capsys, "plan", "demo.yaml", "--detailed-exitcode")
    assert code == 0
    assert "needs TensorRT >=10.13,<10.14 (not installed here)" in out
    assert "Nothing to build on this platform (4 skipped)." in out
    assert "hint: to plan for another machine pass --platform FILE" in out


def test_missing_model_is_a_user_error(project, capsys):
    (project / "models" / "conv.onnx.data").unlink()
    code, _, err = run(capsys, "plan", "demo.yaml", *H100_FLAGS)
    assert code == 1
    assert "conv.onnx.data" in err


def test_plain_output_in_ci(project):
    env = dict(os.environ, CI="true", TERM="xterm-256color")
    result = subprocess.run([sys.executable, "-m", "trtops", "plan", "demo.yaml", *H100_FLAGS,
                             "--detailed-exitcode"], capture_output=True, text=True, env=env, cwd=project)
    assert result.returncode == 2, result.stderr
    assert "\x1b[" not in result.stdout
    assert "+ build" in result.stdout


def test_default_manifest_directory(project, capsys):
    (project / "manifests").mkdir()
    (project / "demo.yaml").rename(project / "manifests" / "demo.yaml")
    (project / "models").rename(project / "manifests" / "models")
    code, out, err = run(capsys, "plan", *H100_FLAGS)
    assert code == 0, err
    assert "demo/conv/fp16/h100" in out


def test_url_sources_are_planned_without_download(project, capsys):
    (project / "demo.yaml").write_text(textwrap.dedent("""\
        version: 1
        targets:
          h100: {gpu: "NVIDIA H100*"}
        models:
          - name: remote
            source: {url: "https://models.example.com/r.onnx", sha256: "%s"}
            precisions: [fp16]
        """) % ("ab" * 32))
    data = plan_json(capsys, *H100_FLAGS)
    assert [a["kind"] for a in data["actions"]] == ["build"]
