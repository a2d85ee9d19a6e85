"""Shared by tests/ray: the GPU signatures the local cluster's two nodes stand in for."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

H200 = "cc9.0-nvidia-h200"
L4 = "cc8.9-nvidia-l4"
