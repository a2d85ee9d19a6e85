"""Rank ONNX nodes by where the reduced-precision engine starts to disagree (pure).

Input: the error of each intermediate tensor measured in one probe build (the engine with
those tensors as extra outputs, compared with ONNX Runtime by the gate:
:mod:`trtops.repair.probe`), as the gate's *excess* (how many times the tolerance the error
is; ``inf`` for NaN/inf differences). For each node:

* ``error``: the largest excess of its outputs;
* ``added``: ``error`` minus the largest error among its inputs (graph inputs and weights
  are exact): how much error this node introduces rather than passes on. An output that
  turns non-finite from finite inputs (an overflow) adds ``inf``; a node fed a non-finite
  input adds nothing.

Order: nodes that add a notable error (at least half the tolerance), largest first (ties in
graph order: where it first appears); then nodes past the tolerance that only pass error on,
in graph order (a node downstream of an overflow must also stay fp32 to carry the large
value); then the rest, by the error they add, then their error. Every node of a
reduced-precision engine adds a little rounding error: the threshold keeps that noise from
pushing the nodes that carry an overflow to the end.
Nodes without a measured output are not candidates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOTABLE = 0.5  # added error (in tolerances) that ranks a node among the first


@dataclass(frozen=True)
class NodeError:
    """One candidate node with its measured and introduced error."""

    node: Any  # trtops.onnx_facts.NodeRef
    error: float
    added: float


def _as_error(value: float) -> float:
    return math.inf if value is None or math.isnan(value) else float(value)


def node_errors(nodes: Sequence[Any], errors: Mapping[str, float]) -> list[NodeError]:
    """The measured nodes (graph order) with their error and the error they add."""
    errors = {name: _as_error(value) for name, value in errors.items()}
    carried: dict[str, float] = {}  # tensor -> error, measured or inherited from its producer
    found: list[NodeError] = []
    for node in nodes:
        incoming = max((carried.get(i, 0.0) for i in node.inputs if i), default=0.0)
        measured = [errors[o] for o in node.outputs if o in errors]
        own = max(measured) if measured else incoming
        for output in node.outputs:
            if output:
                carried[output] = errors.get(output, own)
        if not measured:
            continue
        if math.isinf(incoming):
            added = 0.0
        elif math.isinf(own):
            added = math.inf
        else:
            added = max(own - incoming, 0.0)
        found.append(NodeError(node, own, added))
    return found


def rank_nodes(nodes: Sequence[Any], errors: Mapping[str, float]) -> list[NodeError]:
    """Candidates, most suspect first (see the module docstring)."""
    measured = node_errors(nodes, errors)

    def key(item: NodeError) -> tuple[int, float, float, int]:
        if item.added >= NOTABLE:
            return (0, -item.added, 0.0, item.node.index)
        if item.error > 1:
            return (1, 0.0, 0.0, item.node.index)
        return (2, -item.added, -item.error, item.node.index)

    return sorted(measured, key=key)
