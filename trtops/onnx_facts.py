"""Facts about an ONNX model, read without loading its weights: THE one reader.

Two readers share the work, both leaving weights alone:

* a protobuf wire walker (:func:`model_facts`) finds the external-data locations and
  whether Q/DQ nodes exist anywhere a TensorRT parser would see them (the main graph,
  subgraphs in node attributes, model-local functions). It skips the bytes of embedded
  tensors and never imports ``onnx``, so a multi-GB model costs a few page reads: the
  planner and the fingerprints can afford it for every spec.
* ``onnx.load(load_external_data=False)`` (:func:`read_graph`, :func:`graph_nodes`) for the
  graph's inputs with their dims, outputs and nodes, which the manifest checks and the
  builder's error messages need. ``onnx`` is imported lazily.

Results are memoized by (real path, size, mtime_ns). No tensorrt here.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from trtops.errors import InputError

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})

Dim = int | str | None  # static size, symbolic name, unknown


# --------------------------------------------------------------------------- wire walker

# Protobuf field numbers of the onnx.proto messages that can hold tensors or nodes.
_MODEL, _GRAPH, _NODE, _ATTR, _FUNC, _TENSOR, _SPARSE, _TRAINING = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNC},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _FUNC: {7: _NODE, 11: _ATTR},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_MODEL_TRAINING_INFO = 20
_NODE_OP_TYPE = 4
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14
_LOCATION_EXTERNAL = 1


class WireError(ValueError):
    """The bytes are not a well-formed ONNX protobuf."""


@dataclass
class _Found:
    locations: dict[str, None]
    has_qdq: bool = False


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def _walk(buf: memoryview, start: int, end: int, kind: int, out: _Found, depth: int = 0,
          inference: bool = True) -> None:
    # ``inference``: outside training info, whose graphs TensorRT never parses (their
    # nodes do not make a model quantized; their tensors are still external data).
    if depth > 200:
        raise WireError("messages nested too deeply")
    children = _CHILDREN.get(kind)
    is_tensor = kind == _TENSOR
    is_node = kind == _NODE and inference
    location: str | None = None
    external = False
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            if is_tensor and number == _TENSOR_DATA_LOCATION:
                external = value == _LOCATION_EXTERNAL
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise WireError("truncated field")
            if is_tensor:
                if number == _TENSOR_EXTERNAL_DATA:
                    key, value = _string_pair(buf, pos, stop)
                    if key == "location":
                        location = value
            elif is_node and number == _NODE_OP_TYPE:
                if bytes(buf[pos:stop]).decode("utf-8", errors="replace") in QDQ_OPS:
                    out.has_qdq = True
            elif children is not None:
                child = children.get(number)
                if child is not None:
                    below = inference and not (kind == _MODEL and number == _MODEL_TRAINING_INFO)
                    _walk(buf, pos, stop, child, out, depth + 1, below)
            pos = stop
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire}")
    if pos != end:
        raise WireError("field runs past its message")
    if is_tensor and external:
        if not location:
            raise WireError("a tensor stored externally has no 'location'")
        out.locations.setdefault(location, None)


def _string_pair(buf: memoryview, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _varint(buf, pos, end)
            text = bytes(buf[pos : pos + length]).decode("utf-8", errors="strict")
            pos += length
            if number == 1:
                key = text
            elif number == 2:
                value = text
        elif wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire}")
    return key, value


@dataclass(frozen=True)
class ModelFacts:
    """What the wire walk finds: external-data locations (as written, relative to the
    model's directory, sorted) and whether Q/DQ nodes exist."""

    external_data: tuple[str, ...]
    has_qdq: bool


def _scan(path: str) -> ModelFacts:
    out = _Found({})
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise WireError("the file is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                _walk(view, 0, size, _MODEL, out)
            finally:
                view.release()
    return ModelFacts(tuple(sorted(out.locations)), out.has_qdq)


@lru_cache(maxsize=256)
def _scan_cached(path: str, size: int, mtime_ns: int) -> ModelFacts:
    del size, mtime_ns  # part of the cache key only
    return _scan(path)


def model_facts(path: str | os.PathLike[str]) -> ModelFacts:
    """External-data locations and Q/DQ presence of an ONNX model, without its weights and
    without importing ``onnx`` (memoized by path, size and mtime).

    Args:
        path: the ONNX file.

    Returns:
        :class:`ModelFacts`.

    Raises:
        InputError: the file is not a valid ONNX protobuf.
        OSError: the file cannot be read.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    try:
        return _scan_cached(real, st.st_size, st.st_mtime_ns)
    except (WireError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path} is not a valid ONNX model ({exc})",
            hint="check that `source` points at an .onnx file (onnx.checker.check_model)",
        ) from None


def external_data_locations(path: str | os.PathLike[str]) -> list[str]:
    """Locations of the external-data files an ONNX model references, as written in the
    model (relative to the model's directory), sorted: graphs, subgraphs in node
    attributes, functions, training info and sparse tensors are all looked at.

    Raises:
        InputError: when the file is not a valid ONNX protobuf.
    """
    return list(model_facts(path).external_data)


def model_has_qdq(path: str | os.PathLike[str]) -> bool:
    """Whether the model is explicitly quantized: QuantizeLinear/DequantizeLinear nodes in
    its graph, in subgraphs of node attributes or in its functions.

    Raises:
        InputError: when the file is not a valid ONNX protobuf.
    """
    return model_facts(path).has_qdq


def try_model_has_qdq(path: str | os.PathLike[str]) -> bool | None:
    """:func:`model_has_qdq`, or ``None`` when the file is missing or unreadable (the
    planner then does not hold Q/DQ needs against a build)."""
    try:
        return model_has_qdq(path)
    except (InputError, OSError, ValueError):
        return None


# --------------------------------------------------------------------------- graph structure


@dataclass(frozen=True)
class GraphInfo:
    """The main graph's interface, plus the wire walk's facts."""

    inputs: dict[str, tuple[Dim, ...] | None]  # real inputs (not initializers); None: unknown rank
    outputs: tuple[str, ...]
    has_qdq: bool
    external_data: tuple[str, ...]  # locations of external weight files, as written

    def dynamic_inputs(self) -> dict[str, tuple[Dim, ...] | None]:
        """Inputs with a symbolic or unknown dimension (or unknown rank)."""
        return {name: dims for name, dims in self.inputs.items()
                if dims is None or any(not isinstance(d, int) for d in dims)}


class GraphError(Exception):
    """The file could not be read as an ONNX model."""


@dataclass(frozen=True)
class NodeRef:
    """One node of the main graph: its index (as TensorRT's parser reports it), name, op."""

    index: int
    name: str
    op_type: str


def _dims(value_info: Any) -> tuple[Dim, ...] | None:
    tensor = value_info.type.tensor_type if value_info.type.HasField("tensor_type") else None
    if tensor is None or not tensor.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def _load_structure(path: str) -> Any:
    import onnx  # heavy: only when a graph's structure is needed

    try:
        return onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise GraphError(f"cannot read it as an ONNX model ({type(exc).__name__}: {exc})") from None


@lru_cache(maxsize=64)
def _read_graph_cached(path: str, size: int, mtime_ns: int) -> GraphInfo:
    del size, mtime_ns  # part of the cache key only
    graph = _load_structure(path).graph
    if not graph.node and not graph.input and not graph.output:
        raise GraphError("it is not an ONNX model (no graph)")
    try:
        facts = _scan(path)
    except (WireError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read it as an ONNX model ({exc})") from None
    initializers = {t.name for t in graph.initializer}
    inputs = {vi.name: _dims(vi) for vi in graph.input if vi.name not in initializers}
    return GraphInfo(inputs, tuple(o.name for o in graph.output), facts.has_qdq, facts.external_data)


def read_graph(path: str | os.PathLike[str]) -> GraphInfo:
    """Inputs (with dims), outputs, Q/DQ presence and external-data locations of an ONNX
    model, without its external weights (memoized by path, size and mtime).

    Raises:
        GraphError: the file is not a readable ONNX model.
        OSError: the file cannot be stat'ed.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    return _read_graph_cached(real, st.st_size, st.st_mtime_ns)


def graph_nodes(path: str | Path) -> list[NodeRef]:
    """The main graph's nodes in file order (index = TensorRT parser ``node()`` index).

    Args:
        path: the ONNX file.

    Returns:
        One :class:`NodeRef` per node; unnamed nodes get ``""``.

    Raises:
        GraphError: the file is not a readable ONNX model.
    """
    graph = _load_structure(str(path)).graph
    return [NodeRef(i, node.name, node.op_type) for i, node in enumerate(graph.node)]


# --------------------------------------------------------------------------- ops and types
# (what validate needs to tell what a TensorRT parser will refuse or narrow)


@dataclass(frozen=True)
class OpUse:
    """One node as a parser sees it: op, domain, which inputs are build-time constants
    (an initializer or a Constant node's output), attributes that restrict import."""

    name: str
    op_type: str
    domain: str
    constant_inputs: tuple[bool, ...]  # per input position ('' inputs count as constant)
    outputs: int
    ints: tuple[tuple[str, int], ...]  # integer attributes (layout, input_forget, sorted...)
    strings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GraphOps:
    """Ops of the main graph and its subgraphs, the default-domain opset and the element
    types (``TensorProto`` names, ``FLOAT``...) of the real inputs and the outputs."""

    opset: int
    ops: tuple[OpUse, ...]
    input_types: dict[str, str]
    output_types: dict[str, str]


def _op_uses(graph: Any, constants: set[str], into: list[OpUse]) -> None:
    constants = constants | {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            constants |= set(node.output)
        ints = tuple((a.name, int(a.i)) for a in node.attribute if a.type == 2)  # AttributeProto.INT
        strings = tuple((a.name, a.s.decode("utf-8", "replace")) for a in node.attribute if a.type == 3)
        into.append(OpUse(node.name, node.op_type, node.domain or "",
                          tuple(not i or i in constants for i in node.input),
                          len([o for o in node.output if o]), ints, strings))
        for attr in node.attribute:
            subs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
            for sub in subs:
                _op_uses(sub, constants, into)


def read_ops(path: str | os.PathLike[str]) -> GraphOps:
    """The ops, opset and I/O element types of an ONNX model (external weights not read;
    memoized by path, size and mtime).

    Raises:
        GraphError: the file is not a readable ONNX model.
        OSError: the file cannot be stat'ed.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    return _read_ops_cached(real, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _read_ops_cached(path: str, size: int, mtime_ns: int) -> GraphOps:
    del size, mtime_ns  # part of the cache key only
    import onnx

    model = _load_structure(path)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    ops: list[OpUse] = []
    _op_uses(model.graph, set(), ops)
    initializers = {t.name for t in model.graph.initializer}

    def type_name(value: Any) -> str:
        elem = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
        return onnx.TensorProto.DataType.Name(elem) if elem else "UNDEFINED"

    return GraphOps(
        opset=opset,
        ops=tuple(ops),
        input_types={v.name: type_name(v) for v in model.graph.input if v.name not in initializers},
        output_types={v.name: type_name(v) for v in model.graph.output},
    )
