"""Toolchain doubles for the security tests (selected with TRTOPS_TEST_TOOLCHAIN, with
tests/ and tests/security/ on PYTHONPATH)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from doubles import FakeToolchain


class RecordingToolchain(FakeToolchain):
    """:class:`FakeToolchain` that appends ``<sha256 of the engine bytes>`` to the file named
    by ``TRTOPS_FAKE_VERIFY_LOG`` every time it is asked to load (deserialize) an engine
    for an accuracy check: so a test can tell which bytes ever reached the runtime."""

    def verify(self, engine_path: Path, model_path: Path, io: Any, accuracy: Any, *,
               precision: str) -> Any:
        log = os.environ.get("TRTOPS_FAKE_VERIFY_LOG")
        if log:
            digest = hashlib.sha256(Path(engine_path).read_bytes()).hexdigest()
            with open(log, "a") as handle:
                handle.write(digest + "\n")
        return super().verify(engine_path, model_path, io, accuracy, precision=precision)
