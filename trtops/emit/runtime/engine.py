"""The Engine: execution contexts per profile, buffers, the fast path for repeated shapes,
CUDA graph replay, async calls; and the smoke-test entry point."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from .cuda import _Buffer, _Driver, _make_backend
from .errors import EngineInputError, EngineLoadError, InputShapeError
from .header import METADATA
from .inputs import _Arg, _cuda_array, _merge_inputs, _normalize
from .integrity import _engine_meta, _read_engine, resolve_engine_path
from .shapes import IOSpec, _fmt_shape
from .trt_io import _import_tensorrt, _trt_logger, io_from_engine

_ALIGNMENT = 256  # TensorRT wants I/O addresses aligned to 256 bytes
_MAX_PLANS = 256


class _Context:
    """One execution context, bound to one optimization profile."""

    __slots__ = (
        "bound",
        "context",
        "graph",
        "graph_failed",
        "graph_key",
        "profile",
        "shape_key",
    )

    def __init__(self, context: Any, profile: int) -> None:
        self.context = context
        self.profile = profile
        self.shape_key: tuple | None = None
        self.bound: dict[str, int] = {}
        self.graph: tuple[int, int] | None = None
        self.graph_key: tuple | None = None
        self.graph_failed: set = set()


class _Plan:
    """What a call with given input shapes needs: profile, shapes and sizes."""

    __slots__ = ("in_nbytes", "in_shapes", "key", "out_nbytes", "out_shapes", "profile")

    def __init__(
        self,
        key: tuple,
        profile: int,
        in_shapes: list,
        in_nbytes: list,
        out_shapes: list,
        out_nbytes: list,
    ) -> None:
        self.key = key
        self.profile = profile
        self.in_shapes = in_shapes
        self.in_nbytes = in_nbytes
        self.out_shapes = out_shapes
        self.out_nbytes = out_nbytes


def _bound_copy(backend: Any, direction: str, first: Any, second: Any) -> Any:
    """``backend.htod(ptr, host)`` / ``backend.dtoh(host, ptr)`` as a zero-argument call,
    through the backend's own prebound form when it has one."""
    bind = getattr(backend, f"bind_{direction}", None)
    if bind is not None:
        return bind(first, second)
    return functools.partial(getattr(backend, direction), first, second)


class _Recipe:
    """The views and addresses of a call whose plan was the last one set up, and ``call``:
    the whole call for inputs of its shapes (see :meth:`Engine._fast_call`)."""

    __slots__ = (
        "call",
        "copies_in",
        "copies_out",
        "entry",
        "inputs",
        "outputs",
        "plan",
        "results",
    )

    def __init__(
        self,
        plan: _Plan,
        entry: _Context,
        inputs: list,
        outputs: list,
        copies_in: list,
        copies_out: list,
    ) -> None:
        self.plan = plan
        self.entry = entry
        # inputs: (name, typed view of the pinned buffer); outputs: (name, typed view,
        # pinned bytes, device pointer, nbytes).
        self.inputs = inputs
        self.outputs = outputs
        # Zero-argument copies bound to these buffers once: a call pays no argument
        # marshalling (host pointers, sizes) beyond the driver call itself.
        self.copies_in = copies_in
        self.copies_out = copies_out
        self.results = [(name, typed) for name, typed, _, _, _ in outputs]
        self.call: Any = None


class Engine:
    """A TensorRT engine ready to run.

    Args:
        path: engine file; default: the one this module was emitted for
            (:func:`resolve_engine_path`).
        backend: ``"pycuda"``, ``"cuda-python"`` or ``"auto"`` (pycuda when installed,
            else cuda-python).
        device: CUDA device ordinal.
        cuda_graph: from the second call in a row with the same input shapes (numpy
            inputs), capture the copies and the engine's launch into a CUDA graph and
            replay it while the shapes stay the same.
        verify: check the engine file's sha256 against the one recorded at emit time
            (False: load another engine file; its inputs and outputs are still checked).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        backend: str = "auto",
        device: int = 0,
        cuda_graph: bool = False,
        verify: bool = True,
    ) -> None:
        self._closed = True
        self._lock = threading.Lock()
        self._async_thread: int | None = None
        self.path = os.fspath(path) if path is not None else resolve_engine_path()
        self.cuda_graph = bool(cuda_graph)
        data = _read_engine(self.path, _engine_meta().get("sha256") if verify else None)
        trt = _import_tensorrt()
        self._trt = trt
        self._backend = _make_backend(backend, int(device))
        self.backend = self._backend.name
        pushed = self._backend.enter()
        try:
            self._load(trt, data)
        except BaseException:
            self._backend.leave(pushed)
            self._backend.close()
            raise
        self._backend.leave(pushed)
        self._closed = False

    # ----------------------------------------------------------------- loading

    def _load(self, trt: Any, data: bytes) -> None:
        self._runtime = trt.Runtime(_trt_logger(trt))
        if METADATA.get("version_compatible") and hasattr(
            self._runtime, "engine_host_code_allowed"
        ):
            # Version-compatible engines embed a lean runtime that runs as host code.
            self._runtime.engine_host_code_allowed = True
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            built = METADATA.get("tensorrt") or "an unknown version"
            raise EngineLoadError(
                f"TensorRT {trt.__version__} could not deserialize {self.path} (built with "
                f"TensorRT {built} for {METADATA.get('gpu') or 'an unknown GPU'}); engines "
                "run only with the TensorRT version and GPU kind they were built for: "
                "rebuild it here with `trtops apply`"
            )
        if not hasattr(engine, "num_io_tensors"):
            raise EngineLoadError(
                f"TensorRT {trt.__version__} lacks the name-based I/O API; "
                "this loader needs TensorRT 8.5 or later"
            )
        self._engine = engine
        self.io = io_from_engine(trt, engine)
        if METADATA.get("io"):
            problems = self.io.differences(IOSpec.from_json(METADATA["io"]))
            if problems:
                raise EngineLoadError(
                    f"the engine {self.path} does not match this loader: "
                    + "; ".join(problems)
                    + "; re-emit the loader with `trtops emit`"
                )
        for spec in self.io.tensors:
            if spec.np_dtype is None:
                raise EngineLoadError(
                    f"tensor {spec.name!r} has dtype {spec.dtype}, which numpy lacks; "
                    "pip install ml_dtypes"
                )
        self._inputs = self.io.inputs
        self._outputs = self.io.outputs
        self._fast = [(t.name, t.np_dtype) for t in self._inputs]
        self._buffers = {t.name: _Buffer() for t in self.io.tensors}
        self._contexts: dict[int, _Context] = {}
        self._plans: OrderedDict[tuple, _Plan] = OrderedDict()
        self._recipe: _Recipe | None = None
        self._driver = _Driver.get()
        self._wait_event: int | None = None
        if self.cuda_graph and self._driver is None:
            warnings.warn(
                "CUDA graphs need the CUDA driver library, which cannot be "
                "loaded; running without them",
                RuntimeWarning,
                stacklevel=3,
            )
            self.cuda_graph = False
        self.graph_launches = 0

    # ----------------------------------------------------------------- public API

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self._inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self._outputs]

    @property
    def profiles(self) -> list[dict[str, tuple[tuple[int, ...], ...]]]:
        return self.io.profiles

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.backend
        return f"<Engine {self.path!r} ({state})>\n{self.io.describe()}"

    def infer(
        self, inputs: Mapping[str, Any] | None = None, /, **named: Any
    ) -> dict[str, np.ndarray]:
        """Run the engine. Inputs by name (keywords, or one mapping); returns a new numpy
        array per output."""
        values = named if inputs is None else _merge_inputs(inputs, named)
        recipe = self._recipe
        if recipe is not None:
            # The hot path: the same shapes as the last call (None: take the full path).
            result = recipe.call(values)
            if result is not None:
                return result
        return self.run(values)

    __call__ = infer

    def run(
        self, inputs: Mapping[str, Any], out: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Like :meth:`infer`, with ``out``: output name -> a preallocated numpy array (filled
        in place) or device array with ``__cuda_array_interface__`` (filled by a device
        copy). The result maps every output name to its array."""
        recipe = self._recipe
        if recipe is not None and not out:
            result = recipe.call(inputs)
            if result is not None:
                return result
        if not self._lock.acquire(blocking=False):
            if self._async_thread == threading.get_ident():
                raise RuntimeError(
                    "this Engine is running infer_async() on this thread: await "
                    "it before calling infer(), or use a second Engine"
                )
            self._lock.acquire()
        try:
            if self._closed:
                raise RuntimeError("this Engine is closed")
            pushed = self._backend.enter()
            try:
                plan, args = self._prepare(inputs)
                if args is None and not out:
                    return self._run_recipe(plan, inputs)
                if out:
                    self._check_out(plan, out)
                try:
                    self._enqueue(plan, args, inputs, out)
                finally:
                    # Also on errors: queued copies must finish before the buffers are reused.
                    self._backend.synchronize()
                return self._collect(plan, out)
            finally:
                self._backend.leave(pushed)
        finally:
            self._lock.release()

    async def infer_async(
        self, inputs: Mapping[str, Any] | None = None, /, **named: Any
    ) -> dict[str, np.ndarray]:
        """:meth:`infer` that awaits the GPU without blocking the event loop."""
        values = _merge_inputs(inputs, named)
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(0.0002)
        self._async_thread = threading.get_ident()
        try:
            self._check_open()
            pushed = self._backend.enter()
            try:
                plan, args = self._prepare(values)
                try:
                    self._enqueue(plan, args, values, None)
                except BaseException:
                    self._backend.synchronize()
                    raise
                event = self._backend.record()
            finally:
                self._backend.leave(pushed)
            delay = 0.0
            try:
                while True:
                    pushed = self._backend.enter()
                    try:
                        if self._backend.done(event):
                            break
                    finally:
                        self._backend.leave(pushed)
                    await asyncio.sleep(delay)
                    delay = min(max(delay * 2, 0.00005), 0.001)
            except BaseException:
                # Cancelled: the GPU still writes our buffers; wait before releasing them.
                pushed = self._backend.enter()
                try:
                    self._backend.synchronize()
                finally:
                    self._backend.leave(pushed)
                raise
            return self._collect(plan, None)
        finally:
            self._async_thread = None
            self._lock.release()

    def warmup(self, iterations: int = 1) -> None:
        """Run every profile's opt shapes (zeros) ``iterations`` times."""
        profiles = self.io.profiles or [{}]
        for profile in profiles:
            feed = {}
            for spec in self._inputs:
                shape = profile[spec.name][1] if spec.name in profile else spec.shape
                feed[spec.name] = np.zeros(shape, dtype=spec.np_dtype)
            for _ in range(iterations):
                self.run(feed)

    def close(self) -> None:
        """Free the GPU memory, contexts and stream. The Engine cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pushed = self._backend.enter()
            try:
                self._backend.synchronize()
                self._drop_graphs()
                self._recipe = None
                self._contexts.clear()
                self._engine = None
                self._runtime = None
                for buffer in self._buffers.values():
                    self._release(buffer)
                if self._wait_event is not None and self._driver is not None:
                    self._driver.destroy_event(self._wait_event)
            finally:
                self._backend.leave(pushed)
            self._backend.close()

    def __enter__(self):  # returns self (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # at interpreter exit CUDA may be gone
                self.close()

    # ----------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Engine is closed")

    def _prepare(self, inputs: Mapping[str, Any]) -> tuple[_Plan, list[_Arg] | None]:
        """Validate the inputs and find (or make) the plan for their shapes. Returns
        ``args=None`` on the fast path (known shapes, plain numpy arrays)."""
        if len(inputs) == len(self._fast):
            # Plain numpy arrays of the native dtype (np.copyto takes any strides); the
            # identity test is a cheap subset of dtype equality: others take the full check.
            key = []
            for name, dtype in self._fast:
                value = inputs.get(name)
                if type(value) is not np.ndarray or value.dtype is not dtype:
                    break
                key.append(value.shape)
            else:
                plan = self._plans.get(tuple(key))
                if plan is not None:
                    return plan, None
        self.io.check_names(inputs)
        args = [_normalize(spec, inputs[spec.name]) for spec in self._inputs]
        for spec, arg in zip(self._inputs, args):
            self.io.check_tensor(spec, arg.dtype, arg.shape)
        key = tuple(arg.shape for arg in args)
        plan = self._plans.get(key)
        if plan is None:
            profile = self.io.select_profile({a.name: a.shape for a in args})
            plan = self._make_plan(key, profile)
        return plan, args

    def _context(self, profile: int) -> _Context:
        entry = self._contexts.get(profile)
        if entry is None:
            context = self._engine.create_execution_context()
            if context is None:
                raise EngineLoadError(
                    "TensorRT could not create an execution context "
                    "(out of GPU memory?)"
                )
            if self._engine.num_optimization_profiles > 1 or profile != 0:
                if hasattr(context, "set_optimization_profile_async"):
                    if not context.set_optimization_profile_async(
                        profile, self._backend.stream_handle
                    ):
                        raise EngineLoadError(
                            f"TensorRT refused optimization profile {profile}"
                        )
                else:
                    context.active_optimization_profile = profile
            entry = _Context(context, profile)
            self._contexts[profile] = entry
        return entry

    def _set_shapes(self, entry: _Context, key: tuple) -> None:
        if entry.shape_key == key:
            return
        for spec, shape in zip(self._inputs, key):
            if not entry.context.set_input_shape(spec.name, shape):
                raise InputShapeError(
                    f"TensorRT rejected shape {_fmt_shape(shape)} for input "
                    f"{spec.name!r}",
                    name=spec.name,
                )
        entry.shape_key = key
        entry.graph_key = None
        self._recipe = None
        if entry.graph is not None:
            # TensorRT may have refreshed shape-dependent state: the old graph is stale.
            self._driver.destroy(*entry.graph)
            entry.graph = None

    def _make_plan(self, key: tuple, profile: int) -> _Plan:
        entry = self._context(profile)
        self._set_shapes(entry, key)
        out_shapes = []
        for spec in self._outputs:
            shape = tuple(int(d) for d in entry.context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise EngineLoadError(
                    f"output {spec.name!r} has a data-dependent shape {_fmt_shape(shape)}; "
                    "this loader supports only outputs whose shape follows from the inputs'"
                )
            out_shapes.append(shape)
        in_nbytes = [
            math.prod(s) * t.np_dtype.itemsize for s, t in zip(key, self._inputs)
        ]
        out_nbytes = [
            math.prod(s) * t.np_dtype.itemsize
            for s, t in zip(out_shapes, self._outputs)
        ]
        plan = _Plan(key, profile, list(key), in_nbytes, out_shapes, out_nbytes)
        self._plans[key] = plan
        if len(self._plans) > _MAX_PLANS:
            self._plans.popitem(last=False)
        return plan

    def _release(self, buffer: _Buffer) -> None:
        if buffer.device is not None:
            self._backend.free(buffer.device)
        if buffer.host_allocation is not None:
            self._backend.free_host(buffer.host_allocation)
        buffer.device = buffer.host_allocation = buffer.host = None
        buffer.ptr = buffer.capacity = 0

    def _ensure(self, name: str, nbytes: int) -> _Buffer:
        buffer = self._buffers[name]
        if nbytes > buffer.capacity:
            # Growing moves the buffer: every captured graph and bound address is stale.
            self._backend.synchronize()
            self._drop_graphs()
            capacity = max(nbytes, buffer.capacity * 3 // 2, 512)
            capacity = (capacity + 511) // 512 * 512
            self._release(buffer)
            buffer.device, buffer.ptr = self._backend.malloc(capacity)
            buffer.host_allocation, buffer.host = self._backend.malloc_host(capacity)
            buffer.capacity = capacity
            self._recipe = None
        return buffer

    def _drop_graphs(self) -> None:
        for entry in self._contexts.values():
            if entry.graph is not None:
                self._driver.destroy(*entry.graph)
                entry.graph = None
                entry.graph_key = None

    def _bind(self, entry: _Context, name: str, ptr: int) -> None:
        if entry.bound.get(name) != ptr:
            if not entry.context.set_tensor_address(name, ptr):
                raise EngineLoadError(
                    f"TensorRT rejected the address of tensor {name!r}"
                )
            entry.bound[name] = ptr

    def _wait_for(self, stream: int) -> None:
        if stream == self._backend.stream_handle:
            return
        if self._driver is None:
            self._backend.device_synchronize()
            return
        if self._wait_event is None:
            self._wait_event = self._driver.new_event()
        self._driver.wait(self._backend.stream_handle, stream, self._wait_event)

    def _make_recipe(self, plan: _Plan) -> _Recipe:
        """Set up context, shapes, buffers and addresses for ``plan`` with this Engine's
        own buffers, and remember the views a call then needs."""
        entry = self._context(plan.profile)
        self._set_shapes(entry, plan.key)
        for spec, nbytes in zip(self._inputs, plan.in_nbytes):
            self._ensure(spec.name, nbytes)
        for spec, nbytes in zip(self._outputs, plan.out_nbytes):
            self._ensure(spec.name, nbytes)
        backend = self._backend
        inputs, copies_in = [], []
        for spec, shape, nbytes in zip(self._inputs, plan.in_shapes, plan.in_nbytes):
            buffer = self._buffers[spec.name]
            self._bind(entry, spec.name, buffer.ptr)
            if nbytes:
                staging = buffer.host[:nbytes]
                typed = staging.view(spec.np_dtype).reshape(shape)
                inputs.append((spec.name, typed))
                copies_in.append(_bound_copy(backend, "htod", buffer.ptr, staging))
        outputs, copies_out = [], []
        for spec, shape, nbytes in zip(self._outputs, plan.out_shapes, plan.out_nbytes):
            buffer = self._buffers[spec.name]
            self._bind(entry, spec.name, buffer.ptr)
            host = buffer.host[:nbytes]
            outputs.append(
                (
                    spec.name,
                    host.view(spec.np_dtype).reshape(shape),
                    host,
                    buffer.ptr,
                    nbytes,
                )
            )
            if nbytes:
                copies_out.append(_bound_copy(backend, "dtoh", host, buffer.ptr))
        recipe = _Recipe(plan, entry, inputs, outputs, copies_in, copies_out)
        recipe.call = self._fast_call(recipe)
        self._recipe = recipe
        return recipe

    def _fast_call(self, recipe: _Recipe) -> Any:
        """The per-call hot path for ``recipe``'s shapes, as one closure: everything a call
        with these shapes needs (checks, views, bound copies, the context's enqueue, the
        stream's synchronize) is looked up once here, not on every call.

        ``call(values)`` returns the outputs, or None when it does not apply: the recipe
        is no longer current (shapes changed, buffers moved, closed), another thread holds
        the Engine, or an input is not a plain numpy array of the recipe's exact dtype
        and shape. The full path then runs and raises the documented errors.
        ``call(values, True)``: the caller already holds the lock and the CUDA context.
        """
        engine = self
        lock = self._lock
        acquire, release = lock.acquire, lock.release
        backend = self._backend
        enter = getattr(backend, "enter_fast", backend.enter)
        leave = backend.leave
        synchronize = getattr(backend, "bind_synchronize", None)
        synchronize = synchronize() if synchronize is not None else backend.synchronize
        stream = backend.stream_handle
        entry = recipe.entry
        execute = entry.context.execute_async_v3
        key = recipe.plan.key
        ndarray = np.ndarray
        by_name = {spec.name: spec.np_dtype for spec in self._inputs}
        # (name, dtype, shape, staging view) per input, in the engine's order. Inputs with
        # no elements have no view: checked, nothing to copy.
        staged = {name: typed for name, typed in recipe.inputs}
        checks = tuple(
            (spec.name, by_name[spec.name], shape, staged.get(spec.name))
            for spec, shape in zip(self._inputs, recipe.plan.in_shapes)
        )
        count = len(checks)
        copies_in = tuple(recipe.copies_in)
        copies_out = tuple(recipe.copies_out)
        results = tuple(recipe.results)
        launch_graph = self._launch_graph

        def call(
            values: Mapping[str, Any], held: bool = False
        ) -> dict[str, Any] | None:
            if len(values) != count or engine._recipe is not recipe:
                return None
            if not held and not acquire(False):
                return None  # another thread (or infer_async): the full path waits or explains
            try:
                # Checked and staged in one pass: the staging buffers are this Engine's own
                # and idle between calls, so a later input that fails the test costs nothing.
                for name, dtype, shape, typed in checks:
                    value = values.get(name)
                    if (
                        type(value) is not ndarray
                        or value.dtype is not dtype
                        or value.shape != shape
                    ):
                        return None
                    if typed is not None:
                        # Same dtype and shape: a plain copy (any strides), cheaper than
                        # np.copyto's argument parsing.
                        typed[...] = value
                pushed = False if held else enter()
                try:
                    try:
                        if not (engine.cuda_graph and launch_graph(recipe)):
                            for copy in copies_in:
                                copy()
                            ok = execute(stream)
                            for copy in copies_out:
                                copy()
                            if not ok:
                                raise RuntimeError(
                                    "TensorRT execute_async_v3 failed; see TensorRT's log above"
                                )
                            entry.graph_key = key
                    finally:
                        # Also on errors: queued copies must finish before the buffers are reused.
                        synchronize()
                finally:
                    if pushed:
                        leave(pushed)
                # A loop, not a comprehension: no extra frame on Python 3.10/3.11.
                outputs = {}
                for name, typed in results:
                    outputs[name] = typed.copy()
                return outputs
            finally:
                if not held:
                    release()

        return call

    def _run_recipe(self, plan: _Plan, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Known shapes, numpy inputs, this Engine's own buffers: the recipe's call (set up
        first when the plan is not the last one's). Lock held, CUDA context current."""
        recipe = self._recipe
        if recipe is None or recipe.plan is not plan:
            recipe = self._make_recipe(plan)
        result = recipe.call(inputs, True)
        if result is None:  # _prepare's fast test passed, so the recipe's must pass too
            raise RuntimeError("internal error: the inputs do not fit their own recipe")
        return result

    def _enqueue_recipe(self, recipe: _Recipe) -> bool:
        """Copies in, the engine, copies out: what a call does, and what a graph holds."""
        for copy in recipe.copies_in:
            copy()
        ok = recipe.entry.context.execute_async_v3(self._backend.stream_handle)
        for copy in recipe.copies_out:
            copy()
        return bool(ok)

    def _launch_graph(self, recipe: _Recipe) -> bool:
        """Replay the context's graph for these shapes, capturing it on the second call in
        a row with them (TensorRT has run them once by then, so its lazy set-up is done).
        False: run without a graph this time."""
        entry, key = recipe.entry, recipe.plan.key
        stream = self._backend.stream_handle
        if entry.graph is None:
            if entry.graph_key != key or key in entry.graph_failed:
                return False
            try:
                entry.graph = self._driver.capture(
                    stream, lambda: self._enqueue_recipe(recipe)
                )
            except Exception as exc:  # noqa: BLE001 - any failure: run without graphs
                entry.graph_failed.add(key)
                warnings.warn(
                    f"CUDA graph capture failed for shapes {key} ({exc}); "
                    "running without a graph",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return False
        self._driver.launch(entry.graph[1], stream)
        self.graph_launches += 1
        return True

    def _check_out(self, plan: _Plan, out: Mapping[str, Any]) -> None:
        for name in out:
            spec = self.io.by_name.get(name)
            if spec is None or spec.mode != "output":
                raise EngineInputError(
                    f"out names {name!r}, which is not an output; the "
                    f"outputs are {self.output_names}",
                    name=name,
                )
        for spec, shape in zip(self._outputs, plan.out_shapes):
            target = out.get(spec.name)
            if target is None:
                continue
            interface = _cuda_array(spec.name, target)
            if interface is not None:
                got_shape = tuple(int(d) for d in interface["shape"])
                strides = interface.get("strides")
                try:
                    got_dtype = np.dtype(str(interface["typestr"])).name
                except TypeError:
                    got_dtype = str(interface["typestr"])
                contiguous = strides is None or math.prod(got_shape) <= 1
            elif isinstance(target, np.ndarray):
                got_shape, got_dtype = tuple(target.shape), target.dtype.name
                contiguous = target.flags.c_contiguous and target.flags.writeable
            else:
                raise EngineInputError(
                    f"out[{spec.name!r}] must be a numpy array or a device "
                    f"array, got {type(target).__name__}",
                    name=spec.name,
                )
            if got_shape != shape or got_dtype != spec.dtype or not contiguous:
                raise EngineInputError(
                    f"out[{spec.name!r}] must be a C-contiguous, writeable {spec.dtype} array "
                    f"of shape {_fmt_shape(shape)}, got {got_dtype} {_fmt_shape(got_shape)}",
                    name=spec.name,
                )

    def _enqueue(
        self,
        plan: _Plan,
        args: list[_Arg] | None,
        inputs: Mapping[str, Any],
        out: Mapping[str, Any] | None,
    ) -> None:
        self._recipe = None  # this call may bind device arrays of the caller
        entry = self._context(plan.profile)
        self._set_shapes(entry, plan.key)
        backend = self._backend
        # Size every buffer first: growing one invalidates addresses bound before it.
        for spec, nbytes in zip(self._inputs, plan.in_nbytes):
            self._ensure(spec.name, nbytes)
        for spec, nbytes in zip(self._outputs, plan.out_nbytes):
            self._ensure(spec.name, nbytes)
        for index, spec in enumerate(self._inputs):
            buffer = self._buffers[spec.name]
            nbytes = plan.in_nbytes[index]
            arg = args[index] if args is not None else None
            if arg is None or arg.host is not None:
                array = arg.host if arg is not None else inputs[spec.name]
                self._bind(entry, spec.name, buffer.ptr)
                if nbytes:
                    staging = buffer.host[:nbytes]
                    np.copyto(staging, array.reshape(-1).view(np.uint8), casting="no")
                    backend.htod(buffer.ptr, staging)
            else:
                self._wait_for(arg.stream)
                if arg.ptr % _ALIGNMENT == 0 and arg.ptr:
                    self._bind(entry, spec.name, arg.ptr)
                else:
                    self._bind(entry, spec.name, buffer.ptr)
                    if nbytes:
                        backend.dtod(buffer.ptr, arg.ptr, nbytes)
        for spec in self._outputs:
            self._bind(entry, spec.name, self._buffers[spec.name].ptr)
        self._execute(entry, plan)
        for spec, nbytes in zip(self._outputs, plan.out_nbytes):
            if not nbytes:
                continue
            buffer = self._buffers[spec.name]
            target = out.get(spec.name) if out else None
            interface = _cuda_array(spec.name, target) if target is not None else None
            if interface is not None:
                backend.dtod(int(interface["data"][0]), buffer.ptr, nbytes)
            else:
                backend.dtoh(buffer.host[:nbytes], buffer.ptr)

    def _execute(self, entry: _Context, plan: _Plan) -> None:
        if not entry.context.execute_async_v3(self._backend.stream_handle):
            raise RuntimeError(
                "TensorRT execute_async_v3 failed; see TensorRT's log above"
            )
        entry.graph_key = plan.key

    def _collect(self, plan: _Plan, out: Mapping[str, Any] | None) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for spec, shape, nbytes in zip(self._outputs, plan.out_shapes, plan.out_nbytes):
            target = out.get(spec.name) if out else None
            if target is not None and _cuda_array(spec.name, target) is not None:
                results[spec.name] = target
                continue
            view = (
                self._buffers[spec.name]
                .host[:nbytes]
                .view(spec.np_dtype)
                .reshape(shape)
            )
            if isinstance(target, np.ndarray):
                np.copyto(target, view)
                results[spec.name] = target
            else:
                results[spec.name] = view.copy()
        return results


def main(argv: list[str] | None = None) -> int:
    """``python <module>.py [ENGINE]``: load the engine, run its opt shapes, print timings."""
    import time

    args = sys.argv[1:] if argv is None else argv
    engine = Engine(args[0] if args else None)
    print(repr(engine))
    engine.warmup(3)
    start = time.perf_counter()
    engine.warmup(20)
    elapsed = (time.perf_counter() - start) / (20 * max(1, len(engine.profiles)))
    print(f"{elapsed * 1e3:.3f} ms per call (opt shapes)")
    print(json.dumps({"backend": engine.backend, "latency_ms": elapsed * 1e3}))
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
