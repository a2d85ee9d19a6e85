"""Element types: TensorRT's names for them and the numpy dtypes that hold them."""

from __future__ import annotations

from typing import Any

import numpy as np

# --- trtops:generated:dtypes:begin ---
# Generated from trtops.dtypes when the runtime is assembled (a test keeps this copy equal).
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
# --- trtops:generated:dtypes:end ---


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


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
    return _TRT_DTYPES.get(name, name.lower())
