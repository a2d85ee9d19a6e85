"""Deserialize engines, read their I/O contract, run them once (tests, smoke checks).

Uses the name-based I/O API (``num_io_tensors`` / ``get_tensor_*``), present from 8.5 and
the only one from 10.0 on, and ``execute_async_v3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from trtops.trt.cuda_mem import open_device_memory
from trtops.trt.logger import LogCapture, get_logger
from trtops.trt.trt_compat import dims_tuple, dtype_name, has_name_based_io, import_tensorrt
from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.errors import BuildError, EnvironmentMissing

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


def _numpy_dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:
        pass
    try:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    except (ImportError, AttributeError) as exc:
        raise BuildError(f"engine I/O of type {name} needs the ml_dtypes package") from exc


def run_engine(
    plan: bytes | str | Path,
    inputs: Mapping[str, np.ndarray],
    *,
    profile: int = 0,
    host_code_allowed: bool = False,
) -> dict[str, np.ndarray]:
    """Run an engine once on host arrays and return its outputs.

    Args:
        plan: serialized engine bytes, or the path of a plan file.
        inputs: one array per engine input (shapes within profile ``profile``).
        profile: optimization profile to use.
        host_code_allowed: for version-compatible plans.

    Returns:
        ``{output name: array}``.

    Raises:
        EnvironmentMissing: TensorRT, a GPU, cuda-python/pycuda missing.
        BuildError: the engine could not be deserialized or run.
    """
    trt = import_tensorrt()
    if not isinstance(plan, (bytes, bytearray, memoryview)):
        plan = Path(plan).read_bytes()
    memory = open_device_memory()
    buffers: list[int] = []
    stream = None
    try:
        # The runtime must outlive the engine: keep a reference until the end.
        engine, _runtime = deserialize_engine(trt, bytes(plan), host_code_allowed=host_code_allowed)
        stream_handle, stream = memory.stream()
        with LogCapture(min_severity=2) as capture:
            context = engine.create_execution_context()
            if context is None:
                raise BuildError("TensorRT could not create an execution context: " + capture.tail(5))
            if profile:
                context.set_optimization_profile_async(profile, stream_handle)
                memory.synchronize(stream)
            io = engine_io(trt, engine)
            for tensor in io.inputs:
                if tensor.name not in inputs:
                    raise BuildError(f"no data for engine input {tensor.name!r}")
                array = np.ascontiguousarray(inputs[tensor.name], dtype=_numpy_dtype(tensor.dtype))
                if not context.set_input_shape(tensor.name, tuple(int(d) for d in array.shape)):
                    raise BuildError(f"shape {array.shape} is outside profile {profile} for input {tensor.name!r}")
                ptr = memory.alloc(array.nbytes)
                buffers.append(ptr)
                memory.htod(ptr, array)
                context.set_tensor_address(tensor.name, ptr)
            outputs: dict[str, np.ndarray] = {}
            output_ptrs: dict[str, int] = {}
            for tensor in io.outputs:
                shape = dims_tuple(context.get_tensor_shape(tensor.name))
                if any(d < 0 for d in shape):
                    raise BuildError(f"output {tensor.name!r} has data-dependent shape {shape}; not supported here")
                array = np.empty(shape, dtype=_numpy_dtype(tensor.dtype))
                ptr = memory.alloc(array.nbytes)
                buffers.append(ptr)
                context.set_tensor_address(tensor.name, ptr)
                outputs[tensor.name] = array
                output_ptrs[tensor.name] = ptr
            if not context.execute_async_v3(stream_handle):
                raise BuildError("engine execution failed: " + capture.tail(5))
            memory.synchronize(stream)
            for name, ptr in output_ptrs.items():
                memory.dtoh(outputs[name], ptr)
            return outputs
    finally:
        for ptr in buffers:
            try:
                memory.free(ptr)
            except Exception:
                pass
        if stream is not None:
            try:
                memory.destroy_stream(stream)
            except Exception:
                pass
        memory.close()
