"""Run built engines the way deployments do: through an emitted Python loader (the
assembled standalone runtime), never through a second, test-only runner."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from trtops.emit.python_loader import LoaderInfo, write_loader

_COUNTER = itertools.count()


def emit_loader(result: Any, *, version_compatible: bool = False) -> Any:
    """Emit a loader for a ``BuildResult`` (its engine file and I/O) next to the engine and
    import it under a fresh name."""
    index = next(_COUNTER)
    module_name = f"gpu_engine_{index}"
    emitted = write_loader(result.engine_path.parent / "loader", result.io, result.engine_path,
                           LoaderInfo(module=module_name, version_compatible=version_compatible),
                           engine_ref="absolute")
    spec = importlib.util.spec_from_file_location(module_name, emitted.module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_engine(result: Any, feeds: Mapping[str, np.ndarray], *, profile: int | None = None,
               version_compatible: bool = False) -> dict[str, np.ndarray]:
    """One call of the engine of ``result`` on host arrays: ``{output name: array}``.

    Args:
        result: the ``BuildResult`` of ``trtops.trt.builder.build_engine``.
        feeds: one array per engine input.
        profile: when given, the optimization profile the loader must pick for these shapes.
        version_compatible: the engine was built version-compatible (its lean runtime runs
            as host code).
    """
    loader = emit_loader(result, version_compatible=version_compatible)
    if profile is not None:
        assert loader.check_inputs(feeds) == profile
    with loader.Engine() as engine:
        return engine.infer(feeds)
