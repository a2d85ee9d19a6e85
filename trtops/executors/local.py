"""The in-process executor: one slot, this process, one build after the other (what
``trtops apply`` does without ``--gpus`` or ``--executor``).

It runs the same worker-side function as the parallel executors
(:func:`trtops.executors.jobs.run_build_job`), in the caller's thread, and keeps the
original exception of a failed build.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtops.executors.base import Slot
from trtops.executors.jobs import LocalRunner


class LocalExecutor:
    """Sequential, in-process builds on the plan's GPU."""

    name = "local"
    # Builds run one at a time: timing caches merge directly, no ledger is needed.
    parallel = False

    def __init__(self, toolchain: Any = None) -> None:
        self.toolchain = toolchain

    def describe(self) -> str:
        return "in process"

    def platform(self, toolchain: Any) -> Any:
        """None: plan for the platform detected here."""
        return None

    def prepare(self, plan: Any, actions: Sequence[Any], *, toolchain: Any,
                staging: Path | None = None) -> tuple[list[Slot], dict[str, str]]:
        """One slot that builds every action here, on the GPU the plan chose.

        Returns:
            ([the slot], {}): every action can run here.
        """
        return [Slot("in process", None, LocalRunner(self.toolchain or toolchain))], {}

    def merge_timing(self, tensorrt: str, signature: str, base: bytes | None,
                     pieces: Sequence[bytes]) -> bytes | None:
        """Never needed: sequential builds merge their timing caches as they go."""
        return None

    def close(self) -> None:
        pass
