"""The preparation stage's last step for strongly typed builds: cast an fp32 ONNX model to
fp16 or bf16.

TensorRT 11 removed the precision builder flags: a strongly typed network runs each layer
in the type its tensors have, so reduced precision has to be in the model itself. Which
builds get it is :func:`trtops.capabilities.model_cast` (every fp16/bf16 build on 11.x,
``strongly_typed: true`` ones on 10.x); the runner (:mod:`trtops.prepare.runner`) applies it
after the other steps and keeps the result under its own digest. This pass does what
``--fp16`` used to do, on the ONNX graph:

* float32 weights (initializers, Constant nodes) and float32 activations become fp16/bf16;
* graph inputs and outputs keep their types: a Cast follows each float input and precedes
  each float output, so callers feed and read float32 exactly as before;
* shape arithmetic stays exact: every tensor computed from ``Shape``/``Size`` (and
  constants) is left alone, as are ``Range``, ``ConstantOfShape``, random/quantization/
  control-flow ops and unknown domains, and ``Resize``'s ``roi``/``scales`` inputs
  (``Upsample``'s ``scales``), with Casts inserted at the boundaries;
* ``Cast(to=FLOAT)`` inside the converted region casts to the new type instead;
* the nodes a build's ``keep_fp32`` / ``keep_fp32_outputs`` name (resolved here, on the
  graph being cast, by :mod:`trtops.node_select`) stay float32 like the ops above: they read
  graph inputs and weights in their original float32 (a weight that converted nodes read too
  gets a float32 copy from the original values, never its rounded one), kept-to-kept links
  stay float32 (a value fp16 cannot hold never passes through it), and a Cast gives their
  outputs to converted nodes. The cast model records what it kept
  (:mod:`trtops.prepare.kept`), which the builder checks.

Only tensors that were float32 are touched; float16/float64/integer tensors are left as
they are. Nothing here imports tensorrt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from trtops.capabilities import CAST_TARGETS, PRECISIONS
from trtops.prepare.graph import PreparationFailed
from trtops.prepare.graph import subgraphs as _subgraphs
from trtops.prepare.options import KeepLists

# The precisions strongly typed builds get by casting the model (the capability table says).
TARGETS = CAST_TARGETS

# Ops kept in float32 (their float inputs are cast back to float32 if needed).
BLOCKED_OPS = frozenset({
    "Range", "ConstantOfShape", "EyeLike",
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger",
    "NonMaxSuppression",
    "If", "Loop", "Scan",
    "SequenceConstruct", "SequenceInsert", "SequenceAt", "SequenceEmpty", "SequenceErase", "SequenceLength",
    "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement",
    "STFT", "DFT", "MelWeightMatrix", "HannWindow", "HammingWindow", "BlackmanWindow",
    "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss",
})
# Inputs that stay float32 even when the node is converted (scales/roi are shape parameters).
KEEP_FLOAT32_INPUTS = {"Resize": frozenset({1, 2}), "Upsample": frozenset({1})}
# Ops that accept any input type: no cast is inserted in front of them.
ANY_INPUT_OPS = frozenset({"Shape", "Size", "Cast"})
SHAPE_SOURCE_OPS = frozenset({"Shape", "Size"})
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})

FP16_MAX = 65504.0


class PrepareError(PreparationFailed):
    """The model cannot be cast (the message says why; exit 1 like every preparation step)."""


@dataclass
class CastReport:
    """What :func:`cast_model` did (the preparation report carries it)."""

    converted_nodes: int = 0
    kept_nodes: int = 0  # every node left in float32 (the ops above, and keep_fp32's)
    converted_initializers: int = 0
    casts_inserted: int = 0
    kept_fp32: list[str] = field(default_factory=list)  # keep_fp32's nodes, by name (or first output)
    keep_unmatched: list[str] = field(default_factory=list)  # entries that matched no node
    weights_fp32: int = 0  # float32 copies of weights kept nodes share with converted ones

    def summary(self, target: str) -> str:
        return (
            f"cast to {target}: {self.converted_initializers} initializers, {self.casts_inserted} Cast nodes "
            f"inserted ({self.converted_nodes} nodes in {target}, {self.kept_nodes} kept in float32)"
        )

    def keep_summary(self, target: str) -> str | None:
        """``cast to fp16 keeping 2 nodes in fp32 (keep_fp32): a, b``, or None without keep lists."""
        if not self.kept_fp32 and not self.keep_unmatched:
            return None
        shown = ", ".join(self.kept_fp32[:10]) + (f" and {len(self.kept_fp32) - 10} more" if len(self.kept_fp32) > 10 else "")
        count = len(self.kept_fp32)
        text = f"cast to {target} keeping {count} node{'s' if count != 1 else ''} in fp32 (keep_fp32): {shown or '-'}"
        if self.weights_fp32:
            text += f"; {self.weights_fp32} shared weights read in float32"
        if self.keep_unmatched:
            text += f"; matching no node of the prepared model (folded?): {', '.join(self.keep_unmatched)}"
        return text


def _onnx():
    import onnx

    return onnx


# --------------------------------------------------------------------------- arrays


def float32_to_bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest even) and return the raw uint16 bits.

    Args:
        array: float32 array.

    Returns:
        uint16 array of the same shape holding bfloat16 bit patterns (NaN stays NaN).
    """
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    rounded = ((bits.astype(np.uint64) + rounding) >> 16).astype(np.uint16)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(nan, np.uint16(0x7FC0), rounded).astype(np.uint16)


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`float32_to_bfloat16_bits` (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _convert_tensor(tensor, target: str):
    """float32 TensorProto → fp16/bf16 TensorProto with the same name (data must be loaded)."""
    onnx = _onnx()
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor).astype(np.float32, copy=False)
    if target == "fp16":
        # Out-of-range values (e.g. -1e9 attention masks) saturate instead of becoming inf.
        converted = np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
        return numpy_helper.from_array(converted, tensor.name)
    out = onnx.TensorProto()
    out.name = tensor.name
    out.data_type = onnx.TensorProto.BFLOAT16
    out.dims.extend(array.shape)
    out.raw_data = float32_to_bfloat16_bits(array).astype("<u2").tobytes()
    return out


# --------------------------------------------------------------------------- graph helpers


def _defined_in(graph, into: set[str]) -> None:
    into.update(v.name for v in graph.input)
    into.update(t.name for t in graph.initializer)
    for node in graph.node:
        into.update(o for o in node.output if o)
        for sub in _subgraphs(node):
            _defined_in(sub, into)


def _used_in(graph, into: set[str]) -> None:
    for node in graph.node:
        into.update(i for i in node.input if i)
        for sub in _subgraphs(node):
            _used_in(sub, into)
    into.update(v.name for v in graph.output)


def _outer_refs(node) -> set[str]:
    """Names a node's subgraphs read from enclosing scopes."""
    used: set[str] = set()
    defined: set[str] = set()
    for sub in _subgraphs(node):
        _used_in(sub, used)
        _defined_in(sub, defined)
    return used - defined


def _rename_in_graph(graph, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for sub in _subgraphs(node):
            _rename_in_graph(sub, old, new)
    for value in graph.output:
        if value.name == old:
            value.name = new


def _constant_float_tensor(node):
    """The float32 TensorProto a Constant node holds, or None."""
    onnx = _onnx()
    for attr in node.attribute:
        if attr.name == "value" and attr.t.data_type == onnx.TensorProto.FLOAT:
            return attr.t
        if attr.name == "value_float":
            return onnx.numpy_helper.from_array(np.array(attr.f, dtype=np.float32), node.output[0])
        if attr.name == "value_floats":
            return onnx.numpy_helper.from_array(np.array(list(attr.floats), dtype=np.float32), node.output[0])
    return None


def infer_types(model) -> dict[str, int]:
    """Element type of every tensor of the main graph that ONNX type inference can name.

    Args:
        model: an ``onnx.ModelProto`` (weights may be external and unloaded).

    Returns:
        ``{tensor name: TensorProto data type}``.
    """
    onnx = _onnx()
    try:
        with _weights_set_aside(model):
            inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # inference is a best effort: unknown types are handled conservatively
        inferred = model
    graph = inferred.graph
    types: dict[str, int] = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
                elif attr.name in ("value_float", "value_floats"):
                    types[node.output[0]] = onnx.TensorProto.FLOAT
                elif attr.name in ("value_int", "value_ints"):
                    types[node.output[0]] = onnx.TensorProto.INT64
    return types


@contextlib.contextmanager
def _weights_set_aside(model) -> Iterator[None]:
    """Large weights out of ``model`` while ONNX type inference serializes it (types never
    depend on them, and a model of 2 GiB or more cannot be serialized), put back after. They
    look like unloaded external data meanwhile, which inference reads as it does in a model
    loaded without its external data."""
    onnx = _onnx()
    aside: list[tuple[object, bytes]] = []
    try:
        for tensor in model.graph.initializer:
            if len(tensor.raw_data) > 1024 and not tensor.HasField("data_location"):
                aside.append((tensor, tensor.raw_data))
                tensor.ClearField("raw_data")
                tensor.data_location = onnx.TensorProto.EXTERNAL
                entry = tensor.external_data.add()
                entry.key, entry.value = "location", "trtops-set-aside"
        yield
    finally:
        for tensor, data in aside:
            del tensor.external_data[:]
            tensor.ClearField("data_location")  # as it was: absent (proto2 would write a default)
            tensor.raw_data = data


# --------------------------------------------------------------------------- the pass


def cast_model(model, target: str, *, types: dict[str, int] | None = None,
               keep: KeepLists = KeepLists()) -> tuple[object, CastReport]:
    """Cast a float32 model to ``target`` (fp16 or bf16), keeping input/output types.

    Args:
        model: ``onnx.ModelProto`` with its weights loaded (not modified).
        target: ``"fp16"`` or ``"bf16"``.
        types: element types from :func:`infer_types` (computed from ``model`` if omitted).
        keep: the build's ``keep_fp32`` / ``keep_fp32_outputs``: the main-graph nodes they
            name stay float32 (see the module docstring). An entry that matches nothing is
            reported, not refused: the manifest check found it in the source model, and a
            preparation step may have folded it away.

    Returns:
        ``(new ModelProto, CastReport)``.

    Raises:
        PrepareError: unknown target, or bf16 with an opset older than 13.
    """
    onnx = _onnx()
    TP = onnx.TensorProto
    if target not in TARGETS:
        raise PrepareError(f"cannot cast a model to {target!r}; expected one of {', '.join(TARGETS)}")
    new_type = getattr(TP, str(PRECISIONS[target].cast_onnx_type))
    opset = max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=0)
    if target == "bf16" and opset < 13:
        raise PrepareError(f"casting to bf16 needs ONNX opset >= 13 (Cast to bfloat16); the model uses opset {opset}")

    report = CastReport()
    kept_at = _kept_nodes(model.graph, keep, report)

    if types is None:
        types = infer_types(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph

    def is_f32(name: str) -> bool:
        return bool(name) and types.get(name) == TP.FLOAT

    initializers = {t.name: t for t in graph.initializer}
    graph_inputs = {v.name for v in graph.input if v.name not in initializers}
    graph_outputs = [v.name for v in graph.output]
    nodes = list(graph.node)

    # Forward pass: tensors derived from Shape/Size (possibly mixed with constants) are shape
    # arithmetic and keep their exact types.
    constant: set[str] = set(initializers)
    shapeish: set[str] = set()
    blocked: list[bool] = []
    for position, node in enumerate(nodes):
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
            constant.update(node.output)
            blocked.append(False)
            continue
        inputs = [i for i in node.input if i]
        has_sub = bool(_subgraphs(node))
        if node.op_type in SHAPE_SOURCE_OPS and node.domain in STANDARD_DOMAINS:
            shapeish.update(o for o in node.output if o)
        elif not has_sub and inputs and all(i in constant or i in shapeish for i in inputs):
            if any(i in shapeish for i in inputs):
                shapeish.update(o for o in node.output if o)
            else:
                constant.update(o for o in node.output if o)
        block = (
            node.op_type in BLOCKED_OPS
            or position in kept_at
            or node.domain not in STANDARD_DOMAINS
            or has_sub
            or any(o in shapeish for o in node.output if o)
            or any(o and o not in types for o in node.output)
        )
        blocked.append(block)

    def requirement(node, index: int, is_blocked: bool) -> str | None:
        """'new' (reduced type), 'f32', or None (any type accepted)."""
        if node.op_type in ANY_INPUT_OPS and node.domain in STANDARD_DOMAINS:
            return None
        if is_blocked:
            return "f32"
        if index in KEEP_FLOAT32_INPUTS.get(node.op_type, ()):
            return "f32"
        return "new"

    # Which float32 weights to convert: those some converted node reads at a normal position.
    wants_new: set[str] = set()
    for node, is_blocked in zip(nodes, blocked):
        if node.op_type == "Constant":
            continue
        for index, name in enumerate(node.input):
            if is_f32(name) and (name in initializers or name in constant) and requirement(node, index, is_blocked) == "new":
                wants_new.add(name)
    wants_new -= set(graph_outputs)

    # keep_fp32's nodes read the original float32 values of weights that are converted for
    # other readers (a Cast of the rounded copy would lose what keeping them is for).
    shared = {name for position in kept_at for name in nodes[position].input if name in wants_new}
    originals = {name: onnx.numpy_helper.to_array(initializers[name]) for name in shared if name in initializers}
    for node in nodes:
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS and node.output and node.output[0] in shared:
            tensor = _constant_float_tensor(node)
            if tensor is not None:
                originals[node.output[0]] = onnx.numpy_helper.to_array(tensor)

    # The type each float32 tensor has after the pass ("new" or "f32").
    actual: dict[str, str] = {}
    for name in graph_inputs:
        if is_f32(name):
            actual[name] = "f32"
    for name, tensor in initializers.items():
        if tensor.data_type == TP.FLOAT:
            actual[name] = "new" if name in wants_new else "f32"
    for node, is_blocked in zip(nodes, blocked):
        for name in node.output:
            if not is_f32(name):
                continue
            if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
                actual[name] = "new" if name in wants_new else "f32"
            else:
                actual[name] = "f32" if is_blocked else "new"

    # Convert weights (and, for old IR versions that list weights as inputs, their types).
    for index, tensor in enumerate(graph.initializer):
        if tensor.name in wants_new and tensor.data_type == TP.FLOAT:
            graph.initializer[index].CopyFrom(_convert_tensor(tensor, target))
            report.converted_initializers += 1
    for value in graph.input:
        if value.name in initializers and value.name in wants_new:
            value.type.tensor_type.elem_type = new_type

    taken: set[str] = set()
    _defined_in(graph, taken)
    _used_in(graph, taken)
    taken.update(n.name for n in nodes if n.name)

    def unique(base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    # Float outputs produced in the reduced type are renamed; a final Cast restores the
    # declared name and float32 type.
    renamed_outputs: dict[str, str] = {}
    for name in graph_outputs:
        if is_f32(name) and actual.get(name) == "new":
            renamed_outputs[name] = unique(f"{name}__{target}")

    fp32_copy: dict[str, str] = {}
    for name in sorted(originals):
        copy = onnx.numpy_helper.from_array(originals[name].astype(np.float32, copy=False), unique(f"{name}__fp32"))
        graph.initializer.append(copy)
        if out.ir_version < 4:  # weights are graph inputs there
            graph.input.append(onnx.helper.make_tensor_value_info(copy.name, TP.FLOAT, list(copy.dims)))
        fp32_copy[name] = copy.name
    report.weights_fp32 = len(fp32_copy)

    cast_cache: dict[tuple[str, str], str] = {}
    new_nodes = []
    suffix = {"new": target, "f32": "fp32"}

    def cast_to(name: str, want: str) -> str:
        key = (name, want)
        if key not in cast_cache:
            cast_name = unique(f"{name}__to_{suffix[want]}")
            to = new_type if want == "new" else TP.FLOAT
            new_nodes.append(onnx.helper.make_node("Cast", [name], [cast_name], name=unique(f"trtops_cast_{cast_name}"), to=to))
            report.casts_inserted += 1
            cast_cache[key] = cast_name
        return cast_cache[key]

    original_of = {v: k for k, v in renamed_outputs.items()}
    for position, (node, is_blocked) in enumerate(zip(nodes, blocked)):
        if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
            tensor = _constant_float_tensor(node)
            if tensor is not None and node.output[0] in wants_new:
                converted = _convert_tensor(tensor, target)
                del node.attribute[:]
                node.attribute.append(onnx.helper.make_attribute("value", converted))
                report.converted_initializers += 1
            new_nodes.append(node)
            continue

        for index, name in enumerate(node.input):
            name = renamed_outputs.get(name, name)
            node.input[index] = name
            original = original_of.get(name, name)
            if not is_f32(original):
                continue
            want = requirement(node, index, is_blocked)
            have = actual.get(original, "f32")
            if want is not None and want != have:
                if want == "f32" and position in kept_at and original in fp32_copy:
                    node.input[index] = fp32_copy[original]
                else:
                    node.input[index] = cast_to(name, want)

        if is_blocked:
            report.kept_nodes += 1
            for ref in sorted(_outer_refs(node)):
                source = renamed_outputs.get(ref, ref)
                original = original_of.get(source, source)
                if is_f32(original) and actual.get(original) == "new":
                    casted = cast_to(source, "f32")
                    for sub in _subgraphs(node):
                        _rename_in_graph(sub, ref, casted)
                elif source != ref:
                    for sub in _subgraphs(node):
                        _rename_in_graph(sub, ref, source)
        else:
            report.converted_nodes += 1
            if node.op_type == "Cast" and node.domain in STANDARD_DOMAINS:
                for attr in node.attribute:
                    if attr.name == "to" and attr.i == TP.FLOAT:
                        attr.i = new_type

        for index, name in enumerate(node.output):
            if name in renamed_outputs:
                node.output[index] = renamed_outputs[name]
        new_nodes.append(node)

    for name, produced in renamed_outputs.items():
        new_nodes.append(onnx.helper.make_node("Cast", [produced], [name], name=unique(f"trtops_cast_{name}"), to=TP.FLOAT))
        report.casts_inserted += 1

    del graph.node[:]
    graph.node.extend(new_nodes)
    # Intermediate types changed; TensorRT and ONNX Runtime infer them again.
    del graph.value_info[:]
    if keep:
        from trtops.prepare.kept import KeptRecord, write_record

        write_record(out, KeptRecord(keep, tuple(report.kept_fp32)))
    return out, report


def _kept_nodes(graph, keep: KeepLists, report: CastReport) -> set[int]:
    """Positions in ``graph.node`` of the nodes ``keep`` names (THE rule:
    :func:`trtops.node_select.select_nodes`); fills ``report.kept_fp32`` / ``keep_unmatched``."""
    if not keep:
        return set()
    from trtops.node_select import select_nodes, unmatched
    from trtops.onnx_facts import NodeRef

    refs = [NodeRef(i, n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output))
            for i, n in enumerate(graph.node)]
    chosen = select_nodes(refs, keep.keep_fp32, keep.keep_fp32_outputs)
    report.kept_fp32 = [n.name or next((o for o in n.outputs if o), "") for n in chosen]
    report.keep_unmatched = [u.pattern if u.field == "keep_fp32" else f"output {u.pattern}"
                             for u in unmatched(refs, keep.keep_fp32, keep.keep_fp32_outputs)]
    return {n.index for n in chosen}
