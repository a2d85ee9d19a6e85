"""Pure checks and messages around a parsed network (no tensorrt import): optimization
profiles against the network's inputs, and ONNX parser errors in readable form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from trtops.onnx_facts import NodeRef
from trtops.spec import InputRange


@dataclass(frozen=True)
class InputInfo:
    """A network input: name, shape (-1 for dynamic dims), numpy dtype, shape-tensor flag."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    is_shape_tensor: bool = False

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def check_profiles(inputs: Sequence[InputInfo], profiles: Sequence[Sequence[InputRange]]) -> list[str]:
    """Problems with ``profiles`` for a network with ``inputs`` (empty list: all good).

    Args:
        inputs: the network's inputs.
        profiles: optimization profiles, each a sequence of :class:`~trtops.spec.InputRange`.

    Returns:
        One human-readable line per problem.
    """
    problems: list[str] = []
    by_name = {i.name: i for i in inputs}
    for tensor in inputs:
        if tensor.is_shape_tensor:
            problems.append(f"input {tensor.name!r} is a shape tensor; trtops does not support shape-tensor inputs")
    dynamic = [i for i in inputs if i.dynamic and not i.is_shape_tensor]
    if not profiles:
        if dynamic:
            listed = ", ".join(f"{i.name} {_fmt(i.shape)}" for i in dynamic)
            problems.append(
                f"the model has dynamic inputs ({listed}); add 'profiles:' giving min/opt/max shapes for them"
            )
        return problems
    for index, profile in enumerate(profiles):
        named = {r.name for r in profile}
        for shape_range in profile:
            info = by_name.get(shape_range.name)
            if info is None:
                problems.append(
                    f"profile {index} names input {shape_range.name!r}, which the model does not have "
                    f"(inputs: {', '.join(sorted(by_name)) or 'none'})"
                )
                continue
            rank = len(info.shape)
            for label, shape in (("min", shape_range.min), ("opt", shape_range.opt), ("max", shape_range.max)):
                if len(shape) != rank:
                    problems.append(
                        f"profile {index}, input {info.name!r}: {label} {list(shape)} has rank {len(shape)}; "
                        f"the input {_fmt(info.shape)} has rank {rank}"
                    )
            if any(len(s) != rank for s in (shape_range.min, shape_range.opt, shape_range.max)):
                continue
            for axis, dim in enumerate(info.shape):
                lo, mid, hi = shape_range.min[axis], shape_range.opt[axis], shape_range.max[axis]
                if dim >= 0 and not lo == mid == hi == dim:
                    problems.append(
                        f"profile {index}, input {info.name!r}: axis {axis} is fixed to {dim} in the model, "
                        f"but the profile gives min/opt/max {lo}/{mid}/{hi}"
                    )
                elif not 1 <= lo <= mid <= hi:
                    problems.append(
                        f"profile {index}, input {info.name!r}: axis {axis} needs 1 <= min <= opt <= max, "
                        f"got {lo}/{mid}/{hi}"
                    )
        for info in dynamic:
            if info.name not in named:
                problems.append(
                    f"profile {index} does not give min/opt/max for dynamic input {info.name!r} {_fmt(info.shape)}"
                )
    return problems


@dataclass(frozen=True)
class ParserProblem:
    """One ONNX parser error, with the node it is about when known."""

    code: str
    description: str
    node_index: int = -1
    node_name: str | None = None
    op_type: str | None = None
    domain: str = ""  # the node's op domain ("" is ONNX), for its opset

    def render(self) -> str:
        if self.node_index >= 0 or self.node_name:
            name = self.node_name or "<unnamed>"
            op = f" ({self.op_type})" if self.op_type else ""
            where = f"node {self.node_index} {name!r}{op}" if self.node_index >= 0 else f"node {name!r}{op}"
            return f"{where}: {self.code}: {self.description}"
        return f"{self.code}: {self.description}"


def resolve_nodes(problems: Sequence[ParserProblem], nodes: Sequence[NodeRef]) -> list[ParserProblem]:
    """Fill node names and op types from the ONNX graph where the parser gave only an index
    (TensorRT 8.6's ``ParserError`` has ``node()`` but no ``node_name()``).

    Args:
        problems: parser problems as read from TensorRT.
        nodes: the model's main-graph nodes (:func:`trtops.onnx_facts.graph_nodes`).

    Returns:
        The problems, completed.
    """
    resolved = []
    for problem in problems:
        name, op, domain = problem.node_name, problem.op_type, problem.domain
        if 0 <= problem.node_index < len(nodes):
            node = nodes[problem.node_index]
            name = name or node.name or None
            op = op or node.op_type
            domain = domain or node.domain
        resolved.append(ParserProblem(problem.code, problem.description, problem.node_index, name, op, domain))
    return resolved


def parser_error_message(model: str, problems: Sequence[ParserProblem]) -> str:
    """One message for a failed parse: what failed and where."""
    if not problems:
        return f"TensorRT's ONNX parser could not parse {model} (no details given; see the build log)"
    lines = [f"TensorRT's ONNX parser could not parse {model}:"]
    lines += [f"  {p.render()}" for p in problems]
    return "\n".join(lines)
