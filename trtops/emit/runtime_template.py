"""Standalone TensorRT engine loader.

Needs only ``tensorrt`` (8.6, 10 or 11), ``numpy`` and one of ``pycuda`` (the default) or
``cuda-python``; trtops itself is not needed at run time.

Usage::

    engine = Engine()                      # the engine this module was emitted for
    outputs = engine.infer(input=array)    # dict: output name -> numpy array
    outputs = await engine.infer_async(input=array)
    engine.run({"input": array}, out={"output": preallocated})  # fill arrays in place
    check_inputs(input=array)              # validate without TensorRT or a GPU
    engine.close()                         # or: with Engine() as engine: ...

``python <this module>.py [ENGINE]`` loads the engine, runs its opt shapes and prints the
latency: a smoke test for a deployment.

Inputs are passed by tensor name, as keywords or as one mapping (for names that are not
Python identifiers): ``engine.infer({"input:0": array})``. An input may be

- a numpy array of the engine's dtype (C-contiguous or not; non-contiguous arrays are
  copied), copied to the GPU through a pinned host buffer that is reused across calls;
- a device array with ``__cuda_array_interface__`` (PyTorch CUDA tensors, CuPy, Numba):
  bound to the engine without a copy (zero-copy) when it is C-contiguous and 256-byte
  aligned, otherwise copied on the device. Work on the producer's stream is waited for
  (the legacy default stream when the array names no stream, as PyTorch's do);
- a Python list or scalar, converted to the engine's dtype.

Options of :class:`Engine`: ``backend`` (``"pycuda"``, ``"cuda-python"`` or ``"auto"``:
pycuda when installed, else cuda-python), ``device`` (CUDA device ordinal),
``cuda_graph`` (from the second call in a row with the same shapes, replay one CUDA graph
holding the copies and the engine instead of issuing them: lower per-call latency for
small models; calls with device arrays run without it), ``verify`` (check the engine
file's sha256; pass False to load another engine file with this module).

Dynamic shapes and several optimization profiles: each call picks the profile whose
min/max ranges hold every input shape, preferring the one whose ``opt`` shapes are
closest; one execution context per profile is created on first use and kept.

Errors (all raised before anything runs on the GPU):

- :class:`UnknownInputError`: a name that is not an input of the engine;
- :class:`MissingInputError`: an input of the engine was not given;
- :class:`InputDTypeError`: wrong dtype (also a ``TypeError``);
- :class:`InputShapeError`: wrong rank, or a fixed dimension differs;
- :class:`NoProfileError` (an ``InputShapeError``): the shapes fit no optimization profile;
- :class:`EngineLoadError`: the engine file is missing, altered, or cannot be loaded here
  (wrong TensorRT version or GPU, no CUDA library).

All of them derive from :class:`LoaderError`; the input errors also from ``ValueError``.

An :class:`Engine` is thread-safe: calls are serialized, as they share buffers, stream and
execution contexts. Use one Engine per thread to run calls concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import difflib
import functools
import hashlib
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

# --- trtops:metadata:begin ---
# `trtops emit` replaces this block with the engine's description (a Python literal).
METADATA: dict[str, Any] = {}
# --- trtops:metadata:end ---

FORMAT_VERSION = 1
_MODULE_DIR = os.path.dirname(os.path.abspath(__file__))

# TensorRT DataType member name -> numpy dtype name.
_TRT_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "FP8": "float8_e4m3fn",
    "INT4": "int4",
    "FP4": "float4_e2m1fn",
}
# dtypes numpy lacks; ml_dtypes provides them.
_ML_DTYPES = ("bfloat16", "float8_e4m3fn", "int4", "float4_e2m1fn")
_ALIGNMENT = 256  # TensorRT wants I/O addresses aligned to 256 bytes
_MAX_PLANS = 256
_CU_STREAM_NON_BLOCKING = 1
_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1
_CU_EVENT_DISABLE_TIMING = 2


# --------------------------------------------------------------------------- errors


class LoaderError(Exception):
    """Base of every error this loader raises on purpose."""


class EngineLoadError(LoaderError, RuntimeError):
    """The engine cannot be loaded or run here."""


class EngineInputError(LoaderError, ValueError):
    """The inputs do not match the engine. ``name`` is the tensor concerned, if one."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class UnknownInputError(EngineInputError):
    """A given name is not an input of the engine."""


class MissingInputError(EngineInputError):
    """An input of the engine was not given."""


class InputDTypeError(EngineInputError, TypeError):
    """An input has the wrong dtype."""


class InputShapeError(EngineInputError):
    """An input has the wrong rank or a wrong fixed dimension."""


class NoProfileError(InputShapeError):
    """The input shapes fit no optimization profile of the engine."""


# --------------------------------------------------------------------------- validation


def _fmt_shape(shape: Any) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _numpy_dtype(name: str) -> np.dtype | None:
    """The numpy dtype for a dtype name, or None when numpy (and ml_dtypes) lack it."""
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError:
            return None
        try:
            return np.dtype(getattr(ml_dtypes, name))
        except (AttributeError, TypeError):
            return None
    try:
        return np.dtype(name)
    except TypeError:
        return None


class TensorSpec:
    """One input or output of the engine: name, ``"input"``/``"output"``, numpy dtype
    name and shape (``-1`` for dynamic dimensions)."""

    __slots__ = ("dtype", "mode", "name", "np_dtype", "shape")

    def __init__(
        self, name: str, mode: str, dtype: str, shape: tuple[int, ...]
    ) -> None:
        self.name = name
        self.mode = mode
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.np_dtype = _numpy_dtype(dtype)

    def describe(self) -> str:
        return f"{self.name!r} {self.dtype} {_fmt_shape(self.shape)}"

    def __repr__(self) -> str:
        return (
            f"TensorSpec({self.name!r}, {self.mode!r}, {self.dtype!r}, {self.shape!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorSpec):
            return NotImplemented
        return (self.name, self.mode, self.dtype, self.shape) == (
            other.name,
            other.mode,
            other.dtype,
            other.shape,
        )

    __hash__ = None  # type: ignore[assignment]


class IOSpec:
    """The engine's tensors and optimization profiles, and the input checks.

    Pure Python and numpy: usable without TensorRT or a GPU (see :func:`check_inputs`).
    ``profiles[i]`` maps input names to ``(min, opt, max)`` shape tuples.
    """

    def __init__(
        self,
        tensors: list[TensorSpec],
        profiles: list[dict[str, tuple[tuple[int, ...], ...]]],
    ) -> None:
        self.tensors = list(tensors)
        self.inputs = [t for t in self.tensors if t.mode == "input"]
        self.outputs = [t for t in self.tensors if t.mode == "output"]
        self.by_name = {t.name: t for t in self.tensors}
        self.profiles = profiles

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IOSpec:
        """From the ``io`` form of trtops' metadata (``EngineIO.to_json``)."""
        tensors = [
            TensorSpec(
                str(t["name"]),
                str(t["mode"]),
                str(t["dtype"]),
                tuple(int(d) for d in t["shape"]),
            )
            for t in data.get("tensors", ())
        ]
        profiles = []
        for profile in data.get("profiles", ()):
            profiles.append(
                {
                    str(name): (
                        tuple(int(d) for d in r["min"]),
                        tuple(int(d) for d in r["opt"]),
                        tuple(int(d) for d in r["max"]),
                    )
                    for name, r in profile.items()
                }
            )
        return cls(tensors, profiles)

    def to_json(self) -> dict[str, Any]:
        return {
            "tensors": [
                {
                    "name": t.name,
                    "mode": t.mode,
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                }
                for t in self.tensors
            ],
            "profiles": [
                {
                    name: {"min": list(r[0]), "opt": list(r[1]), "max": list(r[2])}
                    for name, r in profile.items()
                }
                for profile in self.profiles
            ],
        }

    def differences(self, other: IOSpec) -> list[str]:
        """What differs between two descriptions of an engine (empty: the same)."""
        problems = []
        mine = {t.name: t for t in self.tensors}
        theirs = {t.name: t for t in other.tensors}
        for name in sorted(set(mine) | set(theirs)):
            a, b = mine.get(name), theirs.get(name)
            if a is None or b is None:
                problems.append(f"tensor {name!r} is only in one of them")
            elif a != b:
                problems.append(
                    f"{a.describe()} ({a.mode}) vs {b.describe()} ({b.mode})"
                )
        if self.profiles and other.profiles:
            # One side may list fixed-shape inputs too; compare the inputs both list.
            same = len(self.profiles) == len(other.profiles) and all(
                a[name] == b[name]
                for a, b in zip(self.profiles, other.profiles)
                for name in set(a) & set(b)
            )
            if not same:
                problems.append("the optimization profiles differ")
        return problems

    # ----------------------------------------------------------------- checks

    def check_names(self, names: Any) -> None:
        """Raise UnknownInputError / MissingInputError for wrong or missing names."""
        given = list(names)
        expected = [t.name for t in self.inputs]
        unknown = [
            n for n in given if n not in self.by_name or self.by_name[n].mode != "input"
        ]
        if unknown:
            listing = ", ".join(t.describe() for t in self.inputs) or "(none)"
            parts = []
            for name in unknown:
                text = repr(name)
                if name in self.by_name:
                    text += " (an output)"
                else:
                    close = difflib.get_close_matches(str(name), expected, n=1)
                    if close:
                        text += f" (did you mean {close[0]!r}?)"
                parts.append(text)
            noun = "input" if len(unknown) == 1 else "inputs"
            raise UnknownInputError(
                f"unknown {noun} {', '.join(parts)}; the engine's inputs are: {listing}",
                name=unknown[0],
            )
        missing = [t for t in self.inputs if t.name not in given]
        if missing:
            noun = "input" if len(missing) == 1 else "inputs"
            raise MissingInputError(
                f"missing {noun} {', '.join(t.describe() for t in missing)}",
                name=missing[0].name,
            )

    def check_tensor(
        self, spec: TensorSpec, dtype: str, shape: tuple[int, ...]
    ) -> None:
        """Raise InputDTypeError / InputShapeError when one input does not fit ``spec``."""
        if dtype != spec.dtype:
            hint = (
                f"; convert it with .astype(numpy.{spec.dtype})"
                if spec.np_dtype is not None and spec.dtype not in _ML_DTYPES
                else ""
            )
            raise InputDTypeError(
                f"input {spec.name!r} has dtype {dtype}, the engine expects {spec.dtype}{hint}",
                name=spec.name,
            )
        if len(shape) != len(spec.shape):
            raise InputShapeError(
                f"input {spec.name!r} has rank {len(shape)} (shape {_fmt_shape(shape)}), the "
                f"engine expects rank {len(spec.shape)}: {_fmt_shape(spec.shape)} "
                "(-1 = any size within the profiles)",
                name=spec.name,
            )
        for axis, (got, want) in enumerate(zip(shape, spec.shape)):
            if want >= 0 and got != want:
                raise InputShapeError(
                    f"input {spec.name!r} has shape {_fmt_shape(shape)}: axis {axis} must be "
                    f"{want} (engine shape {_fmt_shape(spec.shape)})",
                    name=spec.name,
                )

    def select_profile(self, shapes: Mapping[str, tuple[int, ...]]) -> int:
        """The optimization profile for these input shapes: among the profiles whose
        min/max hold every shape, the one closest to its opt shapes (lowest index on ties).
        Raises NoProfileError when none fits."""
        if not self.profiles:
            return 0
        fitting = []
        reasons = []
        for index, profile in enumerate(self.profiles):
            problems = []
            cost = 0.0
            for name, shape in shapes.items():
                ranges = profile.get(name)
                if ranges is None:
                    continue
                lo, opt, hi = ranges
                if len(lo) != len(shape):
                    problems.append(f"{name!r} needs rank {len(lo)}")
                    continue
                for axis in range(len(shape)):
                    size = shape[axis]
                    if not lo[axis] <= size <= hi[axis]:
                        problems.append(
                            f"{name!r} axis {axis} is {size}, the profile allows "
                            f"{lo[axis]}..{hi[axis]}"
                        )
                    else:
                        cost += abs(math.log((size + 1.0) / (opt[axis] + 1.0)))
            if problems:
                reasons.append(f"profile {index}: " + "; ".join(problems))
            else:
                fitting.append((cost, index))
        if not fitting:
            given = ", ".join(f"{n!r} {_fmt_shape(s)}" for n, s in shapes.items())
            raise NoProfileError(
                f"no optimization profile of the engine accepts the input shapes {given}: "
                + " | ".join(reasons),
                name=next(iter(shapes), None),
            )
        return min(fitting)[1]

    def check(self, described: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
        """Check inputs given as ``{name: (dtype name, shape)}``; return the profile index."""
        self.check_names(described)
        for spec in self.inputs:
            dtype, shape = described[spec.name]
            self.check_tensor(spec, dtype, tuple(shape))
        return self.select_profile(
            {n: tuple(described[n][1]) for n in (t.name for t in self.inputs)}
        )

    def describe(self) -> str:
        lines = [f"  input  {t.describe()}" for t in self.inputs]
        lines += [f"  output {t.describe()}" for t in self.outputs]
        for index, profile in enumerate(self.profiles):
            for name, (lo, opt, hi) in profile.items():
                lines.append(
                    f"  profile {index}: {name!r} min {_fmt_shape(lo)} "
                    f"opt {_fmt_shape(opt)} max {_fmt_shape(hi)}"
                )
        return "\n".join(lines)


class _Arg:
    """One input value, normalized: a host array, or a device pointer."""

    __slots__ = ("dtype", "host", "name", "nbytes", "ptr", "shape", "stream")

    def __init__(
        self,
        name: str,
        host: np.ndarray | None,
        ptr: int,
        stream: int | None,
        dtype: str,
        shape: tuple[int, ...],
        nbytes: int,
    ) -> None:
        self.name = name
        self.host = host
        self.ptr = ptr
        self.stream = stream
        self.dtype = dtype
        self.shape = shape
        self.nbytes = nbytes


def _cuda_array(name: str, value: Any) -> dict[str, Any] | None:
    try:
        return getattr(value, "__cuda_array_interface__", None)
    except (
        Exception
    ) as exc:  # PyTorch raises RuntimeError for tensors that require grad
        raise EngineInputError(
            f"input {name!r}: cannot read its __cuda_array_interface__ ({exc}); for a "
            "PyTorch tensor that requires grad, pass tensor.detach()",
            name=name,
        ) from exc


def _normalize(spec: TensorSpec, value: Any) -> _Arg:
    """Turn one user value into an _Arg (dtype and shape not yet checked)."""
    interface = _cuda_array(spec.name, value)
    if interface is not None:
        shape = tuple(int(d) for d in interface["shape"])
        typestr = str(interface["typestr"])
        try:
            dtype = np.dtype(typestr)
            dtype_name = (
                dtype.name if typestr[0] in "<|" or dtype.itemsize == 1 else typestr
            )
            itemsize = dtype.itemsize
        except TypeError:
            dtype_name, itemsize = typestr, 0
        strides = interface.get("strides")
        if strides is not None and math.prod(shape) > 1:
            step = itemsize
            contiguous = True
            for size, stride in zip(reversed(shape), reversed(tuple(strides))):
                if size != 1 and int(stride) != step:
                    contiguous = False
                step *= size
            if not contiguous:
                raise InputShapeError(
                    f"device input {spec.name!r} is not C-contiguous; make it contiguous "
                    "first (tensor.contiguous() / cupy.ascontiguousarray)",
                    name=spec.name,
                )
        ptr = int(interface["data"][0])
        stream = (
            interface.get("stream") if int(interface.get("version", 0)) >= 3 else None
        )
        if stream is None:
            stream = 1  # no stream named (PyTorch): wait for the legacy default stream
        return _Arg(
            spec.name,
            None,
            ptr,
            int(stream),
            dtype_name,
            shape,
            math.prod(shape) * itemsize,
        )
    if isinstance(value, np.ndarray):
        array = value
    elif hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        array = np.asarray(value)
    else:
        # Python lists and scalars carry no dtype to check: convert to the engine's.
        if spec.np_dtype is None:
            raise InputDTypeError(
                f"input {spec.name!r}: the engine expects {spec.dtype}, which numpy lacks; "
                "install ml_dtypes and pass an array of that dtype",
                name=spec.name,
            )
        try:
            array = np.asarray(value, dtype=spec.np_dtype)
        except (TypeError, ValueError) as exc:
            raise EngineInputError(
                f"input {spec.name!r}: cannot convert {type(value).__name__} to an array of "
                f"{spec.dtype} ({exc})",
                name=spec.name,
            ) from exc
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return _Arg(
        spec.name, array, 0, None, array.dtype.name, tuple(array.shape), array.nbytes
    )


def _metadata_io() -> IOSpec:
    io = METADATA.get("io")
    if not io:
        raise EngineLoadError(
            "this module carries no engine description; emit it with "
            "`trtops emit` or pass the engine path to Engine()"
        )
    return IOSpec.from_json(io)


def check_inputs(inputs: Mapping[str, Any] | None = None, /, **named: Any) -> int:
    """Check inputs against the engine description embedded in this module, without
    TensorRT or a GPU. Returns the optimization profile a call would use; raises the
    same errors as :meth:`Engine.infer`."""
    io = _metadata_io()
    values = _merge_inputs(inputs, named)
    io.check_names(values)
    args = {spec.name: _normalize(spec, values[spec.name]) for spec in io.inputs}
    return io.check({name: (arg.dtype, arg.shape) for name, arg in args.items()})


def _merge_inputs(
    inputs: Mapping[str, Any] | None, named: Mapping[str, Any]
) -> dict[str, Any]:
    if inputs is None:
        return named  # a fresh dict of this call's keywords already
    if not isinstance(inputs, Mapping):
        raise TypeError(
            "pass inputs as keywords or as one mapping of name -> array, got "
            f"{type(inputs).__name__}"
        )
    merged = dict(inputs)
    for name, value in named.items():
        if name in merged:
            raise EngineInputError(f"input {name!r} is given twice", name=name)
        merged[name] = value
    return merged


# --------------------------------------------------------------------------- engine file


def _engine_meta() -> Mapping[str, Any]:
    return METADATA.get("engine") or {}


def resolve_engine_path() -> str:
    """Where the engine file of this module is, from its embedded reference: a path next
    to the module (copy/relative), an environment variable (env), or a trtops cache key
    (key: under ``$TRTOPS_CACHE`` or the cache it was emitted from). The reference's
    environment variable, when set, always wins."""
    ref = _engine_meta()
    variable = ref.get("env")
    if variable and os.environ.get(variable):
        return os.environ[variable]
    mode = ref.get("mode")
    if mode in ("copy", "relative"):
        return os.path.normpath(os.path.join(_MODULE_DIR, ref["path"]))
    if mode == "absolute":
        return str(ref["path"])
    if mode == "key":
        cache = os.environ.get("TRTOPS_CACHE") or ref.get("cache")
        if not cache:
            raise EngineLoadError(
                "this loader refers to the engine by its trtops cache key "
                f"{ref.get('key')}; set TRTOPS_CACHE to the cache directory"
            )
        key = str(ref["key"])
        return os.path.join(cache, "engines", key[:2], key, "engine.plan")
    if mode == "env":
        raise EngineLoadError(
            f"set the environment variable {variable} to the engine file's path "
            "(this loader was emitted with --engine-ref env)"
        )
    raise EngineLoadError("this module names no engine file; pass Engine(path)")


def _read_engine(path: str, expected_sha256: str | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EngineLoadError(
            f"cannot read the engine file {path}: {exc.strerror or exc}"
        ) from exc
    if expected_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise EngineLoadError(
                f"the engine file {path} has sha256 {digest}, this loader was emitted for "
                f"{expected_sha256}; re-emit the loader for this engine, or pass "
                "verify=False to skip the check"
            )
    return data


# --------------------------------------------------------------------------- CUDA


def _cuda_driver_names() -> list[str]:
    if sys.platform == "win32":
        return ["nvcuda.dll"]
    return ["libcuda.so.1", "libcuda.so"]


class _Driver:
    """The few CUDA driver calls neither pycuda nor this loader's backends wrap uniformly:
    stream capture into graphs, graph launch, and waiting on a foreign stream."""

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


# --------------------------------------------------------------------------- TensorRT


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


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
    return _TRT_DTYPES.get(name, name.lower())


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


class _Buffer:
    """A device allocation and its pinned host mirror, grown on demand."""

    __slots__ = ("capacity", "device", "host", "host_allocation", "ptr")

    def __init__(self) -> None:
        self.device: Any = None
        self.ptr = 0
        self.host_allocation: Any = None
        self.host: np.ndarray | None = None
        self.capacity = 0


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
    """The views and addresses of a call whose plan was the last one set up."""

    __slots__ = (
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
        return self.run(named if inputs is None else _merge_inputs(inputs, named))

    __call__ = infer

    def run(
        self, inputs: Mapping[str, Any], out: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Like :meth:`infer`, with ``out``: output name -> a preallocated numpy array (filled
        in place) or device array with ``__cuda_array_interface__`` (filled by a device
        copy). The result maps every output name to its array."""
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
        self._recipe = recipe
        return recipe

    def _run_recipe(self, plan: _Plan, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The fast path: known shapes, numpy inputs, this Engine's own buffers."""
        recipe = self._recipe
        if recipe is None or recipe.plan is not plan:
            recipe = self._make_recipe(plan)
        try:
            for name, typed in recipe.inputs:
                np.copyto(typed, inputs[name], casting="no")
            if not (self.cuda_graph and self._launch_graph(recipe)):
                # _enqueue_recipe's body, inlined: this is the per-call hot path.
                for copy in recipe.copies_in:
                    copy()
                ok = recipe.entry.context.execute_async_v3(self._backend.stream_handle)
                for copy in recipe.copies_out:
                    copy()
                if not ok:
                    raise RuntimeError(
                        "TensorRT execute_async_v3 failed; see TensorRT's log above"
                    )
                recipe.entry.graph_key = plan.key
        finally:
            self._backend.synchronize()
        # A loop, not a comprehension: no extra frame on Python 3.10/3.11.
        results = {}
        for name, typed in recipe.results:
            results[name] = typed.copy()
        return results

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
