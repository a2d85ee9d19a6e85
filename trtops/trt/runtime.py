"""Deserialize engines and read their I/O contract (the builder records it in meta.json).

Engines are run through the emitted loader's runtime (:mod:`trtops.emit.runtime`), tests
included.

Uses the name-based I/O API (``num_io_tensors`` / ``get_tensor_*``), present from 8.5 and
the only one from 10.0 on, and ``execute_async_v3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.errors import BuildError, EnvironmentMissing
from trtops.trt.logger import LogCapture, get_logger
from trtops.trt.trt_compat import (
    dims_tuple,
    dtype_name,
    has_name_based_io,
)

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT


def deserialize_engine(
    trt: TensorRT, plan: bytes, *, host_code_allowed: bool = False
) -> tuple[tensorrt.ICudaEngine, tensorrt.Runtime]:
    """Deserialize a plan with the process-wide logger.

    Args:
        trt: the imported tensorrt module.
        plan: serialized engine bytes.
        host_code_allowed: allow the lean runtime embedded in version-compatible plans.

    Returns:
        (``ICudaEngine``, ``IRuntime``): keep the runtime alive as long as the engine.

    Raises:
        BuildError: the plan could not be deserialized.
    """
    with LogCapture(min_severity=2) as capture:
        try:
            runtime = trt.Runtime(get_logger(trt))
        except Exception as exc:
            raise EnvironmentMissing(
                f"TensorRT could not create a runtime: {exc}", hint="check that an NVIDIA GPU and driver are available"
            ) from exc
        if host_code_allowed:
            try:
                runtime.engine_host_code_allowed = True
            except AttributeError:
                pass
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise BuildError(
                "TensorRT could not deserialize the engine it built" + (f": {capture.tail(5)}" if capture.lines else ""),
                hint="see the build log",
            )
    return engine, runtime


def engine_io(trt: TensorRT, engine: tensorrt.ICudaEngine) -> EngineIO:
    """The engine's inputs, outputs and per-profile input shapes.

    Args:
        trt: the imported tensorrt module.
        engine: ``ICudaEngine``.

    Returns:
        :class:`~trtops.engine_io.EngineIO` (dtype names are numpy's; -1 for dynamic dims;
        profile inputs sorted by name).
    """
    if not has_name_based_io(trt):
        raise BuildError(f"TensorRT {getattr(trt, '__version__', '?')} lacks the name-based I/O API (needs >= 8.5)")
    tensors = []
    input_names = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        tensors.append(
            TensorIO(
                name=name,
                mode="input" if is_input else "output",
                dtype=dtype_name(engine.get_tensor_dtype(name)),
                shape=dims_tuple(engine.get_tensor_shape(name)),
            )
        )
        if is_input:
            input_names.append(name)
    profiles = []
    for profile in range(int(engine.num_optimization_profiles)):
        entries = []
        for name in sorted(input_names):
            try:
                lo, opt, hi = engine.get_tensor_profile_shape(name, profile)
            except Exception:
                # Shape-tensor inputs and some static engines have no shape profile; the
                # tensor's own shape is then the whole truth.
                continue
            entries.append((name, dims_tuple(lo), dims_tuple(opt), dims_tuple(hi)))
        profiles.append(ProfileShapes(tuple(entries)))
    return EngineIO(tuple(tensors), tuple(profiles))
