"""``trtops validate``: check manifests without building anything, and count what they
declare (fast enough for a pre-commit hook: YAML and ONNX graphs, never weights)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trtops.errors import Problem


@dataclass
class ValidFile:
    """A manifest without problems: how many models and engines it declares."""

    path: Path
    models: int
    engines: int


@dataclass
class Validation:
    """Every manifest file read, and every problem found (sorted by place)."""

    valid: list[ValidFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def bad_files(self) -> int:
        return len({p.location.file for p in self.errors})


def local_cache_dir(cache: str | None) -> str | None:
    """The directory of a local cache URL (url sources downloaded there are checked too);
    None for a remote cache: validate never uses the network."""
    from trtops.cache import default_cache_url, is_remote

    cache = cache or default_cache_url()
    return None if is_remote(cache) else cache.removeprefix("file://")


def validate(paths: Sequence[str], *, check_models: bool = True, cache: str | None = None) -> Validation:
    """Load and check manifests, collecting every problem.

    Args:
        paths: Manifest files or directories.
        check_models: Also run the checks that read model and data files.
        cache: The cache URL (``--cache``; default: the default cache).

    Returns:
        The files that passed (in path order) and the problems.
    """
    from trtops.manifest.collect import collect
    from trtops.manifest.expand import expand

    cache_dir = local_cache_dir(cache)
    loaded, problems, files = collect(paths, check_models=check_models, cache_dir=cache_dir)
    by_file = {str(m.path): m for m in loaded}
    result = Validation(problems=problems)
    for file in files:
        manifest = by_file.get(str(file))
        if manifest is not None:
            result.valid.append(ValidFile(file, len(manifest.manifest.models),
                                          len(expand([manifest], cache_dir=cache_dir))))
    return result
