"""The ``emit`` verb: pick the engines to emit (from manifests, or every ref of the cache),
filter them by model, precision and target, and write their loaders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trtops.emit.emitter import EmitItem, EmitReport, emit_entries
from trtops.emit.registry import parse_loaders
from trtops.errors import InputError
from trtops.names import try_parse_engine_id


@dataclass(frozen=True)
class EngineFilter:
    """Which engines to keep: empty means every model / precision / target."""

    models: Sequence[str] = ()
    precisions: Sequence[str] = ()
    targets: Sequence[str] = ()

    def keeps(self, spec_id: str) -> bool:
        """True when ``spec_id`` (manifest/model/precision/target) passes every filter."""
        engine = try_parse_engine_id(spec_id)
        if engine is None:
            return False
        return ((not self.models or engine.model in self.models)
                and (not self.precisions or engine.precision in self.precisions)
                and (not self.targets or engine.target in self.targets))


def collect_items(store: Any, manifest_paths: Sequence[str | os.PathLike[str]], *,
                  loaders: str | None = None, only: EngineFilter = EngineFilter(),
                  cache_url: str | None = None) -> tuple[list[EmitItem], list[str]]:
    """Engines to emit and notes about engines left out.

    Args:
        store: the engine cache.
        manifest_paths: manifests to take the engines from (their ``loaders:`` unless
            ``loaders`` is given); none: every engine the cache has a ref for.
        loaders: comma-separated loader names overriding the manifests' (default for refs:
            python).
        only: model / precision / target filters.
        cache_url: the cache as the user named it (a local one is where manifest checks
            look for cached model digests).

    Returns:
        The items (spec id, key from its ref, loaders) and notes for the user.
    """
    from trtops.cache import is_remote

    override = parse_loaders(loaders) if loaders else None
    notes: list[str] = []
    items: list[EmitItem] = []
    if manifest_paths:
        from trtops.plan import load_specs

        cache_dir = None if cache_url and is_remote(cache_url) else getattr(store, "root", None)
        for spec in load_specs(list(manifest_paths), check_models=False, cache_dir=cache_dir):
            if not only.keeps(spec.id):
                continue
            wanted = override or tuple(spec.loaders)
            if not wanted:
                notes.append(f"{spec.id}: no loaders: in its manifest (pass --loaders)")
                continue
            record = store.read_ref(spec.id)
            key = record.get("key") if isinstance(record, dict) else None
            items.append(EmitItem(spec.id, key or "", wanted))
    else:
        for spec_id, record in sorted(store.list_refs()):
            if only.keeps(spec_id) and isinstance(record, dict):
                items.append(EmitItem(spec_id, str(record.get("key") or ""),
                                      override or ("python",)))
    return items, notes


def _mark_defaults(store: Any, manifest_paths: Sequence[str | os.PathLike[str]],
                   items: list[EmitItem], cache_url: str | None) -> list[EmitItem]:
    """Items whose engine ``select: fastest`` chose (from the cache's perf.json files, as
    apply chooses) marked as their model's default loader."""
    if not manifest_paths:
        return items
    from dataclasses import replace

    from trtops.cache import is_remote
    from trtops.ops.select import chosen_ids, select_from_store
    from trtops.plan import load_specs

    cache_dir = None if cache_url and is_remote(cache_url) else getattr(store, "root", None)
    specs = [s for s in load_specs(list(manifest_paths), check_models=False, cache_dir=cache_dir)
             if s.select]
    if not specs:
        return items
    chosen = chosen_ids(select_from_store(store, specs))
    return [replace(item, default=item.spec_id in chosen) for item in items]


def emit(store: Any, manifest_paths: Sequence[str | os.PathLike[str]], dest: str, *,
         loaders: str | None = None, only: EngineFilter = EngineFilter(),
         cache_url: str | None = None, engine_ref: str = "copy", triton: Any = None,
         include_unverified: bool = False) -> tuple[EmitReport, list[str]]:
    """``trtops emit``: collect the engines (:func:`collect_items`) and write their loaders
    (:func:`trtops.emit.emitter.emit_entries`).

    Returns:
        The emitter's report and the notes about engines left out.

    Raises:
        InputError: no engine to emit.
    """
    items, notes = collect_items(store, manifest_paths, loaders=loaders, only=only,
                                 cache_url=cache_url)
    if not items:
        raise InputError(
            f"no engines to emit from {store.url}" + (": " + "; ".join(notes) if notes else ""),
            hint="build them with `trtops apply` (or `trtops pull`), and check the filters")
    items = _mark_defaults(store, manifest_paths, items, cache_url)
    report = emit_entries(store, items, dest, engine_ref=engine_ref, triton=triton,
                          include_unverified=include_unverified)
    return report, notes
