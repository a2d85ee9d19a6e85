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

# This part goes first: its docstring above is the emitted module's documentation (after the
# engine-specific header `trtops emit` writes), and METADATA below is the block it fills in.

from __future__ import annotations

import os
from typing import Any

# --- trtops:metadata:begin ---
# `trtops emit` replaces this block with the engine's description (a Python literal).
METADATA: dict[str, Any] = {}
# --- trtops:metadata:end ---

FORMAT_VERSION = 1
_MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
