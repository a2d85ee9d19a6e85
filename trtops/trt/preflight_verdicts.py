"""Parse preflight verdicts kept on disk, so a later ``trtops apply`` with the same model,
flags and TensorRT skips the child process (about 12 s each: python, ``import tensorrt``,
CUDA and kernel library start-up, parse).

One small JSON file per verdict, in the directory the caller names (apply: the cache's
``preflight/``, :data:`trtops.cache.layout.PREFLIGHT_DIR`)::

    <tensorrt>/<digest>-n<network flags>[-<parser flag>+<parser flag>].json

``digest`` names the parsed model's content: the engine key's ``model_digest`` for a source
model (the ONNX file and its external data), the ``prepared/<digest>`` name for a prepared
one; the caller has it already, nothing is hashed again. Only verdicts a later parse would
repeat are kept: ``parsed`` (the parse returned) and ``crashed`` by a fault of the parser
itself (:data:`FAULTS`; a SIGKILL is more likely the OOM killer, a hang may be a slow
machine). Written atomically (:func:`trtops.fsutil.atomic_write`); an unreadable or foreign
file counts as no verdict. This module never imports tensorrt, nor the cache package (which
would make an import cycle): it only knows the directory it is given.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trtops.fsutil import atomic_write

FORMAT = 1
#: Signals by which the parser itself ends its process: the same parse ends the same way.
FAULTS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTRAP")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_DIGEST = re.compile(r"^[0-9a-f]{16,128}$")


def verdict_path(root: str | Path, tensorrt: str, digest: str, network_flags: int,
                 parser_flags: Sequence[str]) -> Path:
    """Where the verdict of this model, flags and TensorRT lives under ``root``."""
    if not _DIGEST.match(digest):
        raise ValueError(f"{digest!r} is not a model digest")
    name = f"{digest}-n{int(network_flags)}" + (f"-{'+'.join(sorted(parser_flags))}" if parser_flags else "")
    version = _UNSAFE.sub("_", tensorrt).lstrip(".") or "unknown"
    return Path(root) / version / f"{_UNSAFE.sub('_', name)}.json"


def worth_keeping(state: str, how: str) -> bool:
    """Whether a verdict holds for every later parse (see the module's docstring)."""
    return state == "parsed" or (state == "crashed" and how in FAULTS)


def write(path: Path, fields: Mapping[str, Any], *, tensorrt: str, digest: str, network_flags: int,
          parser_flags: Sequence[str], model: str) -> None:
    """Record a verdict (``fields``: the verdict's own state, how, seconds, report...)."""
    record = {"format": FORMAT, **fields, "tensorrt": tensorrt, "digest": digest,
              "network_flags": int(network_flags), "parser_flags": sorted(parser_flags), "model": model,
              "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"))


def read(path: Path, *, tensorrt: str, digest: str, network_flags: int,
         parser_flags: Sequence[str]) -> dict[str, Any] | None:
    """The recorded verdict's fields, or None when there is none (or it does not describe
    this parse: a damaged file, another format)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    same = (record.get("tensorrt") == tensorrt and record.get("digest") == digest
            and record.get("network_flags") == int(network_flags)
            and record.get("parser_flags") == sorted(parser_flags))
    if not same or not worth_keeping(str(record.get("state")), str(record.get("how", ""))):
        return None
    return record


__all__ = ["FAULTS", "read", "verdict_path", "worth_keeping", "write"]
