"""Load and check manifests: parse every file (:mod:`.load`), then the semantic checks
(:mod:`.check`), collecting every problem of every file before raising.

Separate from :mod:`.load` so that the checks can use the loader without a cycle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from trtops.errors import ManifestError, Problem
from trtops.manifest.check import check_across, check_manifest
from trtops.manifest.load import LoadedManifest, find_manifest_files, load_file


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.file, p.location.line or 0, p.location.column or 0))


def errors_only(problems: Sequence[Problem]) -> list[Problem]:
    """The problems that are errors (warnings never stop a command)."""
    return [p for p in problems if p.severity == "error"]


def collect(
    paths: Sequence[str | os.PathLike[str]],
    *,
    check_models: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[LoadedManifest], list[Problem], list[Path]]:
    """Load and check manifests without raising.

    Returns:
        (manifests without errors of their own, all problems (errors and warnings) sorted
        by place, files read)
    """
    files, problems = find_manifest_files(paths)
    loaded: list[LoadedManifest] = []
    for path in files:
        manifest, found = load_file(path)
        problems.extend(found)
        if manifest is not None:
            loaded.append(manifest)
    for manifest in loaded:
        problems.extend(check_manifest(manifest, check_models=check_models, cache_dir=cache_dir))
    problems.extend(check_across(loaded))
    bad = {p.location.file for p in errors_only(problems)}
    good = [m for m in loaded if str(m.path) not in bad]
    return good, _sorted(problems), files


def load_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    check_models: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[LoadedManifest]:
    """Load, validate and cross-check manifest files.

    Args:
        paths: manifest files, or directories whose ``*.yaml``/``*.yml`` files are read
            (sorted, not recursive).
        check_models: also check what needs files on disk: sources exist, ONNX graphs
            agree with profiles, calibration/accuracy data exist.
        cache_dir: cache holding url sources (``<cache>/sources/<sha256>.onnx``); default
            ``cache``. Url sources not yet downloaded are not checked.

    Returns:
        One :class:`LoadedManifest` per file, in path order.

    Raises:
        ManifestError: with every problem of every file.
    """
    loaded, problems, _ = collect(paths, check_models=check_models, cache_dir=cache_dir)
    errors = errors_only(problems)
    if errors:
        raise ManifestError(errors)
    return loaded


def check_model_files(
    loaded: Sequence[LoadedManifest],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Run the checks that read model and data files on manifests already loaded by
    :func:`load_paths` (``check_models=False``), without parsing them again.

    Raises:
        ManifestError: with every problem found.
    """
    problems: list[Problem] = []
    for manifest in loaded:
        problems.extend(check_manifest(manifest, check_models=True, cache_dir=cache_dir))
    errors = errors_only(problems)
    if errors:
        raise ManifestError(_sorted(errors))
