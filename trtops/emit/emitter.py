"""Emit loaders for engines in the cache: the library behind ``trtops emit`` (and what
``apply`` and ``pull`` call for the manifest's ``loaders:``).

Every item is validated once (:func:`trtops.emit.entries.validate`: only accepted engines,
``unverified`` ones only when asked, engine bytes matching meta.json), then each registered
loader (:mod:`trtops.emit.registry`) gets the entries that asked for it and writes below
``<dest>/<loader name>/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.cache.dir_transport import local_writes
from trtops.emit.entries import EmitItem, EngineFiles, Entry, Rejected, validate
from trtops.emit.registry import (
    ENGINE_REFS,
    LOADER_NAMES,
    EmitOptions,
    check_loaders,
    get_loader,
    parse_loaders,
)
from trtops.errors import ExitCode, InputError, Outcome

__all__ = ["EmitItem", "EmitReport", "check_loaders", "emit_entries", "parse_loaders"]

# References that point into the cache itself: only a local cache has files to point at.
_LOCAL_REFS = ("relative", "key")


@dataclass
class EmitReport:
    """What was written and what was skipped (with why), and the resulting exit code."""

    written: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)

    def skip(self, engine: str, key: str | None, reason: str, code: ExitCode) -> None:
        self.skipped.append({"engine": engine, "key": key or "", "reason": reason})
        self.outcome.add(code)

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "skipped": self.skipped,
                "exit_code": int(self.outcome.exit_code)}

    def summary(self, dest: str | Path) -> str:
        """``emit: 2 loaders for 2 engines written to out; 3 engines skipped (exit 1)``."""
        engines = len({row["engine"] for row in self.written})
        skipped = len({row["engine"] for row in self.skipped})
        return (f"emit: {_count(len(self.written), 'loader')} for {_count(engines, 'engine')} "
                f"written to {dest}; {_count(skipped, 'engine')} skipped "
                f"(exit {int(self.outcome.exit_code)})")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def emit_entries(store: Any, items: Iterable[EmitItem], dest: str | Path, *,
                 engine_ref: str = "copy", triton: Any = None,
                 include_unverified: bool = False) -> EmitReport:
    """Write loaders for cache entries.

    Args:
        store: The engine cache (any :class:`~trtops.cache.store.EntryStore`; ``relative``
            and ``key`` references need a local one).
        items: Engines (spec id, key) and the loaders wanted for each.
        dest: Output directory (one directory per loader is created below it).
        engine_ref: How Python loaders find their engine: copy | relative | env | key |
            absolute.
        triton: Triton config settings (:class:`~trtops.emit.triton.TritonOptions`).
        include_unverified: Also emit engines whose accuracy was never checked.

    Returns:
        The report: files written, engines skipped with reasons, exit code.
    """
    if engine_ref not in ENGINE_REFS:
        raise InputError(f"unknown engine reference {engine_ref!r}",
                         hint=f"use one of {', '.join(ENGINE_REFS)}")
    files = EngineFiles(store)
    if engine_ref in _LOCAL_REFS and not files.local:
        raise InputError(f"--engine-ref {engine_ref} needs a local cache, not {store.url}",
                         hint="use --engine-ref copy, or `trtops pull` the engines first")
    items = list(items)
    for item in items:
        check_loaders(item.loaders)
    cache_root = getattr(store, "root", None)
    options = EmitOptions(engine_ref=engine_ref,
                          cache_dir=Path(cache_root) if cache_root else None,
                          settings={"triton": triton} if triton is not None else {})
    report = EmitReport()
    dest = Path(dest)
    try:
        entries: list[Entry] = []
        for item in items:
            checked = validate(store, item, files, include_unverified=include_unverified)
            if isinstance(checked, Rejected):
                report.skip(checked.spec_id, checked.key, checked.reason, checked.exit_code)
            else:
                entries.append(checked)
        for name in LOADER_NAMES:
            wanted = [entry for entry in entries if name in entry.loaders]
            if not wanted:
                continue
            # A full disk or a read-only --dest is the machine's, not a bug: every file is
            # written atomically, so what exists is whole; say what failed.
            with local_writes(f"the {name} loaders in {dest}"):
                output = get_loader(name).emit(wanted, dest / name, options)
            for refused in output.refused:
                report.skip(refused.engine, refused.key, refused.reason, refused.exit_code)
            for written in output.written:
                report.written.append({"loader": name, "engine": written.engine,
                                       "key": written.key, "path": str(written.path)})
                report.outcome.add(ExitCode.OK)
    finally:
        files.close()
    return report
