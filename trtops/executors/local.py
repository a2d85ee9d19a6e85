"""The default executor: every build in this process, one after the other (what
``trtops apply`` does without ``--gpus`` or ``--executor``)."""

from __future__ import annotations

from typing import Any

from trtops.executors.jobs import LocalRunner


class LocalExecutor:
    """Sequential, in-process builds on the plan's GPU."""

    name = "local"
    parallel = False

    def __init__(self, toolchain: Any = None) -> None:
        self.toolchain = toolchain

    def describe(self) -> str:
        return "in process"

    def platform(self, toolchain: Any) -> Any:
        """None: plan for the platform detected here."""
        return None

    def runner(self, toolchain: Any) -> LocalRunner:
        return LocalRunner(self.toolchain or toolchain)

    def close(self) -> None:
        pass
