"""Names and small formats every layer agrees on (one definition each).

- identifiers (model, precision, target, tensor-derived names that become code or paths);
- sha256 digests and engine keys (64 lowercase hex);
- engine ids ``manifest/model/precision/target`` (format and parse);
- byte sizes as people read them (one format for plan, reports, push/pull and status).

Pure and dependency-free: importing it costs nothing.
"""

from __future__ import annotations

import errno
import re
from typing import NamedTuple

from trtops.errors import InputError

# \Z, not $: '$' also matches before a trailing newline, and names end up in generated code.
IDENTIFIER_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
IDENTIFIER_RE = re.compile(rf"^{IDENTIFIER_PATTERN}\Z")
SHA256_PATTERN = r"[0-9a-f]{64}"
SHA256_RE = re.compile(rf"^{SHA256_PATTERN}\Z")
#: Engine keys are sha256 digests of the canonical key document.
KEY_RE = SHA256_RE

ENGINE_FILE = "engine.plan"

#: Where commands look for manifests when no path is given.
DEFAULT_MANIFEST_PATHS: tuple[str, ...] = ("manifests",)

#: OSError numbers that mean "the disk (or quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_identifier(text: object) -> bool:
    """True for names that may become Python identifiers, module and directory names."""
    return isinstance(text, str) and IDENTIFIER_RE.match(text) is not None


def is_sha256(text: object) -> bool:
    """True for a 64-character lowercase hex digest (sha256 or engine key)."""
    return isinstance(text, str) and SHA256_RE.match(text) is not None


class EngineId(NamedTuple):
    """The parts of ``manifest/model/precision/target``."""

    manifest: str
    model: str
    precision: str
    target: str

    def __str__(self) -> str:
        return format_engine_id(self.manifest, self.model, self.precision, self.target)

    @property
    def short(self) -> str:
        """``model/precision/target`` (the id without its manifest name)."""
        return f"{self.model}/{self.precision}/{self.target}"


def format_engine_id(manifest: str, model: str, precision: str, target: str) -> str:
    """``manifest/model/precision/target``."""
    return f"{manifest}/{model}/{precision}/{target}"


def parse_engine_id(text: str, *, strict: bool = True) -> EngineId:
    """Split an engine id into its four parts.

    Args:
        text: ``manifest/model/precision/target``.
        strict: also require model, precision and target to be identifiers (they become
            module and directory names).

    Raises:
        InputError: when ``text`` is not of that form.
    """
    parts = text.split("/") if isinstance(text, str) else []
    if len(parts) != 4 or not all(parts) or (strict and not all(is_identifier(p) for p in parts[1:])):
        raise InputError(f"{text!r} is not an engine id of the form manifest/model/precision/target")
    return EngineId(*parts)


def try_parse_engine_id(text: str) -> EngineId | None:
    """:func:`parse_engine_id` that returns None instead of raising (non-strict)."""
    try:
        return parse_engine_id(text, strict=False)
    except InputError:
        return None


_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def format_bytes(size: int | float | None, *, none: str = "") -> str:
    """Byte counts as people read them: ``512 B``, ``64 MiB``, ``6.98 KiB``, ``1.5 GiB``.

    Exact multiples print without decimals (so a manifest's ``64MiB`` reads back the same);
    others keep up to two decimals. ``None`` prints ``none``.
    """
    if size is None:
        return none
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        return str(size)
    value = abs(size)
    for unit, scale in _UNITS:
        if value >= scale:
            number = size / scale
            if float(size) % scale == 0:
                return f"{number:.0f} {unit}"
            return f"{number:.2f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size:.0f} B"


def format_rate(bytes_per_second: float) -> str:
    """Transfer speeds: ``format_bytes`` per second (``412.5 MiB/s``)."""
    return f"{format_bytes(bytes_per_second)}/s"


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*\Z")


def parse_duration(text: str) -> float:
    """Seconds of a duration as people write it: ``90s``, ``45m``, ``12h``, ``30d``, ``2w``.

    Raises:
        InputError: for anything else.
    """
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(f"{text!r} is not a duration",
                         hint="a number and a unit: 90s, 45m, 12h, 30d or 2w")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
