"""Validated manifests → :class:`~trtops.spec.EngineSpec`, one per model x precision x target.

Equal meanings give equal specs (and engine keys): settings are resolved here (the model,
then the manifest's ``defaults:``, then ``BUILD_DEFAULTS``), sizes are bytes, tolerances
come from :data:`DEFAULT_TOLERANCES`, paths are absolute; :func:`trtops.spec.make_engine_spec`
assembles the spec and normalizes the rest (profile inputs, tactic sources and loaders
sorted).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtops.capabilities import PRECISIONS
from trtops.errors import ManifestError, Problem
from trtops.manifest.load import LoadedManifest, format_field
from trtops.manifest.models import (
    Manifest,
    ModelSpec,
    PathSource,
    Target,
    Tolerance,
    constant_layout,
)
from trtops.names import parse_percent
from trtops.sources import url_source_path
from trtops.spec import (
    BUILD_DEFAULTS,
    PERFORMANCE_DEFAULTS,
    AccuracySpec,
    BoundInput,
    CalibrationSpec,
    EngineSpec,
    PerformanceSpec,
    PrepareSpec,
    TargetSpec,
    ToleranceSpec,
    make_engine_spec,
)

# Tolerance used when the manifest gives none for a precision: the capability table's
# defaults (trtops.capabilities.PRECISIONS says why they are what they are).
DEFAULT_TOLERANCES: dict[str, ToleranceSpec] = {
    name: ToleranceSpec(atol=rule.tolerance.atol, rtol=rule.tolerance.rtol, stat=rule.tolerance.stat)
    for name, rule in PRECISIONS.items()
}

DEFAULT_CACHE_DIR = Path("cache")


def _absolute(path: Path) -> str:
    # abspath, not resolve: normalizes './a/../b' without following symlinks, which
    # check.py has already vetted.
    return os.path.abspath(path)


def _merge_tolerance(base: ToleranceSpec, override: Tolerance) -> ToleranceSpec:
    stat = override.stat if override.stat is not None else base.stat
    if override.quantile is not None:
        quantile: float | None = override.quantile
    else:
        quantile = base.quantile if stat == "quantile" else None
    return ToleranceSpec(
        atol=float(override.atol) if override.atol is not None else base.atol,
        rtol=float(override.rtol) if override.rtol is not None else base.rtol,
        stat=stat,
        quantile=quantile,
    )


def resolve_tolerance(model: ModelSpec, precision: str) -> ToleranceSpec:
    """The tolerance for one precision: defaults, the model's values, per-output overrides."""
    base = DEFAULT_TOLERANCES[precision]
    given = model.accuracy.tolerances.get(precision)  # type: ignore[call-overload]
    if given is None:
        return base
    resolved = _merge_tolerance(base, given)
    outputs = tuple(
        (name, _merge_tolerance(resolved, given.outputs[name])) for name in sorted(given.outputs)
    )
    return ToleranceSpec(resolved.atol, resolved.rtol, resolved.stat, resolved.quantile, outputs)


def build_value(manifest: Manifest, model: ModelSpec, name: str) -> Any:
    """A build option as the engine gets it: the model's value, else the manifest's
    ``defaults:``, else ``BUILD_DEFAULTS`` (the one resolution rule)."""
    value = getattr(model, name)
    if value is None:
        value = getattr(manifest.defaults, name)
    if value is None:
        value = BUILD_DEFAULTS[name]
    return value


def _prepare_spec(options: Any) -> PrepareSpec | None:
    """The manifest's ``prepare:`` as a spec; None when it asks for nothing."""
    if options is None:
        return None
    bound = []
    for name in sorted(options.constants):
        shape, values = constant_layout(options.constants[name])
        bound.append(BoundInput(name, shape, values))
    spec = PrepareSpec(
        fold_constants=options.fold_constants,
        infer_shapes=options.infer_shapes,
        distinct_dims=options.distinct_dims,
        constants=tuple(bound),
        opset=options.opset,
    )
    return None if spec.is_noop else spec


def performance_value(manifest: Manifest, model: ModelSpec, name: str) -> Any:
    """A ``performance:`` field as the engine gets it: the model's, else the manifest's
    ``defaults:``, else :data:`~trtops.spec.PERFORMANCE_DEFAULTS` (None: unset)."""
    for block in (model.performance, manifest.defaults.performance):
        value = getattr(block, name) if block is not None else None
        if value is not None:
            return value
    return PERFORMANCE_DEFAULTS.get(name)


def _performance_spec(manifest: Manifest, model: ModelSpec) -> PerformanceSpec:
    def value(name: str) -> Any:
        return performance_value(manifest, model, name)

    shapes = value("shapes") or {}
    regression = value("max_regression")
    return PerformanceSpec(
        enabled=bool(value("enabled")),
        shapes=tuple((name, tuple((i, tuple(dims)) for i, dims in sorted(shapes[name].items())))
                     for name in sorted(shapes)),
        warmup=value("warmup"),
        iterations=value("iterations"),
        repeats=value("repeats"),
        max_latency_ms=value("max_latency_ms"),
        min_throughput=value("min_throughput"),
        max_regression=parse_percent(regression) if regression is not None else None,
        cuda_graph=value("cuda_graph"),
        max_seconds=float(value("max_seconds")),
    )


def _target_spec(name: str, target: Target) -> TargetSpec:
    return TargetSpec(
        name=name,
        gpu=target.gpu,
        compute_capability=target.compute_capability,
        tensorrt=target.tensorrt.replace(" ", ""),
        hardware_compatibility=target.hardware_compatibility,
        version_compatible=target.version_compatible,
    )


def _profiles(model: ModelSpec) -> list[dict[str, tuple[list[int], list[int], list[int]]]]:
    return [
        {name: (ranges.min, ranges.opt, ranges.max) for name, ranges in profile.items()}
        for profile in model.profiles
    ]


def _model_specs(lm: LoadedManifest, index: int, model: ModelSpec, cache_dir: Path) -> list[EngineSpec]:
    manifest = lm.manifest
    base = lm.path.parent
    if isinstance(model.source, PathSource):
        model_path, url, sha256 = _absolute(base / model.source.path), None, None
    else:
        model_path = _absolute(url_source_path(cache_dir, model.source.sha256))
        url, sha256 = model.source.url, model.source.sha256
    target_names = list(model.targets) if model.targets is not None else list(manifest.targets)
    unknown = [t for t in target_names if t not in manifest.targets]
    if unknown:
        position = target_names.index(unknown[0])
        path = ("models", index, "targets", position)
        raise ManifestError([Problem(lm.location(*path, value=True), format_field(path),
                                     f"unknown target {unknown[0]!r}")])
    profiles = _profiles(model)
    accuracy = model.accuracy
    seed = accuracy.inputs.seed if accuracy.inputs is not None else 1
    ranges = tuple(
        (name, float(r.low), float(r.high))
        for name, r in sorted((accuracy.inputs.ranges if accuracy.inputs is not None else {}).items())
    )
    data = _absolute(base / accuracy.data) if accuracy.data is not None else None
    line = lm.location("models", index).line
    prepare = _prepare_spec(build_value(manifest, model, "prepare"))
    performance = _performance_spec(manifest, model)
    specs = []
    for precision in model.precisions:
        calibration = None
        # Calibration data belongs to the precisions that can be calibrated (int8) only.
        if PRECISIONS[precision].calibratable and model.calibration is not None:
            calibration = CalibrationSpec(
                data=_absolute(base / model.calibration.data),
                batch_size=model.calibration.batch_size,
                algorithm=model.calibration.algorithm,
                max_batches=model.calibration.max_batches,
            )
        accuracy_spec = AccuracySpec(
            enabled=accuracy.enabled,
            reference=accuracy.reference,
            tolerance=resolve_tolerance(model, precision),
            seed=seed,
            ranges=ranges,
            data=data,
            iterations=accuracy.iterations,
        )
        for target_name in target_names:
            specs.append(make_engine_spec(
                model_path,
                precision,
                profiles=profiles,
                workspace=build_value(manifest, model, "workspace"),
                builder_optimization_level=build_value(manifest, model, "builder_optimization_level"),
                tactic_sources=build_value(manifest, model, "tactic_sources"),
                max_aux_streams=build_value(manifest, model, "max_aux_streams"),
                strongly_typed=build_value(manifest, model, "strongly_typed"),
                calibration=calibration,
                timing_cache=build_value(manifest, model, "timing_cache"),
                target=_target_spec(target_name, manifest.targets[target_name]),
                name=model.name,
                manifest=str(lm.path),
                manifest_name=lm.name,
                url=url,
                sha256=sha256,
                allow_http=model.source.allow_http if url else False,
                max_size=model.source.max_size if url else None,
                accuracy=accuracy_spec,
                loaders=model.loaders,
                line=line,
                prepare=prepare,
                performance=performance,
                select=model.select,
                keep_fp32=model.keep_fp32,
                keep_fp32_outputs=model.keep_fp32_outputs,
            ))
    return specs


def expand(
    loaded: Sequence[LoadedManifest],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[EngineSpec]:
    """One :class:`EngineSpec` per model x precision x target, fully normalized.

    Args:
        loaded: manifests from :func:`trtops.manifest.load_paths` (already checked).
        cache_dir: cache where url sources are downloaded (default ``cache``); their
            spec path is ``<cache>/sources/<sha256>.onnx``, absolute.

    Returns:
        Specs in manifest order, then model order, then precision order, then target order.

    Raises:
        ManifestError: a model names a target its manifest does not define (only when the
            manifests did not come through :func:`load_paths`).
    """
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    specs: list[EngineSpec] = []
    for lm in loaded:
        for index, model in enumerate(lm.manifest.models):
            specs.extend(_model_specs(lm, index, model, cache))
    return specs
