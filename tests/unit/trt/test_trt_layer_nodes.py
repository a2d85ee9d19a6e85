"""Tracing TensorRT network layers back to ONNX nodes (trtops.trt.layer_nodes), on layer names
and metadata as TensorRT 8.6 and 10.x record them (onnx-tensorrt's registerLayer)."""

from __future__ import annotations

import pytest

from trtops.trt.layer_nodes import layer_node, metadata_nodes

NODES = {"/blocks.0/norm/Mul", "conv", "conv_3", "node_of_y", "layer[0]/fc"}


@pytest.mark.parametrize("name, metadata, expected", [
    # 8.6: the node's name; its other layers uniquified with one network-wide counter
    ("/blocks.0/norm/Mul", None, "/blocks.0/norm/Mul"),
    ("/blocks.0/norm/Mul_17", None, "/blocks.0/norm/Mul"),
    ("conv", None, "conv"),
    ("conv_3", None, "conv_3"),  # a node of that name wins over conv's fourth layer
    ("conv_12", None, "conv"),
    ("node_of_y", None, "node_of_y"),  # an unnamed node, named after its first output
    ("node_of_y_4", None, "node_of_y"),
    ("layer[0]/fc", None, "layer[0]/fc"),
    # TensorRT-made layers belong to no node
    ("(Unnamed Layer* 12) [Shuffle]", None, None),
    ("ONNXTRT_Broadcast_5", None, None),
    # 10.x: the metadata names the node whatever the layer is called
    ("(Unnamed Layer* 3) [Constant]", "[ONNX Layer: conv]", "conv"),
    ("conv_12", "[ONNX Layer: /blocks.0/norm/Mul]", "/blocks.0/norm/Mul"),
    ("x", "[ONNX Layer: unknown]\x1f[ONNX Layer: conv]", "conv"),
])
def test_layer_node(name, metadata, expected):
    assert layer_node(name, metadata, NODES) == expected


def test_metadata_of_a_fused_layer_lists_every_node():
    text = "[ONNX Layer: /a/Conv]\x1f[ONNX Layer: /a/Relu]\x1e[ONNX Layer: /b/Add]"
    assert metadata_nodes(text) == ["/a/Conv", "/a/Relu", "/b/Add"]
    assert metadata_nodes("") == [] and metadata_nodes(None) == []
