"""Can this engine be built with that TensorRT on that GPU? (pure; the planner calls it)

The answer comes from release knowledge (:func:`trtops.trt.features.features_for_version`)
and compute-capability rules, so it works for targets whose TensorRT or GPU is not on this
machine. The builder re-checks with the installed module's real features, through the same
:func:`trtops.trt.features.choose_strategy`.
"""

from __future__ import annotations

from trtops.trt.features import (
    HARDWARE_LEVELS,
    LIBRARY_TACTIC_SOURCES,
    MIN_TENSORRT,
    TACTIC_SOURCES,
    Features,
    Unsupported,
    choose_strategy,
    features_for_version,
    format_version,
)
from trtops.spec import EngineSpec

# Lowest compute capability each precision is useful on (TF32/BF16 need Ampere, FP8 Ada).
_MIN_CC = {"tf32": (8, 0), "bf16": (8, 0), "fp8": (8, 9)}
_ARCH = {(8, 0): "Ampere", (8, 9): "Ada"}


def _parse_cc(text: str) -> tuple[int, int] | None:
    try:
        major, minor = str(text).strip().split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


def unsupported_reason(
    spec: EngineSpec,
    tensorrt_version: str,
    compute_capability: str | None,
    *,
    model_has_qdq: bool,
    strongly_typed: bool | None = None,
) -> str | None:
    """Why ``spec`` cannot be built with this TensorRT on this GPU, or ``None`` if it can.

    Args:
        spec: the engine to build.
        tensorrt_version: full TensorRT version string (``"8.6.0"``, ``"10.13.3.9"``).
        compute_capability: ``"major.minor"`` of the GPU the engine is built on, or ``None``
            when unknown (GPU checks are then skipped).
        model_has_qdq: the ONNX model has QuantizeLinear/DequantizeLinear nodes
            (see :func:`trtops.trt.onnx_info.model_has_qdq`).
        strongly_typed: as for :func:`trtops.trt.features.choose_strategy`.

    Returns:
        A one-line reason ("bf16 needs compute capability >= 8.0 (Ampere); this GPU is 7.5"),
        or ``None`` when the build is possible.
    """
    try:
        features = features_for_version(tensorrt_version)
    except ValueError:
        return f"cannot tell what TensorRT {tensorrt_version!r} supports: not a version number"
    return reason_for_features(
        spec, features, compute_capability, model_has_qdq=model_has_qdq, strongly_typed=strongly_typed
    )


def reason_for_features(
    spec: EngineSpec,
    features: Features,
    compute_capability: str | None,
    *,
    model_has_qdq: bool,
    strongly_typed: bool | None = None,
) -> str | None:
    """:func:`unsupported_reason` for known :class:`~trtops.trt.features.Features`
    (the builder passes the installed module's detected features).

    Args:
        spec: the engine to build.
        features: what the TensorRT offers.
        compute_capability: ``"major.minor"`` or ``None``.
        model_has_qdq: the ONNX model has Q/DQ nodes.
        strongly_typed: as for :func:`trtops.trt.features.choose_strategy`.

    Returns:
        The reason, or ``None``.
    """
    version = features.version_text
    if features.version[:2] < MIN_TENSORRT:
        return f"TensorRT {version} is older than {format_version(MIN_TENSORRT)}, the oldest release trtops supports"
    build = spec.build
    precision = build.precision

    try:
        choose_strategy(
            precision,
            features,
            model_has_qdq=model_has_qdq,
            has_calibration=build.calibration is not None,
            strongly_typed=strongly_typed,
        )
    except Unsupported as exc:
        return str(exc)

    cc = _parse_cc(compute_capability) if compute_capability else None
    need = _MIN_CC.get(precision)
    if cc is not None and need is not None and cc < need:
        return (
            f"{precision} needs compute capability >= {need[0]}.{need[1]} ({_ARCH[need]}); "
            f"this GPU is {compute_capability}"
        )

    level = build.hardware_compatibility
    if level != "none":
        trt_name = HARDWARE_LEVELS.get(level)
        if trt_name is None:
            return f"unknown hardware_compatibility {level!r}"
        if trt_name not in features.hardware_levels:
            since = "10.9" if level == "same_compute_capability" else "8.6"
            return f"hardware_compatibility {level} needs TensorRT >= {since}; this is {version}"
        if level == "ampere_plus" and cc is not None and cc < (8, 0):
            return (
                "hardware_compatibility ampere_plus engines must be built on an Ampere or newer GPU "
                f"(compute capability >= 8.0); this GPU is {compute_capability}"
            )
        blocked = sorted(LIBRARY_TACTIC_SOURCES & set(build.tactic_sources or ()))
        if blocked:
            return (
                f"hardware_compatibility {level} disables the {', '.join(blocked)} tactic sources; "
                "remove them from tactic_sources"
            )

    if build.version_compatible:
        if not features.version_compatible:
            return f"version_compatible needs TensorRT >= 8.6; this is {version}"
        blocked = sorted(LIBRARY_TACTIC_SOURCES & set(build.tactic_sources or ()))
        if blocked:
            return (
                f"version_compatible engines run on the lean runtime, which has no {', '.join(blocked)} "
                "tactics; remove them from tactic_sources"
            )

    if build.tactic_sources:
        unknown = sorted(set(build.tactic_sources) - set(TACTIC_SOURCES))
        if unknown:
            return f"unknown tactic source(s) {', '.join(unknown)}"
        missing = sorted(s for s in build.tactic_sources if TACTIC_SOURCES[s] not in features.tactic_sources)
        if missing:
            return f"tactic source(s) {', '.join(missing)} are not available in TensorRT {version}"

    if build.builder_optimization_level is not None and not 0 <= build.builder_optimization_level <= 5:
        return f"builder_optimization_level must be 0-5, got {build.builder_optimization_level}"
    return None
