"""Device memory for calibration batches and test runs, through cuda-python or pycuda.

Whichever imports first is used (cuda-python, then pycuda). Both work on the CUDA primary
context, the one TensorRT's runtime uses, so pointers are valid inside TensorRT calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtops.errors import EnvironmentMissing

_HINT = "install cuda-python (pip install cuda-python) or pycuda (pip install pycuda)"


class DeviceMemory:
    """Minimal device-memory interface: allocate, copy, free, streams."""

    backend = "none"

    def alloc(self, nbytes: int) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def free(self, ptr: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def htod(self, ptr: int, array: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def dtoh(self, array: np.ndarray, ptr: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def stream(self) -> tuple[int, Any]:  # pragma: no cover - interface
        """A new stream: (handle for TensorRT, backend object for synchronize/destroy)."""
        raise NotImplementedError

    def synchronize(self, stream: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def destroy_stream(self, stream: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.8
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


class CudaPythonMemory(DeviceMemory):
    backend = "cuda-python"

    def __init__(self) -> None:
        self._rt = _import_cudart()

    def _check(self, result, what: str):
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            name = getattr(err, "name", str(err))
            raise RuntimeError(f"CUDA {what} failed: {name}")
        if isinstance(result, tuple) and len(result) > 1:
            return result[1] if len(result) == 2 else result[1:]
        return None

    def device_count(self) -> int:
        return int(self._check(self._rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))

    def compute_capability(self) -> str:
        attr = self._rt.cudaDeviceAttr
        major = self._check(self._rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, 0), "attribute")
        minor = self._check(self._rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, 0), "attribute")
        return f"{int(major)}.{int(minor)}"

    def alloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self._check(self._rt.cudaFree(ptr), "cudaFree")

    def htod(self, ptr: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpy(ptr, array.ctypes.data, array.nbytes, kind), "cudaMemcpy H2D")

    def dtoh(self, array: np.ndarray, ptr: int) -> None:
        if not array.flags["C_CONTIGUOUS"]:
            raise ValueError("destination array must be C-contiguous")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpy(array.ctypes.data, ptr, array.nbytes, kind), "cudaMemcpy D2H")

    def stream(self) -> tuple[int, Any]:
        stream = self._check(self._rt.cudaStreamCreate(), "cudaStreamCreate")
        try:
            handle = int(stream)
        except TypeError:
            handle = int(stream.getPtr())
        return handle, stream

    def synchronize(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def destroy_stream(self, stream: Any) -> None:
        self._check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")


class PycudaMemory(DeviceMemory):
    backend = "pycuda"

    def __init__(self) -> None:
        import pycuda.driver as cuda

        self._cuda = cuda
        cuda.init()
        # The primary context is the one TensorRT (CUDA runtime API) works in; pycuda.autoinit
        # would create a separate context whose pointers TensorRT cannot use.
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        self._allocations: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self._cuda.Device.count())

    def compute_capability(self) -> str:
        major, minor = self._cuda.Device(0).compute_capability()
        return f"{major}.{minor}"

    def alloc(self, nbytes: int) -> int:
        allocation = self._cuda.mem_alloc(max(int(nbytes), 1))
        ptr = int(allocation)
        self._allocations[ptr] = allocation
        return ptr

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def htod(self, ptr: int, array: np.ndarray) -> None:
        self._cuda.memcpy_htod(ptr, np.ascontiguousarray(array))

    def dtoh(self, array: np.ndarray, ptr: int) -> None:
        self._cuda.memcpy_dtoh(array, ptr)

    def stream(self) -> tuple[int, Any]:
        stream = self._cuda.Stream()
        return int(stream.handle), stream

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def destroy_stream(self, stream: Any) -> None:
        pass

    def close(self) -> None:
        for ptr in list(self._allocations):
            self.free(ptr)
        try:
            self._ctx.pop()
            self._ctx.detach()
        except Exception:  # closing must never mask the caller's own error
            pass


def open_device_memory() -> DeviceMemory:
    """Device memory through cuda-python or pycuda, whichever imports.

    Returns:
        A :class:`DeviceMemory`.

    Raises:
        EnvironmentMissing: neither package can be imported (or CUDA fails to start).
    """
    errors = []
    try:
        return CudaPythonMemory()
    except ImportError as exc:
        errors.append(f"cuda-python: {exc}")
    try:
        return PycudaMemory()
    except ImportError as exc:
        errors.append(f"pycuda: {exc}")
    except Exception as exc:  # pycuda raises its own error types when no driver/GPU exists
        raise EnvironmentMissing(f"pycuda could not start CUDA: {exc}", hint="check the NVIDIA driver and GPU") from exc
    raise EnvironmentMissing(
        "device memory for INT8 calibration and engine runs needs cuda-python or pycuda ("
        + "; ".join(errors) + ")",
        hint=_HINT,
    )


def current_compute_capability() -> str | None:
    """Compute capability ("major.minor") of device 0, or ``None`` when it cannot be read."""
    try:
        memory = open_device_memory()
    except EnvironmentMissing:
        return None
    try:
        return memory.compute_capability()  # type: ignore[attr-defined]
    except Exception:
        return None
    finally:
        memory.close()


def gpu_count() -> int:
    """Number of visible CUDA devices (0 when CUDA, cuda-python and pycuda are unavailable)."""
    try:
        memory = open_device_memory()
    except EnvironmentMissing:
        return 0
    try:
        return int(memory.device_count())  # type: ignore[attr-defined]
    except Exception:
        return 0
    finally:
        memory.close()
