"""Bind model inputs to constants (``prepare.constants``) and inline If nodes whose condition
became constant.

Exported models often take an input that is constant in any one deployment (an audio
model's sample rate) and branch on it with ``If``. TensorRT builds an ``If`` as a
conditional layer whose branches must give outputs of one shape, which such branches do
not. Once the input is a constant, folding makes the condition a constant, and the ``If``
is replaced by the nodes of the branch taken (graph surgeon's ``fold_constants`` flattens
them; :func:`inline_constant_ifs` does it for the ones it leaves).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtops.prepare.graph import PreparationFailed, real_inputs, subgraphs


def bind_constants(model: Any, bound: Any) -> list[str]:
    """Turn each bound input into an initializer of the input's own element type (in place).

    Args:
        model: ``onnx.ModelProto``.
        bound: :class:`trtops.spec.BoundInput` items.

    Returns:
        One line per input bound (``sr = 16000 (int64)``).

    Raises:
        PreparationFailed: an input that does not exist, or a value whose shape the input
            does not accept.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inputs = {value.name: value for value in real_inputs(graph)}
    notes = []
    for item in bound:
        value = inputs.get(item.name)
        if value is None:
            raise PreparationFailed(
                f"prepare.constants names {item.name!r}, which is not an input of the model",
                hint=f"the model's inputs: {', '.join(sorted(inputs)) or 'none'}",
            )
        elem = value.type.tensor_type.elem_type
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                    for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.HasField("shape"):
            shape_ok = len(declared) == len(item.shape) and all(
                d is None or d == s for d, s in zip(declared, item.shape))
            if not shape_ok:
                shown = ["?" if d is None else d for d in declared]
                raise PreparationFailed(
                    f"prepare.constants.{item.name}: a value of shape {list(item.shape)} does not fit "
                    f"the input's shape {shown}",
                    hint="give a number for a scalar input, nested lists for a tensor",
                )
        dtype = helper.tensor_dtype_to_np_dtype(elem)
        array = np.asarray(item.values, dtype=np.float64).reshape(item.shape)
        if np.issubdtype(dtype, np.integer) and not np.all(array == np.round(array)):
            raise PreparationFailed(f"prepare.constants.{item.name}: the input is an integer "
                                    f"({onnx.TensorProto.DataType.Name(elem).lower()}); {item.values} is not")
        graph.initializer.append(numpy_helper.from_array(array.astype(dtype), item.name))
        graph.input.remove(value)
        shown_value = array.astype(dtype).tolist()
        notes.append(f"{item.name} = {shown_value} ({onnx.TensorProto.DataType.Name(elem).lower()})")
    return notes


def _graph_constants(graph: Any) -> dict[str, Any]:
    from onnx import numpy_helper

    values = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = attr.t
                elif attr.name == "value_int":
                    values[node.output[0]] = numpy_helper.from_array(np.array(attr.i, dtype=np.int64))
    return values


def inline_constant_ifs(graph: Any) -> int:
    """Replace every top-level ``If`` whose condition is a constant by the branch it takes.

    The branch's nodes move into the graph (renamed apart where their names collide), its
    initializers come along, and its outputs take the If's output names (an Identity where
    a branch output is an outer tensor). Repeats until no constant If is left.

    Returns:
        How many If nodes were inlined.
    """
    from onnx import helper, numpy_helper

    inlined = 0
    while True:
        constants = _graph_constants(graph)
        for index, node in enumerate(graph.node):
            if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
                continue
            cond = constants.get(node.input[0])
            if cond is None:
                continue
            taken = bool(np.asarray(numpy_helper.to_array(cond)).reshape(-1)[0])
            branch = next(a.g for a in node.attribute if a.name == ("then_branch" if taken else "else_branch"))
            break
        else:
            return inlined
        prefix = f"{node.name or 'if'}_{'then' if taken else 'else'}_{inlined}/"
        inner = {t.name for t in branch.initializer} | {o for n in branch.node for o in n.output if o}
        rename = {name: prefix + name for name in inner}
        new_nodes = []
        for sub_node in branch.node:
            copy = helper.make_node("Identity", [], [])
            copy.CopyFrom(sub_node)
            copy.input[:] = [rename.get(i, i) for i in copy.input]
            copy.output[:] = [rename.get(o, o) for o in copy.output]
            if copy.name:
                copy.name = prefix + copy.name
            for sub in subgraphs(copy):
                _rename_reads(sub, rename)
            new_nodes.append(copy)
        for tensor in branch.initializer:
            moved = graph.initializer.add()
            moved.CopyFrom(tensor)
            moved.name = rename[tensor.name]
        for out_name, value in zip(node.output, branch.output):
            new_nodes.append(helper.make_node("Identity", [rename.get(value.name, value.name)], [out_name],
                                              name=f"{prefix}output_{out_name}"))
        del graph.node[index]
        for offset, new in enumerate(new_nodes):
            graph.node.insert(index + offset, new)
        inlined += 1


def _rename_reads(graph: Any, rename: dict[str, str]) -> None:
    local = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    local |= {o for n in graph.node for o in n.output}
    outer = {k: v for k, v in rename.items() if k not in local}
    for node in graph.node:
        node.input[:] = [outer.get(i, i) for i in node.input]
        for sub in subgraphs(node):
            _rename_reads(sub, outer)
    for value in graph.output:
        if value.name in outer:
            value.name = outer[value.name]
