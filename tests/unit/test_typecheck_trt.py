"""The TensorRT 10 API check (scripts/typecheck_trt.py) bites: a misspelled attribute or a
wrong call fails it. CI runs the real check over trtops/trt in .ci/run; this proves the
tools and the repaired stubs catch mistakes. Skipped where .typecheck/ was never set up
(the test does not download mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "typecheck_trt.py"

pytestmark = pytest.mark.skipif(
    not (ROOT / ".typecheck" / "READY").is_file(), reason="run scripts/typecheck_trt.py once to set up .typecheck/"
)


def _check(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "uses_tensorrt.py"
    path.write_text(source)
    return subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=300)


def test_correct_tensorrt_10_calls_pass(tmp_path):
    result = _check(
        tmp_path,
        "import tensorrt as trt\n"
        "def build(builder: trt.Builder, config: trt.IBuilderConfig) -> None:\n"
        "    network = builder.create_network(0)\n"
        "    config.set_flag(trt.BuilderFlag.FP16)\n"
        "    profile = builder.create_optimization_profile()\n"
        "    profile.set_shape('x', (1, 3), (4, 3), (8, 3))\n"
        "    builder.build_serialized_network(network, config)\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_misspelled_attribute_and_swapped_arguments_fail(tmp_path):
    result = _check(
        tmp_path,
        "import tensorrt as trt\n"
        "def build(builder: trt.Builder, config: trt.IBuilderConfig) -> None:\n"
        "    network = builder.create_netwrk(0)\n"
        "    config.set_flag(trt.BuilderFlag.FP61)\n"
        "    builder.build_serialized_network(config, builder.create_network(0))\n",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"Builder" has no attribute "create_netwrk"' in result.stdout
    assert 'has no attribute "FP61"' in result.stdout
    assert 'Argument 1 to "build_serialized_network"' in result.stdout


def test_protocol_lists_only_what_tensorrt_10_has(tmp_path):
    # trtops.trt.api.TensorRT stands in for the module; a member TensorRT 10 lacks must fail
    # where the real module is returned as one.
    result = _check(
        tmp_path,
        "from typing import Protocol\n"
        "import tensorrt\n"
        "class Module(Protocol):\n"
        "    Builder: type[tensorrt.Builder]\n"
        "    NoSuchClass: type[tensorrt.Builder]\n"
        "def module() -> Module:\n"
        "    return tensorrt\n",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NoSuchClass" in result.stdout
