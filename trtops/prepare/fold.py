"""Constant folding (onnx-graphsurgeon, values computed by ONNX Runtime) and shape inference.

Why graph surgeon rather than Polygraphy's ``surgeon sanitize``: sanitize is graph surgeon's
``fold_constants`` plus ONNX shape inference behind Polygraphy's loader machinery, and
Polygraphy is an optional dependency (the gate's). Graph surgeon is the small, NVIDIA-kept
library made for exactly this (TensorRT's own samples use it); it also flattens ``If`` nodes
whose condition folds to a constant, and the node counts before/after feed the report.
"""

from __future__ import annotations

from typing import Any

from trtops.console import library_output_to_stderr
from trtops.errors import EnvironmentMissing
from trtops.prepare.constants import inline_constant_ifs
from trtops.prepare.graph import PreparationFailed, count_nodes, count_ops

# Folded tensors above this size stay computed at run time (a folded Expand or Tile can
# be far bigger than the graph that makes it).
FOLD_SIZE_LIMIT = 64 * 1024 * 1024


def _graphsurgeon() -> Any:
    try:
        import onnx_graphsurgeon as gs
    except ImportError as exc:
        raise EnvironmentMissing(
            "constant folding needs onnx-graphsurgeon, which is not installed",
            hint="pip install onnx-graphsurgeon (a dependency of trtops), or set prepare.fold_constants: false",
        ) from exc
    try:
        import onnxruntime  # graph surgeon evaluates folded subgraphs with it

        onnxruntime.set_default_logger_severity(3)  # its optimizer's warnings are not ours
    except ImportError as exc:
        raise EnvironmentMissing(
            "constant folding evaluates constant subgraphs with ONNX Runtime, which is not installed",
            hint="pip install 'trtops[verify]' (the accuracy gate needs it too), or set prepare.fold_constants: false",
        ) from exc
    return gs


def _keep_ir_version(graph: Any, ir_version: int) -> None:
    """Give every subgraph (If/Loop bodies) the model's IR version.

    Graph surgeon imports subgraphs without one, and folds inside them by exporting each
    to ONNX Runtime with onnx's newest IR version: an ONNX Runtime older than the onnx
    package refuses that model ("Unsupported model IR version: 14, max supported IR
    version: 11" in the lab), and nothing in the If branches was folded.
    """
    graph.ir_version = ir_version
    for subgraph in graph.subgraphs(recursive=True):
        subgraph.ir_version = ir_version


def fold_constants(model: Any) -> tuple[Any, dict[str, int]]:
    """Fold constant subgraphs, inline If nodes of constant condition, drop dead nodes.

    Graph surgeon's own If flattening is left off: on torch exports with nested Ifs it left
    readers of a flattened If's outputs dangling; :func:`inline_constant_ifs` does it between
    folding passes instead.

    Returns:
        ``(new model, counts)`` with ``nodes_removed`` and ``ifs_inlined``.

    Raises:
        EnvironmentMissing: onnx-graphsurgeon or ONNX Runtime is missing.
        PreparationFailed: graph surgeon cannot read or write the model.
    """
    gs = _graphsurgeon()
    nodes_before = count_nodes(model.graph)
    ifs_before = count_ops(model.graph, "If")
    try:
        folded = model
        # Passes until nothing changes: folding exposes constant If conditions, inlining a
        # branch exposes more constants.
        with library_output_to_stderr():
            for _ in range(8):
                graph = gs.import_onnx(folded)
                _keep_ir_version(graph, model.ir_version)
                graph.fold_constants(size_threshold=FOLD_SIZE_LIMIT, flatten_subgraphs=False).cleanup()
                graph.toposort()
                folded = gs.export_onnx(graph)
                if not inline_constant_ifs(folded.graph):
                    break
    except Exception as exc:  # graph surgeon raises assorted types on exotic graphs
        raise PreparationFailed(
            f"constant folding failed: {type(exc).__name__}: {exc}",
            hint="set prepare.fold_constants: false for this model",
        ) from exc
    folded.ir_version = model.ir_version
    del folded.metadata_props[:]
    folded.metadata_props.extend(model.metadata_props)
    return folded, {
        "nodes_removed": nodes_before - count_nodes(folded.graph),
        "ifs_inlined": ifs_before - count_ops(folded.graph, "If"),
    }


def infer_shapes(model: Any) -> Any:
    """ONNX shape inference (data propagation on, so shapes computed from Shape ops resolve);
    on failure the model is returned as it was (inference is a help, not a requirement)."""
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - e.g. custom domains inference does not know
        return model
