"""``trtops prepare``: write the prepared models of manifests, and what preparation changed.

The same stage ``apply`` runs before building (:mod:`trtops.prepare.runner`), so what this
writes is what TensorRT will parse: by default into the cache's ``prepared/`` (where
``apply`` then finds it), with ``--out DIR`` into ``DIR/<manifest>/<model>/``. Url
sources are downloaded first (:func:`trtops.sources.ensure_source`), as ``apply`` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PreparedModel:
    """One model's preparation: where the result is, and the report (None: already cached)."""

    manifest: str
    model: str
    path: Path | None
    report: Any = None
    skipped: str = ""  # why nothing was prepared


@dataclass
class PrepareRun:
    models: list[PreparedModel] = field(default_factory=list)


def prepare_manifests(paths: Sequence[str], *, cache_root: str | os.PathLike[str],
                      out: str | os.PathLike[str] | None = None, only: Sequence[str] = ()) -> PrepareRun:
    """Prepare every model of the manifests that has ``prepare:`` options (once per model).

    Args:
        paths: Manifest files or directories.
        cache_root: The local cache directory (url sources, the digest memo, prepared/).
        out: Write here instead of the cache (``<out>/<manifest>/<model>/model.onnx``).
        only: Model names to prepare (default: all).

    Returns:
        One :class:`PreparedModel` per model, in manifest order.

    Raises:
        ManifestError: manifest problems. PreparationFailed (exit 1): a step cannot do what
        the manifest asks. EnvironmentMissing: folding without its tools, or a url
        source that cannot be downloaded.
    """
    from trtops.keys.memo import DigestMemo
    from trtops.keys.model_digest import digest_models
    from trtops.plan.assemble import load_specs
    from trtops.prepare.runner import ensure_prepared, prepare_file

    specs = load_specs(paths, check_models=True, cache_dir=cache_root)
    run = PrepareRun()
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        ident = (spec.manifest_name, spec.model)
        if ident in seen or (only and spec.model not in only):
            continue
        seen.add(ident)
        if spec.prepare is None or spec.prepare.is_noop:
            run.models.append(PreparedModel(spec.manifest_name, spec.model, None,
                                            skipped="no prepare: options (built as it is)"))
            continue
        if spec.source.url:
            from trtops.sources import ensure_source

            ensure_source(spec, cache_root)  # downloaded (with a progress bar) and verified once
        if out is not None:
            path, report = prepare_file(spec.source.path, spec.prepare, Path(out) / spec.manifest_name / spec.model)
        else:
            from trtops.cache.layout import DIGEST_MEMO_FILE

            memo = DigestMemo(Path(cache_root) / DIGEST_MEMO_FILE)
            digest = digest_models([spec.source.path], memo)[spec.source.path].digest
            path, report = ensure_prepared(cache_root, spec.source.path, digest, spec.prepare)
            if report is None:
                report = _cached_report(path)
        run.models.append(PreparedModel(spec.manifest_name, spec.model, path, report))
    return run


def _cached_report(path: Path) -> Any:
    import json

    from trtops.prepare.runner import REPORT_FILE, PrepareReport

    try:
        data = json.loads((path.parent / REPORT_FILE).read_text(encoding="utf-8"))
        return PrepareReport(**data)
    except (OSError, ValueError, TypeError):
        return None
