"""Emit loaders for engines in the cache: the library behind ``trtops emit`` (and what
``apply`` and ``pull`` call for the manifest's ``loaders:``).

Only accepted engines are emitted (``accuracy.json`` state ``accepted``); ``unverified``
ones only when asked. Python loaders go to ``<dest>/python/<model>_<precision>_<target>.py``
(one module per engine); Triton models to ``<dest>/triton/<model>_<precision>/``, one per
model and precision, with one plan per compute capability when several targets were built.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.emit.python_loader import (
    ENGINE_REFS,
    LoaderInfo,
    module_name_for,
    write_loader,
)
from trtops.emit.triton import TritonOptions, TritonVariant, write_model
from trtops.engine_io import EngineIO, TensorIO
from trtops.errors import ExitCode, InputError, Outcome, TrtopsError

LOADERS = ("python", "triton")
PYTHON_DIR = "python"
TRITON_DIR = "triton"
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class EmitItem:
    """One engine to emit loaders for."""

    spec_id: str  # manifest/model/precision/target
    key: str
    loaders: tuple[str, ...]


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


def check_loaders(kinds: Iterable[str]) -> tuple[str, ...]:
    """Validate loader names (``python``, ``triton``)."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in LOADERS]
    if unknown:
        raise InputError(f"unknown loader {unknown[0]!r}", hint=f"use {', '.join(LOADERS)}")
    return kinds


def parse_loaders(text: str) -> tuple[str, ...]:
    """``"python,triton"`` -> ("python", "triton")."""
    return check_loaders(k.strip() for k in text.split(",") if k.strip())


def split_spec_id(spec_id: str) -> tuple[str, str, str, str]:
    """``manifest/model/precision/target`` -> its four parts (model, precision and target
    must be identifiers: they become module and directory names)."""
    parts = spec_id.split("/")
    if len(parts) != 4 or not all(_IDENT_RE.fullmatch(p) for p in parts[1:]):
        raise InputError(f"{spec_id!r} is not an engine id of the form "
                         "manifest/model/precision/target")
    return parts[0], parts[1], parts[2], parts[3]


def engine_io(meta: Mapping[str, Any]) -> EngineIO | None:
    """The engine's I/O from meta.json: ``io`` (tensors and profiles), else ``io_tensors``
    (tensors only: the Python loader then reads the profiles from the engine)."""
    if meta.get("io"):
        return EngineIO.from_json(meta["io"])
    tensors = meta.get("io_tensors")
    if tensors:
        return EngineIO(tuple(TensorIO(t["name"], t["mode"], t["dtype"],
                                       tuple(int(d) for d in t["shape"])) for t in tensors), ())
    return None


def _identifier(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "m"
    return name if not name[0].isdigit() else f"m_{name}"


def _sha256_matches(path: Path, expected: Any) -> bool:
    import hashlib

    if not isinstance(expected, str) or not expected:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected


class _Engines:
    """Engine files of entries: the cache's own file for a local cache, else a copy
    fetched into a temporary directory (removed by :meth:`close`)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.local = hasattr(store, "entry_dir")
        self._tmp: Path | None = None

    def path(self, key: str) -> Path | None:
        from trtops.cache.store import ENGINE_FILE

        if self.local:
            path = Path(self.store.entry_dir(key)) / ENGINE_FILE
            return path if path.is_file() else None
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="trtops-emit-"))
        path = self._tmp / f"{key}.plan"
        if path.is_file() or self.store.fetch_file(key, ENGINE_FILE, path):
            return path
        return None

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def emit_entries(store: Any, items: Iterable[EmitItem], dest: str | Path, *,
                 engine_ref: str = "copy", triton: TritonOptions | None = None,
                 include_unverified: bool = False) -> EmitReport:
    """Write loaders for cache entries.

    Args:
        store: The engine cache (any :class:`~trtops.cache.store.EntryStore`; ``relative``
            and ``key`` references need a local one).
        items: Engines (spec id, key) and the loaders wanted for each.
        dest: Output directory (``python/`` and ``triton/`` are created below it).
        engine_ref: How Python loaders find their engine: copy | relative | env | key |
            absolute.
        triton: Triton config settings.
        include_unverified: Also emit engines whose accuracy was never checked.

    Returns:
        The report: files written, engines skipped with reasons, exit code.
    """
    from trtops.cache import layout
    from trtops.cache.compat import hardware_compatibility, is_version_compatible
    from trtops.cache.entries import read_accuracy

    if engine_ref not in ENGINE_REFS:
        raise InputError(f"unknown engine reference {engine_ref!r}",
                         hint=f"use one of {', '.join(ENGINE_REFS)}")
    dest = Path(dest)
    report = EmitReport()
    engines = _Engines(store)
    if engine_ref in ("relative", "key") and not engines.local:
        raise InputError(f"--engine-ref {engine_ref} needs a local cache, not {store.url}",
                         hint="use --engine-ref copy, or `trtops pull` the engines first")
    cache_root = getattr(store, "root", None)
    triton_groups: dict[tuple[str, str, str], list[tuple[str, str, dict, Path, EngineIO]]] = {}
    items = list(items)
    modules: dict[str, int] = {}
    for item in items:
        _, model, precision, target = split_spec_id(item.spec_id)
        name = module_name_for(model, precision, target)
        modules[name] = modules.get(name, 0) + 1
    try:
        for item in items:
            manifest, model, precision, target = split_spec_id(item.spec_id)
            check_loaders(item.loaders)
            if not item.key:
                report.skip(item.spec_id, None, "not built: the cache has no ref for it (run "
                            "`trtops apply` or `trtops pull`)", ExitCode.USER_ERROR)
                continue
            if not layout.KEY_RE.match(item.key):
                report.skip(item.spec_id, item.key, "its ref names no valid engine key",
                            ExitCode.USER_ERROR)
                continue
            meta = store.read_meta(item.key)
            if meta is None:
                report.skip(item.spec_id, item.key, "not built: no entry in the cache (run "
                            "`trtops apply` or `trtops pull`)", ExitCode.USER_ERROR)
                continue
            state = layout.state_from_accuracy(read_accuracy(store, item.key))
            if state == "rejected":
                report.skip(item.spec_id, item.key, "its accuracy check failed (see `trtops "
                            "status`); loaders are emitted only for accepted engines",
                            ExitCode.ACCURACY_FAILED)
                continue
            if state == "unverified" and not include_unverified:
                report.skip(item.spec_id, item.key, "its accuracy was never checked (run "
                            "`trtops verify`, or pass --include-unverified)",
                            ExitCode.USER_ERROR)
                continue
            io = engine_io(meta)
            if io is None:
                report.skip(item.spec_id, item.key, "meta.json records no engine I/O "
                            "(rebuild it with `trtops apply`)", ExitCode.USER_ERROR)
                continue
            engine = engines.path(item.key)
            if engine is None:
                report.skip(item.spec_id, item.key, "the entry has no engine.plan (run "
                            "`trtops cache verify`)", ExitCode.USER_ERROR)
                continue
            # Never hand out (to a Triton repository or beside a loader) bytes that are not
            # the ones that were published and checked.
            if not _sha256_matches(engine, meta.get("engine_sha256")):
                report.skip(item.spec_id, item.key, "its engine.plan does not match the "
                            "sha256 in meta.json: the cache entry is corrupt (run `trtops "
                            "cache verify --delete`, then `trtops apply` or `trtops pull`)",
                            ExitCode.USER_ERROR)
                continue
            gpu = meta.get("gpu") or {}
            if "python" in item.loaders:
                module = module_name_for(model, precision, target)
                if modules.get(module, 0) > 1:  # the same engine name in two manifests
                    module = module_name_for(_identifier(manifest) + "_" + model, precision,
                                             target)
                info = LoaderInfo(
                    module=module, model=model, precision=precision, target=target,
                    key=item.key, tensorrt=meta.get("tensorrt_version"), gpu=gpu.get("name"),
                    compute_capability=gpu.get("compute_capability"),
                    version_compatible=is_version_compatible(meta))
                try:
                    emitted = write_loader(dest / PYTHON_DIR, io, engine, info,
                                           engine_ref=engine_ref,
                                           sha256=meta.get("engine_sha256"),
                                           cache_dir=cache_root)
                except TrtopsError as exc:
                    report.skip(item.spec_id, item.key, f"python loader: {exc.message}",
                                exc.exit_code)
                else:
                    report.written.append({"loader": "python", "engine": item.spec_id,
                                           "key": item.key, "path": str(emitted.module_path)})
                    report.outcome.add(ExitCode.OK)
            if "triton" in item.loaders:
                group = (manifest, model, precision)
                triton_groups.setdefault(group, []).append(
                    (item.spec_id, item.key, meta, engine, io))
        names: dict[str, tuple[str, str, str]] = {}
        for group, members in triton_groups.items():
            manifest, model, precision = group
            name = f"{model}_{precision}"
            if name in names and names[name] != group:
                name = f"{_identifier(manifest)}_{name}"
            names[name] = group
            variants = [TritonVariant(Path(engine), io,
                                      (meta.get("gpu") or {}).get("compute_capability"),
                                      hardware_compatibility(meta) == "ampere_plus",
                                      label=spec_id.rsplit("/", 1)[-1])
                        for spec_id, _, meta, engine, io in members]
            try:
                written = write_model(dest / TRITON_DIR, name, variants, triton)
            except TrtopsError as exc:
                for spec_id, key, *_ in members:
                    report.skip(spec_id, key, f"triton: {exc.message}"
                                + (f" ({exc.hint})" if exc.hint else ""), exc.exit_code)
                continue
            for spec_id, key, *_ in members:
                report.written.append({"loader": "triton", "engine": spec_id, "key": key,
                                       "path": str(written.directory)})
                report.outcome.add(ExitCode.OK)
    finally:
        engines.close()
    return report
