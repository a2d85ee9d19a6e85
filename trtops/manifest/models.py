"""Manifest schema v1 (Pydantic v2).

Every model inherits :class:`StrictModel`: frozen, ``extra="forbid"``, and a description on
every field so that ``trtops schema`` gives editors hover help. Validation errors are turned
into file:line messages only in :mod:`trtops.manifest.load`.
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal, NoReturn, Union

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trtops.capabilities import PRECISION_NAMES
from trtops.emit.registry import LOADER_NAMES
from trtops.names import (
    PERCENT_PATTERN,
    SHA256_RE,
    SIZE_PATTERN,
    identifier_problem,
    parse_byte_size,
    parse_percent,
    suggest_identifier,
)
from trtops.sources import DEFAULT_MAX_SIZE as DEFAULT_SOURCE_MAX_SIZE

# Error type of problems raised with :func:`fail`; ``ctx["at"]`` is the path of the offending
# value relative to the validated field/model, so that load.py can point at its exact line.
ERROR_TYPE = "trtops"


def fail(message: str, *at: str | int) -> NoReturn:
    """Raise a validation error located at ``at`` (relative to the field or model)."""
    # The message goes through ctx so that braces in user values are never formatted.
    raise PydanticCustomError(ERROR_TYPE, "{message}", {"message": message, "at": tuple(at)})

# The capability table (trtops.capabilities.PRECISIONS) is the one list of precisions.
Precision = Literal[PRECISION_NAMES]  # type: ignore[valid-type]
PRECISIONS: tuple[str, ...] = PRECISION_NAMES
Statistic = Literal["elemwise", "max", "mean", "median", "quantile"]
# The loader registry is the one list of loader names.
LoaderKind = Literal[LOADER_NAMES]  # type: ignore[valid-type]
HardwareCompatibility = Literal["none", "ampere_plus", "same_compute_capability"]
TacticSource = Literal["cublas", "cublas_lt", "cudnn", "edge_mask_convolutions", "jit_convolutions"]
TimingCachePolicy = Literal["shared", "read_only", "off"]
CalibrationAlgorithm = Literal["entropy", "minmax"]
CudaGraphPolicy = Literal["auto", "off"]
SelectPolicy = Literal["fastest"]
ReferenceRuntime = Literal["onnxruntime"]

MAX_BYTE_SIZE = 2**50  # 1 PiB: far beyond any GPU; bigger is a typo


def _byte_size(value: Any) -> int:
    size = parse_byte_size(value)  # the one size grammar (trtops.names)
    if size <= 0:
        raise ValueError("size must be positive")
    if size > MAX_BYTE_SIZE:
        raise ValueError("size is larger than 1PiB")
    return size


ByteSize = Annotated[
    int,
    BeforeValidator(_byte_size),
    WithJsonSchema({
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": rf"^{SIZE_PATTERN}$"},
        ],
        "examples": ["4GiB", "512MiB", 1073741824],
    }),
]


def _check_identifier(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    problem = identifier_problem(value)
    if problem is not None:
        # Shortened: a hostile manifest must not turn its error into megabytes of output.
        shown = (repr(value) if len(value) <= 80
                 else repr(value[:60]) + f"... ({len(value)} characters)")
        message = (f"{shown} is not a safe name: it {problem}; names use letters, digits "
                   "and '_', start with a letter or '_', and have at most 64 characters")
        suggestion = suggest_identifier(value)
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
        raise ValueError(message)
    if keyword.iskeyword(value):
        raise ValueError(f"{value!r} is a Python keyword; names become identifiers in "
                         "generated loaders, pick another")
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_check_identifier),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"}),
]

# Integers are strict: YAML's `true` or `3.5` is not a count.
Int = Annotated[int, Strict()]

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _check_relative_path(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("path is empty")
        if _CONTROL_RE.search(value):
            raise ValueError(f"path {value!r} contains control characters")
    return value


FilePath = Annotated[str, BeforeValidator(_check_relative_path)]


class StrictModel(BaseModel):
    """Base of every manifest model: unknown keys are errors, instances are immutable."""

    # No inf/nan anywhere: a tolerance of .inf or a range of .nan is never what was meant.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- targets


def _no_control(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL_RE.search(value):
        raise ValueError(f"{value!r} contains control characters")
    return value


class Target(StrictModel):
    """Where an engine runs: a GPU (by product name and/or compute capability) and a
    TensorRT version range. ``gpu: any`` means whatever GPU ``apply`` runs on."""

    gpu: Annotated[str, BeforeValidator(_no_control)] | None = Field(
        default=None,
        description="GPU product name as NVML reports it; shell-style wildcards allowed "
        "('NVIDIA H100*'). 'any' means the GPU that `trtops apply` runs on.",
    )
    compute_capability: Annotated[
        str, WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}\.\d$"})
    ] | None = Field(
        default=None,
        description="Compute capability 'major.minor' such as '8.9' or '9.0', quoted: "
        "YAML reads an unquoted 8.10 as the number 8.1.",
    )
    tensorrt: str = Field(
        default="",
        description="PEP 440 version specifier for TensorRT, e.g. '>=10.13,<10.14'. "
        "Empty means any version.",
    )
    hardware_compatibility: HardwareCompatibility = Field(
        default="none",
        description="Build engines that also run on other GPUs: 'ampere_plus' (any GPU of "
        "compute capability >= 8.0) or 'same_compute_capability' (TensorRT >= 10.9).",
    )
    version_compatible: bool = Field(
        default=False,
        description="Build a version-compatible engine that later TensorRT versions of the "
        "same major can run (needs the lean runtime).",
    )

    @field_validator("compute_capability", mode="before")
    @classmethod
    def _cc(cls, value: Any) -> Any:
        # Numbers are refused by the str type (with a hint to quote what was written):
        # converting them would read `8.10` as '8.1'.
        if isinstance(value, str) and not re.fullmatch(r"\d{1,2}\.\d", value.strip()):
            raise ValueError(f"expected 'major.minor' such as '8.9', got {value!r}")
        return value.strip() if isinstance(value, str) else value

    @field_validator("tensorrt")
    @classmethod
    def _specifier(cls, value: str) -> str:
        try:
            if _CONTROL_RE.search(value):
                raise InvalidSpecifier(value)
            SpecifierSet(value)
        except InvalidSpecifier as exc:
            raise ValueError(
                f"{value!r} is not a PEP 440 version specifier; write e.g. '>=10.13,<10.14'"
            ) from exc
        return value

    @model_validator(mode="after")
    def _needs_gpu(self) -> Target:
        if self.gpu is None and self.compute_capability is None:
            fail("a target needs 'gpu' (a product name or 'any') or 'compute_capability'")
        if self.gpu == "any" and self.compute_capability is not None:
            fail("'gpu: any' cannot be combined with 'compute_capability'", "compute_capability")
        return self

    @property
    def is_any(self) -> bool:
        return self.gpu == "any"


# TensorRT 8.6 dimensions are 32-bit.
Shape = list[Annotated[Int, Field(ge=1, le=2**31 - 1)]]


# --------------------------------------------------------------------------- performance


def _off(value: Any) -> Any:
    # YAML 1.1 reads an unquoted `off` as false; editors (YAML 1.2) see the string.
    return "off" if value is False else value


def _percent(value: Any) -> Any:
    if isinstance(value, str):
        fraction = parse_percent(value)  # the one percentage grammar (trtops.names)
        if fraction <= 0:
            raise ValueError("the allowed regression must be above 0%")
        return value.strip()
    raise ValueError(f"got {value!r}, which is not a percentage: write a number and '%', e.g. 10%")


Percent = Annotated[
    str,
    BeforeValidator(_percent),
    WithJsonSchema({"type": "string", "pattern": rf"^{PERCENT_PATTERN}$", "examples": ["10%", "2.5%"]}),
]


class Performance(StrictModel):
    """The performance gate: every accepted engine is measured on the GPU that built it
    (latency, throughput) and checked against budgets and against the previous engine.
    Under ``defaults:`` its fields apply to every model; a model's own field wins.
    Not part of the engine key: changing it never rebuilds an engine."""

    enabled: bool | None = Field(
        default=None, description="Measure engines (default true); false skips the "
        "measurement and the gate for this model.")
    shapes: dict[Identifier, dict[str, Shape]] | None = Field(
        default=None, description="Further named shape cases to measure besides each "
        "profile's opt shape, e.g. {batch1: {input: [1, 3, 224, 224]}}; every input of the "
        "profiles, each within a profile's min/max.")
    warmup: Int | None = Field(default=None, ge=0, le=100000,
                               description="Untimed runs before each repeat (default 20).")
    iterations: Int | None = Field(default=None, ge=1, le=1000000,
                                   description="Timed runs per repeat (default 200).")
    repeats: Int | None = Field(default=None, ge=1, le=100, description="Repeats of the "
                                "timed runs (default 5); their medians' spread is the noise "
                                "a regression must exceed.")
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Budget: the median latency (ms) at each profile's "
        "opt shape must not exceed it.")
    min_throughput: float | None = Field(
        default=None, gt=0, description="Budget: inferences per second (batch / median "
        "latency) at each profile's opt shape must reach it.")
    max_regression: Percent | None = Field(
        default=None, description="Largest slowdown of the median latency allowed against "
        "the previous accepted engine of the same model, precision and target on the same "
        "GPU, e.g. '10%'; a slowdown within the measured spread is never one.")
    cuda_graph: Annotated[
        CudaGraphPolicy, BeforeValidator(_off), WithJsonSchema({"enum": ["auto", "off", False]}),
    ] | None = Field(
        default=None, description="'auto' (default): time CUDA-graph replay where the engine "
        "allows it; 'off': plain enqueues.")
    max_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Most seconds of timed runs per shape case "
        "(default 2): a slow engine gets fewer iterations per repeat (never fewer than 10; "
        "perf.json records how many ran), so measuring stays a small part of apply.")


# --------------------------------------------------------------------------- build options


ConstantValue = float | list[Any]


def constant_layout(value: Any) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``(shape, row-major values)`` of a number or a rectangular nested list of numbers.

    Raises:
        ValueError: a ragged or empty list, or something that is not a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise ValueError(f"expected a number or a list of numbers, got {value!r}")
    if not isinstance(value, list):
        return (), (value,)
    if not value:
        raise ValueError("an empty list has no values to bind")
    parts = [constant_layout(item) for item in value]
    inner = parts[0][0]
    if any(shape != inner for shape, _ in parts):
        raise ValueError("the nested lists have different lengths (the value must be rectangular)")
    return (len(value), *inner), tuple(v for _, values in parts for v in values)


class PrepareOptions(StrictModel):
    """The model-preparation stage (trtops.prepare); every step with a safe default."""

    fold_constants: bool = Field(
        default=True, description="Fold constant subgraphs (onnx-graphsurgeon, evaluated with "
        "ONNX Runtime): shape arithmetic from Constant nodes becomes plain values.")
    infer_shapes: bool = Field(default=True, description="Run ONNX shape inference.")
    distinct_dims: bool = Field(
        default=True, description="Give dynamic dimensions that share a name across different "
        "axes (paddle2onnx's '?') a distinct name each, so TensorRT does not tie them together.")
    constants: dict[str, ConstantValue] = Field(
        default_factory=dict, description="Inputs bound to a constant value (e.g. {sr: 16000}); "
        "they leave the engine's inputs, and If nodes whose condition becomes constant are "
        "replaced by the branch taken.")
    opset: Int | None = Field(
        default=None, ge=7, le=30, description="Convert the model to this ONNX opset first "
        "(onnx.version_converter).")

    @field_validator("constants")
    @classmethod
    def _rectangular(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            try:
                constant_layout(item)
            except ValueError as exc:
                fail(str(exc), name)
        return value


class BuildOptions(StrictModel):
    """Builder settings. Given under ``defaults:`` they apply to every model; a model's own
    value wins."""

    workspace: ByteSize | None = Field(
        default=None,
        description="Workspace memory pool limit, e.g. '4GiB' or '64MiB'. "
        "Unset: TensorRT's default (device memory).",
    )
    builder_optimization_level: Int | None = Field(
        default=None, ge=0, le=5,
        description="Builder optimization level 0-5 (TensorRT default 3): higher builds "
        "slower and may run faster.",
    )
    tactic_sources: list[TacticSource] | None = Field(
        default=None,
        description="Tactic sources to enable (others disabled). Unset: TensorRT's default.",
    )
    max_aux_streams: Int | None = Field(
        default=None, ge=0, le=64,
        description="Maximum auxiliary streams TensorRT may use inside one inference.",
    )
    timing_cache: Annotated[
        TimingCachePolicy,
        BeforeValidator(_off),
        # false: what YAML 1.1 makes of an unquoted `off`, accepted as 'off'.
        WithJsonSchema({"enum": ["shared", "read_only", "off", False]}),
    ] | None = Field(
        default=None,
        description="'shared' (load before, merge after each build; default), 'read_only' "
        "(load, never write) or 'off'.",
    )
    prepare: PrepareOptions | None = Field(
        default=None,
        description="Prepare the ONNX model before TensorRT parses it (constant folding, shape "
        "inference, distinct dynamic dim names, inputs bound to constants with If nodes "
        "inlined, opset conversion). Unset: the model is built as it is. `trtops prepare` "
        "writes the prepared model and what changed.",
    )
    strongly_typed: bool | None = Field(
        default=None,
        description="Build a strongly typed network: every layer runs in the type its tensors "
        "have (fp16/bf16 from a model cast, int8/fp8 from Q/DQ nodes) instead of precision "
        "flags. Needs TensorRT >= 10; TensorRT 11 builds nothing else. Default false.",
    )
    performance: Performance | None = Field(
        default=None,
        description="The performance gate (latency/throughput measured after the accuracy "
        "check, budgets, max_regression). Engines are measured by default; "
        "{enabled: false} skips it. Not part of the engine key.",
    )

    @field_validator("tactic_sources")
    @classmethod
    def _unique_sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _fail_duplicates(value)
        return value


def _fail_duplicates(values: list[Any]) -> None:
    for index, item in enumerate(values):
        if item in values[:index]:
            fail(f"{item!r} is listed twice", index)


def _node_pattern(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise ValueError("a node name or pattern cannot be empty")
        if _CONTROL_RE.search(value):
            raise ValueError(f"{value!r} contains control characters")
    return value


# An ONNX node or tensor name, or a glob pattern of them (trtops.node_select).
NodePattern = Annotated[str, BeforeValidator(_node_pattern), Field(max_length=4096)]


# --------------------------------------------------------------------------- sources


class UrlSource(StrictModel):
    """A model downloaded once into the cache and checked against its sha256."""

    url: str = Field(description="https URL of the ONNX file (http only with allow_http: true).")
    sha256: str = Field(description="Expected sha256 of the file (64 lowercase hex digits); the "
                        "download is checked against it before it is used.")
    allow_http: bool = Field(False, description="Allow a plain http URL (and redirects to http).")
    max_size: ByteSize = Field(DEFAULT_SOURCE_MAX_SIZE, description="Largest file the download accepts "
                               "(default 2GiB); a bigger one is refused and nothing is kept.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+[^\s]*\Z", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if not SHA256_RE.match(value):
                raise ValueError("expected 64 hexadecimal digits")
        return value

    @model_validator(mode="after")
    def _scheme(self) -> "UrlSource":
        if self.url.startswith("http://") and not self.allow_http:
            raise ValueError("a plain http URL needs allow_http: true (use https where the server offers it)")
        return self


class PathSource(StrictModel):
    """An ONNX file relative to the manifest file."""

    path: FilePath = Field(description="Path of the ONNX file, relative to the manifest file.")


class _OrPathString:
    """JSON-schema annotation: the source may also be written as a plain path string."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        return {"anyOf": [
            {"type": "string", "description": "Path of the ONNX file, relative to the manifest file."},
            schema,
        ]}


def _source_before(value: Any) -> Any:
    if isinstance(value, str):
        return {"path": value}
    if not isinstance(value, (dict, PathSource, UrlSource)):
        raise ValueError(
            "expected a path relative to the manifest file, or a mapping {url: ..., sha256: ...}"
        )
    return value


def _source_kind(value: Any) -> str:
    if isinstance(value, UrlSource) or (isinstance(value, dict) and "url" in value):
        return "url-source"
    return "path-source"


# Tags of the source union; pydantic puts them into error locations (load.py drops them).
SOURCE_TAGS = ("path-source", "url-source")

Source = Annotated[
    Union[Annotated[PathSource, Tag("path-source")], Annotated[UrlSource, Tag("url-source")]],
    Discriminator(_source_kind),
    BeforeValidator(_source_before),
    _OrPathString(),
]


# --------------------------------------------------------------------------- profiles




class ShapeRange(StrictModel):
    """min/opt/max shape of one input in one optimization profile."""

    min: Shape = Field(description="Smallest shape, e.g. [1, 3, 256, 256].")
    opt: Shape = Field(description="Shape TensorRT optimizes for.")
    max: Shape = Field(description="Largest shape.")

    @model_validator(mode="after")
    def _ordered(self) -> ShapeRange:
        for name in ("opt", "max"):
            if len(getattr(self, name)) != len(self.min):
                fail(
                    f"min, opt and max must have one rank; got ranks {len(self.min)}, "
                    f"{len(self.opt)}, {len(self.max)}",
                    name,
                )
        for axis, (lo, mid, hi) in enumerate(zip(self.min, self.opt, self.max)):
            if not lo <= mid <= hi:
                fail(
                    f"axis {axis}: need min <= opt <= max, got {lo}, {mid}, {hi}",
                    "opt" if lo > mid else "max", axis,
                )
        return self


Profile = dict[str, ShapeRange]


# --------------------------------------------------------------------------- calibration


class Calibration(StrictModel):
    """INT8 calibration data for TensorRT's calibrator (8.6/10)."""

    data: FilePath = Field(
        description="An .npz file (one array per input, first axis = samples) or a "
        "directory of .npy files named after the inputs; relative to the manifest file.",
    )
    batch_size: Int = Field(default=8, ge=1, le=65536, description="Samples per calibration batch.")
    algorithm: CalibrationAlgorithm = Field(
        default="entropy", description="'entropy' (TensorRT's entropy calibrator 2) or 'minmax'."
    )
    max_batches: Int | None = Field(
        default=None, ge=1, description="Use at most this many batches (default: all)."
    )


# --------------------------------------------------------------------------- accuracy


class Tolerance(StrictModel):
    """How close an engine output must be to the reference."""

    atol: float | None = Field(default=None, ge=0, description="Absolute tolerance.")
    rtol: float | None = Field(default=None, ge=0, description="Relative tolerance.")
    stat: Statistic | None = Field(
        default=None,
        description="Which error statistic must be within tolerance: 'elemwise' (every "
        "element), 'max', 'mean', 'median' or 'quantile'.",
    )
    quantile: float | None = Field(
        default=None, gt=0, lt=1, description="Quantile for stat 'quantile', e.g. 0.99."
    )

    @model_validator(mode="after")
    def _quantile(self) -> Tolerance:
        if self.stat == "quantile" and self.quantile is None:
            fail("stat 'quantile' needs 'quantile' (e.g. 0.99)", "stat")
        if self.quantile is not None and self.stat not in (None, "quantile"):
            fail("'quantile' is only used with stat 'quantile'", "quantile")
        return self


class PrecisionTolerance(Tolerance):
    """Tolerance for one precision, optionally refined per output name."""

    outputs: dict[str, Tolerance] = Field(
        default_factory=dict, description="Per-output overrides, keyed by output name."
    )


class ValueRange(StrictModel):
    """Range of generated values for one input ([low, high))."""

    low: float = Field(description="Lowest value (inclusive).")
    high: float = Field(description="Highest value (exclusive for integers).")

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError("expected [low, high]")
            return {"low": value[0], "high": value[1]}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.low >= self.high:
            fail(f"low must be below high, got [{self.low}, {self.high}]")
        return self


_VALUE_RANGE_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        {
            "type": "object",
            "properties": {
                "low": {"type": "number", "description": "Lowest value (inclusive)."},
                "high": {"type": "number", "description": "Highest value (exclusive for integers)."},
            },
            "required": ["low", "high"],
            "additionalProperties": False,
        },
    ],
    "description": "[low, high] or {low, high}.",
}


class GeneratedInputs(StrictModel):
    """Random inputs, seeded, at the min, opt and max shape of every profile."""

    seed: Int = Field(default=1, ge=0, le=2**32 - 1, description="Random seed.")
    ranges: dict[str, Annotated[ValueRange, WithJsonSchema(_VALUE_RANGE_SCHEMA)]] = Field(
        default_factory=dict,
        description="Value range per input name, e.g. {input_ids: [0, 30522]}. "
        "Default: [0, 1) for floats, [0, 2) for integers, {0, 1} for booleans.",
    )


class Accuracy(StrictModel):
    """The accuracy gate: engines are compared with a reference runtime before publishing."""

    enabled: bool = Field(default=True, description="Set false to skip the check (not advised).")
    reference: ReferenceRuntime = Field(
        default="onnxruntime", description="Reference runtime (ONNX Runtime, CPU or CUDA)."
    )
    tolerances: dict[Precision, PrecisionTolerance] = Field(
        default_factory=dict,
        description="Per-precision tolerances; unset precisions use trtops' defaults.",
    )
    inputs: GeneratedInputs | None = Field(
        default=None, description="Generated inputs (default when no 'data' is given)."
    )
    data: FilePath | None = Field(
        default=None,
        description="User inputs: an .npz file or a directory of .npy files, relative to "
        "the manifest file. Pickled arrays are refused.",
    )
    iterations: Int = Field(default=1, ge=1, le=100, description="Input sets per shape.")

    @model_validator(mode="after")
    def _one_input_kind(self) -> Accuracy:
        if self.inputs is not None and self.data is not None:
            fail("give either 'inputs' (generated) or 'data' (files), not both", "data")
        return self


# --------------------------------------------------------------------------- models


class ModelSpec(BuildOptions):
    """One ONNX model and the engines to build from it."""

    name: Identifier = Field(description="Unique model name (letters, digits, '_').")
    source: Source = Field(
        description="ONNX file: a path relative to the manifest file, or {url, sha256}."
    )
    precisions: list[Precision] = Field(
        min_length=1, description=f"Precisions to build: {', '.join(PRECISION_NAMES)}."
    )
    profiles: list[Profile] = Field(
        default_factory=list,
        description="Optimization profiles; each maps every dynamic input to min/opt/max.",
    )
    calibration: Calibration | None = Field(
        default=None, description="INT8 calibration data (needed for int8 without Q/DQ nodes)."
    )
    accuracy: Accuracy = Field(default_factory=Accuracy, description="Accuracy gate settings.")
    loaders: list[LoaderKind] = Field(
        default_factory=list, description="Loaders to emit: " + ", ".join(map(repr, LOADER_NAMES)) + "."
    )
    targets: list[Identifier] | None = Field(
        default=None, description="Names of targets to build for (default: all targets)."
    )
    select: SelectPolicy | None = Field(
        default=None, description="'fastest': of the precisions that pass the accuracy "
        "check on a target, the one with the lowest median latency at the opt shape becomes "
        "the model's default loader (the others stay in the cache).",
    )
    keep_fp32: list[NodePattern] = Field(
        default_factory=list,
        description="ONNX node names (as in Netron or the exporter) or glob patterns "
        "('/blocks.*/norm/*') whose computation stays in fp32 in fp16, bf16, int8 and fp8 "
        "engines. `trtops repair` finds such a list for an engine that failed its accuracy gate.",
    )
    keep_fp32_outputs: list[NodePattern] = Field(
        default_factory=list,
        description="Tensor names or glob patterns (model outputs or intermediate tensors): the "
        "node that computes each stays in fp32, as with keep_fp32 (the way to name a node that "
        "has no name).",
    )

    @field_validator("keep_fp32", "keep_fp32_outputs")
    @classmethod
    def _unique_patterns(cls, value: list[str]) -> list[str]:
        _fail_duplicates(value)
        return value

    @field_validator("precisions", "loaders")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        _fail_duplicates(value)
        return value

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one target, or leave 'targets' out for all")
            _fail_duplicates(value)
        return value

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[dict[str, ShapeRange]]) -> list[dict[str, ShapeRange]]:
        for index, profile in enumerate(value):
            if not profile:
                fail(f"profile {index} is empty: map each dynamic input to min/opt/max", index)
        if value:
            names = set(value[0])
            for index, profile in enumerate(value[1:], start=1):
                if set(profile) != names:
                    fail(
                        f"profile {index} covers {sorted(profile)}, profile 0 covers "
                        f"{sorted(names)}: every profile must cover the same inputs",
                        index,
                    )
            for name in sorted(names):
                rank = len(value[0][name].min)
                for index, profile in enumerate(value[1:], start=1):
                    if len(profile[name].min) != rank:
                        fail(
                            f"input {name!r} has rank {len(profile[name].min)} here but rank "
                            f"{rank} in profile 0",
                            index, name, "min",
                        )
        return value

    # Cross-field checks that need line numbers of several places (tolerances naming
    # precisions that are not built, duplicate model names, unknown targets) live in
    # trtops.manifest.check.


#: Top-level keys with this prefix are ignored: a place for YAML anchors (as in docker compose).
EXTENSION_PREFIX = "x-"


class Manifest(StrictModel):
    """A trtops manifest (schema version 1). Top-level ``x-`` keys are ignored (for anchors)."""

    model_config = ConfigDict(json_schema_extra={"patternProperties": {f"^{EXTENSION_PREFIX}": {}}})

    version: Literal[1] = Field(description="Schema version; must be 1.")
    defaults: BuildOptions = Field(
        default_factory=BuildOptions, description="Build options inherited by every model."
    )
    targets: dict[Identifier, Target] = Field(
        min_length=1, description="Named targets: where engines run."
    )
    models: list[ModelSpec] = Field(min_length=1, description="Models to build engines from.")
