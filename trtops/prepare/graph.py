"""Small ONNX graph helpers the preparation steps share."""

from __future__ import annotations

from typing import Any

from trtops.errors import InputError


class PreparationFailed(InputError):
    """The model cannot be prepared as the manifest asks (exit 1: the message says why)."""


def subgraphs(node: Any) -> list[Any]:
    """The graphs a node's attributes hold (If branches, Loop/Scan bodies)."""
    graphs = []
    for attr in node.attribute:
        if attr.HasField("g"):
            graphs.append(attr.g)
        graphs.extend(attr.graphs)
    return graphs


def count_ops(graph: Any, op_type: str) -> int:
    """How many ``op_type`` nodes the graph and its subgraphs hold."""
    total = 0
    for node in graph.node:
        total += node.op_type == op_type
        for sub in subgraphs(node):
            total += count_ops(sub, op_type)
    return total


def count_nodes(graph: Any) -> int:
    """Nodes of the graph and its subgraphs."""
    return sum(1 + sum(count_nodes(sub) for sub in subgraphs(node)) for node in graph.node)


def real_inputs(graph: Any) -> list[Any]:
    """Graph inputs that are not initializers (old IR versions list weights as inputs)."""
    weights = {t.name for t in graph.initializer}
    return [value for value in graph.input if value.name not in weights]
