"""Shared by the lockfile tests (tests/func/test_lock.py, tests/remote/test_remote_lock.py):
a one-model project with an H100 and an L4 target, and engines published the way apply
publishes them (the building GPU and TensorRT in meta.json)."""

from __future__ import annotations

import json
from typing import Any

from helpers import make_conv_model

from trtops.cache.entries import publish_entry
from trtops.cache.store import ENGINE_FILE
from trtops.cli import main
from trtops.plan import Plan

TRT = "10.13.3.9"
H100 = ("NVIDIA H100 80GB HBM3", "9.0")
L4 = ("NVIDIA L4", "8.9")
H100_SIG = f"cc9.0-nvidia-h100-80gb-hbm3-trt{TRT}"
L4_SIG = f"cc8.9-nvidia-l4-trt{TRT}"

MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {compute_capability: "8.9"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16]
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [4, 3, 64, 64], max: [8, 3, 128, 128]}
"""


def flags(gpu: tuple[str, str], tensorrt: str = TRT) -> list[str]:
    return ["--tensorrt", tensorrt, "--gpu", gpu[0], "--compute-capability", gpu[1]]


def lock_project(tmp_path, monkeypatch):
    """The project in ``tmp_path`` (the working directory from now on)."""
    make_conv_model(tmp_path / "models" / "conv.onnx", external_data=True)
    (tmp_path / "demo.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    for name in ("TRTOPS_CACHE", "TRTOPS_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plan_for(capsys, gpu: tuple[str, str], *extra: str) -> Plan:
    code, out, err = run(capsys, "plan", "demo.yaml", "--json", *flags(gpu), *extra)
    assert code == 0, err
    return Plan.from_json(json.loads(out))


def publish_built(store: Any, action, gpu: tuple[str, str], state: str = "accepted",
                  tensorrt: str = TRT) -> bytes:
    """Publish an engine for ``action`` as a build on ``gpu`` would; returns its bytes."""
    payload = f"engine {action.key.key}".encode() * 40
    publish_entry(store, action.key, action.id, {ENGINE_FILE: payload},
                  accuracy={"state": state, "summary": f"max abs err 1e-3 ({state})"},
                  tensorrt_version=tensorrt, gpu={"name": gpu[0], "compute_capability": gpu[1]},
                  write_ref=False)
    return payload


def build_everything(capsys, project, store: Any) -> dict[str, dict[str, bytes]]:
    """Engines of both platforms in ``store``: platform -> spec id -> engine bytes."""
    built: dict[str, dict[str, bytes]] = {}
    for sig, gpu in ((H100_SIG, H100), (L4_SIG, L4)):
        for action in plan_for(capsys, gpu).actions:
            if action.key is not None:
                built.setdefault(sig, {})[action.id] = publish_built(store, action, gpu)
    return built


def lock_file(project, signature: str) -> dict:
    return json.loads((project / "trtops.lock" / f"{signature}.json").read_text())
