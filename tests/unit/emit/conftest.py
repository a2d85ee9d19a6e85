"""Fixtures for the emitter tests: emit a loader for a fake engine and import it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from emit_fakes import engine_bytes, engine_io_json, import_file

from trtops.emit.python_loader import LoaderInfo, write_loader
from trtops.engine_io import EngineIO


@pytest.fixture
def emit_fake(tmp_path: Path):
    """``emit_fake(description, engine_ref="copy", module="fake_fp16_lab")`` writes a fake
    engine file and its loader under tmp_path and returns (module, EmittedLoader)."""

    def emit(description: dict, engine_ref: str = "copy", module: str = "fake_fp16_lab",
             dest: Path | None = None, **info: Any):
        engine = tmp_path / "cache" / "engine.plan"
        engine.parent.mkdir(parents=True, exist_ok=True)
        engine.write_bytes(engine_bytes(description))
        io = EngineIO.from_json(engine_io_json(description))
        emitted = write_loader(dest or tmp_path / "loaders", io, engine,
                               LoaderInfo(module, "fake", "fp16", "lab", **info),
                               engine_ref=engine_ref)
        return import_file(emitted.module_path), emitted

    return emit
