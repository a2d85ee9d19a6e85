"""keep_fp32 for strongly typed builds: after the fp16/bf16 model cast, put chosen nodes back
in float32 (TensorRT 11, and 10.x with ``strongly_typed``, ignore layer precisions: a node
computes in the type its inputs have).

On the cast model, for each kept node:

* every input in the reduced type is read in float32: from the float32 tensor a cast.py
  Cast was made from when there is one (graph inputs stay exact), from the original
  float32 weights for a weight (never its rounded copy), else through a new Cast;
* every output in the reduced type is computed in float32 (``<name>__fp32``); a Cast gives
  the reduced-type tensor to the nodes that are not kept, while kept nodes and Casts to
  float32 (a model output's) read the float32 tensor directly, so a value fp16 cannot hold
  (overflow) never passes through fp16 between two kept nodes;
* a kept ``Cast`` that the model cast turned into a cast to the reduced type casts to
  float32 again.

Nodes are found by name, unnamed ones by their first output (the way ``keep_fp32_outputs``
and TensorRT's parser name them; :mod:`trtops.node_select`). Nothing here imports tensorrt.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.capabilities import CAST_TARGETS, PRECISIONS


@dataclass
class KeepReport:
    """What :func:`keep_nodes_fp32` did (for the build log)."""

    kept: list[str] = field(default_factory=list)  # nodes found, by name (or first output)
    missing: list[str] = field(default_factory=list)  # asked for, not in the cast model
    casts_inserted: int = 0
    weights_restored: int = 0

    def summary(self) -> str:
        text = (f"keep_fp32: {len(self.kept)} nodes in float32, {self.casts_inserted} casts inserted, "
                f"{self.weights_restored} weights restored to float32")
        if self.missing:
            text += f"; not in the model any more (folded?): {', '.join(self.missing[:10])}"
        return text


def _identity(node: Any, target: str) -> str:
    if node.name:
        return node.name
    first = node.output[0] if node.output else ""
    # cast.py renames a model output's producer to '<name>__<target>' (maybe '_2'...).
    marker = f"__{target}"
    return first.rsplit(marker, 1)[0] if marker in first else first


def keep_nodes_fp32(model: Any, target: str, names: Collection[str], unnamed_outputs: Collection[str] = (),
                    *, original: Any = None) -> tuple[Any, KeepReport]:
    """Make the named nodes of a cast model compute in float32 (see the module docstring).

    Args:
        model: the cast ``onnx.ModelProto`` (modified in place and returned).
        target: the cast's precision, ``"fp16"`` or ``"bf16"``.
        names: names of the nodes to keep.
        unnamed_outputs: first outputs of unnamed nodes to keep.
        original: the model before the cast, weights loaded, to restore float32 weights
            (None: weights are read through a Cast of their reduced copy).

    Returns:
        ``(model, KeepReport)``.
    """
    import onnx
    from onnx import helper, numpy_helper

    from trtops.prepare.cast import infer_types

    TP = onnx.TensorProto
    if target not in CAST_TARGETS:
        raise ValueError(f"keep_fp32 after a cast to {target!r}: expected one of {', '.join(CAST_TARGETS)}")
    reduced = getattr(TP, str(PRECISIONS[target].cast_onnx_type))
    graph = model.graph
    types = infer_types(model)
    report = KeepReport()
    wanted = set(names) | set(unnamed_outputs)
    nodes = list(graph.node)  # one wrapper per node: protobuf makes new ones on each access
    kept_at = {i for i, n in enumerate(nodes) if _identity(n, target) in wanted}
    found = {_identity(nodes[i], target) for i in kept_at}
    report.kept = sorted(found)
    report.missing = sorted(wanted - found)

    producers = {o: n for n in nodes for o in n.output if o}
    initializers = {t.name: t for t in graph.initializer}
    original_weights = ({t.name: t for t in original.graph.initializer} if original is not None else {})
    taken = {o for n in nodes for o in list(n.output) + list(n.input)} | set(initializers)
    taken |= {v.name for v in list(graph.input) + list(graph.output)} | {n.name for n in nodes}

    def unique(base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    fp32_of: dict[str, str] = {}  # reduced-type tensor -> the float32 tensor holding its value

    def float32_source(name: str, before: list[Any]) -> str:
        if name in fp32_of:
            return fp32_of[name]
        producer = producers.get(name)
        if (producer is not None and producer.op_type == "Cast" and producer.input
                and types.get(producer.input[0]) == TP.FLOAT):
            fp32_of[name] = producer.input[0]  # cast.py's Cast of a float32 tensor: read that
        elif name in initializers and original_weights.get(name) is not None \
                and original_weights[name].data_type == TP.FLOAT:
            restored = numpy_helper.from_array(numpy_helper.to_array(original_weights[name]), unique(f"{name}__fp32"))
            graph.initializer.append(restored)
            report.weights_restored += 1
            fp32_of[name] = restored.name
        else:
            cast_name = unique(f"{name}__to_fp32")
            before.append(helper.make_node("Cast", [name], [cast_name], name=unique(f"trtops_keep_{cast_name}"),
                                           to=TP.FLOAT))
            report.casts_inserted += 1
            fp32_of[name] = cast_name
        return fp32_of[name]

    new_nodes: list[Any] = []  # copies: clearing graph.node below would empty the wrappers
    for position, node in enumerate(nodes):
        before: list[Any] = []
        after: list[Any] = []
        if position in kept_at:
            for index, name in enumerate(node.input):
                if name and types.get(name) == reduced:
                    node.input[index] = float32_source(name, before)
            if node.op_type == "Cast":
                for attr in node.attribute:
                    if attr.name == "to" and attr.i == reduced:
                        attr.i = TP.FLOAT
            for index, name in enumerate(node.output):
                if name and types.get(name) == reduced:
                    computed = unique(f"{name}__fp32")
                    node.output[index] = computed
                    fp32_of[name] = computed
                    after.append(helper.make_node("Cast", [computed], [name], name=unique(f"trtops_keep_{name}"),
                                                  to=reduced))
                    report.casts_inserted += 1
        elif node.op_type == "Cast" and node.input and node.input[0] in fp32_of:
            if any(a.name == "to" and a.i == TP.FLOAT for a in node.attribute):
                node.input[0] = fp32_of[node.input[0]]  # no round trip through the reduced type
        new_nodes.extend(before)
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        new_nodes.append(copy)
        new_nodes.extend(after)
    del graph.node[:]
    graph.node.extend(new_nodes)
    # Reduced copies of weights that only kept nodes read are gone from the graph now.
    used = {i for n in new_nodes for i in n.input} | {v.name for v in graph.output}
    superseded = [t for t in graph.initializer if t.name in fp32_of and t.name not in used]
    for tensor in superseded:
        graph.initializer.remove(tensor)
    del graph.value_info[:]  # types changed; TensorRT and ONNX Runtime infer them again
    return model, report


def keep_fp32_file(cast_path: str | Path, original_path: str | Path, out_path: str | Path, target: str,
                   keep_fp32: Collection[str], keep_fp32_outputs: Collection[str] = ()) -> tuple[Path, KeepReport]:
    """:func:`keep_nodes_fp32` on files: the lists are resolved on the original model's graph
    (:func:`trtops.node_select.select_nodes`), the result written to ``out_path``.

    Returns:
        ``(out_path, KeepReport)``.
    """
    import onnx

    from trtops.node_select import select_nodes
    from trtops.onnx_facts import read_graph
    from trtops.prepare.runner import save_model

    nodes = select_nodes(read_graph(original_path).nodes, keep_fp32, keep_fp32_outputs)
    names = [n.name for n in nodes if n.name]
    unnamed = [n.outputs[0] for n in nodes if not n.name and n.outputs]
    model = onnx.load(str(cast_path), load_external_data=True)
    original = onnx.load(str(original_path), load_external_data=True)
    kept, report = keep_nodes_fp32(model, target, names, unnamed, original=original)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(kept, out)
    return out, report
