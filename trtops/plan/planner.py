"""The pure planner: what to do for every spec, and why.

:func:`plan` reads no file, cache or GPU: its inputs are specs, a cache view, a platform
and digests (gathered by :mod:`trtops.plan.assemble`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from trtops.errors import InputError
from trtops.keys.engine_key import EngineKey, engine_key, gpu_signature
from trtops.keys.model_digest import ModelDigest, declared_model_digest
from trtops.keys.platform import Platform
from trtops.plan.explain import explain_changes, rejected_reason
from trtops.plan.model import Action, CacheView, Plan
from trtops.plan.targets import TargetMatch, match_target
from trtops.prepare.options import cast_of, keep_of, steps_on
from trtops.spec import EngineSpec

# --------------------------------------------------------------------------- the planner


def plugin_paths(spec: EngineSpec) -> list[str]:
    """Plugin libraries a spec needs (``spec.extra['plugins']``, absolute paths)."""
    plugins = spec.extra.get("plugins") if spec.extra else None
    return [str(p) for p in plugins] if plugins else []


def spec_key(
    spec: EngineSpec,
    match: TargetMatch,
    digests: Mapping[str, ModelDigest],
    data_digests: Mapping[str, str] | None = None,
) -> EngineKey:
    """The engine key of a buildable spec.

    Args:
        spec: The spec.
        match: Its :func:`match_target` result (without problem).
        digests: Model digests by model path.
        data_digests: Calibration-data and plugin digests by path.

    Returns:
        The key.

    Raises:
        ValueError: when a needed digest is missing.
    """
    data_digests = data_digests or {}
    model = digests.get(spec.source.path)
    if model is None and spec.source.sha256:
        model = declared_model_digest(spec.source.sha256)
    if model is None:
        raise ValueError(f"{spec.id}: no digest for model {spec.source.path}")
    calibration = None
    if spec.build.calibration is not None:
        calibration = data_digests.get(spec.build.calibration.data)
        if calibration is None:
            raise ValueError(f"{spec.id}: no digest for calibration data {spec.build.calibration.data}")
    plugins = []
    for path in plugin_paths(spec):
        if path not in data_digests:
            raise ValueError(f"{spec.id}: no digest for plugin {path}")
        plugins.append(data_digests[path])
    assert match.tensorrt is not None and match.signature is not None
    return engine_key(spec, model, tensorrt_version=match.tensorrt, gpu=match.signature,
                      calibration_digest=calibration, plugin_digests=plugins)


def check_unique_ids(specs: Sequence[EngineSpec]) -> None:
    """Two specs with one id would share a ref; say which manifests collide.

    Raises:
        InputError: on the first duplicate.
    """
    seen: dict[str, EngineSpec] = {}
    for spec in specs:
        other = seen.get(spec.id)
        if other is not None:
            raise InputError(
                f"two engines are both named {spec.id} (from {other.manifest} and {spec.manifest})",
                hint="manifest file names namespace engines in the cache: rename one of the files",
            )
        seen[spec.id] = spec


def plan(
    specs: Sequence[EngineSpec],
    cache_view: CacheView,
    platform: Platform,
    digests: Mapping[str, ModelDigest],
    *,
    data_digests: Mapping[str, str] | None = None,
    manifests: Sequence[str] = (),
    created_at: str = "",
    keys: Mapping[str, EngineKey] | None = None,
) -> Plan:
    """Decide what to do for every spec (pure: no file, cache or GPU access).

    Args:
        specs: Engine specs (from :func:`trtops.manifest.expand.expand`).
        cache_view: What the cache holds for the specs' keys and refs.
        platform: The platform to plan for.
        digests: Model digests by model path (url sources with a declared sha256 may be
            absent).
        data_digests: Calibration-data and plugin digests by path.
        manifests: Manifest paths, recorded in the plan.
        created_at: Timestamp recorded in the plan.
        keys: Keys already computed by :func:`spec_key` for this platform, by spec id
            (saves computing them twice; missing ones are computed).

    Returns:
        The plan: one action per spec, in spec order.
    """
    check_unique_ids(specs)
    data_digests = dict(data_digests or {})
    actions: list[Action] = []
    first_pending: dict[str, str] = {}
    planned: list[str] = []
    known = keys or {}
    for spec in specs:
        match = match_target(spec, platform)
        if match.problem is not None:
            actions.append(Action(kind="skip", spec=spec, reason=match.problem))
            continue
        key = known.get(spec.id) or spec_key(spec, match, digests, data_digests)
        planned.append(key.key)
        gpu_index = match.gpu.index if match.gpu else None
        timing = gpu_signature(match.gpu.name, match.gpu.compute_capability) if match.gpu else None
        common = dict(spec=spec, key=key, gpu_index=gpu_index, tensorrt=match.tensorrt,
                      timing_signature=timing)
        entry = cache_view.entries.get(key.key)
        ref = cache_view.refs.get(spec.id)
        ref_key = ref.get("key") if ref else None
        previous = ref_key if ref_key and ref_key != key.key else None
        if entry is not None:
            if entry.state == "rejected":
                actions.append(Action(kind="rejected", reason=rejected_reason(entry), state=entry.state,
                                      previous_key=previous, **common))
                continue
            if entry.meta is not None and key.version_compatible:
                from trtops.cache.compat import tensorrt_reason

                problem = tensorrt_reason(entry.meta, platform.tensorrt)
                if problem:
                    actions.append(Action(kind="skip", reason=f"cached {problem}", state=entry.state,
                                          **common))
                    continue
            reason = "up to date" if entry.state == "accepted" else "cached, accuracy not verified yet"
            if entry.perf:  # the last measurement's numbers (the performance gate)
                from trtops.perf.document import perf_summary, short_text

                measured = short_text(perf_summary(entry.perf))
                if measured:
                    reason += f", {measured}"
            if previous:
                reason += f" (the last build was {previous[:12]})"
            actions.append(Action(kind="reuse", reason=reason, state=entry.state, previous_key=previous, **common))
            continue
        if ref is None:
            kind, reason, changes = "build", "not built yet", ()
        elif ref_key == key.key:
            kind, reason, changes = "build", f"cache entry {key.key[:12]} is missing (deleted or garbage-collected)", ()
        else:
            old_components = ref.get("components")
            kind = "rebuild"
            if isinstance(old_components, Mapping) and old_components:
                changes = tuple(explain_changes(old_components, key.components, ref.get("model"), key.model))
                reason = "; ".join(c.message for c in changes) if changes else "engine key changed"
            else:
                changes = ()
                reason = f"engine key changed (the last build, {str(ref_key)[:12]}, recorded no key components)"
        component = key.components.get("prepare")
        steps = steps_on(spec.prepare, cast_of(component), keep_of(component))
        if steps:
            reason += f" (prepared first: {', '.join(steps)}; trtops prepare shows the result)"
        same_as = first_pending.get(key.key)
        if same_as is not None:
            reason += f" (same engine as {same_as}: built once)"
        else:
            first_pending[key.key] = spec.id
        actions.append(Action(kind=kind, reason=reason, previous_key=previous, changes=changes,
                              same_as=same_as, **common))
    used_models = {s.source.path for s, a in zip(specs, actions) if a.key is not None}
    return Plan(
        actions=actions,
        platform=platform,
        cache_url=cache_view.url,
        cache_digest=cache_view.digest(planned),
        digests={p: d for p, d in digests.items() if p in used_models},
        data_digests=data_digests,
        manifests=list(manifests),
        created_at=created_at,
    )
