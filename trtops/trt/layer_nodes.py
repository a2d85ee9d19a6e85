"""Which ONNX node a TensorRT network layer came from (pure: no tensorrt import).

TensorRT's ONNX parser (onnx-tensorrt) names the layers of a node after it: the node's name,
or ``node_of_<first output>`` for an unnamed node (``getNodeName``); a node that becomes
several layers gets the others unique by a suffix (``generateUniqueName``: ``<name>_<N>``,
one counter for the whole network). TensorRT >= 10 also writes ``[ONNX Layer: <name>]`` into
``ILayer.metadata`` (several, separated by ``\\x1f``/``\\x1e``, on fused layers of a built
engine). Layers the parser adds without a node (dimension assertions, ...) keep TensorRT's
``(Unnamed Layer* 12) [Shuffle]`` names and belong to no node.

The metadata is trusted first: a suffix can be ambiguous (``conv_3`` is node ``conv``'s
fourth layer or a node named ``conv_3``; an exact name wins, as the parser's uniquing also
starts from the exact name).
"""

from __future__ import annotations

import re
from collections.abc import Collection

_METADATA_RE = re.compile(r"\[ONNX Layer: (.*?)\]")
_SUFFIX_RE = re.compile(r"^(.+)_(\d+)$")


def metadata_nodes(metadata: str | None) -> list[str]:
    """Node names in a layer's metadata (``[ONNX Layer: a]\\x1f[ONNX Layer: b]``)."""
    if not metadata:
        return []
    found: list[str] = []
    for part in re.split(r"[\x1e\x1f]", metadata):
        found.extend(_METADATA_RE.findall(part))
    return found


def layer_node(layer_name: str, metadata: str | None, node_names: Collection[str]) -> str | None:
    """The parser name (see module docstring) of the ONNX node a layer came from, or None.

    Args:
        layer_name: ``ILayer.name``.
        metadata: ``ILayer.metadata`` (TensorRT >= 10), or None.
        node_names: parser names of the graph's nodes
            (:func:`trtops.node_select.parser_node_name`).

    Returns:
        One of ``node_names``, or None for a layer no node made.
    """
    for name in metadata_nodes(metadata):
        if name in node_names:
            return name
    if layer_name in node_names:
        return layer_name
    match = _SUFFIX_RE.match(layer_name)
    if match and match.group(1) in node_names:
        return match.group(1)
    return None
