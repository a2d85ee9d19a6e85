"""Manifest schema v1 (Pydantic v2).

Every model inherits :class:`StrictModel`: frozen, ``extra="forbid"``, and a description on
every field so that ``trtops schema`` gives editors hover help. Validation errors are turned
into file:line messages only in :mod:`trtops.manifest.load`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Precision = Literal["fp32", "tf32", "fp16", "bf16", "int8", "fp8"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
Statistic = Literal["elemwise", "max", "mean", "median", "quantile"]
LoaderKind = Literal["python", "triton"]
HardwareCompatibility = Literal["none", "ampere_plus", "same_compute_capability"]
TacticSource = Literal["cublas", "cublas_lt", "cudnn", "edge_mask_convolutions", "jit_convolutions"]
TimingCachePolicy = Literal["shared", "read_only", "off"]
CalibrationAlgorithm = Literal["entropy", "minmax"]
ReferenceRuntime = Literal["onnxruntime"]

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_byte_size(value: Any) -> int:
    """``"4GiB"`` / ``"64 MiB"`` / ``"1.5GB"`` / ``1048576`` → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 4GiB or 64MiB, got a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("size must be positive")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            number, unit = match.groups()
            factor = _UNITS.get(unit.lower())
            if factor is not None:
                size = int(float(number) * factor)
                if size <= 0:
                    raise ValueError("size must be positive")
                return size
    raise ValueError(f"expected a size such as 4GiB, 512MiB or a number of bytes, got {value!r}")


ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]


def _check_identifier(value: str) -> str:
    if not IDENTIFIER_RE.match(value):
        raise ValueError(
            f"{value!r} is not a safe name: use letters, digits and '_', starting with a "
            "letter or '_', at most 64 characters"
        )
    return value


Identifier = Annotated[str, BeforeValidator(lambda v: _check_identifier(v) if isinstance(v, str) else v)]


class StrictModel(BaseModel):
    """Base of every manifest model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- targets


class Target(StrictModel):
    """Where an engine runs: a GPU (by product name and/or compute capability) and a
    TensorRT version range. ``gpu: any`` means whatever GPU ``apply`` runs on."""

    gpu: str | None = Field(
        default=None,
        description="GPU product name as NVML reports it; shell-style wildcards allowed "
        "('NVIDIA H100*'). 'any' means the GPU that `trtops apply` runs on.",
    )
    compute_capability: str | None = Field(
        default=None,
        description="Compute capability 'major.minor' such as '8.9' or '9.0'.",
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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not re.fullmatch(r"\d{1,2}\.\d", value):
            raise ValueError(f"expected 'major.minor' such as '8.9', got {value!r}")
        return value

    @field_validator("tensorrt")
    @classmethod
    def _specifier(cls, value: str) -> str:
        try:
            SpecifierSet(value)
        except InvalidSpecifier as exc:
            raise ValueError(
                f"{value!r} is not a PEP 440 version specifier; write e.g. '>=10.13,<10.14'"
            ) from exc
        return value

    @model_validator(mode="after")
    def _needs_gpu(self) -> Target:
        if self.gpu is None and self.compute_capability is None:
            raise ValueError("a target needs 'gpu' (a product name or 'any') or 'compute_capability'")
        if self.gpu == "any" and self.compute_capability is not None:
            raise ValueError("'gpu: any' cannot be combined with 'compute_capability'")
        return self

    @property
    def is_any(self) -> bool:
        return self.gpu == "any"


# --------------------------------------------------------------------------- build options


class BuildOptions(StrictModel):
    """Builder settings. Given under ``defaults:`` they apply to every model; a model's own
    value wins."""

    workspace: ByteSize | None = Field(
        default=None,
        description="Workspace memory pool limit, e.g. '4GiB' or '64MiB'. "
        "Unset: TensorRT's default (device memory).",
    )
    builder_optimization_level: int | None = Field(
        default=None, ge=0, le=5,
        description="Builder optimization level 0-5 (TensorRT default 3): higher builds "
        "slower and may run faster.",
    )
    tactic_sources: list[TacticSource] | None = Field(
        default=None,
        description="Tactic sources to enable (others disabled). Unset: TensorRT's default.",
    )
    max_aux_streams: int | None = Field(
        default=None, ge=0, le=64,
        description="Maximum auxiliary streams TensorRT may use inside one inference.",
    )
    timing_cache: TimingCachePolicy | None = Field(
        default=None,
        description="'shared' (load before, merge after each build; default), 'read_only' "
        "(load, never write) or 'off'.",
    )

    @field_validator("tactic_sources")
    @classmethod
    def _unique_sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("tactic sources are listed twice")
        return value


BUILD_DEFAULTS: dict[str, Any] = {
    "workspace": None,
    "builder_optimization_level": 3,
    "tactic_sources": None,
    "max_aux_streams": None,
    "timing_cache": "shared",
}


# --------------------------------------------------------------------------- sources


class UrlSource(StrictModel):
    """A model downloaded once into the cache and checked against its sha256."""

    url: str = Field(description="http(s) URL of the ONNX file.")
    sha256: str = Field(description="Expected sha256 of the file (64 lowercase hex digits).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
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


class PathSource(StrictModel):
    """An ONNX file relative to the manifest file."""

    path: str = Field(description="Path of the ONNX file, relative to the manifest file.")


def _source_before(value: Any) -> Any:
    if isinstance(value, str):
        return {"path": value}
    return value


Source = Annotated[Union[PathSource, UrlSource], BeforeValidator(_source_before)]


# --------------------------------------------------------------------------- profiles


Shape = list[Annotated[int, Field(ge=1)]]


class ShapeRange(StrictModel):
    """min/opt/max shape of one input in one optimization profile."""

    min: Shape = Field(description="Smallest shape, e.g. [1, 3, 256, 256].")
    opt: Shape = Field(description="Shape TensorRT optimizes for.")
    max: Shape = Field(description="Largest shape.")

    @model_validator(mode="after")
    def _ordered(self) -> ShapeRange:
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError(
                f"min, opt and max must have one rank; got ranks {len(self.min)}, "
                f"{len(self.opt)}, {len(self.max)}"
            )
        for axis, (lo, mid, hi) in enumerate(zip(self.min, self.opt, self.max)):
            if not lo <= mid <= hi:
                raise ValueError(
                    f"axis {axis}: need min <= opt <= max, got {lo}, {mid}, {hi}"
                )
        return self


Profile = dict[str, ShapeRange]


# --------------------------------------------------------------------------- calibration


class Calibration(StrictModel):
    """INT8 calibration data for TensorRT's calibrator (8.6/10)."""

    data: str = Field(
        description="An .npz file (one array per input, first axis = samples) or a "
        "directory of .npy files named after the inputs; relative to the manifest file.",
    )
    batch_size: int = Field(default=8, ge=1, description="Samples per calibration batch.")
    algorithm: CalibrationAlgorithm = Field(
        default="entropy", description="'entropy' (TensorRT's entropy calibrator 2) or 'minmax'."
    )
    max_batches: int | None = Field(
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
            raise ValueError("stat 'quantile' needs 'quantile' (e.g. 0.99)")
        if self.quantile is not None and self.stat not in (None, "quantile"):
            raise ValueError("'quantile' is only used with stat 'quantile'")
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
            raise ValueError(f"low must be below high, got [{self.low}, {self.high}]")
        return self


class GeneratedInputs(StrictModel):
    """Random inputs, seeded, at the min, opt and max shape of every profile."""

    seed: int = Field(default=1, description="Random seed.")
    ranges: dict[str, ValueRange] = Field(
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
    data: str | None = Field(
        default=None,
        description="User inputs: an .npz file or a directory of .npy files, relative to "
        "the manifest file. Pickled arrays are refused.",
    )
    iterations: int = Field(default=1, ge=1, le=100, description="Input sets per shape.")

    @model_validator(mode="after")
    def _one_input_kind(self) -> Accuracy:
        if self.inputs is not None and self.data is not None:
            raise ValueError("give either 'inputs' (generated) or 'data' (files), not both")
        return self


# --------------------------------------------------------------------------- models


class ModelSpec(BuildOptions):
    """One ONNX model and the engines to build from it."""

    name: Identifier = Field(description="Unique model name (letters, digits, '_').")
    source: Source = Field(
        description="ONNX file: a path relative to the manifest file, or {url, sha256}."
    )
    precisions: list[Precision] = Field(
        min_length=1, description="Precisions to build: fp32, tf32, fp16, bf16, int8, fp8."
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
        default_factory=list, description="Loaders to emit: 'python', 'triton'."
    )
    targets: list[Identifier] | None = Field(
        default=None, description="Names of targets to build for (default: all targets)."
    )

    @field_validator("precisions", "loaders")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen = [v for i, v in enumerate(value) if v in value[:i]]
        if seen:
            raise ValueError(f"{seen[0]!r} is listed twice")
        return value

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one target, or leave 'targets' out for all")
            seen = [v for i, v in enumerate(value) if v in value[:i]]
            if seen:
                raise ValueError(f"{seen[0]!r} is listed twice")
        return value

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[dict[str, ShapeRange]]) -> list[dict[str, ShapeRange]]:
        for index, profile in enumerate(value):
            if not profile:
                raise ValueError(f"profile {index} is empty: map each dynamic input to min/opt/max")
        if value:
            names = set(value[0])
            for index, profile in enumerate(value[1:], start=1):
                if set(profile) != names:
                    raise ValueError(
                        f"profile {index} covers {sorted(profile)}, profile 0 covers "
                        f"{sorted(names)}: every profile must cover the same inputs"
                    )
            for name in names:
                ranks = {len(p[name].min) for p in value}
                if len(ranks) > 1:
                    raise ValueError(f"input {name!r} has different ranks across profiles")
        return value

    @model_validator(mode="after")
    def _precision_needs(self) -> ModelSpec:
        for precision in self.accuracy.tolerances:
            if precision not in self.precisions:
                raise ValueError(
                    f"accuracy.tolerances names {precision!r}, which is not in precisions "
                    f"{self.precisions}"
                )
        return self


class Manifest(StrictModel):
    """A trtops manifest (schema version 1)."""

    version: Literal[1] = Field(description="Schema version; must be 1.")
    defaults: BuildOptions = Field(
        default_factory=BuildOptions, description="Build options inherited by every model."
    )
    targets: dict[Identifier, Target] = Field(
        min_length=1, description="Named targets: where engines run."
    )
    models: list[ModelSpec] = Field(min_length=1, description="Models to build engines from.")

    @model_validator(mode="after")
    def _cross(self) -> Manifest:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model name {dupes[0]!r} is used twice in this file")
        return self
