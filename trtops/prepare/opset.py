"""Convert the model to another ONNX opset (``prepare.opset``), with onnx.version_converter."""

from __future__ import annotations

from typing import Any

from trtops.prepare.graph import PreparationFailed


def default_opset(model: Any) -> int:
    """The model's opset of the default ONNX domain (0 when it imports none)."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def convert_opset(model: Any, opset: int) -> tuple[Any, str | None]:
    """``(model at opset, note)``; the note is None when the model already uses ``opset``.

    Raises:
        PreparationFailed: the converter cannot take this model there (its message names the op).
    """
    from onnx import version_converter

    current = default_opset(model)
    if current == opset:
        return model, None
    try:
        converted = version_converter.convert_version(model, opset)
    except Exception as exc:  # the converter raises RuntimeError/ValueError naming the op
        raise PreparationFailed(
            f"cannot convert the model from opset {current} to {opset}: {exc}",
            hint="pick another opset, or leave prepare.opset out",
        ) from exc
    return converted, f"opset {current} -> {opset}"
