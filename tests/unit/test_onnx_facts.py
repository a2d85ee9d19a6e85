"""onnx_facts: one reader for Q/DQ, external data and graph structure, without weights."""

from __future__ import annotations

import os

import onnx
import pytest
from helpers import make_conv_model, make_qdq_model
from onnx import TensorProto, helper

from trtops.errors import InputError
from trtops.onnx_facts import model_facts, model_has_qdq, read_graph, try_model_has_qdq


def _identity_graph(name, nodes):
    return helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )


def _qdq_nodes(src, dst):
    scale = helper.make_node("Constant", [], [f"{dst}_s"], value=helper.make_tensor(f"{dst}_sv", TensorProto.FLOAT, [], [0.1]))
    return [scale,
            helper.make_node("QuantizeLinear", [src, f"{dst}_s"], [f"{dst}_q"]),
            helper.make_node("DequantizeLinear", [f"{dst}_q", f"{dst}_s"], [dst])]


def test_qdq_in_the_main_graph(tmp_path):
    assert model_has_qdq(make_qdq_model(tmp_path / "q.onnx"))
    assert not model_has_qdq(make_conv_model(tmp_path / "c.onnx"))


def test_qdq_inside_a_function(tmp_path):
    function = helper.make_function("local", "quant", ["a"], ["b"], _qdq_nodes("a", "b"),
                                    [helper.make_opsetid("", 17)])
    graph = _identity_graph("g", [helper.make_node("quant", ["x"], ["y"], domain="local")])
    model = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    path = tmp_path / "f.onnx"
    onnx.save_model(model, str(path))
    assert model_has_qdq(path)
    assert read_graph(path).has_qdq


def test_qdq_inside_a_subgraph(tmp_path):
    then = _identity_graph("then", _qdq_nodes("x", "y"))
    then.ClearField("input")
    other = _identity_graph("else", [helper.make_node("Identity", ["x"], ["y"])])
    other.ClearField("input")
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "if.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert model_has_qdq(path)


def test_external_data_and_structure_without_weights(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True)
    assert model_facts(path).external_data == ("conv.onnx.data",)
    info = read_graph(path)
    assert info.external_data == ("conv.onnx.data",) and not info.has_qdq
    assert list(info.inputs) and info.outputs


def test_unreadable_models(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff\xff not protobuf")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        model_has_qdq(bad)
    assert try_model_has_qdq(bad) is None
    assert try_model_has_qdq(tmp_path / "missing.onnx") is None


def test_import_onnx_facts_stays_light():
    import subprocess
    import sys

    code = "import sys, trtops.onnx_facts, trtops.capabilities; sys.exit('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _structure_model(path):
    """Every shape form the structure walk must read as onnx does: fixed, named, unknown,
    negative, no shape, no tensor type; an initializer listed as an input; a sparse one."""
    import numpy as np
    from onnx import numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["a"], name="add0"),
         helper.make_node("Mul", ["a", "s"], ["y"], name="", domain=""),
         helper.make_node("Custom", ["y"], ["z"], name="custom0", domain="my.ops")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, "?", 7]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("noshape", TensorProto.INT64, None),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, ["H", "H"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")],
        sparse_initializer=[helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([1.0], dtype=np.float32), "s"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "s_idx"), [4])],
    )
    x = graph.input[0].type.tensor_type.shape.dim[0]
    x.dim_value = -1  # written by some exporters for "dynamic"
    seq = graph.input.add()
    seq.name = "seq"
    seq.type.sequence_type.elem_type.tensor_type.elem_type = TensorProto.FLOAT
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.ops", 2)])
    onnx.save_model(model, str(path))
    return model


def _onnx_view(model):
    def dims(vi):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            return None
        out = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value >= 0:
                out.append(d.dim_value)
            elif d.HasField("dim_param") and d.dim_param:
                out.append(d.dim_param)
            else:
                out.append(None)
        return tuple(out)

    graph = model.graph
    inits = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
    return ({vi.name: dims(vi) for vi in graph.input if vi.name not in inits},
            tuple(o.name for o in graph.output),
            [(n.name, n.op_type, n.domain) for n in graph.node],
            {o.domain: o.version for o in model.opset_import})


def test_structure_walk_reads_what_onnx_reads(tmp_path):
    from trtops.onnx_facts import graph_nodes

    path = tmp_path / "shapes.onnx"
    model = _structure_model(path)
    inputs, outputs, nodes, opsets = _onnx_view(model)
    info = read_graph(path)
    assert info.inputs == inputs
    assert info.inputs == {"x": (None, 3, "?", 7), "noshape": None, "h": ("H", "H"), "seq": None}
    assert info.outputs == outputs == ("y", "z")
    assert [(n.name, n.op_type, n.domain) for n in info.nodes] == nodes
    assert [n.index for n in graph_nodes(path)] == [0, 1, 2]
    assert info.opsets == opsets == {"": 17, "my.ops": 2}
    assert set(info.dynamic_inputs()) == {"x", "noshape", "h", "seq"}


def test_structure_walk_refuses_what_is_not_a_model(tmp_path):
    from trtops.onnx_facts import GraphError

    for name, data in (("empty", b""), ("garbage", b"\xff\xff\xff\xff not protobuf"),
                       ("truncated", onnx.load_model_from_string(b"").SerializeToString() + b"\x3a\x10ab")):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        with pytest.raises(GraphError):
            read_graph(path)


def _write_sparse_weight_model(path, weight_bytes):
    """A model whose graph is followed by a second GraphProto field holding one initializer
    of ``weight_bytes`` raw bytes (protobuf merges repeated message fields, so onnx reads it
    as one graph). The weight is a hole in a sparse file: creating it costs nothing."""
    def varint(value):
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add0")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", weight_bytes // 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", weight_bytes // 4])])
    head = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    tensor_head = (b"\x08" + varint(weight_bytes // 4) + b"\x10\x01" + b"\x42\x01w"
                   + b"\x4a" + varint(weight_bytes))  # dims, data_type FLOAT, name, raw_data
    tensor_len = len(tensor_head) + weight_bytes
    graph_head = b"\x2a" + varint(tensor_len)  # GraphProto.initializer
    graph_len = len(graph_head) + tensor_len
    with open(path, "wb") as handle:
        handle.write(head + b"\x3a" + varint(graph_len) + graph_head + tensor_head)  # ModelProto.graph
        handle.truncate(handle.tell() + weight_bytes)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_structure_reader_does_not_materialize_weights(tmp_path):
    # Peak RSS of a fresh interpreter that reads the structure of a 256 MB model stays far
    # below the model's size (no timing: memory only). VmHWM, not ru_maxrss: the latter
    # also counts the forking parent's (pytest's) memory from before exec.
    import subprocess
    import sys

    path = tmp_path / "big.onnx"
    size = 256 << 20
    _write_sparse_weight_model(path, size)
    code = (
        "import sys\n"
        "from trtops.onnx_facts import read_graph, graph_nodes\n"
        "info = read_graph(sys.argv[1])\n"
        "assert list(info.inputs) == ['x'] and info.outputs == ('y',), info\n"
        "assert [n.op_type for n in graph_nodes(sys.argv[1])] == ['Add']\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    peak_kib = int(done.stdout.strip())
    assert peak_kib * 1024 < size // 4, f"peak RSS {peak_kib} KiB for a {size >> 20} MiB model"


def test_read_ops_matches_onnx_on_subgraphs_constants_and_types(tmp_path):
    """read_ops walks the wire (no weights loaded) and says what onnx.load would."""
    import onnx
    from helpers import make_rate_branching_model

    from trtops.onnx_facts import read_ops

    path = make_rate_branching_model(tmp_path / "vad.onnx")
    ops = read_ops(path)
    model = onnx.load(str(path))
    expected = []

    def walk(graph, constants):
        constants = constants | {t.name for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                constants |= set(node.output)
            expected.append((node.op_type, tuple(not i or i in constants for i in node.input)))
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g, constants)

    walk(model.graph, set())
    assert [(o.op_type, o.constant_inputs) for o in ops.ops] == expected
    # the Slice axes come from Unsqueeze(Constant): computed, not a constant
    assert all(o.constant_inputs[3] is False for o in ops.ops if o.op_type == "Slice")
    assert ops.opset == 16 and ops.input_types == {"x": "FLOAT", "sr": "INT64"}
    assert ops.output_types == {"y": "FLOAT"}
