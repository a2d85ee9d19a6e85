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
    cast: str | None = None  # the fp16/bf16 cast of strongly typed builds on this platform
    precisions: tuple[str, ...] = ()  # the precisions built from this prepared model

    @property
    def name(self) -> str:
        """``manifest/model`` (with the cast, ``manifest/model [fp16 cast]``)."""
        return f"{self.manifest}/{self.model}" + (f" [{self.cast} cast]" if self.cast else "")


@dataclass
class PrepareRun:
    models: list[PreparedModel] = field(default_factory=list)


def prepare_manifests(paths: Sequence[str], *, cache_root: str | os.PathLike[str],
                      out: str | os.PathLike[str] | None = None, only: Sequence[str] = (),
                      platform: Any = None) -> PrepareRun:
    """Prepare every model of the manifests that has ``prepare:`` options or, on
    ``platform``'s TensorRT, a cast (:func:`trtops.capabilities.model_cast`): once per model
    and cast.

    Args:
        paths: Manifest files or directories.
        cache_root: The local cache directory (url sources, the digest memo, prepared/).
        out: Write here instead of the cache (``<out>/<manifest>/<model>/model.onnx``, the
            cast ones in ``<out>/<manifest>/<model>/<cast>/``).
        only: Model names to prepare (default: all).
        platform: The platform whose TensorRT decides the casts (engines it cannot build
            get none); None: no casts.

    Returns:
        One :class:`PreparedModel` per model and cast, in manifest order.

    Raises:
        ManifestError: manifest problems. PreparationFailed (exit 1): a step cannot do what
        the manifest asks. EnvironmentMissing: folding without its tools, or a url
        source that cannot be downloaded.
    """
    from trtops.capabilities import model_cast
    from trtops.keys.memo import DigestMemo
    from trtops.keys.model_digest import digest_models
    from trtops.plan.assemble import load_specs
    from trtops.plan.targets import match_target
    from trtops.prepare.options import KeepLists, keep_lists
    from trtops.prepare.runner import ensure_prepared, prepare_file, read_report

    specs = load_specs(paths, check_models=True, cache_dir=cache_root)
    groups: dict[tuple[str, str, str | None, KeepLists], list[Any]] = {}
    for spec in specs:
        if only and spec.model not in only:
            continue
        cast = None
        if platform is not None:
            match = match_target(spec, platform)
            cast = model_cast(spec.build, match.tensorrt) if match.problem is None and match.tensorrt else None
        # keep_fp32 is per model, so one cast of a model keeps one set of nodes.
        keep = keep_lists(spec.build) if cast else KeepLists()
        groups.setdefault((spec.manifest_name, spec.model, cast, keep), []).append(spec)
    run = PrepareRun()
    for (manifest, model, cast, keep), group in groups.items():
        spec = group[0]
        precisions = tuple(dict.fromkeys(s.precision for s in group))
        nothing = spec.prepare is None or spec.prepare.is_noop
        if nothing and cast is None:
            run.models.append(PreparedModel(manifest, model, None, precisions=precisions,
                                            skipped="no prepare: options and no cast (built as it is)"))
            continue
        if spec.source.url:
            from trtops.sources import ensure_source

            ensure_source(spec, cache_root)  # downloaded (with a progress bar) and verified once
        if out is not None:
            where = Path(out) / manifest / model / (cast or "")
            path, report = prepare_file(spec.source.path, spec.prepare, where, cast=cast, keep=keep)
        else:
            from trtops.cache.pins import pinned
            from trtops.keys.memo import user_memo_path
            from trtops.prepare.options import prepare_component
            from trtops.prepare.runner import prepared_chain

            memo = DigestMemo(user_memo_path())  # the one memo: never inside the cache
            digest = digest_models([spec.source.path], memo)[spec.source.path].digest
            with pinned(cache_root, prepared_chain(digest, prepare_component(spec.prepare, cast, keep))):
                prepared = ensure_prepared(cache_root, spec.source.path, digest, spec.prepare, cast, keep)
            path, report = prepared.model, prepared.report
            if report is None:
                report = read_report(path)
        run.models.append(PreparedModel(manifest, model, path, report, cast=cast, precisions=precisions))
    return run
