"""``--json``: one document on stdout (named json_doc: ``json`` is the stdlib's)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from trtops.outcome import RunResult


def dump_json(document: RunResult | Mapping[str, Any] | Sequence[Any],
              stream: IO[str] | None = None) -> None:
    """Write one JSON document and a newline to ``stream`` (default stdout), then flush.

    Args:
        document: a RunResult (its ``to_json()``) or any JSON-ready value.
        stream: where to write.
    """
    data = document.to_json() if isinstance(document, RunResult) else document
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(data, indent=2, default=str) + "\n")
    stream.flush()
