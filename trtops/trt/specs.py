"""Build an :class:`~trtops.spec.EngineSpec` directly, without a manifest (tests, scripts).

The manifest expander is the normal source of specs; this helper fills the same defaults
for the fields the builder reads, so a one-off build needs only a model and a precision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from trtops.spec import (
    AccuracySpec,
    BuildConfig,
    CalibrationSpec,
    EngineSpec,
    InputRange,
    ModelSource,
    TargetSpec,
    ToleranceSpec,
)

Shape = Sequence[int]
ProfileArg = Mapping[str, tuple[Shape, Shape, Shape]]


def profile(**inputs: tuple[Shape, Shape, Shape]) -> dict[str, tuple[Shape, Shape, Shape]]:
    """``profile(input=([1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]))`` (readability helper)."""
    return dict(inputs)


def make_engine_spec(
    model_path: str | os.PathLike[str],
    precision: str = "fp32",
    *,
    profiles: Sequence[ProfileArg] = (),
    workspace: int | None = None,
    builder_optimization_level: int = 3,
    tactic_sources: Sequence[str] | None = None,
    max_aux_streams: int | None = None,
    hardware_compatibility: str = "none",
    version_compatible: bool = False,
    calibration: CalibrationSpec | None = None,
    timing_cache: str = "shared",
    name: str | None = None,
    target: str = "local",
) -> EngineSpec:
    """An :class:`EngineSpec` for ``model_path`` with normalized build settings.

    Args:
        model_path: ONNX file.
        precision: fp32 | tf32 | fp16 | bf16 | int8 | fp8.
        profiles: one mapping per optimization profile, ``{input: (min, opt, max)}``.
        workspace: workspace pool limit in bytes.
        builder_optimization_level: 0-5.
        tactic_sources: tactic source names, or ``None`` for TensorRT's default.
        max_aux_streams: aux stream limit.
        hardware_compatibility: none | ampere_plus | same_compute_capability.
        version_compatible: build a version-compatible engine.
        calibration: INT8 calibration settings.
        timing_cache: shared | read_only | off.
        name: model name (default: file stem, made identifier-safe).
        target: target name.

    Returns:
        The spec.
    """
    path = os.path.abspath(model_path)
    model = name or "".join(c if c.isalnum() else "_" for c in Path(path).stem)
    build = BuildConfig(
        precision=precision,
        profiles=tuple(
            tuple(
                InputRange(n, tuple(int(d) for d in lo), tuple(int(d) for d in opt), tuple(int(d) for d in hi))
                for n, (lo, opt, hi) in sorted(p.items())
            )
            for p in profiles
        ),
        workspace=workspace,
        builder_optimization_level=builder_optimization_level,
        tactic_sources=tuple(sorted(tactic_sources)) if tactic_sources is not None else None,
        max_aux_streams=max_aux_streams,
        hardware_compatibility=hardware_compatibility,
        version_compatible=version_compatible,
        calibration=calibration,
    )
    tolerance = ToleranceSpec(atol=1e-2, rtol=1e-2, stat="median")
    return EngineSpec(
        manifest="<direct>",
        manifest_name="direct",
        model=model,
        precision=precision,
        target=TargetSpec(
            name=target,
            gpu="any",
            compute_capability=None,
            tensorrt="",
            hardware_compatibility=hardware_compatibility,
            version_compatible=version_compatible,
        ),
        source=ModelSource(path=path),
        build=build,
        accuracy=AccuracySpec(
            enabled=True, reference="onnxruntime", tolerance=tolerance, seed=1, ranges=(), data=None, iterations=1
        ),
        loaders=(),
        timing_cache=timing_cache,
    )
