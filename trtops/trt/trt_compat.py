"""Feature detection on the imported ``tensorrt`` module: the one place that knows how the
8.6 / 10.x / 11.x Python APIs differ. Every question is answered by looking for the
attribute, never by assuming one API from the version number (the version is used only
where the *meaning* of a present attribute changed, e.g. FP8 Q/DQ import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trtops.capabilities import (
    HARDWARE_LEVELS,
    PRECISION_FLAGS,
    PRECISIONS,
    TACTIC_SOURCES,
    Features,
    parse_version,
)
from trtops.dtypes import TRT_TO_NUMPY
from trtops.errors import EnvironmentMissing

# TensorRT DataType member name → numpy dtype name: the one table, shared with the loaders.
DTYPE_NAMES = TRT_TO_NUMPY

if TYPE_CHECKING:
    from trtops.trt.api import TensorRT


def import_tensorrt() -> TensorRT:
    """Import ``tensorrt``.

    Returns:
        The module.

    Raises:
        EnvironmentMissing: TensorRT is not installed (or its libraries fail to load).
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EnvironmentMissing(
            f"TensorRT is not available: {exc}",
            hint="install TensorRT's Python package (pip install tensorrt) on a machine with an NVIDIA GPU",
        ) from exc
    return trt


def version_text(trt: TensorRT) -> str:
    return str(getattr(trt, "__version__", "0.0.0"))


def version_tuple(trt: TensorRT) -> tuple[int, ...]:
    try:
        return parse_version(version_text(trt))
    except ValueError:
        return (0, 0)


def has_builder_flag(trt: TensorRT, name: str) -> bool:
    return hasattr(trt, "BuilderFlag") and hasattr(trt.BuilderFlag, name)


def precision_constraint_flag(trt: TensorRT) -> str | None:
    """The BuilderFlag that makes TensorRT obey layer precisions and output types:
    OBEY_PRECISION_CONSTRAINTS (8.2+), else the older STRICT_TYPES; None when neither exists
    (TensorRT 11: strongly typed networks have no layer precisions)."""
    for name in ("OBEY_PRECISION_CONSTRAINTS", "STRICT_TYPES"):
        if has_builder_flag(trt, name):
            return name
    return None


def has_precision_flags(trt: TensorRT) -> bool:
    """Weak typing is available (8.6/10.x); TensorRT 11 removed FP16/INT8/... flags."""
    return has_builder_flag(trt, "FP16")


def has_strongly_typed_flag(trt: TensorRT) -> bool:
    return hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")


def strongly_typed_mode(trt: TensorRT) -> str:
    """``"always"`` (no precision flags left), ``"optional"`` (STRONGLY_TYPED flag) or ``"no"``."""
    if not has_precision_flags(trt):
        return "always"
    return "optional" if has_strongly_typed_flag(trt) else "no"


def needs_explicit_batch_flag(trt: TensorRT) -> bool:
    """8.6 defaults to implicit batch; the builder still has ``max_batch_size`` there. On 10.x
    the flag is deprecated and ignored, and 11.x may drop it altogether."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    if flag is None:
        return False
    return hasattr(trt.Builder, "max_batch_size") or version_tuple(trt) < (10,)


def has_name_based_io(trt: TensorRT) -> bool:
    return hasattr(trt.ICudaEngine, "num_io_tensors") and hasattr(trt.ICudaEngine, "get_tensor_name")


def has_hardware_compat_level(trt: TensorRT, name: str) -> bool:
    """``name`` is a HardwareCompatibilityLevel member (AMPERE_PLUS, SAME_COMPUTE_CAPABILITY)."""
    return hasattr(trt, "HardwareCompatibilityLevel") and hasattr(trt.HardwareCompatibilityLevel, name)


def has_calibrators(trt: TensorRT) -> bool:
    return (
        hasattr(trt, "IInt8EntropyCalibrator2")
        and hasattr(trt, "IInt8MinMaxCalibrator")
        and hasattr(trt.IBuilderConfig, "int8_calibrator")
    )


def has_engine_inspector(trt: TensorRT) -> bool:
    return hasattr(trt.ICudaEngine, "create_engine_inspector") and hasattr(trt, "LayerInformationFormat")


def detect_features(trt: TensorRT) -> Features:
    """What the imported TensorRT offers, as a :class:`~trtops.capabilities.Features`
    (what :func:`trtops.capabilities.unsupported_reason` judges a build against).

    Args:
        trt: the imported module.

    Returns:
        Features found by attribute lookup.
    """
    version = version_tuple(trt)
    flags = frozenset(name for name in PRECISION_FLAGS if has_builder_flag(trt, name))
    levels = frozenset(name for name in HARDWARE_LEVELS.values() if has_hardware_compat_level(trt, name))
    sources = frozenset(
        name for name in TACTIC_SOURCES.values() if hasattr(trt, "TacticSource") and hasattr(trt.TacticSource, name)
    )
    return Features(
        version=version,
        precision_flags=flags,
        strongly_typed=strongly_typed_mode(trt),
        calibrators=has_calibrators(trt),
        hardware_levels=levels,
        version_compatible=has_builder_flag(trt, "VERSION_COMPATIBLE"),
        tactic_sources=sources,
        # The FP8 flag exists on 8.6 but only serves plugins; the ONNX parser imports FP8
        # Q/DQ from the release the capability table names (10.0).
        fp8_qdq=hasattr(trt, "DataType") and hasattr(trt.DataType, "FP8")
        and version[:2] >= PRECISIONS["fp8"].min_tensorrt,
    )


def dtype_name(dtype: Any) -> str:
    """TensorRT DataType → numpy dtype name (``"float32"``, ``"bfloat16"``, ...)."""
    name = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
    return DTYPE_NAMES.get(str(name).upper(), str(name).lower())


def dims_tuple(dims: Any) -> tuple[int, ...]:
    """trt.Dims (or any sequence) → tuple of ints (-1 for dynamic)."""
    return tuple(int(d) for d in dims)


def device_memory_size(engine: Any) -> int | None:
    """Activation memory an execution context needs (10.1+ ``device_memory_size_v2``)."""
    for name in ("device_memory_size_v2", "device_memory_size"):
        try:
            value = getattr(engine, name)
        except Exception:
            continue
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None


def flag(trt: TensorRT, name: str) -> Any:
    return getattr(trt.BuilderFlag, name)
