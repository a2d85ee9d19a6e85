"""Ending the process once its result is out, when a library's teardown may hang.

Ray's driver can hang in interpreter teardown after one of its workers died
(ray-project/ray#29431). trtops CI saw it: ``apply --executor ray`` had printed its whole
JSON result and closed the Ray connection, and the process was still alive 120 s later. A
CI job that hangs after its result is out misleads as much as a wrong exit code.

What teardown would still do by then cannot change the outcome: trtops' own writes are
durable before its result is printed (the cache publishes with fsync and rename,
temporary files are removed by their context managers), and the connection was closed
explicitly (``RayExecutor.close``). So a command that used such a library ends the
process with ``os._exit`` once stdout, stderr and logging are flushed.
"""

from __future__ import annotations

import logging
import os
import sys

_reasons: list[str] = []


def skip_teardown(reason: str) -> None:
    """Ask :func:`finish` to end the process without interpreter teardown (``reason``
    names the library, for whoever reads this state while debugging)."""
    if reason not in _reasons:
        _reasons.append(reason)


def teardown_skipped_for() -> tuple[str, ...]:
    """Why :func:`finish` will skip teardown; empty when it will not."""
    return tuple(_reasons)


def finish(code: int) -> int:
    """Return ``code`` for a normal exit, or flush and end the process with it at once
    when :func:`skip_teardown` was asked for."""
    if not _reasons:
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or stream: nothing more can reach its reader
    os._exit(code)
