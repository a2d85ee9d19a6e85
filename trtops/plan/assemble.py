"""Planning against real files and a real cache: the impure half of the planner.

:func:`make_plan` loads manifests, hashes models through the digest memo, reads the cache
and calls the pure :func:`trtops.plan.planner.plan`; :func:`check_plan_current` refuses a
saved plan when the platform, the cache or a model moved since it was made.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtops.errors import InputError, PlanMismatch
from trtops.keys.fingerprint import (
    DigestMemo,
    EngineKey,
    ModelDigest,
    data_digest,
    digest_models,
)
from trtops.keys.platform import Platform
from trtops.plan.model import CacheView, Plan
from trtops.plan.planner import check_unique_ids, plan, plugin_paths, spec_key
from trtops.plan.targets import match_target
from trtops.spec import EngineSpec

# --------------------------------------------------------------------------- assembly (not pure)


def memo_for(store: Any) -> DigestMemo:
    """The digest memo that goes with a store: ``<cache>/digests.json`` for local caches,
    the default local cache's for remote ones."""
    path = getattr(store, "digest_memo_path", None)
    if path is None:
        from trtops.cache import default_cache_url, is_remote
        from trtops.cache.layout import DIGEST_MEMO_FILE

        url = default_cache_url()
        path = None if is_remote(url) else Path(url) / DIGEST_MEMO_FILE
    return DigestMemo(path)


def load_specs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    check_models: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[EngineSpec]:
    """Load, validate and expand manifests into specs.

    Args:
        paths: Manifest files or directories.
        check_models: Also run the checks that read model files (graphs are read without
            weights; :func:`make_plan` runs them for every engine).
        cache_dir: Local cache holding url sources.

    Returns:
        Specs in manifest order.

    Raises:
        ManifestError: for problems in the manifests.
    """
    from trtops.manifest.collect import load_paths
    from trtops.manifest.expand import expand

    loaded = load_paths(list(paths), check_models=check_models, cache_dir=cache_dir)
    return expand(loaded, cache_dir=cache_dir)


def compute_digests(
    specs: Sequence[EngineSpec], platform: Platform, memo: DigestMemo, workers: int | None = None
) -> tuple[dict[str, ModelDigest], dict[str, str]]:
    """Digests of the models, calibration data and plugins of the specs buildable on
    ``platform`` (others are skipped by the planner and need no hashing).

    Returns:
        (model digests by path, data digests by path).

    Raises:
        InputError: for missing files.
    """
    buildable = [s for s in specs if match_target(s, platform).problem is None]
    models = [s.source.path for s in buildable if not s.source.sha256]
    digests = digest_models(models, memo, workers) if models else {}
    data_paths: list[str] = []
    for spec in buildable:
        if spec.build.calibration is not None:
            data_paths.append(spec.build.calibration.data)
        data_paths.extend(plugin_paths(spec))
    data = {path: data_digest(path, memo, workers) for path in dict.fromkeys(data_paths)}
    return digests, data


def save_memo(memo: DigestMemo) -> None:
    """Save the digest memo, ignoring a read-only cache (the memo only saves time)."""
    try:
        memo.save()
    except OSError:
        pass  # a read-only cache still plans; the memo only saves time


@dataclass(frozen=True)
class SpecKeys:
    """The engine keys of the specs buildable on one platform, and the digests behind them."""

    keys: dict[str, EngineKey]  # by spec id; specs the platform cannot build are absent
    digests: dict[str, ModelDigest]  # model digests by path
    data: dict[str, str]  # calibration-data and plugin digests by path


def spec_keys(
    specs: Sequence[EngineSpec], platform: Platform, memo: DigestMemo, workers: int | None = None
) -> SpecKeys:
    """Hash what the buildable specs need (through ``memo``, saved after) and key them.

    The one loop from specs to keys: the planner, gc and anything else that asks "which
    engines do these manifests mean here" go through it, so they cannot disagree.

    Args:
        specs: Engine specs.
        platform: The platform to key for (specs it cannot build get no key).
        memo: Digest memo.
        workers: Hashing threads.

    Returns:
        The keys and the digests they were computed from.

    Raises:
        InputError: for missing model or data files.
    """
    digests, data = compute_digests(specs, platform, memo, workers)
    save_memo(memo)
    keys: dict[str, EngineKey] = {}
    for spec in specs:
        match = match_target(spec, platform)
        if match.problem is None:
            keys[spec.id] = spec_key(spec, match, digests, data)
    return SpecKeys(keys, digests, data)


def make_plan_for_specs(
    specs: Sequence[EngineSpec],
    store: Any,
    platform: Platform,
    *,
    memo: DigestMemo | None = None,
    manifests: Sequence[str] = (),
    workers: int | None = None,
) -> Plan:
    """Hash what is needed, read the cache view, and plan.

    Args:
        specs: Engine specs.
        store: The cache (any EntryStore).
        platform: The platform to plan for.
        memo: Digest memo (default: the store's).
        manifests: Manifest paths to record.
        workers: Hashing threads.

    Returns:
        The plan.
    """
    from trtops.cache.layout import utc_now

    check_unique_ids(specs)
    keyed = spec_keys(specs, platform, memo if memo is not None else memo_for(store), workers)
    version_compatible = [k.key for k in keyed.keys.values() if k.version_compatible]
    view = CacheView.load(store, [k.key for k in keyed.keys.values()], meta_for=version_compatible)
    # Refs only explain misses; hits need none.
    view.add_refs(store, [spec_id for spec_id, key in keyed.keys.items() if key.key not in view.entries])
    return plan(specs, view, platform, keyed.digests, data_digests=keyed.data, manifests=manifests,
                created_at=utc_now(), keys=keyed.keys)


def make_plan(
    paths: Sequence[str | os.PathLike[str]],
    store: Any,
    platform: Platform,
    *,
    memo: DigestMemo | None = None,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Plan:
    """Plan manifests against a cache and platform (what ``trtops plan`` and ``apply`` run).

    The manifests are checked against their model files (profiles vs. graph inputs, Q/DQ
    vs. precisions, data files) for every engine, skipped ones included, so a broken model
    is exit 1 on any platform and a plan never promises a build that cannot start. Graphs
    are read without weights.

    Args:
        paths: Manifest files or directories.
        store: The cache.
        platform: The platform to plan for.
        memo: Digest memo (default: the store's).
        workers: Hashing threads.
        cache_dir: Local cache holding url sources (default: the store's directory for a
            local store).

    Returns:
        The plan.

    Raises:
        ManifestError: for problems in the manifests.
        InputError: for missing model or data files.
    """
    from trtops.manifest.collect import check_model_files, load_paths
    from trtops.manifest.expand import expand

    if cache_dir is None and hasattr(store, "root"):
        cache_dir = store.root
    # Parsed once. The checks that read model files run for every engine, skipped ones
    # included: a broken model is an error whatever the platform (and the capability
    # verdict may skip exactly the engine whose model is wrong, e.g. fp8 without Q/DQ).
    loaded = load_paths(list(paths), check_models=False, cache_dir=cache_dir)
    check_model_files(loaded, cache_dir=cache_dir)
    specs = expand(loaded, cache_dir=cache_dir)
    return make_plan_for_specs(specs, store, platform, memo=memo,
                               manifests=[str(p) for p in paths], workers=workers)


def check_plan_current(plan: Plan, store: Any, platform: Platform, *, memo: DigestMemo | None = None) -> None:
    """Refuse a saved plan when the platform, the cache or a model moved since it was made.

    Args:
        plan: The saved plan.
        store: The cache apply will use.
        platform: The platform apply runs on.
        memo: Digest memo (default: the store's).

    Raises:
        PlanMismatch: saying what moved.
    """
    problems = []
    if plan.platform_digest != platform.digest():
        problems.append(f"the platform changed: the plan is for {plan.platform.describe()}, "
                        f"this is {platform.describe()}")
    if plan.cache_url != store.url:
        problems.append(f"the plan was made for cache {plan.cache_url}, not {store.url}")
    keys = [a.key.key for a in plan.actions if a.key is not None]
    view = CacheView.load(store, keys)
    if view.digest(keys) != plan.cache_digest:
        problems.append("the cache changed (engines were built, removed or re-verified)")
    memo = memo if memo is not None else memo_for(store)
    try:
        current = digest_models(list(plan.digests), memo) if plan.digests else {}
        data = {path: data_digest(path, memo) for path in plan.data_digests}
    except InputError as exc:
        problems.append(f"a model or data file is gone ({exc.message})")
    else:
        save_memo(memo)
        moved = [path for path, digest in plan.digests.items() if current[path].digest != digest.digest]
        moved += [path for path, digest in plan.data_digests.items() if data[path] != digest]
        if moved:
            problems.append("files changed: " + ", ".join(moved))
    if problems:
        raise PlanMismatch("the saved plan is out of date: " + "; ".join(problems),
                           hint="run `trtops plan -o plan.json` again and apply the new plan")
