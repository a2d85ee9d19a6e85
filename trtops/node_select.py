"""Which ONNX nodes a ``keep_fp32`` list names: THE rule (pure, no onnx, no tensorrt).

``keep_fp32`` holds node names or glob patterns (``fnmatch``, case-sensitive: ``*`` also
crosses ``/``, so ``/blocks.*/norm/*`` works on torch exports); ``keep_fp32_outputs`` holds
tensor names or patterns, each naming the node that writes that tensor (how to reach a node
without a name, and what a user sees as a model output). The manifest check, the builder
(TensorRT 8.6/10 layer precisions), the preparation (TensorRT 11 casts) and ``trtops repair``
all resolve lists here, so they cannot disagree on what a pattern means.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_GLOB_CHARS = frozenset("*?[")


def is_pattern(text: str) -> bool:
    """Whether ``text`` is a glob pattern rather than one exact name."""
    return any(c in _GLOB_CHARS for c in text)


def _matches(pattern: str, names: Iterable[str]) -> list[str]:
    # An exact name wins: exported names such as "layer[0]/conv" hold glob characters.
    names = list(names)
    exact = [n for n in names if n == pattern]
    if exact or not is_pattern(pattern):
        return exact
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def parser_node_name(node: Any) -> str:
    """The name TensorRT's ONNX parser gives a node's layers: its name, or for an unnamed
    node ``node_of_<first output>`` (onnx-tensorrt's ``getNodeName``, 8.6 to 10.x)."""
    if not node.name and node.outputs:
        return f"node_of_{node.outputs[0]}"
    return node.name


@dataclass(frozen=True)
class Unmatched:
    """A keep_fp32 entry that names nothing in the graph."""

    field: str  # keep_fp32 | keep_fp32_outputs
    index: int  # position in the list
    pattern: str


def select_nodes(nodes: Sequence[Any], keep_fp32: Iterable[str] = (),
                 keep_fp32_outputs: Iterable[str] = ()) -> list[Any]:
    """The nodes (:class:`trtops.onnx_facts.NodeRef`, in graph order) the two lists name.

    Args:
        nodes: the main graph's nodes.
        keep_fp32: node names or glob patterns.
        keep_fp32_outputs: tensor names or glob patterns (the node writing each is kept).

    Returns:
        Every node named, once, in graph order.
    """
    chosen: set[int] = set()
    names = [n.name for n in nodes if n.name]
    for pattern in keep_fp32:
        hits = set(_matches(pattern, names))
        chosen.update(n.index for n in nodes if n.name in hits)
    writers = {out: n.index for n in nodes for out in n.outputs if out}
    for pattern in keep_fp32_outputs:
        for tensor in _matches(pattern, writers):
            chosen.add(writers[tensor])
    return [n for n in nodes if n.index in chosen]


def unmatched(nodes: Sequence[Any], keep_fp32: Sequence[str] = (),
              keep_fp32_outputs: Sequence[str] = ()) -> list[Unmatched]:
    """The entries that name no node (or no tensor a node writes), in list order."""
    names = [n.name for n in nodes if n.name]
    tensors = [out for n in nodes for out in n.outputs if out]
    found = [Unmatched("keep_fp32", i, p) for i, p in enumerate(keep_fp32) if not _matches(p, names)]
    found += [Unmatched("keep_fp32_outputs", i, p) for i, p in enumerate(keep_fp32_outputs)
              if not _matches(p, tensors)]
    return found


def entry_for(node: Any, nodes: Sequence[Any]) -> tuple[str, str]:
    """How a manifest names one node: ``("keep_fp32", name)`` when its name is its own
    (set and unique in the graph; an exact name wins over a pattern reading of it), else ``("keep_fp32_outputs", first output)``."""
    if node.name and sum(1 for n in nodes if n.name == node.name) == 1:
        return "keep_fp32", node.name
    return "keep_fp32_outputs", next(o for o in node.outputs if o)
