"""Facts about an ONNX model, read without loading its weights: THE one reader.

Two readers share the work, both leaving weights alone:

* a protobuf wire walker (:func:`model_facts`) finds the external-data locations and
  whether Q/DQ nodes exist anywhere a TensorRT parser would see them (the main graph,
  subgraphs in node attributes, model-local functions). It skips the bytes of embedded
  tensors and never imports ``onnx``, so a multi-GB model costs a few page reads: the
  planner and the fingerprints can afford it for every spec.
* a second walk over the main graph only (:func:`read_graph`, :func:`graph_nodes`) for
  its inputs with their dims, outputs, nodes and opsets, which the manifest checks and the
  builder's error messages need. Initializers contribute their names only: their data
  (raw_data, float_data, ...) is jumped over, never copied, so embedded weights cost no
  memory (``onnx.load`` would materialize all of them, even with
  ``load_external_data=False``; benchmarks/validate_memory.py measures the difference).

Results are memoized by (real path, size, mtime_ns). No tensorrt here.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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
_MODEL_METADATA_PROPS = 14
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
    metadata: dict[str, str] | None = None


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


def _fields(buf: memoryview, start: int, end: int):
    """(field number, wire type, value or (start, stop) of a length-delimited field)."""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise WireError("truncated field")
            yield number, wire, (pos, stop)
            pos = stop
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire}")
    if pos != end:
        raise WireError("field runs past its message")


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", errors="strict")


@contextmanager
def _mapped(path: str, empty: Exception) -> Iterator[memoryview]:
    """The model file as a read-only memoryview (mmap: weights are never copied in);
    ``empty`` is raised for a 0-byte file, which mmap cannot map."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise empty
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                yield view
            finally:
                view.release()


@contextmanager
def _graph_errors() -> Iterator[None]:
    try:
        yield
    except (WireError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read it as an ONNX model ({exc})") from None


def _opset(buf: memoryview, span: tuple[int, int]) -> tuple[str, int]:
    """(domain, version) of one ``opset_import`` entry."""
    domain, version = "", 0
    for field, wire, value in _fields(buf, *span):
        if field == 1 and wire == 2:
            domain = _text(buf, value)
        elif field == 2 and wire == 0:
            version = _signed(value)
    return domain, version


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
    for number, wire, value in _fields(buf, start, end):
        if wire == 0:
            if is_tensor and number == _TENSOR_DATA_LOCATION:
                external = value == _LOCATION_EXTERNAL
        elif wire == 2:
            pos, stop = value
            if kind == _MODEL and number == _MODEL_METADATA_PROPS:
                key, text = _string_pair(buf, pos, stop)
                out.metadata = {**(out.metadata or {}), key: text}
            elif is_tensor:
                if number == _TENSOR_EXTERNAL_DATA:
                    key, text = _string_pair(buf, pos, stop)
                    if key == "location":
                        location = text
            elif is_node and number == _NODE_OP_TYPE:
                if bytes(buf[pos:stop]).decode("utf-8", errors="replace") in QDQ_OPS:
                    out.has_qdq = True
            elif children is not None:
                child = children.get(number)
                if child is not None:
                    below = inference and not (kind == _MODEL and number == _MODEL_TRAINING_INFO)
                    _walk(buf, pos, stop, child, out, depth + 1, below)
    if is_tensor and external:
        if not location:
            raise WireError("a tensor stored externally has no 'location'")
        out.locations.setdefault(location, None)


def _string_pair(buf: memoryview, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for number, wire, span in _fields(buf, start, end):
        if wire == 2 and number in (1, 2):
            if number == 1:
                key = _text(buf, span)
            else:
                value = _text(buf, span)
    return key, value


@dataclass(frozen=True)
class ModelFacts:
    """What the wire walk finds: external-data locations (as written, relative to the
    model's directory, sorted), whether Q/DQ nodes exist, and the model's ``metadata_props``
    (sorted ``(key, value)`` pairs; the preparation stage records there what its cast kept in
    fp32, :mod:`trtops.prepare.kept`)."""

    external_data: tuple[str, ...]
    has_qdq: bool
    metadata: tuple[tuple[str, str], ...] = ()


def _scan(path: str) -> ModelFacts:
    out = _Found({})
    with _mapped(path, WireError("the file is empty")) as view:
        _walk(view, 0, len(view), _MODEL, out)
    return ModelFacts(tuple(sorted(out.locations)), out.has_qdq, tuple(sorted((out.metadata or {}).items())))


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
    nodes: tuple[NodeRef, ...] = ()  # the main graph's nodes, in file order
    opsets: dict[str, int] = dataclasses.field(default_factory=dict)  # domain ("" = ONNX) -> version

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
    domain: str = ""  # "" is the default ONNX domain
    # Tensor names as written ("" for an omitted optional input): keep_fp32_outputs names a
    # node by a tensor it writes, and repair follows the data flow.
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


# Field numbers of the messages that describe the main graph's interface (onnx.proto).
_M_OPSET, _M_GRAPH = 8, 7  # ModelProto
_G_NODE, _G_INIT, _G_INPUT, _G_OUTPUT, _G_SPARSE_INIT = 1, 5, 11, 12, 15  # GraphProto
_N_INPUT, _N_OUTPUT, _N_NAME, _N_OP, _N_DOMAIN = 1, 2, 3, 4, 7  # NodeProto
_T_NAME = 8  # TensorProto
_S_VALUES = 1  # SparseTensorProto
_V_NAME, _V_TYPE = 1, 2  # ValueInfoProto
_TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE, _DIM_PARAM = 1, 2, 1, 1, 2


@dataclass
class _Structure:
    opsets: dict[str, int]
    nodes: list[NodeRef]
    initializers: set[str]
    inputs: list[tuple[str, tuple[Dim, ...] | None]]
    outputs: list[str]
    has_graph: bool = False


def _string_field(buf: memoryview, span: tuple[int, int], number: int) -> str:
    found = ""
    for field, wire, value in _fields(buf, *span):
        if field == number and wire == 2:
            found = _text(buf, value)
    return found


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _value_info(buf: memoryview, span: tuple[int, int]) -> tuple[str, tuple[Dim, ...] | None]:
    # Mirrors what onnx.helper would say: no tensor type or no shape -> unknown rank; a
    # dim with neither a non-negative value nor a name -> unknown (None).
    name = ""
    dims: tuple[Dim, ...] | None = None
    for field, wire, value in _fields(buf, *span):
        if field == _V_NAME and wire == 2:
            name = _text(buf, value)
        elif field == _V_TYPE and wire == 2:
            dims = None
            for tfield, twire, tvalue in _fields(buf, *value):
                if tfield != _TYPE_TENSOR or twire != 2:
                    continue
                for sfield, swire, svalue in _fields(buf, *tvalue):
                    if sfield != _TENSOR_SHAPE or swire != 2:
                        continue
                    found: list[Dim] = []
                    for dfield, dwire, dvalue in _fields(buf, *svalue):
                        if dfield != _SHAPE_DIM or dwire != 2:
                            continue
                        dim: Dim = None
                        for field2, wire2, value2 in _fields(buf, *dvalue):
                            if field2 == _DIM_VALUE and wire2 == 0:
                                size = _signed(value2)
                                dim = size if size >= 0 else None
                            elif field2 == _DIM_PARAM and wire2 == 2:
                                text = _text(buf, value2)
                                dim = text or None
                        found.append(dim)
                    dims = tuple(found)
    return name, dims


def _graph_structure(buf: memoryview, span: tuple[int, int], out: _Structure) -> None:
    out.has_graph = True
    for field, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if field == _G_NODE:
            name = op = domain = ""
            node_inputs: list[str] = []
            node_outputs: list[str] = []
            for nfield, nwire, nvalue in _fields(buf, *value):
                if nwire != 2:
                    continue
                if nfield == _N_NAME:
                    name = _text(buf, nvalue)
                elif nfield == _N_OP:
                    op = _text(buf, nvalue)
                elif nfield == _N_DOMAIN:
                    domain = _text(buf, nvalue)
                elif nfield == _N_INPUT:
                    node_inputs.append(_text(buf, nvalue))
                elif nfield == _N_OUTPUT:
                    node_outputs.append(_text(buf, nvalue))
            out.nodes.append(NodeRef(len(out.nodes), name, op, domain, tuple(node_inputs), tuple(node_outputs)))
        elif field == _G_INIT:
            # Only the name: the walk jumps over raw_data and the typed data fields.
            out.initializers.add(_string_field(buf, value, _T_NAME))
        elif field == _G_SPARSE_INIT:
            for sfield, swire, svalue in _fields(buf, *value):
                if sfield == _S_VALUES and swire == 2:
                    out.initializers.add(_string_field(buf, svalue, _T_NAME))
        elif field == _G_INPUT:
            out.inputs.append(_value_info(buf, value))
        elif field == _G_OUTPUT:
            out.outputs.append(_value_info(buf, value)[0])


def _structure(path: str) -> _Structure:
    out = _Structure({}, [], set(), [], [])
    with _mapped(path, GraphError("it is not an ONNX model (the file is empty)")) as view, _graph_errors():
        for field, wire, value in _fields(view, 0, len(view)):
            if field == _M_GRAPH and wire == 2:
                _graph_structure(view, value, out)
            elif field == _M_OPSET and wire == 2:
                domain, version = _opset(view, value)
                out.opsets[domain] = version
    return out


@lru_cache(maxsize=64)
def _read_graph_cached(path: str, size: int, mtime_ns: int) -> GraphInfo:
    del size, mtime_ns  # part of the cache key only
    structure = _structure(path)
    if not structure.has_graph or not (structure.nodes or structure.inputs or structure.outputs):
        raise GraphError("it is not an ONNX model (no graph)")
    try:
        facts = _scan(path)
    except (WireError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read it as an ONNX model ({exc})") from None
    inputs = {name: dims for name, dims in structure.inputs if name not in structure.initializers}
    return GraphInfo(inputs, tuple(structure.outputs), facts.has_qdq, facts.external_data,
                     tuple(structure.nodes), dict(structure.opsets))


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
    return list(read_graph(path).nodes)


# --------------------------------------------------------------------------- ops and types
# What validate needs to tell what a TensorRT parser will refuse or narrow: every node (in
# subgraphs too) with which of its inputs are build-time constants and its integer/string
# attributes, the I/O element types. The same wire walk as above: weights are jumped over.

_N_ATTR = 5  # NodeProto
_A_NAME, _A_I, _A_S, _A_G, _A_GRAPHS = 1, 3, 4, 6, 11  # AttributeProto
_TENSOR_ELEM_TYPE = 1  # TypeProto.Tensor
_ELEM_TYPES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
               9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 16: "BFLOAT16"}


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


def _elem_type(buf: memoryview, span: tuple[int, int]) -> tuple[str, str]:
    """(name, element type name) of a ValueInfoProto."""
    name, elem = "", 0
    for field, wire, value in _fields(buf, *span):
        if field == _V_NAME and wire == 2:
            name = _text(buf, value)
        elif field == _V_TYPE and wire == 2:
            for tfield, twire, tvalue in _fields(buf, *value):
                if tfield == _TYPE_TENSOR and twire == 2:
                    for efield, ewire, evalue in _fields(buf, *tvalue):
                        if efield == _TENSOR_ELEM_TYPE and ewire == 0:
                            elem = evalue
    return name, _ELEM_TYPES.get(elem, "UNDEFINED" if not elem else f"TYPE{elem}")


def _graph_ops(buf: memoryview, span: tuple[int, int], constants: set[str], into: list[OpUse],
               depth: int = 0) -> None:
    if depth > 64:
        raise WireError("subgraphs nested too deeply")
    nodes = []
    constants = set(constants)
    for field, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if field == _G_INIT:
            constants.add(_string_field(buf, value, _T_NAME))
        elif field == _G_NODE:
            nodes.append(value)
    for span_node in nodes:
        name = op = domain = ""
        inputs: list[str] = []
        outputs: list[str] = []
        ints: list[tuple[str, int]] = []
        strings: list[tuple[str, str]] = []
        subgraphs: list[tuple[int, int]] = []
        for field, wire, value in _fields(buf, *span_node):
            if wire != 2:
                continue
            if field == _N_INPUT:
                inputs.append(_text(buf, value))
            elif field == _N_OUTPUT:
                outputs.append(_text(buf, value))
            elif field == _N_NAME:
                name = _text(buf, value)
            elif field == _N_OP:
                op = _text(buf, value)
            elif field == _N_DOMAIN:
                domain = _text(buf, value)
            elif field == _N_ATTR:
                attr_name, number, text = "", None, None
                for afield, awire, avalue in _fields(buf, *value):
                    if afield == _A_NAME and awire == 2:
                        attr_name = _text(buf, avalue)
                    elif afield == _A_I and awire == 0:
                        number = _signed(avalue)
                    elif afield == _A_S and awire == 2:
                        text = bytes(buf[avalue[0]:avalue[1]]).decode("utf-8", "replace")
                    elif afield in (_A_G, _A_GRAPHS) and awire == 2:
                        subgraphs.append(avalue)
                if number is not None:
                    ints.append((attr_name, number))
                if text is not None:
                    strings.append((attr_name, text))
        if op == "Constant" and domain in ("", "ai.onnx"):
            constants.update(outputs)
        into.append(OpUse(name, op, domain, tuple(not i or i in constants for i in inputs),
                          len([o for o in outputs if o]), tuple(ints), tuple(strings)))
        for sub in subgraphs:
            _graph_ops(buf, sub, constants, into, depth + 1)


def _ops_of(path: str) -> GraphOps:
    ops: list[OpUse] = []
    opsets: dict[str, int] = {}
    inputs: list[tuple[str, str]] = []
    outputs: list[tuple[str, str]] = []
    initializers: set[str] = set()
    with _mapped(path, GraphError("it is not an ONNX model (the file is empty)")) as view, _graph_errors():
        for field, wire, value in _fields(view, 0, len(view)):
            if field == _M_GRAPH and wire == 2:
                _graph_ops(view, value, set(), ops)
                for gfield, gwire, gvalue in _fields(view, *value):
                    if gwire != 2:
                        continue
                    if gfield == _G_INIT:
                        initializers.add(_string_field(view, gvalue, _T_NAME))
                    elif gfield == _G_INPUT:
                        inputs.append(_elem_type(view, gvalue))
                    elif gfield == _G_OUTPUT:
                        outputs.append(_elem_type(view, gvalue))
            elif field == _M_OPSET and wire == 2:
                domain, version = _opset(view, value)
                opsets[domain] = version
    return GraphOps(
        opset=max((v for d, v in opsets.items() if d in ("", "ai.onnx")), default=0),
        ops=tuple(ops),
        input_types={name: elem for name, elem in inputs if name not in initializers},
        output_types=dict(outputs),
    )


@lru_cache(maxsize=16)
def _read_ops_cached(path: str, size: int, mtime_ns: int) -> GraphOps:
    del size, mtime_ns  # part of the cache key only
    return _ops_of(path)


def read_ops(path: str | os.PathLike[str]) -> GraphOps:
    """The ops (subgraphs included), default-domain opset and I/O element types of an ONNX
    model, read from the protobuf wire without loading weights (memoized by path, size and
    mtime).

    Raises:
        GraphError: the file is not a readable ONNX model.
        OSError: the file cannot be stat'ed.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    return _read_ops_cached(real, st.st_size, st.st_mtime_ns)
