"""``trtops info``: the platform trtops plans for, the platform file other machines plan
with, and the versions of the packages that matter for builds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_PACKAGES = ("onnx", "onnxruntime", "polygraphy", "pycuda", "cuda-python", "nvidia-ml-py")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages builds and checks use (None: not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_platform_file(platform: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``platform`` as the file ``--platform FILE`` reads (folders created).

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(platform.to_json(), indent=2) + "\n", encoding="utf-8")
    return target
