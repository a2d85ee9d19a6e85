"""Finding the engine file and refusing bytes other than the ones the loader was emitted
for (sha256, checked before TensorRT sees them)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from .errors import EngineLoadError
from .header import _MODULE_DIR, METADATA


def _engine_meta() -> Mapping[str, Any]:
    return METADATA.get("engine") or {}


def resolve_engine_path() -> str:
    """Where the engine file of this module is, from its embedded reference: a path next
    to the module (copy/relative), an environment variable (env), or a trtops cache key
    (key: under ``$TRTOPS_CACHE`` or the cache it was emitted from). The reference's
    environment variable, when set, always wins."""
    ref = _engine_meta()
    variable = ref.get("env")
    if variable and os.environ.get(variable):
        return os.environ[variable]
    mode = ref.get("mode")
    if mode in ("copy", "relative"):
        return os.path.normpath(os.path.join(_MODULE_DIR, ref["path"]))
    if mode == "absolute":
        return str(ref["path"])
    if mode == "key":
        cache = os.environ.get("TRTOPS_CACHE") or ref.get("cache")
        if not cache:
            raise EngineLoadError(
                "this loader refers to the engine by its trtops cache key "
                f"{ref.get('key')}; set TRTOPS_CACHE to the cache directory"
            )
        key = str(ref["key"])
        return os.path.join(cache, "engines", key[:2], key, "engine.plan")
    if mode == "env":
        raise EngineLoadError(
            f"set the environment variable {variable} to the engine file's path "
            "(this loader was emitted with --engine-ref env)"
        )
    raise EngineLoadError("this module names no engine file; pass Engine(path)")


def _read_engine(path: str, expected_sha256: str | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EngineLoadError(
            f"cannot read the engine file {path}: {exc.strerror or exc}"
        ) from exc
    if expected_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise EngineLoadError(
                f"the engine file {path} has sha256 {digest}, this loader was emitted for "
                f"{expected_sha256}; re-emit the loader for this engine, or pass "
                "verify=False to skip the check"
            )
    return data
