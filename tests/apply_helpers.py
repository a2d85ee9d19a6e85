"""Shared by the CLI tests of apply (tests/func) and of apply with a remote (tests/remote):
a small project (two models, two targets) and a runner for `trtops` with the toolchain
test double (tests/doubles.py) standing in for TensorRT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import make_conv_model, write_manifest

TESTS = Path(__file__).resolve().parent

MANIFEST = """
version: 1
targets:
  lab: {gpu: any}
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
    loaders: [python, triton]
    targets: [lab, h100]
  - name: heavy
    source: models/heavy.onnx
    precisions: [fp32]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
    targets: [lab]
"""


def make_project(tmp_path: Path) -> Path:
    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx", seed=1)
    make_conv_model(tmp_path / "manifests" / "models" / "heavy.onnx", seed=2, external_data=True)
    write_manifest(tmp_path / "manifests", MANIFEST, name="demo.yaml")
    return tmp_path


def trtops(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_", "GITHUB_"))}
    environ.update({
        "TRTOPS_TEST_TOOLCHAIN": "doubles:FakeToolchain",
        "PYTHONPATH": os.pathsep.join([str(TESTS), environ.get("PYTHONPATH", "")]),
        "TRTOPS_FAKE_LOG": str(project / "builds.log"),
        "CI": "true",
    })
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "trtops", *args], cwd=project, env=environ,
                          capture_output=True, text=True, timeout=300)


# What the double pretends to be, for `trtops plan` (apply asks the double itself).
PLATFORM = ("--tensorrt", "8.6.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0")


def builds(project: Path) -> list[str]:
    log = project / "builds.log"
    return log.read_text().split() if log.exists() else []
