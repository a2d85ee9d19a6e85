"""Layer information of a built engine, through TensorRT's engine inspector.

Available from TensorRT 8.2 (``ICudaEngine.create_engine_inspector``); details (layer
types, precisions, tactics) need the engine to be built with
``ProfilingVerbosity.DETAILED``, which the builder sets when it can. TensorRT 11 renamed the
JSON's ``Bindings`` key to ``I/O Tensors``; the parsed JSON is returned as TensorRT wrote it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from trtops.trt.trt_compat import has_engine_inspector

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT


def layer_info(trt: TensorRT, engine: tensorrt.ICudaEngine) -> dict[str, Any] | None:
    """The engine inspector's JSON, parsed, or ``None`` when this TensorRT cannot give it.

    Args:
        trt: the imported tensorrt module.
        engine: a deserialized ``ICudaEngine``.

    Returns:
        ``{"Layers": [...], ...}`` (a list of names only, without DETAILED verbosity), or
        ``None``.
    """
    if not has_engine_inspector(trt):
        return None
    try:
        inspector = engine.create_engine_inspector()
        if inspector is None:
            return None
        text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    except Exception:
        return None
    if not text:
        return None
    try:
        data = json.loads(text, strict=False)  # TensorRT metadata carries raw control characters (\x1e)
    except ValueError:
        return {"raw": str(text)}
    if isinstance(data, list):
        data = {"Layers": data}
    return data if isinstance(data, dict) else {"raw": data}
