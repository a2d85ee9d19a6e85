"""Cheap facts about an ONNX model, read without loading external weights (no tensorrt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class NodeRef:
    """One node of the main graph: its index (as TensorRT's parser reports it), name, op."""

    index: int
    name: str
    op_type: str


def _load_structure(path: str | Path):
    import onnx

    # Weights are not needed for structure; big external-data models load in milliseconds.
    return onnx.load(str(path), load_external_data=False)


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and len(attr.g.node):
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def model_has_qdq(path: str | Path) -> bool:
    """Whether the model is explicitly quantized (has QuantizeLinear/DequantizeLinear nodes,
    subgraphs included).

    Args:
        path: the ONNX file.

    Returns:
        True when a Q/DQ node exists.
    """
    model = _load_structure(path)
    return any(node.op_type in QDQ_OPS for node in _all_nodes(model.graph))


def graph_nodes(path: str | Path) -> list[NodeRef]:
    """The main graph's nodes in file order (index = TensorRT parser ``node()`` index).

    Args:
        path: the ONNX file.

    Returns:
        One :class:`NodeRef` per node; unnamed nodes get ``""``.
    """
    model = _load_structure(path)
    return [NodeRef(i, node.name, node.op_type) for i, node in enumerate(model.graph.node)]


def graph_inputs(path: str | Path) -> list[tuple[str, tuple[int | str, ...]]]:
    """Real inputs of the main graph (initializers listed as inputs are skipped) with their
    dims: ints for fixed dims, the symbol (or ``"?"``) for dynamic ones.

    Args:
        path: the ONNX file.

    Returns:
        ``[(name, dims), ...]`` in graph order.
    """
    model = _load_structure(path)
    initializers = {t.name for t in model.graph.initializer}
    result = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims: list[int | str] = []
        shape = value.type.tensor_type.shape
        for dim in shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            else:
                dims.append(dim.dim_param or "?")
        result.append((value.name, tuple(dims)))
    return result
