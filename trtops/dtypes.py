"""Tensor element types: the one table of how TensorRT's types are named in numpy (the names
:mod:`trtops.engine_io` records) and in Triton.

The builder reads engine I/O through :data:`TRT_TO_NUMPY`, the emitted Python loader carries a
copy generated from it (:mod:`trtops.emit.assemble`), and the Triton loader maps the numpy
names on with :data:`TRITON_TYPES`. No numpy import: the manifest and CLI stay light.
"""

from __future__ import annotations

# TensorRT ``DataType`` member name -> numpy dtype name.
TRT_TO_NUMPY = {
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

# Types numpy lacks; the ml_dtypes package provides them.
NUMPY_LACKS = ("bfloat16", "float8_e4m3fn", "int4", "float4_e2m1fn")

# Packed below one byte per element: no numpy array can hold them element by element.
SUB_BYTE = ("int4", "float4_e2m1fn")

# Types the emitted Python loader can feed and return as numpy (or ml_dtypes) arrays.
PYTHON_LOADER_TYPES = tuple(name for name in TRT_TO_NUMPY.values() if name not in SUB_BYTE)

# numpy dtype name -> Triton data type (what Triton's TensorRT backend accepts).
TRITON_TYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "int8": "TYPE_INT8",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "bfloat16": "TYPE_BF16",
}
