"""The one schema of an entry's ``meta.json``, ``accuracy.json`` and ``perf.json``.

Writers (:func:`trtops.cache.layout.make_meta`, :func:`trtops.cache.entries.publish_entry`,
the accuracy gate) check what they write against it, and every reader checks what it
reads against it, so a field the writer could never produce (``size: "big"``, ``gpu:
"NVIDIA H100"``, ``io: [1, 2]``, a shape of strings, a TensorRT version that is no version)
is refused at the door with its field named, instead of crashing whatever reads it later.
A remote is shared: its entries are untrusted input (see ``docs/guarantees.md``).

Stored metadata is parsed by :func:`parse_document` only: at most
:data:`MAX_METADATA_BYTES`, and nesting too deep for the parser is a refusal, not a crash.
``NaN`` and ``Infinity`` (which Python's parser accepts but no trtops writer produces:
they write with ``allow_nan=False``) are refused too: a median of NaN read as a baseline
would otherwise pass the schema and crash the next write of a verdict or a lock.
Unknown top-level fields are allowed (builders may add facts; readers ignore them).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

#: Largest meta.json / accuracy.json / ref a reader accepts (a real one is a few KiB).
MAX_METADATA_BYTES = 1 << 20


class EntryInvalid(ValueError):
    """A stored document does not follow the schema; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_document(data: bytes, what: str) -> Any:
    """Parse stored JSON, size-capped and depth-safe.

    Raises:
        EntryInvalid: too large, not UTF-8 JSON (NaN and Infinity included), or nested
            too deeply to parse.
    """
    if len(data) > MAX_METADATA_BYTES:
        raise EntryInvalid(f"{what} is larger than {MAX_METADATA_BYTES >> 20} MiB "
                           f"({len(data)} bytes or more)")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise EntryInvalid(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise EntryInvalid(f"{what} is not valid JSON ({str(exc)[:120]})") from None


# --------------------------------------------------------------------------- field types

Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]  # as names.SHA256_RE
Size = Annotated[StrictInt, Field(ge=0)]
Number = Union[StrictInt, StrictFloat]
Dim = Annotated[StrictInt, Field(ge=-1)]  # -1: dynamic
Shape = Annotated[list[Dim], Field(max_length=64)]
Name = Annotated[StrictStr, Field(max_length=1024)]
_FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # as layout.check_file_name
_VERSION = r"^\d+(\.\d+){0,5}$"  # a full TensorRT version (as keys.platform checks one)


class _Part(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FileInfo(_Part):
    sha256: Sha256
    size: Size


class Tensor(_Part):
    name: Name
    mode: Literal["input", "output"]
    dtype: Annotated[StrictStr, Field(max_length=32)]
    shape: Shape


class ShapeRange(_Part):
    min: Shape
    opt: Shape
    max: Shape


class EngineIOFacts(_Part):
    tensors: list[Tensor]
    profiles: list[dict[Name, ShapeRange]] = []


class BuiltOn(_Part):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    name: Name
    compute_capability: Annotated[StrictStr, Field(pattern=r"^\d+\.\d+$")]


class Meta(BaseModel):
    """``meta.json`` (see :func:`trtops.cache.layout.make_meta` for what each field is)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    format: Annotated[StrictInt, Field(ge=1)] = 1
    key: Sha256
    spec_id: Annotated[StrictStr, Field(max_length=600)]
    components: dict[StrictStr, Any]
    model: dict[StrictStr, Any] = {}
    engine_sha256: Sha256
    engine_size: Size
    created_at: StrictStr | None = None
    build_seconds: Number | None = None
    device_memory: Size | None = None
    io_tensors: list[Tensor] = []
    tensorrt_version: Annotated[StrictStr, Field(pattern=_VERSION)] | None = None
    gpu: BuiltOn | None = None
    files: dict[Annotated[StrictStr, Field(pattern=_FILE_NAME)], FileInfo] = {}
    # builder extras apply writes (trtops.ops.apply)
    io: EngineIOFacts | None = None
    precision: StrictStr | None = None
    target: StrictStr | None = None
    hardware_compatibility: Literal["none", "ampere_plus", "same_compute_capability"] | None = None
    version_compatible: StrictBool | None = None

    @field_validator("created_at")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        from datetime import datetime

        if value is not None:
            text = value.strip()
            datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        return value  # (layout.parse_time reads it; a ValueError above names the field)


class AbsHistogram(_Part):
    """An output's |error| in log-spaced bins (:mod:`trtops.gate.histogram`); optional, so
    accuracy.json files written before it read the same."""

    log10_min: Annotated[Number, Field(ge=-400, le=400)]
    log10_max: Annotated[Number, Field(ge=-400, le=400)]
    counts: Annotated[list[Size], Field(min_length=1, max_length=256)]
    zeros: Size = 0

    @model_validator(mode="after")
    def _axis(self) -> AbsHistogram:
        if not self.log10_min < self.log10_max:
            raise ValueError("log10_min must be below log10_max")
        return self


class OutputCheck(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    name: Name
    passed: StrictBool
    stat: StrictStr | None = None
    atol: Number | None = None
    rtol: Number | None = None
    max_abs: Number | None = None
    mean_abs: Number | None = None
    median_abs: Number | None = None
    max_rel: Number | None = None
    mean_rel: Number | None = None
    median_rel: Number | None = None
    cosine: Number | None = None
    elements: Size | None = None
    mismatches: Size | None = None
    nonfinite: Size | None = None
    excess: Number | None = None
    shape: Shape | None = None
    quantile: Number | None = None
    quantile_abs: Number | None = None
    quantile_rel: Number | None = None
    reason: StrictStr | None = None
    abs_histogram: AbsHistogram | None = None


class CaseCheck(_Part):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    label: StrictStr
    profile: Size
    shapes: dict[Name, Shape] = {}
    passed: StrictBool | None = None
    error: StrictStr | None = None
    outputs: list[OutputCheck] = []


class Counts(_Part):
    cases: Size
    checks: Size
    failed: Size


class Accuracy(BaseModel):
    """``accuracy.json`` (see :mod:`trtops.gate.report` for what each field is)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, populate_by_name=True)

    schema_version: Annotated[StrictInt, Field(ge=1)] | None = Field(None, alias="schema")
    state: Literal["accepted", "rejected", "unverified"] = "unverified"
    summary: StrictStr | None = None
    checked_at: StrictStr | None = None
    passed: StrictBool | None = None
    skipped: StrictBool | None = None
    precision: StrictStr | None = None
    reference: StrictStr | None = None
    candidate: StrictStr | None = None
    inputs: dict[StrictStr, Any] | None = None
    tolerances: dict[StrictStr, Any] | None = None
    counts: Counts | None = None
    cases: list[CaseCheck] = []
    worst: list[dict[StrictStr, Any]] = []


class Stats(_Part):
    median: Number
    p90: Number
    p99: Number
    mean: Number
    min: Number


class PerfCase(_Part):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    label: Annotated[StrictStr, Field(max_length=128)]
    shapes: dict[Name, Shape] = {}
    batch: Annotated[StrictInt, Field(ge=0)]
    cuda_graph: StrictBool
    iterations: Size
    latency_ms: Stats
    gpu_ms: Stats | None = None
    throughput: Number
    repeat_medians_ms: Annotated[list[Number], Field(max_length=1000)] = []
    cv: Number


class PerfGpu(_Part):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    name: Name
    driver: Annotated[StrictStr, Field(max_length=64)] | None = None
    sm_clock_mhz: Size | None = None
    mem_clock_mhz: Size | None = None
    temperature_c: StrictInt | None = None


class PerfVerdict(_Part):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    state: Literal["passed", "failed", "measured"]
    passed: StrictBool
    summary: StrictStr = ""
    checks: list[dict[StrictStr, Any]] = []
    notes: list[StrictStr] = []
    baseline: dict[StrictStr, Any] | None = None


class Perf(BaseModel):
    """``perf.json`` (see :mod:`trtops.perf.document`)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, populate_by_name=True)

    schema_version: Annotated[StrictInt, Field(ge=1)] = Field(alias="schema")
    measured_at: StrictStr
    settings: dict[StrictStr, Any] = {}
    gpu: PerfGpu
    tensorrt: Annotated[StrictStr, Field(max_length=64)]
    cases: Annotated[list[PerfCase], Field(max_length=256)]
    verdict: PerfVerdict
    seconds: Annotated[Number, Field(ge=0)] | None = None  # measuring wall time (trt/measure.py)


# --------------------------------------------------------------------------- checks


def _reason(exc: ValidationError, what: str) -> str:
    """The first problem of a validation error as one line: ``what field: message``."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "(document)"
    value = error.get("input")
    shown = repr(value)[:60] if not isinstance(value, (dict, list)) else type(value).__name__
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{what} field {where!r}: {error['msg'].lower()} (got {shown}){more}"


def _check(document: Any, model: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise EntryInvalid(f"{what} is not a JSON object")
    try:
        model.model_validate(document)
    except ValidationError as exc:
        raise EntryInvalid(_reason(exc, what)) from None
    except RecursionError:
        raise EntryInvalid(f"{what} is nested too deeply") from None
    return document


def check_meta(document: Any) -> dict[str, Any]:
    """``document`` when it is a valid meta.json.

    Raises:
        EntryInvalid: naming the first bad field.
    """
    return _check(document, Meta, "meta.json")


def check_accuracy(document: Any) -> dict[str, Any]:
    """``document`` when it is a valid accuracy.json.

    Raises:
        EntryInvalid: naming the first bad field.
    """
    return _check(document, Accuracy, "accuracy.json")


def check_perf(document: Any) -> dict[str, Any]:
    """``document`` when it is a valid perf.json.

    Raises:
        EntryInvalid: naming the first bad field.
    """
    checked = _check(document, Perf, "perf.json")
    from trtops.perf.judge import Baseline

    baseline = checked["verdict"].get("baseline")
    if baseline is not None:  # what a re-judged reuse reads: numbers, not anything
        try:
            Baseline.from_json(baseline)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise EntryInvalid("perf.json field 'verdict.baseline': not a measurement") from None
    return checked


def written(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as it reads back once stored (tuples become lists): writers check
    this form, which is what readers see."""
    return json.loads(json.dumps(document, allow_nan=False))


__all__ = [
    "MAX_METADATA_BYTES", "AbsHistogram", "Accuracy", "EntryInvalid", "Meta", "Perf", "check_accuracy",
    "check_meta", "check_perf", "parse_document", "written",
]
