"""CUDA through pycuda or cuda-python: streams, device and pinned host buffers, copies,
and the driver calls for CUDA graphs and cross-stream waits."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from typing import Any

import numpy as np

from .errors import EngineLoadError

_CU_STREAM_NON_BLOCKING = 1
_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1
_CU_EVENT_DISABLE_TIMING = 2


def _cuda_driver_names() -> list[str]:
    if sys.platform == "win32":
        return ["nvcuda.dll"]
    return ["libcuda.so.1", "libcuda.so"]


class _Driver:
    """The few CUDA driver calls neither pycuda nor this loader's backends wrap uniformly:
    stream capture into graphs, graph launch, waiting on a foreign stream, and which
    context is current (pycuda's per-call check)."""

    _instance: _Driver | None = None
    _failed = False

    def __init__(self, lib: Any) -> None:
        vp, c_int = ctypes.c_void_p, ctypes.c_int
        self.lib = lib
        signatures = {
            "cuStreamBeginCapture_v2": [vp, c_int],
            "cuStreamEndCapture": [vp, ctypes.POINTER(vp)],
            "cuGraphLaunch": [vp, vp],
            "cuGraphExecDestroy": [vp],
            "cuGraphDestroy": [vp],
            "cuEventCreate": [ctypes.POINTER(vp), ctypes.c_uint],
            "cuEventRecord": [vp, vp],
            "cuEventDestroy_v2": [vp],
            "cuStreamWaitEvent": [vp, vp, ctypes.c_uint],
            "cuGetErrorString": [c_int, ctypes.POINTER(ctypes.c_char_p)],
            "cuCtxGetCurrent": [ctypes.POINTER(vp)],
        }
        for name, argtypes in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = c_int
        self.instantiate_flags = getattr(lib, "cuGraphInstantiateWithFlags", None)
        if self.instantiate_flags is not None:
            self.instantiate_flags.argtypes = [
                ctypes.POINTER(vp),
                vp,
                ctypes.c_ulonglong,
            ]
            self.instantiate_flags.restype = c_int
        else:  # CUDA < 11.4
            self.instantiate_v2 = lib.cuGraphInstantiate_v2
            self.instantiate_v2.argtypes = [
                ctypes.POINTER(vp),
                vp,
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_size_t,
            ]
            self.instantiate_v2.restype = c_int

    @classmethod
    def get(cls) -> _Driver | None:
        if cls._instance is None and not cls._failed:
            for name in _cuda_driver_names():
                try:
                    cls._instance = cls(ctypes.CDLL(name))
                    break
                except (OSError, AttributeError):
                    continue
            else:
                cls._failed = True
        return cls._instance

    def check(self, code: int, what: str) -> None:
        if code != 0:
            text = ctypes.c_char_p()
            self.lib.cuGetErrorString(code, ctypes.byref(text))
            message = (
                text.value.decode(errors="replace") if text.value else f"error {code}"
            )
            raise RuntimeError(f"CUDA {what} failed: {message}")

    def capture(self, stream: int, enqueue: Any) -> tuple[int, int]:
        """Capture what ``enqueue()`` puts on ``stream`` into an instantiated graph."""
        self.check(
            self.lib.cuStreamBeginCapture_v2(
                stream, _CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
            ),
            "stream capture",
        )
        graph = ctypes.c_void_p()
        try:
            ok = enqueue()
        except BaseException:
            # Capture must end even when the enqueue failed, or the stream stays unusable.
            self.lib.cuStreamEndCapture(stream, ctypes.byref(graph))
            if graph.value:
                self.lib.cuGraphDestroy(graph)
            raise
        code = self.lib.cuStreamEndCapture(stream, ctypes.byref(graph))
        if not ok or code != 0 or not graph.value:
            if graph.value:
                self.lib.cuGraphDestroy(graph)
            self.check(code, "stream capture")
            raise RuntimeError(
                "TensorRT could not enqueue the engine under stream capture"
            )
        executable = ctypes.c_void_p()
        if self.instantiate_flags is not None:
            code = self.instantiate_flags(ctypes.byref(executable), graph, 0)
        else:
            code = self.instantiate_v2(ctypes.byref(executable), graph, None, None, 0)
        if code != 0:
            self.lib.cuGraphDestroy(graph)
            self.check(code, "graph instantiation")
        return int(graph.value), int(executable.value)

    def launch(self, executable: int, stream: int) -> None:
        self.check(self.lib.cuGraphLaunch(executable, stream), "graph launch")

    def destroy(self, graph: int, executable: int) -> None:
        self.lib.cuGraphExecDestroy(executable)
        self.lib.cuGraphDestroy(graph)

    def new_event(self) -> int:
        event = ctypes.c_void_p()
        self.check(
            self.lib.cuEventCreate(ctypes.byref(event), _CU_EVENT_DISABLE_TIMING),
            "event creation",
        )
        return int(event.value)

    def wait(self, stream: int, other_stream: int, event: int) -> None:
        """Make ``stream`` wait for the work queued so far on ``other_stream``."""
        self.check(self.lib.cuEventRecord(event, other_stream), "event record")
        self.check(self.lib.cuStreamWaitEvent(stream, event, 0), "stream wait")

    def destroy_event(self, event: int) -> None:
        self.lib.cuEventDestroy_v2(event)


class _PycudaBackend:
    """Buffers, copies and a stream through pycuda (the primary context of ``device``)."""

    name = "pycuda"

    def __init__(self, device: int) -> None:
        import pycuda.driver as cuda

        self.cuda = cuda
        cuda.init()
        if not 0 <= device < cuda.Device.count():
            raise EngineLoadError(
                f"no CUDA device {device} ({cuda.Device.count()} visible)"
            )
        # The primary context is the one the CUDA runtime (TensorRT, PyTorch) uses too.
        # It is made current around each call (enter/leave), so a context the caller
        # made current (pycuda.autoinit) stays undisturbed.
        self.context = cuda.Device(device).retain_primary_context()
        self.context.push()
        try:
            self.stream = cuda.Stream(_CU_STREAM_NON_BLOCKING)
        finally:
            cuda.Context.pop()
        self.stream_handle = int(self.stream.handle)
        # For enter_fast: the driver's current context, asked with one prebound call.
        driver = _Driver.get()
        self._handle = int(getattr(self.context, "handle", 0) or 0)
        self._get_current = (
            driver.lib.cuCtxGetCurrent if driver is not None and self._handle else None
        )
        self._current = ctypes.c_void_p()
        self._current_ref = ctypes.byref(self._current)

    def enter_fast(self) -> bool:
        """:meth:`enter` for a call's hot path, which makes no pycuda allocation: the
        driver says in one call whether our context is current (pycuda's
        ``Context.get_current()`` and ``==`` build Python objects each time); when it is
        not, :meth:`enter` decides as always."""
        get_current = self._get_current
        if (
            get_current is not None
            and get_current(self._current_ref) == 0
            and self._current.value == self._handle
        ):
            return False
        return self.enter()

    def bind_synchronize(self) -> Any:
        """The stream's synchronize as a zero-argument call (no wrapper frame)."""
        return self.stream.synchronize

    def enter(self) -> bool:
        current = self.cuda.Context.get_current()
        if current is not None and current == self.context:
            return False
        self.context.push()
        return True

    def leave(self, pushed: bool) -> None:
        if pushed:
            self.cuda.Context.pop()

    def malloc(self, nbytes: int) -> tuple[Any, int]:
        allocation = self.cuda.mem_alloc(nbytes)
        return allocation, int(allocation)

    def free(self, allocation: Any) -> None:
        allocation.free()

    def malloc_host(self, nbytes: int) -> tuple[Any, np.ndarray]:
        array = self.cuda.pagelocked_empty((nbytes,), np.uint8)
        return array, array

    def free_host(self, allocation: Any) -> None:
        base = getattr(allocation, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def htod(self, ptr: int, host: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(ptr, host, self.stream)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self.cuda.memcpy_dtoh_async(host, ptr, self.stream)

    def bind_htod(self, ptr: int, host: np.ndarray) -> Any:
        return functools.partial(self.cuda.memcpy_htod_async, ptr, host, self.stream)

    def bind_dtoh(self, host: np.ndarray, ptr: int) -> Any:
        return functools.partial(self.cuda.memcpy_dtoh_async, host, ptr, self.stream)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        self.cuda.memcpy_dtod_async(dst, src, nbytes, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def device_synchronize(self) -> None:
        self.cuda.Context.synchronize()

    def record(self) -> Any:
        return self.cuda.Event(_CU_EVENT_DISABLE_TIMING).record(self.stream)

    def done(self, event: Any) -> bool:
        return bool(event.query())

    def close(self) -> None:
        pushed = self.enter()
        try:
            self.stream = None
        finally:
            self.leave(pushed)


class _CudaPythonBackend:
    """Buffers, copies and a stream through cuda-python's runtime API."""

    name = "cuda-python"

    def __init__(self, device: int) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:  # cuda-python < 12.6
            from cuda import cudart
        self.cudart = cudart
        self.device = device
        self._local = threading.local()
        count = self._ck(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not 0 <= device < count:
            raise EngineLoadError(f"no CUDA device {device} ({count} visible)")
        self._ck(cudart.cudaSetDevice(device), "cudaSetDevice")
        self.stream = self._ck(
            cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
            "cudaStreamCreateWithFlags",
        )
        self.stream_handle = int(self.stream)
        self._h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._d2d = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._stream_synchronize = functools.partial(
            cudart.cudaStreamSynchronize, self.stream
        )

    def _ck(self, result: Any, what: str) -> Any:
        if isinstance(result, tuple):
            error, rest = result[0], result[1:]
        else:
            error, rest = result, ()
        if int(error) != 0:
            name = self.cudart.cudaGetErrorString(error)
            text = (
                name[1].decode(errors="replace")
                if isinstance(name, tuple)
                else str(name)
            )
            raise RuntimeError(f"CUDA {what} failed: {text}")
        if len(rest) == 1:
            return rest[0]
        return rest or None

    def enter(self) -> bool:
        if getattr(self._local, "ready", False):
            # cuda-python returns (error, value); error is an int enum, 0 on success.
            error, current = self.cudart.cudaGetDevice()
            if not error and current == self.device:
                return False
        # First use on this thread (or another device was selected): select ours and make
        # its primary context current, which the driver calls of graphs and events need.
        self._ck(self.cudart.cudaSetDevice(self.device), "cudaSetDevice")
        self._ck(self.cudart.cudaFree(0), "cudaFree")
        self._local.ready = True
        return True

    def leave(self, switched: bool) -> None:
        pass  # the runtime's current device is per thread; leave ours set

    def bind_synchronize(self) -> Any:
        return self.synchronize

    def malloc(self, nbytes: int) -> tuple[Any, int]:
        ptr = int(self._ck(self.cudart.cudaMalloc(nbytes), "cudaMalloc"))
        return ptr, ptr

    def free(self, allocation: Any) -> None:
        self._ck(self.cudart.cudaFree(allocation), "cudaFree")

    def malloc_host(self, nbytes: int) -> tuple[Any, np.ndarray]:
        ptr = int(self._ck(self.cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
        array = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))
        return ptr, array

    def free_host(self, allocation: Any) -> None:
        self._ck(self.cudart.cudaFreeHost(allocation), "cudaFreeHost")

    def htod(self, ptr: int, host: np.ndarray) -> None:
        self._ck(
            self.cudart.cudaMemcpyAsync(
                ptr, host.ctypes.data, host.nbytes, self._h2d, self.stream
            ),
            "cudaMemcpyAsync",
        )

    def bind_htod(self, ptr: int, host: np.ndarray) -> Any:
        return self._prebound_memcpy(ptr, host.ctypes.data, host.nbytes, self._h2d)

    def bind_dtoh(self, host: np.ndarray, ptr: int) -> Any:
        return self._prebound_memcpy(host.ctypes.data, ptr, host.nbytes, self._d2h)

    def _prebound_memcpy(self, dst: int, src: int, nbytes: int, kind: Any) -> Any:
        call = functools.partial(
            self.cudart.cudaMemcpyAsync, dst, src, nbytes, kind, self.stream
        )
        check = self._ck

        def copy() -> None:
            result = call()
            if result[0]:
                check(result, "cudaMemcpyAsync")

        return copy

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self._ck(
            self.cudart.cudaMemcpyAsync(
                host.ctypes.data, ptr, host.nbytes, self._d2h, self.stream
            ),
            "cudaMemcpyAsync",
        )

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        self._ck(
            self.cudart.cudaMemcpyAsync(dst, src, nbytes, self._d2d, self.stream),
            "cudaMemcpyAsync",
        )

    def synchronize(self) -> None:
        result = self._stream_synchronize()
        if result[0]:
            self._ck(result, "cudaStreamSynchronize")

    def device_synchronize(self) -> None:
        self._ck(self.cudart.cudaDeviceSynchronize(), "cudaDeviceSynchronize")

    def record(self) -> Any:
        event = self._ck(
            self.cudart.cudaEventCreateWithFlags(self.cudart.cudaEventDisableTiming),
            "cudaEventCreateWithFlags",
        )
        self._ck(self.cudart.cudaEventRecord(event, self.stream), "cudaEventRecord")
        return event

    def done(self, event: Any) -> bool:
        result = self.cudart.cudaEventQuery(event)
        error = result[0] if isinstance(result, tuple) else result
        if error == self.cudart.cudaError_t.cudaErrorNotReady:
            return False
        self._ck(result, "cudaEventQuery")
        self._ck(self.cudart.cudaEventDestroy(event), "cudaEventDestroy")
        return True

    def close(self) -> None:
        if self.stream is not None:
            # May run at interpreter exit, when CUDA is already gone.
            with contextlib.suppress(Exception):
                self._ck(
                    self.cudart.cudaStreamDestroy(self.stream), "cudaStreamDestroy"
                )
            self.stream = None


def _make_backend(backend: str, device: int) -> Any:
    choices = {"pycuda": _PycudaBackend, "cuda-python": _CudaPythonBackend}
    if backend == "auto":
        names = list(choices)
    elif backend in choices:
        names = [backend]
    else:
        raise ValueError(
            f"backend must be 'pycuda', 'cuda-python' or 'auto', got {backend!r}"
        )
    missing = []
    for name in names:
        try:
            return choices[name](device)
        except ImportError as exc:
            missing.append(f"{name}: {exc}")
        except EngineLoadError:
            raise
        except Exception as exc:  # CUDA initialization errors of either package
            raise EngineLoadError(
                f"cannot initialize CUDA device {device} with {name}: {exc}"
            ) from exc
    wanted = " or ".join(names)
    raise EngineLoadError(
        f"{wanted} cannot be imported ({'; '.join(missing)}); pip install "
        f"{wanted}" + (", or pick the other backend" if len(names) == 1 else "")
    )


class _Buffer:
    """A device allocation and its pinned host mirror, grown on demand."""

    __slots__ = ("capacity", "device", "host", "host_allocation", "ptr")

    def __init__(self) -> None:
        self.device: Any = None
        self.ptr = 0
        self.host_allocation: Any = None
        self.host: np.ndarray | None = None
        self.capacity = 0
