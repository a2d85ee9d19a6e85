"""A numpy stand-in for the parts of TensorRT's runtime API and of CUDA that the emitted
loader uses, so that its orchestration (profile choice, contexts, buffers, addresses, CUDA
graph capture and replay) runs on a machine without a GPU.

It follows TensorRT's documented semantics where the loader depends on them: one
optimization profile per live context, ``set_input_shape`` refusing shapes outside the
profile, outputs written to the addresses bound when ``execute_async_v3`` is called, and
a captured graph replaying the addresses and shapes of capture time (so a loader that
replays a stale graph computes wrong numbers here too). "Device" memory is host memory.
The GPU tests (tests/gpu/test_loader.py) run the same loader against real TensorRT.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.util
import itertools
import json
import types
from pathlib import Path
from typing import Any

import numpy as np


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 8


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


_DTYPES = {"float32": DataType.FLOAT, "float16": DataType.HALF, "int8": DataType.INT8,
           "int32": DataType.INT32, "bool": DataType.BOOL, "uint8": DataType.UINT8,
           "int64": DataType.INT64}


def _affine(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    x = inputs["x"]
    return {"y": x * 2 + 1, "total": x.sum(axis=1)}


def _affine_shapes(shapes: dict[str, tuple]) -> dict[str, tuple]:
    n, k = shapes["x"]
    return {"y": (n, k), "total": (n,)}


def _mixed(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    image, scale = inputs["image"], inputs["scale"]
    pooled = image.mean(axis=(1, 2, 3), dtype=np.float32)[:, None]
    return {"embedding": (pooled * scale.astype(np.float32)).astype(np.float32),
            "mask": (image[:, :1] > 0.5)}


def _mixed_shapes(shapes: dict[str, tuple]) -> dict[str, tuple]:
    n, _, h, w = shapes["image"]
    return {"embedding": (n, 8), "mask": (n, 1, h, w)}


MODELS = {"affine": (_affine, _affine_shapes), "mixed": (_mixed, _mixed_shapes)}


def affine_engine() -> dict[str, Any]:
    """x float32 [-1, 4] -> y = 2x + 1 [-1, 4], total = sum(x, 1) [-1]; two profiles."""
    return {
        "model": "affine",
        "tensors": [
            {"name": "x", "mode": "input", "dtype": "float32", "shape": [-1, 4]},
            {"name": "y", "mode": "output", "dtype": "float32", "shape": [-1, 4]},
            {"name": "total", "mode": "output", "dtype": "float32", "shape": [-1]},
        ],
        "profiles": [
            {"x": {"min": [1, 4], "opt": [4, 4], "max": [8, 4]}},
            {"x": {"min": [8, 4], "opt": [32, 4], "max": [64, 4]}},
        ],
    }


def mixed_engine() -> dict[str, Any]:
    """image float32 [-1, 3, -1, -1], scale int32 [-1, 8] -> embedding float32 [-1, 8],
    mask bool [-1, 1, -1, -1]; one profile."""
    return {
        "model": "mixed",
        "tensors": [
            {"name": "image", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
            {"name": "scale", "mode": "input", "dtype": "int32", "shape": [-1, 8]},
            {"name": "embedding", "mode": "output", "dtype": "float32", "shape": [-1, 8]},
            {"name": "mask", "mode": "output", "dtype": "bool", "shape": [-1, 1, -1, -1]},
        ],
        "profiles": [
            {"image": {"min": [1, 3, 4, 4], "opt": [2, 3, 16, 16], "max": [4, 3, 32, 32]},
             "scale": {"min": [1, 8], "opt": [2, 8], "max": [4, 8]}},
        ],
    }


def engine_bytes(description: dict[str, Any]) -> bytes:
    return b"FAKE" + json.dumps(description).encode()


def engine_io_json(description: dict[str, Any]) -> dict[str, Any]:
    return {"tensors": description["tensors"], "profiles": description["profiles"]}


def _view(ptr: int, shape: tuple, dtype: np.dtype) -> np.ndarray:
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


class GPU:
    """Process-wide fake device state (what a capture records)."""

    capture: list | None = None
    executions = 0


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.profile: int | None = 0 if not engine.contexts else None
        engine.contexts.append(self)
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.profile_calls: list[int] = []
        self.shape_calls = 0

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        if not 0 <= index < self.engine.num_optimization_profiles:
            return False
        if any(c.profile == index for c in self.engine.contexts if c is not self):
            return False  # TensorRT: a profile is used by one live context at a time
        self.profile = index
        self.profile_calls.append(index)
        self.shapes = {}
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        shape = tuple(int(d) for d in shape)
        ranges = self.engine.description["profiles"][self.profile].get(name)
        spec = self.engine.tensors[name]
        if len(shape) != len(spec["shape"]):
            return False
        if ranges is not None and not all(
                a <= s <= b for s, a, b in zip(shape, ranges["min"], ranges["max"])):
            return False
        self.shapes[name] = shape
        self.shape_calls += 1
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        spec = self.engine.tensors[name]
        if spec["mode"] == "input":
            return self.shapes.get(name, tuple(spec["shape"]))
        inputs = [t["name"] for t in self.engine.description["tensors"] if t["mode"] == "input"]
        if any(n not in self.shapes for n in inputs):
            return tuple(spec["shape"])
        return MODELS[self.engine.description["model"]][1](self.shapes)[name]

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream: int) -> bool:
        addresses, shapes = dict(self.addresses), dict(self.shapes)
        def run() -> None:
            self.engine.compute(addresses, shapes)

        if GPU.capture is not None:
            GPU.capture.append(run)
        else:
            run()
        return True


class FakeEngine:
    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description
        self.tensors = {t["name"]: t for t in description["tensors"]}
        self.names = [t["name"] for t in description["tensors"]]
        self.contexts: list[FakeContext] = []

    num_io_tensors = property(lambda self: len(self.names))
    num_optimization_profiles = property(lambda self: max(1, len(self.description["profiles"])))

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self.tensors[name]["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return _DTYPES[self.tensors[name]["dtype"]]

    def get_tensor_shape(self, name: str) -> tuple:
        return tuple(self.tensors[name]["shape"])

    def get_tensor_profile_shape(self, name: str, index: int) -> list[tuple]:
        ranges = self.description["profiles"][index][name]
        return [tuple(ranges["min"]), tuple(ranges["opt"]), tuple(ranges["max"])]

    def is_shape_inference_io(self, name: str) -> bool:
        return False

    def create_execution_context(self) -> FakeContext:
        return FakeContext(self)

    def compute(self, addresses: dict[str, int], shapes: dict[str, tuple]) -> None:
        GPU.executions += 1
        function, shape_function = MODELS[self.description["model"]]
        inputs = {}
        for name, spec in self.tensors.items():
            if spec["mode"] == "input":
                inputs[name] = _view(addresses[name], shapes[name], np.dtype(spec["dtype"])).copy()
        results = function(inputs)
        for name, shape in shape_function(shapes).items():
            dtype = np.dtype(self.tensors[name]["dtype"])
            np.copyto(_view(addresses[name], shape, dtype), results[name].astype(dtype))


class Logger:
    WARNING = 2

    def __init__(self, level: int = 2) -> None:
        self.level = level


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
        if not data.startswith(b"FAKE"):
            return None
        return FakeEngine(json.loads(data[4:]))


def make_trt() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        __version__="10.99.0-fake", Logger=Logger, Runtime=Runtime, DataType=DataType,
        TensorIOMode=TensorIOMode, init_libnvinfer_plugins=lambda logger, ns: True)


class FakeBackend:
    """Host memory standing in for device memory; copies are memmoves."""

    name = "fake"
    stream_handle = 0xFEED

    def __init__(self) -> None:
        self.allocations: dict[int, np.ndarray] = {}
        self.mallocs = 0
        self.device_syncs = 0
        self.closed = False

    def enter(self) -> bool:
        return False

    def leave(self, pushed: bool) -> None:
        pass

    def malloc(self, nbytes: int) -> tuple[Any, int]:
        array = np.zeros(nbytes, np.uint8)
        self.mallocs += 1
        self.allocations[array.ctypes.data] = array
        return array, array.ctypes.data

    def free(self, allocation: np.ndarray) -> None:
        del self.allocations[allocation.ctypes.data]

    def malloc_host(self, nbytes: int) -> tuple[Any, np.ndarray]:
        array = np.zeros(nbytes, np.uint8)
        return array, array

    def free_host(self, allocation: Any) -> None:
        pass

    @staticmethod
    def _copy(dst: int, src: int, nbytes: int) -> None:
        def run() -> None:
            ctypes.memmove(dst, src, nbytes)

        if GPU.capture is not None:  # under stream capture: recorded, replayed by launch
            GPU.capture.append(run)
        else:
            run()

    def htod(self, ptr: int, host: np.ndarray) -> None:
        self._copy(ptr, host.ctypes.data, host.nbytes)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self._copy(host.ctypes.data, ptr, host.nbytes)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        self._copy(dst, src, nbytes)

    def synchronize(self) -> None:
        pass

    def device_synchronize(self) -> None:
        self.device_syncs += 1

    def record(self) -> object:
        return object()

    def done(self, event: object) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class FakeDriver:
    """Graph capture records the enqueued work; launch replays it."""

    def __init__(self, fail_capture: bool = False) -> None:
        self.fail_capture = fail_capture
        self.graphs: dict[int, list] = {}
        self.captures = 0
        self.launches = 0
        self.destroyed = 0
        self.waits: list[tuple[int, int]] = []
        self._next = 1

    def capture(self, stream: int, enqueue: Any) -> tuple[int, int]:
        if self.fail_capture:
            raise RuntimeError("CUDA stream capture failed: operation not permitted")
        GPU.capture = []
        try:
            ok = enqueue()
        finally:
            work, GPU.capture = GPU.capture, None
        assert ok
        self.captures += 1
        self._next += 1
        self.graphs[self._next] = work
        return self._next, self._next

    def launch(self, executable: int, stream: int) -> None:
        self.launches += 1
        for run in self.graphs[executable]:
            run()

    def destroy(self, graph: int, executable: int) -> None:
        self.destroyed += 1
        del self.graphs[executable]

    def new_event(self) -> int:
        return 77

    def wait(self, stream: int, other_stream: int, event: int) -> None:
        self.waits.append((stream, other_stream))

    def destroy_event(self, event: int) -> None:
        pass


class DeviceArray:
    """An array with ``__cuda_array_interface__`` (version 2, no stream, like PyTorch's),
    backed by host memory at a 256-byte aligned address (or ``offset`` bytes past one)."""

    def __init__(self, array: np.ndarray, offset: int = 0, stream: int | None = None,
                 strides: tuple | None = None) -> None:
        raw = np.zeros(array.nbytes + 512 + offset, np.uint8)
        start = (-raw.ctypes.data) % 256 + offset
        self._raw = raw
        self.array = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
        np.copyto(self.array, array)
        self.stream = stream
        self.strides = strides

    @property
    def ptr(self) -> int:
        return self.array.ctypes.data

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        interface = {"shape": self.array.shape, "typestr": self.array.dtype.str,
                     "data": (self.ptr, False), "strides": self.strides, "version": 2}
        if self.stream is not None:
            interface["version"] = 3
            interface["stream"] = self.stream
        return interface


def install(module: Any, monkeypatch: Any, driver: FakeDriver | None = None,
            backend: FakeBackend | None = None) -> tuple[FakeBackend, FakeDriver]:
    """Point an emitted loader module at the fakes."""
    backend = backend or FakeBackend()
    driver = driver or FakeDriver()
    trt = make_trt()
    monkeypatch.setattr(module, "_import_tensorrt", lambda: trt)
    monkeypatch.setattr(module, "_make_backend", lambda name, device: backend)
    monkeypatch.setattr(module._Driver, "get", staticmethod(lambda: driver))
    monkeypatch.setattr(module, "_LOGGER", [])
    return backend, driver


_COUNTER = itertools.count()


def import_file(path: Path) -> Any:
    """Import a module from a file under a fresh name (each test gets its own copy)."""
    name = f"{Path(path).stem}_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
