"""User values (numpy arrays, device arrays, lists) turned into checked engine inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import EngineInputError, EngineLoadError, InputDTypeError, InputShapeError
from .header import METADATA
from .shapes import IOSpec, TensorSpec


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
