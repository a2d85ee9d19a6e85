"""The probe model: the ONNX model with its intermediate tensors as extra outputs, so that one
build and one gate run measure every tensor against ONNX Runtime (as ``polygraphy run
--trt-outputs mark all --onnx-outputs mark all`` does; the gate's own comparison gives each
tensor's error, :func:`tensor_errors`).

Only float tensors computed from the model's inputs are marked: shape arithmetic and values
from weights alone have no reduced-precision error of their own, and TensorRT cannot make a
shape tensor an ordinary output. Outputs make TensorRT keep those tensors instead of fusing
across them, so the probe engine differs a little from the real one: it ranks, the gate of
the real engine decides.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_FLOAT_TYPES = frozenset({1, 10, 16})  # TensorProto FLOAT, FLOAT16, BFLOAT16
_SHAPE_OPS = frozenset({"Shape", "Size"})


def probe_tensors(model: Any, types: dict[str, int]) -> list[str]:
    """Tensors to mark: float, computed from a model input, not an output already."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    data = {v.name for v in graph.input if v.name not in initializers}
    outputs = {v.name for v in graph.output}
    marked: list[str] = []
    for node in graph.node:
        if node.op_type in _SHAPE_OPS or not any(i in data for i in node.input if i):
            continue
        for name in node.output:
            if not name:
                continue
            data.add(name)
            if name not in outputs and types.get(name) in _FLOAT_TYPES:
                marked.append(name)
    return marked


def write_probe_model(source: str | Path, out: str | Path) -> list[str]:
    """Write ``source`` with its intermediate float tensors as outputs to ``out``.

    Returns:
        The tensors added as outputs, in graph order.
    """
    import onnx

    from trtops.prepare.cast import infer_types
    from trtops.prepare.runner import save_model

    structure = onnx.load(str(source), load_external_data=False)
    types = infer_types(structure)
    marked = probe_tensors(structure, types)
    model = onnx.load(str(source), load_external_data=True)
    for name in marked:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, types[name], None))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out)
    return marked


def tensor_errors(report: Any) -> dict[str, float]:
    """Each compared output's worst *excess* over the report's cases (how many times the
    tolerance its error is; ``inf`` where the difference is NaN or infinite)."""
    errors: dict[str, float] = {}
    for case in report.cases:
        for output in case.outputs:
            excess = output.excess
            value = math.inf if excess is None or math.isnan(excess) else float(excess)
            if output.nonfinite:
                value = math.inf
            errors[output.name] = max(errors.get(output.name, 0.0), value)
    return errors
