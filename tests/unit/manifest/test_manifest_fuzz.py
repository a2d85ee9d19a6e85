"""Hostile input: randomly mutated manifests give problems, never another exception."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.manifest import expand
from trtops.manifest.collect import collect

SEED_MANIFEST = """\
version: 1
defaults: &d {workspace: 4GiB, builder_optimization_level: 3}
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {compute_capability: "8.9"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16, int8]
    calibration: {data: data/calib.npz}
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
    accuracy:
      tolerances:
        fp16: {atol: 1e-2, rtol: 1e-2, stat: quantile, quantile: 0.9, outputs: {output: {atol: 1}}}
      inputs: {seed: 3, ranges: {input: [0, 1]}}
    loaders: [python, triton]
    targets: [h100]
  - <<: *d
    name: remote
    source: {url: "https://example.com/m.onnx", sha256: "%s"}
    precisions: [fp16]
""" % ("ab" * 32)

TOKENS = ["", " ", "\n", "\t", "-", ":", ",", "[", "]", "{", "}", "&a", "*a", "*d", "<<", "!!str",
          "!!python/name:os.system", "'", '"', "#", "0", "-1", "1e400", ".nan", ".inf",
          "99999999999999999999999", "null", "~", "yes", "off", "? ", "|", ">", "%", "@", "\\",
          "\x00", "\x07", "é", "\ufeff", "\U0001f600", "fp8", "int8", "name", "..", "/", "*",
          "---", "...", "models", "profiles"]


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(text))
        roll = rng.random()
        if roll < 0.45:
            text = text[:position] + rng.choice(TOKENS) + text[position:]
        elif roll < 0.75:
            text = text[:position] + text[position + rng.randint(1, 12):]
        else:
            start, end = sorted(rng.sample(range(len(text)), 2))
            text = text[:position] + text[start:end] + text[position:]
    return text


@pytest.mark.parametrize("seed", range(4))
def test_mutated_manifests_never_crash(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_conv_model(tmp_path / "models" / "conv.onnx")
    rng = random.Random(seed)
    path = tmp_path / "m.yaml"
    outcomes = {"ok": 0, "problems": 0}
    for _ in range(150):
        path.write_bytes(_mutate(SEED_MANIFEST, rng).encode("utf-8", "surrogatepass"))
        loaded, problems, _ = collect([path.name])
        for problem in problems:
            assert problem.location.file == "m.yaml"
            problem.render()
        expand(loaded)
        outcomes["problems" if problems else "ok"] += 1
    assert outcomes["problems"] > 0
