"""TensorRT's name-based I/O API (8.5 and later: 8.6, 10, 11): import, logger, and the
engine's tensors and profiles read from a deserialized engine."""

from __future__ import annotations

from typing import Any

from .dtypes import _dtype_name
from .errors import EngineLoadError
from .shapes import IOSpec, TensorSpec


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineLoadError(
            f"TensorRT's Python package cannot be imported ({exc}); "
            "pip install tensorrt (the version the engine was built "
            "with)"
        ) from exc
    return trt


_LOGGER: list[Any] = []


def _trt_logger(trt: Any) -> Any:
    """One logger per process: TensorRT warns when runtimes get different loggers."""
    if not _LOGGER:
        logger = trt.Logger(trt.Logger.WARNING)
        if hasattr(trt, "init_libnvinfer_plugins"):
            trt.init_libnvinfer_plugins(logger, "")
        _LOGGER.append(logger)
    return _LOGGER[0]


def io_from_engine(trt: Any, engine: Any) -> IOSpec:
    """Read the tensors and profiles of a deserialized engine (name-based API)."""
    tensors = []
    shape_inputs = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        tensors.append(
            TensorSpec(
                name,
                "input" if is_input else "output",
                _dtype_name(engine.get_tensor_dtype(name)),
                shape,
            )
        )
        if (
            is_input
            and hasattr(engine, "is_shape_inference_io")
            and engine.is_shape_inference_io(name)
        ):
            shape_inputs.append(name)
    if shape_inputs:
        raise EngineLoadError(
            f"inputs {shape_inputs} are shape tensors (values on the host); this loader "
            "supports only execution tensors"
        )
    profiles = []
    for index in range(engine.num_optimization_profiles):
        profile = {}
        for spec in tensors:
            if spec.mode == "input" and any(d < 0 for d in spec.shape):
                lo, opt, hi = engine.get_tensor_profile_shape(spec.name, index)
                profile[spec.name] = (
                    tuple(int(d) for d in lo),
                    tuple(int(d) for d in opt),
                    tuple(int(d) for d in hi),
                )
        if profile:
            profiles.append(profile)
    return IOSpec(tensors, profiles)
