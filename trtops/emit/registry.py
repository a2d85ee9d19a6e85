"""The loader registry: which loaders exist, and what a loader is.

A loader is a name and an ``emit(entries, dest, options)`` that writes its files for
engines already validated once by :mod:`trtops.emit.entries` (accepted, sha256 checked,
I/O known). Adding a loader = one module defining ``LOADER`` + one line in
:data:`LOADER_MODULES` + its tests; the manifest's ``loaders:`` and ``trtops emit
--loaders`` take their list of names from here.

Light on purpose (the manifest schema imports it): loader modules are imported only when a
loader is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trtops.errors import ExitCode, InputError, InternalError

if TYPE_CHECKING:
    from trtops.emit.entries import Entry

# Loader name -> the module whose ``LOADER`` implements it. A loader writes below
# ``<dest>/<name>/``.
LOADER_MODULES: dict[str, str] = {
    "python": "trtops.emit.python_loader",
    "triton": "trtops.emit.triton",
}
LOADER_NAMES: tuple[str, ...] = tuple(LOADER_MODULES)
# How an emitted loader finds its engine file (see trtops.emit.python_loader.EngineRef).
ENGINE_REFS = ("copy", "relative", "env", "key", "absolute")


@dataclass(frozen=True)
class EmitOptions:
    """Settings for every loader of one emit.

    ``engine_ref``: how a loader that ships code finds its engine (copy | relative | env |
    key | absolute); ``cache_dir``: the local cache root (for ``key`` references);
    ``settings``: loader name -> that loader's own settings (e.g. ``TritonOptions``).
    """

    engine_ref: str = "copy"
    cache_dir: Path | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """A file or directory a loader wrote for one engine."""

    engine: str  # spec id
    key: str
    path: Path


@dataclass(frozen=True)
class Refused:
    """An engine a loader could not write for, with why (shown to the user)."""

    engine: str
    key: str
    reason: str
    exit_code: ExitCode


@dataclass
class LoaderOutput:
    """What one loader did with its entries."""

    written: list[Written] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


class Loader(Protocol):
    """A kind of loader (see the module docstring)."""

    name: str

    def emit(self, entries: Sequence[Entry], dest: Path, options: EmitOptions) -> LoaderOutput:
        """Write this loader's files for ``entries`` below ``dest`` (``<dest>/<name>``)."""
        ...


def check_loaders(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, if each is a registered loader.

    Raises:
        InputError: for the first unknown name.
    """
    names = tuple(names)
    unknown = [n for n in names if n not in LOADER_MODULES]
    if unknown:
        raise InputError(f"unknown loader {unknown[0]!r}",
                         hint=f"use {', '.join(LOADER_NAMES)}")
    return names


def parse_loaders(text: str) -> tuple[str, ...]:
    """``"python,triton"`` -> ("python", "triton") (checked against the registry)."""
    return check_loaders(k.strip() for k in text.split(",") if k.strip())


def get_loader(name: str) -> Loader:
    """The registered loader called ``name`` (its module is imported on first use)."""
    (name,) = check_loaders([name])
    loader = importlib.import_module(LOADER_MODULES[name]).LOADER
    if loader.name != name:
        raise InternalError(f"loader module {LOADER_MODULES[name]} registers {loader.name!r}, "
                         f"not {name!r}")
    return loader
