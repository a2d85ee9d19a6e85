"""What each TensorRT generation's ONNX parser imports: data, from onnx-tensorrt's
operator support matrix (``docs/operators.md`` of the release branches: 8.5/8.6 "up to
Opset 17", 10.x "opset 9 to opset 24"), kept to what is knowable without TensorRT.

``validate`` asks :func:`parser_issues` per generation a target's ``tensorrt`` specifier
admits; an issue every admitted generation has is an error, one only some have is a
warning naming them. The lists are conservative: an op listed here is refused by that
parser as documented; an op not listed may still fail for reasons only TensorRT knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GENERATIONS = ("8.6", "10", "11")
# Versions that stand for a generation when matching a target's PEP 440 specifier.
_SAMPLE_VERSIONS = {
    "8.6": ("8.6.0", "8.6.1"),
    "10": ("10.0.1", "10.3.0", "10.8.0", "10.13.3.9", "10.15.1"),
    "11": ("11.0.0", "11.2.0"),
}
OPSET_RANGE = {"8.6": (1, 17), "10": (9, 24), "11": (9, 24)}

_SEQUENCES = frozenset({
    "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
    "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence",
    "Optional", "OptionalGetElement", "OptionalHasElement",
})
_ALWAYS = _SEQUENCES | frozenset({
    "Bernoulli", "BitShift", "Compress", "ConvInteger", "DFT", "Det", "DynamicQuantizeLinear",
    "MatMulInteger", "MaxRoiPool", "MaxUnpool", "MelWeightMatrix", "Multinomial",
    "NegativeLogLikelihoodLoss", "QLinearConv", "QLinearMatMul", "SoftmaxCrossEntropyLoss",
    "StringNormalizer", "TfIdfVectorizer", "Unique",
})
UNSUPPORTED_OPS = {
    "8.6": _ALWAYS | frozenset({"BlackmanWindow", "HammingWindow", "HannWindow", "Hardmax", "IsInf", "STFT"}),
    "10": _ALWAYS | frozenset({"AffineGrid", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "Col2Im",
                               "CenterCropPad", "ImageDecoder", "RegexFullMatch", "StringConcat", "StringSplit"}),
}
UNSUPPORTED_OPS["11"] = UNSUPPORTED_OPS["10"]

# Inputs the parser needs as build-time constants (an initializer or a Constant node's
# output): {op: {input position: name}}. 8.6 refuses computed Slice/Squeeze/Unsqueeze axes
# ("does not support dynamic axes"); folding constants makes them initializers.
CONSTANT_INPUTS = {
    "8.6": {"Slice": {3: "axes"}, "Squeeze": {1: "axes"}, "Unsqueeze": {1: "axes"},
            "CumSum": {1: "axis"}, "TopK": {1: "K"}},
    "10": {"CumSum": {1: "axis"}, "OneHot": {2: "depth"},
           **{op: {1: "axes"} for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                                         "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")}},
}
CONSTANT_INPUTS["11"] = CONSTANT_INPUTS["10"]

# Integer attributes with the only value the parser accepts: {op: {attribute: value}}.
REQUIRED_INTS = {
    "8.6": {},
    "10": {"LSTM": {"input_forget": 0, "layout": 0}, "TopK": {"sorted": 1}, "Resize": {"antialias": 0}},
}
REQUIRED_INTS["11"] = REQUIRED_INTS["10"]
# Element types of network inputs/outputs a generation narrows, and to what.
NARROWED_IO = {"8.6": {"INT64": "INT32", "DOUBLE": "FLOAT"}, "10": {"DOUBLE": "FLOAT"}, "11": {"DOUBLE": "FLOAT"}}
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})


@dataclass(frozen=True)
class ParserIssue:
    """Something one generation's parser refuses (``kind``: op, constant_input, attribute,
    opset, domain) or narrows (``narrowed``: a warning on its own)."""

    kind: str
    subject: str  # the op type (or "opset"): with kind, what makes issues of generations alike
    message: str
    hint: str


def generations_for(specifier: str) -> tuple[str, ...]:
    """The generations a target's ``tensorrt`` specifier admits (all for '' or 'any')."""
    if not specifier or specifier == "any":
        return GENERATIONS
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(specifier)
    return tuple(g for g in GENERATIONS if any(spec.contains(v, prereleases=True) for v in _SAMPLE_VERSIONS[g]))


def _node(op: Any) -> str:
    return f"{op.op_type} node {op.name!r}" if op.name else f"an unnamed {op.op_type} node"


def parser_issues(ops: Any, generation: str) -> list[ParserIssue]:
    """What the ``generation`` parser refuses in a model (:class:`trtops.onnx_facts.GraphOps`),
    one issue per kind and op (the first node named)."""
    issues: list[ParserIssue] = []
    low, high = OPSET_RANGE[generation]
    if ops.opset and not low <= ops.opset <= high:
        target = high if ops.opset > high else low
        issues.append(ParserIssue(
            "opset", "opset", f"the model uses ONNX opset {ops.opset}; TensorRT {generation} imports opsets {low} to {high}",
            f"add prepare: {{opset: {target}}} to convert it"))
    seen: set[tuple[str, str]] = set()

    def add(kind: str, op: Any, message: str, hint: str) -> None:
        if (kind, op.op_type) not in seen:
            seen.add((kind, op.op_type))
            issues.append(ParserIssue(kind, op.op_type, message, hint))

    for op in ops.ops:
        if op.domain not in STANDARD_DOMAINS:
            add("domain", op, f"{_node(op)} is in domain {op.domain!r}, which TensorRT {generation}'s parser "
                "has no importer for", "it needs a TensorRT plugin of that name (plugins: in the target), or "
                "re-export the model without framework-specific ops")
            continue
        if op.op_type in UNSUPPORTED_OPS[generation]:
            add("op", op, f"TensorRT {generation}'s ONNX parser has no importer for {op.op_type} ({_node(op)})",
                "re-export without it, replace it in the graph, or use a plugin")
            continue
        for position, name in CONSTANT_INPUTS[generation].get(op.op_type, {}).items():
            if position < len(op.constant_inputs) and not op.constant_inputs[position]:
                add("constant_input", op, f"TensorRT {generation} needs the {name!r} input of {op.op_type} as a "
                    f"build-time constant, and {_node(op)} computes it",
                    "add prepare: {fold_constants: true} (folding makes it a constant), or re-export with "
                    "constant folding")
        for attribute, wanted in REQUIRED_INTS[generation].get(op.op_type, {}).items():
            value = dict(op.ints).get(attribute)
            if value is not None and value != wanted:
                add("attribute", op, f"TensorRT {generation} imports {op.op_type} only with {attribute}={wanted}; "
                    f"{_node(op)} has {attribute}={value}", "re-export the model with the default for it")
        if op.op_type == "MaxPool" and op.outputs > 1:
            add("attribute", op, f"TensorRT {generation} cannot give MaxPool's Indices output ({_node(op)})",
                "re-export without the indices (return_indices=False)")
    return issues


def narrowed_io(ops: Any, generation: str) -> dict[str, tuple[str, str]]:
    """Inputs/outputs whose element type the generation narrows: ``{name: (from, to)}``."""
    narrow = NARROWED_IO[generation]
    tensors = {**ops.input_types, **ops.output_types}
    return {name: (elem, narrow[elem]) for name, elem in tensors.items() if elem in narrow}
