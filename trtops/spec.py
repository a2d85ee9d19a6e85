"""EngineSpec: one engine to build (model x precision x target), fully normalized.

Produced by :mod:`trtops.manifest.expand`; consumed by fingerprinting, the planner, the
builder, the verifier and the emitters. Plain frozen dataclasses: cheap to create by the
thousand and trivially serializable through :meth:`EngineSpec.to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.manifest_name}/{self.model}/{self.precision}/{self.target.name}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra", None)
        return data
