"""Shared fixtures. Keep small; model makers live in tests/helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_conv_model, make_qdq_model  # noqa: E402


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    """A conv model with dynamic N, H, W at ``tmp_path/models/conv.onnx``."""
    return make_conv_model(tmp_path / "models" / "conv.onnx")


@pytest.fixture
def qdq_model(tmp_path: Path) -> Path:
    """An explicitly quantized conv model at ``tmp_path/models/qdq.onnx``."""
    return make_qdq_model(tmp_path / "models" / "qdq.onnx")
