"""The loader registry: one list of loader names for the manifest, the CLI and the
emitter; each registered module provides a loader of that name."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from trtops.emit.registry import (
    LOADER_MODULES,
    LOADER_NAMES,
    check_loaders,
    get_loader,
    parse_loaders,
)
from trtops.errors import InputError
from trtops.manifest.models import LoaderKind


def test_every_registered_loader_loads_under_its_name():
    assert LOADER_NAMES == tuple(LOADER_MODULES)
    for name in LOADER_NAMES:
        loader = get_loader(name)
        assert loader.name == name
        assert callable(loader.emit)


def test_the_manifest_accepts_exactly_the_registered_loaders():
    assert typing.get_args(LoaderKind) == LOADER_NAMES


def test_loader_names_are_checked():
    assert parse_loaders(" python, triton ") == ("python", "triton")
    assert check_loaders([]) == ()
    with pytest.raises(InputError, match="unknown loader 'onnx'") as info:
        parse_loaders("python,onnx")
    assert "python, triton" in (info.value.hint or "")


def test_the_registry_imports_no_loader_until_one_is_used():
    code = ("import sys, trtops.emit.registry, trtops.manifest.models\n"
            "print(sorted(m for m in sys.modules if m.startswith('trtops.emit.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['trtops.emit.registry']"
