"""Names and small formats every layer agrees on (one definition each).

- identifiers (model, precision, target, tensor-derived names that become code or paths);
- sha256 digests and engine keys (64 lowercase hex);
- engine ids ``manifest/model/precision/target`` (format and parse);
- byte sizes as people read them (one format for plan, reports, push/pull and status) and
  as manifests write them (one grammar, :func:`parse_byte_size`);
- the words a switch is written with (environment variables, URL options: :func:`switch`).

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
#: What a user may type for a key: a unique prefix of at least 6 hex digits, or all 64.
KEY_PREFIX_RE = re.compile(r"^[0-9a-f]{6,64}\Z")

ENGINE_FILE = "engine.plan"

#: Where commands look for manifests when no path is given.
DEFAULT_MANIFEST_PATHS: tuple[str, ...] = ("manifests",)

#: Entries ``push`` and ``pull`` transfer at once unless ``-j`` says otherwise.
TRANSFER_JOBS = 8

#: OSError numbers that mean "the disk (or quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})


ON_WORDS = frozenset({"1", "true", "yes", "on"})
OFF_WORDS = frozenset({"0", "false", "no", "off"})


def switch(word: str) -> bool | None:
    """True for a word of :data:`ON_WORDS`, False for one of :data:`OFF_WORDS` (any case),
    None for any other (each caller decides what that means; it strips spaces itself
    where they are allowed)."""
    word = word.lower()
    return True if word in ON_WORDS else False if word in OFF_WORDS else None


def is_identifier(text: object) -> bool:
    """True for names that may become Python identifiers, module and directory names."""
    return isinstance(text, str) and IDENTIFIER_RE.match(text) is not None


def identifier_problem(text: str) -> str | None:
    """What makes ``text`` not an identifier, in words (None when it is one)."""
    if IDENTIFIER_RE.match(text):
        return None
    if not text:
        return "is empty"
    if not text.isascii():
        return "has non-ASCII characters (names become module and directory names)"
    if len(text) > 64:
        return f"is {len(text)} characters long (at most 64)"
    if text[0].isdigit():
        return "starts with a digit"
    bad = sorted({c for c in text if not (c.isalnum() or c == "_")})
    shown = " ".join(repr(c) for c in bad[:5])
    return f"has {shown} (only letters, digits and '_' are allowed)"


def suggest_identifier(text: str) -> str | None:
    """A close identifier for ``text`` (``tiny-cnn`` → ``tiny_cnn``), or None when none is."""
    if not text.isascii():  # dropping letters would suggest another name ('cоnv' → 'cnv')
        return None
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if not cleaned:
        return None
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    cleaned = cleaned[:64]
    return cleaned if cleaned != text and IDENTIFIER_RE.match(cleaned) else None


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


# The one size grammar of manifests: a number of bytes, or a number and one of these units
# written exactly so (``4GiB``, ``4 GiB``, ``1.5GB``). Case matters: ``mb`` reads as
# millibits and ``4G`` does not say whether 1000 or 1024 is meant, so both are refused.
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}
SIZE_PATTERN = r"(\d{1,30}(?:\.\d{1,30})?) ?(" + "|".join(SIZE_UNITS) + r")?"
_SIZE_RE = re.compile(rf"^{SIZE_PATTERN}\Z")
_LOOSE_SIZE_RE = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*([A-Za-z]{1,3})\s*\Z")
SIZE_FORMS = ("a number of bytes (1073741824), or a number and one of "
              "KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000), "
              "e.g. 4GiB, 512 MiB, 1.5GB")


def parse_byte_size(value: object) -> int:
    """A size as manifests write it → bytes (``"4GiB"``, ``"64 MiB"``, ``"1.5GB"``, ``1048576``).

    The grammar is :data:`SIZE_PATTERN`; fractional byte counts are rounded down.

    Raises:
        ValueError: anything else, with the accepted forms (and the likely intended one).
    """
    from fractions import Fraction  # exact, and no overflow on long numbers

    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            number, unit = match.groups()
            return int(Fraction(number) * SIZE_UNITS[unit or "B"])
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    message = f"got {shown}, which is not a size: write {SIZE_FORMS}"
    guess = _size_guess(value)
    if guess:
        message += f"; did you mean {guess}?"
    raise ValueError(message)


def _size_guess(value: object) -> str | None:
    loose = _LOOSE_SIZE_RE.match(value) if isinstance(value, str) else None
    if loose is None:
        return None
    number, unit = loose.groups()
    lowered = unit.lower()
    by_case = {u.lower(): u for u in SIZE_UNITS}
    if lowered in by_case:
        return f"{number}{by_case[lowered]}"
    if lowered in ("k", "m", "g", "t"):  # '4G': binary is what GPU memory is counted in
        prefix = lowered.upper()
        return f"{number}{prefix}iB or {number}{'k' if prefix == 'K' else prefix}B"
    return None


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


# The one percentage grammar of manifests (``max_regression: 10%``): a number and '%'. A
# bare number is refused: 0.1 could mean 0.1% or 10%.
PERCENT_PATTERN = r"(\d{1,4}(?:\.\d{1,6})?) ?%"
_PERCENT_RE = re.compile(rf"^{PERCENT_PATTERN}\Z")


def parse_percent(value: object) -> float:
    """A percentage as manifests write it → a fraction (``"10%"`` → 0.1, ``"2.5 %"`` → 0.025).

    Raises:
        ValueError: anything else (a bare number included: 0.1 could be 0.1% or 10%).
    """
    match = _PERCENT_RE.match(value) if isinstance(value, str) else None
    if match is None:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"got {shown}, which is not a percentage: write a number and '%', "
                         "e.g. 10% or 2.5%")
    return float(match.group(1)) / 100.0


def format_percent(fraction: float) -> str:
    """A fraction as people read a percentage: 0.1 → ``10%``, 0.205 → ``20.5%``."""
    text = f"{fraction * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"
