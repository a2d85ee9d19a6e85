"""Measure a built engine on this GPU: latency (wall and GPU time) and throughput per case.

What one timed call is: ``execute_async_v3`` (or the replay of a CUDA graph holding it) on a
non-default stream and the stream synchronize, with the inputs already on the device (random
values uploaded once per case) and no host copies: the engine's own time, what a regression
gate compares. Wall time is ``perf_counter`` around enqueue + synchronize; GPU time comes
from two CUDA events recorded around the enqueue, read after the call (not timed).

Per case: set the shapes (its optimization profile chosen as the loader does), one warm
enqueue (TensorRT finishes its lazy set-up there), CUDA-graph capture when asked and
possible, ``warmup`` untimed calls, then ``repeats`` rounds of ``iterations`` timed calls.
The statistics are :mod:`trtops.perf.stats` (pure); the GPU's clocks and temperature are
read right after the last case (:mod:`trtops.perf.gpu_state`), while the clocks still
show the load.

Device memory, the stream and the driver calls for graphs are the emitted loader's runtime
(:mod:`trtops.emit.runtime.cuda`, pycuda or cuda-python): engines are measured through the
same CUDA layer deployments run them with. TensorRT 8.5+ name-based I/O only
(``set_input_shape``/``set_tensor_address``/``execute_async_v3``); TensorRT 8.6, 10 and 11
differ here only in the output allocator's method names, looked up by name.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtops.errors import BuildError, EnvironmentMissing, InputError
from trtops.perf.gpu_state import gpu_state
from trtops.perf.stats import (
    batch_size,
    coefficient_of_variation,
    percentile,
    round_summary,
    summarize,
    throughput,
)
from trtops.trt.runtime import deserialize_engine
from trtops.trt.trt_compat import import_tensorrt, version_text

if TYPE_CHECKING:
    from trtops.trt.api import TensorRT

CUDA_GRAPH_MODES = ("auto", "off")
# Bits per element of the types numpy may lack (ml_dtypes not installed): inputs of these
# types are uploaded as zero bytes.
_BITS = {"bfloat16": 16, "float8_e4m3fn": 8, "int4": 4, "float4_e2m1fn": 4}
_CU_EVENT_DEFAULT = 0  # timing enabled
_SEED = 2024


def _check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, least in (("warmup", 0), ("iterations", 1), ("repeats", 1)):
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InputError(f"performance setting {key!r} must be an integer >= {least}, got {value!r}")
        checked[key] = value
    mode = settings.get("cuda_graph", "auto")
    if mode not in CUDA_GRAPH_MODES:
        raise InputError(f"performance setting 'cuda_graph' must be 'auto' or 'off', got {mode!r}")
    checked["cuda_graph"] = mode
    budget = settings.get("max_seconds")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not 0 < budget < math.inf):
        raise InputError(f"performance setting 'max_seconds' must be a number > 0, got {budget!r}")
    checked["max_seconds"] = None if budget is None else float(budget)
    checked["device"] = int(settings.get("device", 0))
    checked["version_compatible"] = bool(settings.get("version_compatible", False))
    return checked


def _case_shapes(io: Any, case: Mapping[str, Any]) -> tuple[str, dict[str, tuple[int, ...]], int]:
    """The case's label, its shape for every input (in the engine's order; fixed inputs may
    be left out) and the optimization profile the loader would pick for them."""
    from trtops.emit.runtime.errors import EngineInputError

    label = str(case.get("label", ""))
    given = case.get("shapes") or {}
    if not isinstance(given, Mapping):
        raise InputError(f"performance case {label!r}: 'shapes' must map input names to dims")
    shapes: dict[str, tuple[int, ...]] = {}
    # Inputs of fixed shape may be left out: they count as given for the name check.
    fixed = [t.name for t in io.inputs if t.name not in given and all(d >= 0 for d in t.shape)]
    try:
        io.check_names([*given, *fixed])
        for spec in io.inputs:
            dims = given.get(spec.name, spec.shape)
            if isinstance(dims, (str, bytes)) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                         for d in dims):
                raise InputError(f"performance case {label!r}: shape of input {spec.name!r} must be a "
                                 f"list of integers, got {dims!r}")
            shape = tuple(int(d) for d in dims)
            io.check_tensor(spec, spec.dtype, shape)
            shapes[spec.name] = shape
        profile = io.select_profile(shapes)
    except EngineInputError as exc:
        raise InputError(f"performance case {label!r}: {exc}") from None
    return label, shapes, profile


def _nbytes(dtype: str, np_dtype: Any, shape: Sequence[int]) -> int:
    count = math.prod(shape)
    bits = np_dtype.itemsize * 8 if np_dtype is not None else _BITS.get(dtype, 32)
    return (count * bits + 7) // 8


def _random_input(spec: Any, shape: tuple[int, ...], rng: Any) -> Any:
    """Random values of the input's dtype: floats in [0, 1), integers 0 or 1 (indices and
    token ids stay in range), booleans; zero bytes for types numpy lacks."""
    import numpy as np

    dtype = spec.np_dtype
    if dtype is None:
        return np.zeros(_nbytes(spec.dtype, None, shape), np.uint8)
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        return np.asarray(rng.integers(0, 2, size=shape), dtype=dtype)
    return np.asarray(rng.random(shape, dtype=np.float32), dtype=dtype)


class _Events:
    """A pair of timing CUDA events through the driver library the loader's runtime opened."""

    def __init__(self, lib: Any) -> None:
        vp = ctypes.c_void_p
        self.lib = lib
        lib.cuEventElapsedTime.argtypes = [ctypes.POINTER(ctypes.c_float), vp, vp]
        lib.cuEventElapsedTime.restype = ctypes.c_int
        lib.cuEventSynchronize.argtypes = [vp]
        lib.cuEventSynchronize.restype = ctypes.c_int
        self.record = lib.cuEventRecord
        self.start = self._create()
        self.end = self._create()
        self._ms = ctypes.c_float()
        self._ms_ref = ctypes.byref(self._ms)

    def _create(self) -> int:
        event = ctypes.c_void_p()
        code = self.lib.cuEventCreate(ctypes.byref(event), _CU_EVENT_DEFAULT)
        if code != 0:
            raise BuildError(f"CUDA could not create a timing event (error {code})")
        return int(event.value or 0)

    def elapsed_ms(self) -> float:
        """Milliseconds between the two events (both recorded and the stream synchronized)."""
        code = self.lib.cuEventElapsedTime(self._ms_ref, self.start, self.end)
        if code != 0:
            raise BuildError(f"CUDA could not read the timing events (error {code})")
        return float(self._ms.value)

    def close(self) -> None:
        for event in (self.start, self.end):
            if event:
                self.lib.cuEventDestroy_v2(event)
        self.start = self.end = 0


def _output_allocator(trt: TensorRT, backend: Any) -> Any:
    """An ``IOutputAllocator`` for outputs whose shape depends on the data (NonZero, ...):
    TensorRT asks it for memory during the enqueue; grown, never shrunk, freed with it."""

    base: Any = trt.IOutputAllocator  # a class from the module object: typed through api.py

    class OutputAllocator(base):
        def __init__(self) -> None:
            base.__init__(self)
            self.buffers: dict[str, tuple[Any, int, int]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            held = self.buffers.get(tensor_name)
            if held is not None and held[2] >= size:
                return held[1]
            if held is not None:
                backend.free(held[0])
            allocation, ptr = backend.malloc(max(int(size), 1))
            self.buffers[tensor_name] = (allocation, ptr, int(size))
            return ptr

        # TensorRT 10 calls the asynchronous form first (8.6 has only the one above).
        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int,
                                    stream: int) -> int:
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            pass

        def free(self) -> None:
            for allocation, _, _ in self.buffers.values():
                backend.free(allocation)
            self.buffers.clear()

    return OutputAllocator()


class _Session:
    """One engine deserialized on one device: contexts per profile, the stream, events."""

    def __init__(self, trt: TensorRT, plan: bytes, settings: dict[str, Any]) -> None:
        from trtops.emit.runtime.cuda import _Driver, _make_backend
        from trtops.emit.runtime.errors import EngineLoadError
        from trtops.emit.runtime.trt_io import io_from_engine

        self.trt = trt
        try:
            self.backend = _make_backend("auto", settings["device"])
        except EngineLoadError as exc:
            raise EnvironmentMissing(f"cannot measure engines here: {exc}",
                                     hint="install pycuda or cuda-python on the GPU machine") from None
        self.pushed = self.backend.enter()
        self.contexts: dict[int, Any] = {}
        self._events: _Events | None = None
        self.engine: Any = None
        self.runtime: Any = None
        try:
            driver = _Driver.get()
            if driver is None:
                raise EnvironmentMissing("cannot measure engines here: the CUDA driver library "
                                         "(libcuda) cannot be loaded")
            self.driver = driver
            self.engine, self.runtime = deserialize_engine(
                trt, plan, host_code_allowed=settings["version_compatible"])
            try:
                self.io = io_from_engine(trt, self.engine)
            except EngineLoadError as exc:
                raise BuildError(f"cannot measure this engine: {exc}") from None
            self.events = self._events = _Events(driver.lib)
        except BaseException:
            self.close()
            raise
        self.stream = self.backend.stream_handle

    def context(self, profile: int) -> Any:
        context = self.contexts.get(profile)
        if context is None:
            context = self.engine.create_execution_context()
            if context is None:
                raise BuildError("TensorRT could not create an execution context (out of GPU memory?)")
            # set_optimization_profile_async: TensorRT 8.6, 10 and 11 alike.
            if (profile != 0 or self.engine.num_optimization_profiles > 1) and \
                    not context.set_optimization_profile_async(profile, self.stream):
                raise BuildError(f"TensorRT refused optimization profile {profile}")
            self.contexts[profile] = context
        return context

    def close(self) -> None:
        try:
            self.backend.synchronize()
        finally:
            if self._events is not None:
                self._events.close()
            self.contexts.clear()
            self.engine = self.runtime = None
            self.backend.leave(self.pushed)
            self.backend.close()


def _timed(run: Callable[[], None], sync: Callable[[], None], events: _Events, stream: int,
           iterations: int) -> tuple[list[float], list[float]]:
    """``iterations`` calls: (wall ms, GPU ms) of each."""
    clock = time.perf_counter
    record = events.record
    start, end = events.start, events.end
    wall: list[float] = []
    gpu: list[float] = []
    for _ in range(iterations):
        begin = clock()
        record(start, stream)
        run()
        record(end, stream)
        sync()
        wall.append((clock() - begin) * 1e3)
        gpu.append(events.elapsed_ms())
    return wall, gpu


def _measure_case(session: _Session, case: Mapping[str, Any], settings: dict[str, Any], rng: Any) -> dict[str, Any]:
    label, shapes, profile = _case_shapes(session.io, case)
    backend, stream = session.backend, session.stream
    context = session.context(profile)
    for name, shape in shapes.items():
        if not context.set_input_shape(name, shape):
            raise InputError(f"performance case {label!r}: TensorRT rejected shape {list(shape)} of input {name!r}")
    allocations: list[Any] = []
    uploads: list[Any] = []  # host arrays stay alive until the copies are done
    allocator = None
    graph: tuple[int, int] | None = None
    try:
        for spec in session.io.inputs:
            data = _random_input(spec, shapes[spec.name], rng)
            allocation, ptr = backend.malloc(max(data.nbytes, 1))
            allocations.append(allocation)
            if data.nbytes:
                backend.htod(ptr, data)
                uploads.append(data)
            if not context.set_tensor_address(spec.name, ptr):
                raise BuildError(f"TensorRT rejected the address of input {spec.name!r}")
        data_dependent = False
        for spec in session.io.outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                data_dependent = True
                if allocator is None:
                    allocator = _output_allocator(session.trt, backend)
                if not context.set_output_allocator(spec.name, allocator):
                    raise BuildError(f"TensorRT refused an output allocator for {spec.name!r}")
                continue
            allocation, ptr = backend.malloc(max(_nbytes(spec.dtype, spec.np_dtype, shape), 1))
            allocations.append(allocation)
            if not context.set_tensor_address(spec.name, ptr):
                raise BuildError(f"TensorRT rejected the address of output {spec.name!r}")
        backend.synchronize()

        def enqueue() -> None:
            if not context.execute_async_v3(stream):
                raise BuildError(f"performance case {label!r}: TensorRT execute_async_v3 failed "
                                 "(see TensorRT's log above)")

        enqueue()  # TensorRT's lazy set-up happens here, before any capture or timing
        backend.synchronize()
        run = enqueue
        if settings["cuda_graph"] == "auto" and not data_dependent:
            graph = _capture(session, context, stream)
            if graph is not None:
                executable = graph[1]
                launch = session.driver.lib.cuGraphLaunch

                def run() -> None:
                    code = launch(executable, stream)
                    if code != 0:
                        session.driver.check(code, "graph launch")

        sync = backend.synchronize
        began = time.perf_counter()
        for _ in range(settings["warmup"]):
            run()
            sync()
        iterations = _iterations_within_budget(settings, time.perf_counter() - began, run, sync)
        wall: list[float] = []
        gpu: list[float] = []
        medians: list[float] = []
        for _ in range(settings["repeats"]):
            round_wall, round_gpu = _timed(run, sync, session.events, stream, iterations)
            wall += round_wall
            gpu += round_gpu
            medians.append(percentile(round_wall, 50.0))
    finally:
        backend.synchronize()
        if graph is not None:
            session.driver.destroy(*graph)
        if allocator is not None:
            allocator.free()
        for allocation in allocations:
            backend.free(allocation)
    latency = summarize(wall)
    batch = batch_size(shapes)
    return {
        "label": label,
        "shapes": {name: list(shape) for name, shape in shapes.items()},
        "batch": batch,
        "cuda_graph": graph is not None,
        "iterations": iterations,
        "latency_ms": round_summary(latency),
        "gpu_ms": round_summary(summarize(gpu)),
        "throughput": round(throughput(batch, latency["median"]), 3),
        "repeat_medians_ms": [round(m, 5) for m in medians],
        "cv": round(coefficient_of_variation(medians), 6),
    }


# Fewest timed runs per repeat that ``max_seconds`` may leave: a median of fewer is noise.
MIN_ITERATIONS = 10


def _iterations_within_budget(settings: Mapping[str, Any], warmup_seconds: float,
                              run: Callable[[], None], sync: Callable[[], None]) -> int:
    """Timed runs per repeat: ``iterations``, cut so that all repeats take about
    ``max_seconds`` (ResNet-50 fp32 at batch 64, 15 ms a call, took 15 s at 200 x 5, 9% of
    its apply in the lab), never below :data:`MIN_ITERATIONS`. One call's time comes from
    the warm-up (or one untimed call when there is none)."""
    iterations = settings["iterations"]
    budget = settings.get("max_seconds")
    if budget is None:
        return iterations
    calls = settings["warmup"]
    if calls == 0:
        began = time.perf_counter()
        run()
        sync()
        warmup_seconds, calls = time.perf_counter() - began, 1
    per_call = warmup_seconds / calls
    if per_call <= 0:
        return iterations
    fit = int(budget / settings["repeats"] / per_call)
    return max(min(iterations, fit), min(iterations, MIN_ITERATIONS))


def _capture(session: _Session, context: Any, stream: int) -> tuple[int, int] | None:
    """The engine's enqueue captured into an instantiated CUDA graph, or None when capture
    fails (some layers cannot be captured): those cases are timed without a graph."""
    try:
        graph = session.driver.capture(stream, lambda: bool(context.execute_async_v3(stream)))
    except Exception:  # noqa: BLE001 - any capture failure: measure without a graph
        session.backend.synchronize()
        return None
    try:
        session.driver.launch(graph[1], stream)  # one replay proves the graph runs
        session.backend.synchronize()
    except Exception:  # noqa: BLE001
        session.driver.destroy(*graph)
        session.backend.synchronize()
        return None
    return graph


def measure_engine(engine_path: Path, cases: list[dict], settings: dict) -> dict:
    """Measure an engine file at each case's input shapes.

    Args:
        engine_path: a serialized engine (``engine.plan``) built for this GPU and TensorRT.
        cases: ``[{"label": str, "shapes": {input name: [dims]}}]``; inputs of fixed shape
            may be left out.
        settings: ``{"warmup": int, "iterations": int, "repeats": int, "cuda_graph":
            "auto"|"off"}``; optional ``max_seconds`` (timed runs per case, about: fewer
            iterations for a slow engine, see :func:`_iterations_within_budget`), ``device``
            (CUDA ordinal, 0) and
            ``version_compatible`` (the engine embeds its lean runtime).

    Returns:
        ``{"gpu": {name, driver, sm_clock_mhz, mem_clock_mhz, temperature_c}, "tensorrt":
        str, "cases": [{label, shapes, batch, cuda_graph, iterations (per repeat),
        latency_ms, gpu_ms (median/p90/p99/mean/min, over every timed call), throughput
        (inferences/s at the median latency), repeat_medians_ms, cv}], "seconds": wall time
        of the whole measurement, loading included (what it adds to ``apply``)}``.

    Raises:
        InputError: bad settings, or a case whose shapes the engine does not accept.
        EnvironmentMissing: no TensorRT, CUDA package or GPU.
        BuildError: the engine cannot be deserialized or run here.
    """
    checked = _check_settings(settings)
    started = time.perf_counter()
    trt = import_tensorrt()
    plan = Path(engine_path).read_bytes()
    import numpy as np

    rng = np.random.default_rng(_SEED)
    session = _Session(trt, plan, checked)
    try:
        results = [_measure_case(session, case, checked, rng) for case in cases]
    finally:
        session.close()
    return {"gpu": gpu_state(checked["device"]), "tensorrt": version_text(trt), "cases": results,
            "seconds": round(time.perf_counter() - started, 3)}


__all__ = ["CUDA_GRAPH_MODES", "measure_engine"]
