"""keep_fp32 in a weakly typed network (TensorRT 8.6 and 10.x): the layers that came from the
kept ONNX nodes compute in float32 and write float32, and the builder is told to obey that.

Layers are traced back to their node by :func:`trtops.trt.layer_nodes.layer_node`; the nodes
come from the one matching rule (:mod:`trtops.node_select`) on the graph TensorRT parsed.
Only layers with a floating-point output are constrained: shape arithmetic (int32/int64,
bool) has no precision to keep. Strongly typed networks ignore layer precisions: they get
keep_fp32 from the model preparation's cast instead (:func:`trtops.prepare.cast.cast_model`, checked
by :mod:`trtops.prepare.kept`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtops.node_select import parser_node_name, select_nodes
from trtops.trt.layer_nodes import layer_node
from trtops.trt.trt_compat import precision_constraint_flag

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT

_FLOAT_TYPES = ("FLOAT", "HALF", "BF16")


@dataclass
class HeldLayers:
    """What :func:`hold_layers_fp32` constrained (for the build log)."""

    nodes: list[str] = field(default_factory=list)  # kept nodes (parser names)
    layers: list[str] = field(default_factory=list)  # layers set to float32
    without_layer: list[str] = field(default_factory=list)  # kept nodes no layer came from
    flag: str | None = None

    def summary(self) -> str:
        text = (f"keep_fp32: {len(self.layers)} layers of {len(self.nodes) - len(self.without_layer)} nodes "
                f"held in float32" + (f" ({self.flag})" if self.flag else ""))
        if self.without_layer:
            shown = ", ".join(self.without_layer[:10])
            text += f"; no layer for {shown} (constants the parser folded, or a node without computation)"
        return text


def kept_parser_names(model_path: Path, keep_fp32: tuple[str, ...],
                      keep_fp32_outputs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Parser names of the nodes the lists name, and of every node, in the model TensorRT
    parses (read without weights)."""
    from trtops.onnx_facts import read_graph

    nodes = read_graph(model_path).nodes
    kept = select_nodes(nodes, keep_fp32, keep_fp32_outputs)
    return [parser_node_name(n) for n in kept], [parser_node_name(n) for n in nodes]


def hold_layers_fp32(trt: TensorRT, network: tensorrt.INetworkDefinition, config: tensorrt.IBuilderConfig,
                     kept: list[str], all_nodes: list[str], log: Callable[[str], None] | None = None) -> HeldLayers:
    """Set float32 precision and output types on the layers of the ``kept`` nodes.

    Args:
        trt: the tensorrt module.
        network: the parsed network.
        config: its builder config (gets the constraint flag).
        kept: parser names of the kept nodes.
        all_nodes: parser names of every node of the graph (to trace layers back).
        log: where a summary line goes.

    Returns:
        :class:`HeldLayers`.
    """
    held = HeldLayers(nodes=list(kept))
    wanted = set(kept)
    names = set(all_nodes)
    touched: set[str] = set()
    float32 = trt.DataType.FLOAT
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        origin = layer_node(layer.name, getattr(layer, "metadata", None), names)
        if origin not in wanted:
            continue
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        floating = [i for i, t in enumerate(outputs) if _type_name(t.dtype) in _FLOAT_TYPES]
        if not floating:
            continue
        layer.precision = float32
        for i in floating:
            layer.set_output_type(i, float32)
        held.layers.append(layer.name)
        touched.add(origin)
    held.without_layer = [n for n in kept if n not in touched]
    if held.layers:
        held.flag = precision_constraint_flag(trt)
        if held.flag is not None:
            config.set_flag(getattr(trt.BuilderFlag, held.flag))
    if log is not None:
        log(held.summary())
    return held


def _type_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1].upper()
