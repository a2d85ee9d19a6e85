"""EngineSpec: one engine to build (model x precision x target), fully normalized.

Assembled only by :func:`make_engine_spec` (the manifest expander, tests and scripts all
call it, so defaults and normalization live in one place); consumed by fingerprinting, the
planner, the builder, the verifier and the emitters. Plain frozen dataclasses: cheap to
create by the thousand and trivially serializable through :meth:`EngineSpec.to_json`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtops.capabilities import KEEP_FP32_PRECISIONS

# Build settings a spec gets when neither the model nor the manifest's ``defaults:`` set
# them (and when a spec is made directly). Changing one changes engine keys unless
# trtops.keys.engine_key.BUILD_KEY_DEFAULTS follows.
BUILD_DEFAULTS: dict[str, Any] = {
    "workspace": None,
    "builder_optimization_level": 3,
    "tactic_sources": None,
    "max_aux_streams": None,
    "timing_cache": "shared",
    "strongly_typed": False,
    "prepare": None,  # no preparation (trtops.prepare)
}


@dataclass(frozen=True)
class InputRange:
    """min/opt/max of one input in one profile."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@dataclass(frozen=True)
class TargetSpec:
    """A named target, as the manifest declares it."""

    name: str
    gpu: str | None  # product-name glob, 'any', or None (compute capability only)
    compute_capability: str | None
    tensorrt: str  # PEP 440 specifier ('' = any)
    hardware_compatibility: str  # none | ampere_plus | same_compute_capability
    version_compatible: bool


@dataclass(frozen=True)
class ToleranceSpec:
    """Resolved tolerance for one precision (defaults filled) plus per-output overrides."""

    atol: float
    rtol: float
    stat: str  # elemwise | max | mean | median | quantile
    quantile: float | None = None
    outputs: tuple[tuple[str, "ToleranceSpec"], ...] = ()

    def for_output(self, name: str) -> "ToleranceSpec":
        for output, tolerance in self.outputs:
            if output == name:
                return tolerance
        return self


@dataclass(frozen=True)
class CalibrationSpec:
    data: str  # absolute path
    batch_size: int
    algorithm: str  # entropy | minmax
    max_batches: int | None


@dataclass(frozen=True)
class AccuracySpec:
    enabled: bool
    reference: str
    tolerance: ToleranceSpec
    seed: int
    ranges: tuple[tuple[str, float, float], ...]  # (input, low, high)
    data: str | None  # absolute path of user inputs
    iterations: int


# The performance gate's settings when neither the model nor ``defaults:`` set them.
PERFORMANCE_DEFAULTS: dict[str, Any] = {
    "enabled": True,  # every accepted engine is measured; budgets gate only where set
    "warmup": 20,
    "iterations": 200,
    "repeats": 5,
    "cuda_graph": "auto",
    "max_seconds": 2.0,
}


@dataclass(frozen=True)
class PerformanceSpec:
    """The performance gate of one engine (``performance:``, resolved). Not in the engine
    key: measuring and judging never change the engine's bytes."""

    enabled: bool = PERFORMANCE_DEFAULTS["enabled"]
    # named shape cases besides each profile's opt: (name, ((input, dims), ...)), sorted
    shapes: tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...] = ()
    warmup: int = PERFORMANCE_DEFAULTS["warmup"]
    iterations: int = PERFORMANCE_DEFAULTS["iterations"]
    repeats: int = PERFORMANCE_DEFAULTS["repeats"]
    max_latency_ms: float | None = None
    min_throughput: float | None = None
    max_regression: float | None = None  # a fraction: 0.1 for '10%'
    cuda_graph: str = PERFORMANCE_DEFAULTS["cuda_graph"]  # auto | off
    max_seconds: float = PERFORMANCE_DEFAULTS["max_seconds"]  # timed runs per case, at most

    @property
    def gated(self) -> bool:
        """True when a budget or a regression limit can fail the engine."""
        return self.enabled and (self.max_latency_ms is not None or self.min_throughput is not None
                                 or self.max_regression is not None)

    def settings(self) -> dict[str, Any]:
        """The measurement settings (:meth:`trtops.ops.toolchain.Toolchain.measure`)."""
        return {"warmup": self.warmup, "iterations": self.iterations, "repeats": self.repeats,
                "cuda_graph": self.cuda_graph, "max_seconds": self.max_seconds}


@dataclass(frozen=True)
class BuildConfig:
    """Everything that changes the bytes of the engine, normalized (defaults filled).

    The engine key is computed from these fields by
    :func:`trtops.keys.engine_key.build_component`; a new field registers its default in
    ``BUILD_KEY_DEFAULTS`` there so existing keys do not change.
    """

    precision: str
    profiles: tuple[tuple[InputRange, ...], ...]  # inputs sorted by name within each profile
    workspace: int | None
    builder_optimization_level: int
    tactic_sources: tuple[str, ...] | None  # sorted
    max_aux_streams: int | None
    hardware_compatibility: str
    version_compatible: bool
    calibration: CalibrationSpec | None
    # A strongly typed network (TensorRT >= 10; 11 builds nothing else). Off by default, and
    # then left out of the engine key (trtops.keys.engine_key.BUILD_KEY_DEFAULTS).
    strongly_typed: bool = False
    # ONNX nodes held in fp32 (names or glob patterns; keep_fp32_outputs: tensors whose
    # producing node is held), sorted and unique. Only for reduced precisions
    # (capabilities.KEEP_FP32_PRECISIONS); empty ones are left out of the engine key.
    keep_fp32: tuple[str, ...] = ()
    keep_fp32_outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoundInput:
    """A model input replaced by a constant during preparation (``prepare.constants``)."""

    name: str
    shape: tuple[int, ...]  # () for a scalar
    values: tuple[int | float, ...]  # row-major; the input's own element type is used


@dataclass(frozen=True)
class PrepareSpec:
    """What the preparation stage does to the model before TensorRT sees it
    (:mod:`trtops.prepare`). ``None`` on an :class:`EngineSpec` means no preparation."""

    fold_constants: bool = True
    infer_shapes: bool = True
    distinct_dims: bool = True
    constants: tuple[BoundInput, ...] = ()  # sorted by name
    opset: int | None = None

    @property
    def is_noop(self) -> bool:
        return not (self.fold_constants or self.infer_shapes or self.distinct_dims
                    or self.constants or self.opset)


@dataclass(frozen=True)
class ModelSource:
    path: str  # absolute path of the ONNX file (for url sources: where it is/will be cached)
    url: str | None = None
    sha256: str | None = None
    allow_http: bool = False  # url sources: plain http allowed
    max_size: int | None = None  # url sources: download cap in bytes (None: trtops.sources' default)


@dataclass(frozen=True)
class EngineSpec:
    """One engine: a model in one precision for one target."""

    manifest: str  # manifest file path as given by the user
    manifest_name: str  # file stem; namespaces refs in the cache
    model: str
    precision: str
    target: TargetSpec
    source: ModelSource
    build: BuildConfig
    accuracy: AccuracySpec
    loaders: tuple[str, ...]
    timing_cache: str  # shared | read_only | off
    line: int | None = None  # line of the model in the manifest (annotations)
    # Graph preparation before the build (trtops.prepare); None: the model as it is.
    prepare: PrepareSpec | None = None
    # The performance gate (not in the engine key) and the model's `select:` policy.
    performance: PerformanceSpec = PerformanceSpec()
    select: str | None = None  # 'fastest': the fastest accepted precision is the default loader
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.manifest_name}/{self.model}/{self.precision}/{self.target.name}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra", None)
        return data


Shape = Sequence[int]
ProfileArg = Mapping[str, tuple[Shape, Shape, Shape]]

# The accuracy check of a spec made without a manifest: on, against ONNX Runtime, with a
# tolerance loose enough for every precision but int8 (manifests resolve theirs per
# precision from trtops.capabilities).
DIRECT_TOLERANCE = ToleranceSpec(atol=1e-2, rtol=1e-2, stat="median")


def profile(**inputs: tuple[Shape, Shape, Shape]) -> dict[str, tuple[Shape, Shape, Shape]]:
    """``profile(input=([1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]))`` (readability helper)."""
    return dict(inputs)


def _profiles(profiles: Sequence[ProfileArg]) -> tuple[tuple[InputRange, ...], ...]:
    # Inputs sorted by name so that a profile written in any order gives one engine key.
    return tuple(
        tuple(
            InputRange(name, tuple(int(d) for d in lo), tuple(int(d) for d in opt),
                       tuple(int(d) for d in hi))
            for name, (lo, opt, hi) in sorted(ranges.items())
        )
        for ranges in profiles
    )


def _target(target: TargetSpec | str, hardware_compatibility: str | None,
            version_compatible: bool | None) -> TargetSpec:
    if isinstance(target, str):
        return TargetSpec(
            name=target,
            gpu="any",
            compute_capability=None,
            tensorrt="",
            hardware_compatibility=hardware_compatibility or "none",
            version_compatible=bool(version_compatible),
        )
    # The engine's portability is the target's: a build setting that disagreed with its
    # target would give a key for an engine the target did not ask for.
    if hardware_compatibility is not None and hardware_compatibility != target.hardware_compatibility:
        raise ValueError(f"hardware_compatibility {hardware_compatibility!r} differs from target "
                         f"{target.name!r} ({target.hardware_compatibility!r})")
    if version_compatible is not None and version_compatible != target.version_compatible:
        raise ValueError(f"version_compatible {version_compatible!r} differs from target {target.name!r}")
    return target


def make_engine_spec(
    model_path: str | os.PathLike[str],
    precision: str = "fp32",
    *,
    profiles: Sequence[ProfileArg] = (),
    workspace: int | None = BUILD_DEFAULTS["workspace"],
    builder_optimization_level: int = BUILD_DEFAULTS["builder_optimization_level"],
    tactic_sources: Sequence[str] | None = BUILD_DEFAULTS["tactic_sources"],
    max_aux_streams: int | None = BUILD_DEFAULTS["max_aux_streams"],
    strongly_typed: bool = BUILD_DEFAULTS["strongly_typed"],
    calibration: CalibrationSpec | None = None,
    timing_cache: str = BUILD_DEFAULTS["timing_cache"],
    target: TargetSpec | str = "local",
    hardware_compatibility: str | None = None,
    version_compatible: bool | None = None,
    name: str | None = None,
    manifest: str = "<direct>",
    manifest_name: str = "direct",
    url: str | None = None,
    sha256: str | None = None,
    allow_http: bool = False,
    max_size: int | None = None,
    accuracy: AccuracySpec | None = None,
    loaders: Sequence[str] = (),
    line: int | None = None,
    prepare: PrepareSpec | None = BUILD_DEFAULTS["prepare"],
    performance: PerformanceSpec | None = None,
    select: str | None = None,
    keep_fp32: Sequence[str] = (),
    keep_fp32_outputs: Sequence[str] = (),
) -> EngineSpec:
    """The one place an :class:`EngineSpec` is assembled: defaults filled, settings normalized.

    The manifest expander passes what it resolved; tests and scripts pass only what they
    need (a model and a precision are enough for a one-off build).

    Args:
        model_path: ONNX file (made absolute; for url sources: where it is cached).
        precision: fp32 | tf32 | fp16 | bf16 | int8 | fp8.
        profiles: one mapping per optimization profile, ``{input: (min, opt, max)}``.
        workspace: workspace pool limit in bytes.
        builder_optimization_level: 0-5.
        tactic_sources: tactic source names, or ``None`` for TensorRT's default.
        max_aux_streams: aux stream limit.
        strongly_typed: build a strongly typed network.
        calibration: INT8 calibration settings.
        timing_cache: shared | read_only | off.
        target: the target, or the name of an any-GPU, any-TensorRT target.
        hardware_compatibility: none | ampere_plus | same_compute_capability, for a target
            given by name (a :class:`TargetSpec` carries its own; a different value here
            is a ``ValueError``).
        version_compatible: build a version-compatible engine (same rule).
        name: model name (default: file stem, made identifier-safe).
        manifest: manifest file path as the user gave it.
        manifest_name: manifest stem (namespaces refs in the cache).
        url: where a url source is downloaded from.
        sha256: the url source's declared digest.
        allow_http: the url source may be plain http.
        max_size: the url source's download cap in bytes (None: :mod:`trtops.sources`' default).
        accuracy: the accuracy check (default: on, ONNX Runtime, :data:`DIRECT_TOLERANCE`).
        loaders: loader names to emit.
        line: the model's line in its manifest.
        prepare: the model preparation before the build (None: the model as it is).
        performance: the performance gate (default: measured, no budgets).
        select: the model's ``select:`` policy ('fastest' or None).
        keep_fp32: ONNX node names or glob patterns held in fp32 (reduced precisions only:
            dropped for the others, so their keys do not change).
        keep_fp32_outputs: tensor names or glob patterns whose producing nodes are held in
            fp32 (same rule).

    Returns:
        The spec.
    """
    path = os.path.abspath(model_path)
    reduced = precision in KEEP_FP32_PRECISIONS
    model = name or "".join(c if c.isalnum() else "_" for c in Path(path).stem)
    target_spec = _target(target, hardware_compatibility, version_compatible)
    build = BuildConfig(
        precision=precision,
        profiles=_profiles(profiles),
        workspace=workspace,
        builder_optimization_level=builder_optimization_level,
        tactic_sources=tuple(sorted(tactic_sources)) if tactic_sources is not None else None,
        max_aux_streams=max_aux_streams,
        hardware_compatibility=target_spec.hardware_compatibility,
        version_compatible=target_spec.version_compatible,
        calibration=calibration,
        strongly_typed=bool(strongly_typed),
        keep_fp32=tuple(sorted(set(keep_fp32))) if reduced else (),
        keep_fp32_outputs=tuple(sorted(set(keep_fp32_outputs))) if reduced else (),
    )
    if accuracy is None:
        accuracy = AccuracySpec(enabled=True, reference="onnxruntime", tolerance=DIRECT_TOLERANCE,
                                seed=1, ranges=(), data=None, iterations=1)
    return EngineSpec(
        manifest=manifest,
        manifest_name=manifest_name,
        model=model,
        precision=precision,
        target=target_spec,
        source=ModelSource(path=path, url=url, sha256=sha256, allow_http=allow_http, max_size=max_size),
        build=build,
        accuracy=accuracy,
        loaders=tuple(sorted(loaders)),
        timing_cache=timing_cache,
        line=line,
        prepare=None if prepare is None or prepare.is_noop else prepare,
        performance=performance or PerformanceSpec(),
        select=select,
    )
