"""`trtops validate` end to end, through a subprocess like a pre-commit hook runs it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_conv_model, write_manifest

GOOD = """
version: 1
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  lab: {gpu: any}
models:
  - name: %(name)s
    source: models/conv.onnx
    precisions: [fp32, fp16]
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
  - name: %(name)s_lab
    source: models/conv.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
    targets: [lab]
"""
LOCATION = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<rest>.+)$")


def trtops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRTOPS_ALLOW_OUTSIDE_SOURCES", "TRTOPS_CACHE")}
    return subprocess.run([sys.executable, "-m", "trtops", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx")
    write_manifest(tmp_path / "manifests", GOOD % {"name": "alpha"}, "alpha.yaml")
    write_manifest(tmp_path / "manifests", GOOD % {"name": "beta"}, "beta.yml")
    return tmp_path


def test_ok_lines_and_default_path(project: Path) -> None:
    result = trtops("validate", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: manifests/alpha.yaml (2 models, 5 engines)",
        "ok: manifests/beta.yml (2 models, 5 engines)",
    ]
    assert result.stderr == ""


def test_problems_on_stderr_with_locations(project: Path) -> None:
    bad = (GOOD % {"name": "gamma"}).replace("precisions: [fp32, fp16]", "precisions: [fp32, fp61]") \
        .replace("targets: [lab]", "targets: [lab, h10]")
    write_manifest(project / "manifests", bad, "gamma.yaml")
    result = trtops("validate", "manifests", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ok: manifests/alpha.yaml" in result.stdout and "gamma" not in result.stdout
    lines = result.stderr.splitlines()
    assert lines[-1] == "1 problem in 1 file"
    match = LOCATION.match(lines[0])
    assert match, lines
    assert (match["file"], match["line"]) == ("manifests/gamma.yaml", "8")
    assert match["rest"].startswith("models[0].precisions[1]: expected one of")
    assert "(did you mean 'fp16'?)" in match["rest"]


def test_semantic_problems_after_schema(project: Path) -> None:
    bad = (GOOD % {"name": "gamma"}).replace("targets: [lab]", "targets: [lab, h10]")
    write_manifest(project / "manifests", bad, "gamma.yaml")
    result = trtops("validate", "manifests/gamma.yaml", "manifests/alpha.yaml", cwd=project)
    assert result.returncode == 1
    assert "manifests/gamma.yaml:16:20: models[1].targets[1]: " in result.stderr
    assert "unknown target 'h10'; did you mean 'h100'?" in result.stderr


@pytest.mark.parametrize("name, content", [
    ("bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))),
    ("huge", "version: 1\n" + "#" * (2 << 20) + "\n"),
    ("binary", b"\x00\x01\x02\xff\xfe" * 100),
    ("tabs", "version: 1\nmodels:\n\t- name: x\n"),
    ("python", "version: !!python/object/apply:os.system ['echo pwned']\n"),
    ("deep", "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n"),
    ("list", "- 1\n- 2\n"),
])
def test_hostile_input_exits_1_without_traceback(tmp_path: Path, name: str, content: str | bytes) -> None:
    path = tmp_path / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    started = time.monotonic()
    result = trtops("validate", path.name, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stderr.startswith(f"{name}.yaml"), result.stderr
    assert "pwned" not in result.stdout
    assert time.monotonic() - started < 60


def test_no_model_checks(project: Path) -> None:
    (project / "manifests" / "models" / "conv.onnx").unlink()
    result = trtops("validate", cwd=project)
    assert result.returncode == 1
    assert "models[0].source: model file" in result.stderr
    result = trtops("validate", "--no-model-checks", cwd=project)
    assert result.returncode == 0, result.stderr


def test_missing_path(tmp_path: Path) -> None:
    result = trtops("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "manifests: no such file or directory"


def test_many_manifests_are_fast(tmp_path: Path) -> None:
    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx")
    for index in range(30):
        write_manifest(tmp_path / "manifests", GOOD % {"name": f"m{index}"}, f"m{index}.yaml")
    started = time.monotonic()
    result = trtops("validate", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 30
    assert elapsed < 15, elapsed  # typically well under a second


def test_url_sources_are_checked_once_in_the_cache(tmp_path: Path) -> None:
    model = make_conv_model(tmp_path / "download" / "m.onnx")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    write_manifest(tmp_path / "manifests", f"""
        version: 1
        targets: {{lab: {{gpu: any}}}}
        models:
          - name: remote
            source: {{url: "https://models.example.com/m.onnx", sha256: "{digest}"}}
            precisions: [fp16]
    """, "remote.yaml")
    assert trtops("validate", cwd=tmp_path).returncode == 0  # not downloaded: nothing to check
    (tmp_path / "elsewhere" / "sources").mkdir(parents=True)
    shutil.copy(model, tmp_path / "elsewhere" / "sources" / f"{digest}.onnx")
    result = trtops("validate", "--cache", "elsewhere", cwd=tmp_path)
    assert result.returncode == 1
    assert "manifests/remote.yaml:4:5: models[0]: model 'remote' has dynamic input" in result.stderr


def test_plain_http_url_sources_need_allow_http(tmp_path: Path) -> None:
    write_manifest(tmp_path / "manifests", f"""
        version: 1
        targets: {{lab: {{gpu: any}}}}
        models:
          - name: plain
            source: {{url: "http://models.example.com/m.onnx", sha256: "{'ab' * 32}"}}
            precisions: [fp16]
          - name: allowed
            source: {{url: "http://models.example.com/m.onnx", sha256: "{'ab' * 32}", allow_http: true, max_size: 1GiB}}
            precisions: [fp16]
    """, "remote.yaml")
    result = trtops("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "manifests/remote.yaml:5:5: models[0].source: a plain http URL needs allow_http: true" in result.stderr
    assert result.stderr.count("allow_http") == 1, result.stderr  # the second model is fine
