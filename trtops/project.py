"""The project a command works on, and so where its engine cache lives by default.

The cache belongs to the project, not to the directory a command happens to run in (run
from ``/``, ``trtops apply /src/proj/manifests`` must not write ``/cache``). The project root
is the nearest directory, from the manifests given (else the current directory) upward,
that holds ``trtops.toml`` or a ``pyproject.toml`` with a ``[tool.trtops]`` table. Without
one, it is the directory of the manifests, or the one holding it when that directory is
called ``manifests/`` (the default layout: ``proj/manifests/*.yaml`` -> ``proj/``); with no
manifests given, the current directory. The cache is ``<root>/cache`` unless the project
file says ``cache = "..."`` (relative to that file, or a URL such as ``s3://...``).
``--cache`` and ``$TRTOPS_CACHE`` win over all of this
(:func:`trtops.cache.default_cache_url` puts it together).

Pure lookups; nothing is created. TOML is read with :mod:`tomllib` (``tomli`` on 3.10).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtops.errors import InputError

PROJECT_FILE = "trtops.toml"
PYPROJECT_FILE = "pyproject.toml"
#: Keys a project file may set (one today; unknown keys are refused, like in manifests).
CONFIG_KEYS = ("cache",)
#: The conventional manifest folder (``trtops.names.DEFAULT_MANIFEST_PATHS``).
MANIFESTS_DIR = "manifests"


@dataclass(frozen=True)
class Project:
    """Where a project is and what its project file says."""

    root: Path
    config_file: Path | None  # trtops.toml or pyproject.toml, None: none found
    cache: str | None  # the file's ``cache`` setting as written; None: not set


def _toml():
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def _read_toml(path: Path) -> dict[str, Any]:
    tomllib = _toml()
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}",
                         hint="fix the file, or remove it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _config(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """The trtops settings of ``directory``'s project file, if it has one."""
    own = directory / PROJECT_FILE
    if own.is_file():
        return own, _read_toml(own)
    pyproject = directory / PYPROJECT_FILE
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool")
        if isinstance(tool, dict) and "trtops" in tool:
            table = tool["trtops"]
            if not isinstance(table, dict):
                raise InputError(f"{pyproject}: [tool.trtops] must be a table")
            return pyproject, table
    return None


def _start(paths: Sequence[str | os.PathLike[str]]) -> tuple[Path, bool]:
    """(where the search starts, whether manifests were given)."""
    if not paths:
        return Path.cwd(), False
    first = Path(paths[0]).expanduser().absolute()
    return (first if first.is_dir() else first.parent), True


def _cache_setting(config_file: Path, settings: dict[str, Any]) -> str | None:
    unknown = [k for k in settings if k not in CONFIG_KEYS]
    if unknown:
        raise InputError(f"{config_file}: unknown trtops setting {unknown[0]!r}",
                         hint="known settings: " + ", ".join(CONFIG_KEYS))
    value = settings.get("cache")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputError(f"{config_file}: cache: must be a non-empty string (a directory "
                         "relative to this file, or a URL such as s3://bucket/prefix)")
    return value


def find_project(paths: Sequence[str | os.PathLike[str]] = ()) -> Project:
    """The project of ``paths`` (manifest files or directories, or a saved plan), or of the
    current directory when none are given. See the module docstring for the rule.

    Raises:
        InputError: for a project file that is not valid TOML or has bad settings.
    """
    start, given = _start(paths)
    for directory in (start, *start.parents):
        found = _config(directory)
        if found is not None:
            config_file, settings = found
            return Project(directory, config_file, _cache_setting(config_file, settings))
    root = start.parent if given and start.name == MANIFESTS_DIR else start
    return Project(root, None, None)
