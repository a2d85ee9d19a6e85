"""Toolchain doubles for the disk-full tests (selected with TRTOPS_TEST_TOOLCHAIN)."""

from __future__ import annotations

import dataclasses
from typing import Any

from doubles import FakeToolchain

LOG_BYTES = 512 * 1024


class BigLogToolchain(FakeToolchain):
    """Builds like :class:`FakeToolchain`, with a build log of ``LOG_BYTES``: the build
    itself writes only small files, so a file-size limit between the two first bites when
    the cache writes the entry (its build.log)."""

    def build(self, request: Any) -> Any:
        result = super().build(request)
        line = "[fake] a long build log line for the disk-full tests\n"
        text = line * (LOG_BYTES // len(line) + 1)
        return dataclasses.replace(result, log_text=text)


class CacheDeletingToolchain(FakeToolchain):
    """Builds like :class:`FakeToolchain`, but first removes the folder named by
    ``TRTOPS_FAKE_DELETE`` (the cache, as a user's ``rm -rf cache`` during apply would)."""

    def build(self, request: Any) -> Any:
        import os
        import shutil

        target = os.environ.get("TRTOPS_FAKE_DELETE")
        if target:
            shutil.rmtree(target, ignore_errors=True)
        return super().build(request)
