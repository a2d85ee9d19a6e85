"""Execute a plan: build what is missing, check its accuracy, publish, emit, push.

For every pending action (one build per engine key)::

    remote hit? ── yes ─► fetch (sha256-verified) ───────────────────────────┐
        │ no                                                                 │
    [lease] ─► timing cache ─► build (TensorRT) ─► verify (Polygraphy) ─► publish ─► push
                                                                             │
    refs ◄───────────────────────────────────────────────────────────────────┘ ─► emit

Engines that fail their accuracy check are published as *rejected*: the planner then knows
not to rebuild them blindly, and nothing downstream (push, pull, emit) ever serves them.
A failed build leaves nothing in the cache: work happens in a private temporary directory
and the entry appears atomically, meta.json last.

The TensorRT- and Polygraphy-facing steps go through a :class:`~trtops.ops.toolchain.Toolchain`,
so that CPU tests can exercise this orchestration with a test double
(``TRTOPS_TEST_TOOLCHAIN``) while everything else stays real. Builds always go through an
executor (:mod:`trtops.executors`): the in-process one by default, one slot running here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.cache.store import (
    BUILD_LOG_FILE,
    CALIBRATION_FILE,
    ENGINE_FILE,
    LAYERS_FILE,
)
from trtops.errors import (
    CacheError,
    EnvironmentMissing,
    InputError,
    RemoteError,
    TrtopsError,
)
from trtops.names import DISK_FULL_ERRNOS
from trtops.ops.toolchain import (
    Toolchain,
    default_toolchain,
)
from trtops.outcome import (
    EngineOutcome,
    RunResult,
    accuracy_summary,
    action_outcome,
    failure_status,
    failure_text,
    same_engine_outcome,
)
from trtops.plan import Action, Plan

BUILD_LOCK_TIMEOUT = 6 * 3600.0  # seconds; a big model's INT8 build can take an hour
_NOT_ATTEMPTED = "not attempted: an earlier engine failed (use --keep-going to continue past failures)"


@dataclass
class ApplyOptions:
    """How apply runs (see ``trtops apply --help``)."""

    keep_going: bool = False
    emit_dest: Path | None = None  # where loaders go; None: don't emit
    engine_ref: str = "copy"
    remote: Any = None  # an EntryStore to fetch from and push to
    lease_ttl: float | None = None  # seconds; None: no build lease
    owner: str | None = None  # lease owner label
    log_dir: Path | None = None  # also write each build log here (CI artifacts)
    # Where builds run (trtops.executors); None: the local executor (here, one after the
    # other). Parallel ones (--gpus, --executor ray): their workers build, this process
    # publishes. The caller owns it (and closes it).
    executor: Any = None
    # The lock to record what this run built, reused or fetched in (an existing
    # trtops.lock directory; None: leave any lock alone).
    lock_path: Path | None = None


@dataclass
class _Context:
    plan: Plan
    store: Any
    toolchain: Toolchain
    options: ApplyOptions
    progress: Any
    built: dict[str, EngineOutcome] = field(default_factory=dict)  # engine key -> outcome
    stop: bool = False
    # outcomes of the builds the executor ran (action id -> outcome), keys it could not
    # build (key -> outcome), and (parallel executors) timing caches waiting to be merged
    prebuilt: dict[str, EngineOutcome] = field(default_factory=dict)
    unbuilt: dict[str, EngineOutcome] = field(default_factory=dict)
    ledger: Any = None


def apply_plan(plan: Plan, store: Any, *, toolchain: Toolchain | None = None,
               options: ApplyOptions | None = None,
               progress_factory: Callable[[int, str], Any] | None = None) -> RunResult:
    """Run a plan against a cache.

    Args:
        plan: From :func:`trtops.plan.make_plan` (or a saved plan checked with
            :func:`trtops.plan.check_plan_current`).
        store: The local cache.
        toolchain: Builder and verifier (default: TensorRT + Polygraphy).
        options: Keep-going, emit, remote, lease.
        progress_factory: ``(total, title) -> Progress`` (default: the console's).

    Returns:
        One outcome per action; ``exit_code()`` follows the exit-code contract.
    """
    from trtops import console

    started = time.monotonic()
    check_runtime(plan)
    options = options or ApplyOptions()
    toolchain = toolchain or default_toolchain()
    make_progress = progress_factory or console.progress
    result = RunResult("apply")
    _fetch_sources(plan, store)
    with make_progress(len(plan.unique_builds()), "apply") as progress:
        ctx = _Context(plan, store, toolchain, options, progress)
        _run_builds(ctx, options.executor or _local_executor(toolchain))
        for action in plan.actions:
            done = ctx.prebuilt.pop(action.id, None)
            if done is not None:
                # Run by the executor: reported as it happened, even when an engine earlier
                # in plan order failed meanwhile (parallel executors).
                outcome = done
                if done.status == "skipped":
                    ctx.unbuilt[action.key.key] = done
                else:
                    ctx.built[action.key.key] = done
            elif ctx.stop:
                result.outcomes.append(action_outcome(action, "skipped", _NOT_ATTEMPTED))
                continue
            elif action.pending and action.key.key in ctx.unbuilt:
                first = ctx.unbuilt[action.key.key]
                outcome = action_outcome(action, "skipped", f"same engine as {first.id}: {first.message}")
            else:
                outcome = _run_action(ctx, action)
            result.outcomes.append(outcome)
            if outcome.failed and not options.keep_going:
                ctx.stop = True
    from trtops.ops.select import select_from_outcomes

    result.apply_selections(*select_from_outcomes(plan.actions, result.outcomes))
    if options.emit_dest is not None:
        _emit(ctx, result)
    if options.lock_path is not None:
        from trtops.ops.lock import record_applied

        record_applied(options.lock_path, plan, result, store)
    result.seconds = time.monotonic() - started
    return result


def _fetch_sources(plan: Plan, store: Any) -> None:
    """Download (or verify) the url sources the pending builds need, once each, before
    anything is built: an offline machine (exit 5) or a wrong sha256 (exit 1) stops the run
    with its own exit code, and no build ever reads a file that is not the declared one."""
    needed = {a.spec.source.sha256: a.spec for a in plan.pending if a.spec.source.url}
    if not needed:
        return
    from trtops.plan.assemble import memo_for, save_memo
    from trtops.sources import ensure_source

    memo = memo_for(store)
    try:
        for spec in needed.values():
            ensure_source(spec, getattr(store, "root", "cache"), memo=memo)
    finally:
        save_memo(memo)


# --------------------------------------------------------------------------- one action


def _accuracy_summary(store: Any, key: str) -> dict | None:
    from trtops.cache.entries import read_accuracy

    accuracy = read_accuracy(store, key)
    if not accuracy:
        return None
    return accuracy_summary(accuracy)


def _run_action(ctx: _Context, action: Action) -> EngineOutcome:
    from trtops.cache.entries import ensure_ref, record_ref

    if action.kind == "skip":
        return action_outcome(action, "skipped", action.reason)
    if action.kind == "rejected":
        return action_outcome(action, "rejected", action.reason,
                        accuracy=_accuracy_summary(ctx.store, action.key.key))
    if action.kind == "reuse":
        ensure_ref(ctx.store, action.id, action.key)
        return _judged(ctx, action, action_outcome(
            action, "reused", action.reason, accuracy=_accuracy_summary(ctx.store, action.key.key)))
    # build / rebuild: the executor built the first action of each key; the others share it
    earlier = ctx.built[action.key.key]
    if not earlier.failed or earlier.status == "perf_failed":
        record_ref(ctx.store, action.id, action.key)
    return same_engine_outcome(action, earlier)


def _judged(ctx: _Context, action: Action, outcome: EngineOutcome) -> EngineOutcome:
    """A cached engine's outcome with its stored measurement judged again under the
    manifest's current budgets (they are not in the key): perf_failed when it fails."""
    from trtops.ops.perf_gate import gate_message, gated_status, stored_verdict

    if outcome.key is None or (outcome.accuracy or {}).get("state") != "accepted":
        return outcome
    outcome.perf, verdict = stored_verdict(ctx.store, outcome.key, action.spec)
    if verdict is not None and not verdict.passed:
        outcome.status = gated_status(outcome.status, verdict)
        outcome.message = gate_message(outcome.message, verdict)
    return outcome


def _build_action(ctx: _Context, action: Action, runner: Any) -> EngineOutcome:
    """Fetch, or build and check with ``runner`` (an executor slot's), then publish."""
    item = f"{action.spec.model}/{action.spec.precision}/{action.spec.target.name}"
    progress = ctx.progress
    started = time.monotonic()
    if ctx.options.remote is not None:
        progress.start(item, "checking the remote cache")
        try:
            fetched = _fetch_from_remote(ctx, action)
        except CacheError as exc:
            if isinstance(exc, RemoteError):
                raise  # the remote is unreachable: stop here, as for any remote failure
            # A damaged or hostile remote entry (sha256 mismatch, bad meta.json) fails this
            # engine only; the others go on.
            failed = action_outcome(action, failure_status(exc), failure_text(exc),
                              seconds=time.monotonic() - started)
            progress.finish(item, failed.status.replace("_", " "), seconds=failed.seconds)
            return failed
        if fetched is not None:
            progress.finish(item, fetched.status)
            return fetched
        progress.update(item, "building")
    else:
        progress.start(item, "building")
    lease = _acquire_lease(ctx, action)
    try:
        if lease == "other-built":
            # Another shard built it while we waited for its lease.
            fetched = _fetch_from_remote(ctx, action)
            if fetched is not None:
                progress.finish(item, fetched.status)
                return fetched
            lease = None
        # Concurrent applies on one cache (CI jobs sharing a runner's disk, a fleet
        # node's cron): one process builds each engine, the others wait and reuse it.
        with ctx.store.lock(f"build-{action.key.key}", timeout=BUILD_LOCK_TIMEOUT):
            outcome = _built_meanwhile(ctx, action)
            if outcome is None and lease is None:
                outcome = _build_verify_publish(ctx, action, item, runner)
            elif outcome is None:
                from trtops.cache.lease import LeaseKeeper

                with LeaseKeeper(lease):
                    outcome = _build_verify_publish(ctx, action, item, runner)
    except TrtopsError as exc:
        outcome = action_outcome(action, failure_status(exc), failure_text(exc),
                           details=getattr(exc, "details", "") or "")
    except Exception as exc:  # noqa: BLE001 - one engine's bug must not lose the others' results
        vanished = _vanished_cache(ctx.store, exc)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            # A full disk while building (the toolchain's own writes) is no bug in trtops.
            from trtops.cache.local import write_error

            error = write_error(exc, f"the build files of {action.id}")
            outcome = action_outcome(action, failure_status(error), failure_text(error))
        elif vanished is not None:
            outcome = action_outcome(action, failure_status(vanished), failure_text(vanished))
        else:
            outcome = action_outcome(action, "error", f"{type(exc).__name__}: {exc}",
                               details=traceback.format_exc())
    finally:
        if lease not in (None, "other-built"):
            lease.release()
    outcome.seconds = time.monotonic() - started
    progress.finish(item, outcome.status.replace("_", " "), seconds=outcome.seconds)
    return outcome


def _vanished_cache(store: Any, exc: BaseException) -> CacheError | None:
    """The error to report when ``exc`` is a file gone because the local cache folder was
    removed while apply ran (``rm -rf cache``, a cleanup job): the user's doing, not a bug."""
    root = getattr(store, "root", None)
    if not isinstance(exc, FileNotFoundError) or root is None or Path(root).is_dir():
        return None
    return CacheError(f"the cache {root} was removed while apply was running",
                      hint="nothing half-written was kept; run `trtops apply` again (it "
                      "rebuilds what is missing), and keep cleanup jobs away from a running apply")


def _built_meanwhile(ctx: _Context, action: Action) -> EngineOutcome | None:
    """The entry another process published while this one waited for the build lock."""
    from trtops.cache.entries import entry_state, record_ref

    if not ctx.store.has_entry(action.key.key):
        return None
    state = entry_state(ctx.store, action.key.key)
    record_ref(ctx.store, action.id, action.key)
    status = "reused" if state == "accepted" else "rejected"
    return _judged(ctx, action, action_outcome(
        action, status, "built meanwhile by another trtops process",
        accuracy=_accuracy_summary(ctx.store, action.key.key)))


def check_runtime(plan: Plan, doing: str = "build") -> None:
    """Refuse, once and before any work, a plan with engines to build (or check: ``doing``)
    on a machine that cannot run TensorRT (none installed, no GPU): an environment problem
    (exit 5), not one failure per engine. ``apply`` and ``verify`` ask it first.

    Raises:
        EnvironmentMissing: TensorRT or a GPU is missing and the plan has engines to build
            here (pending, or skipped since nothing can build here). Its ``result`` holds
            one outcome per engine (those that needed TensorRT: ``environment``) for the
            reports scripts and CI read (``--json``, ``--junit``).
    """
    platform = plan.platform
    if not getattr(platform, "tensorrt", None):
        missing = "TensorRT is not installed here"
        hint = "pip install 'trtops[trt]' (TensorRT needs an NVIDIA GPU and driver)"
    elif not getattr(platform, "gpus", None):
        missing = "no NVIDIA GPU is visible here"
        hint = "run apply on a machine with a GPU (`trtops info` shows what this one has)"
    else:
        return
    needed = [a for a in plan.actions
              if a.pending or a.kind == "skip" or (doing != "build" and a.key is not None)]
    if needed:
        count = len({a.key.key if a.key else a.id for a in needed})
        error = EnvironmentMissing(
            f"{missing}: cannot {doing} the {count} engine{'s' if count != 1 else ''} of this plan",
            hint=f"{hint}; `trtops plan` shows what apply would build, and engines built "
            "elsewhere can be fetched with `trtops pull`")
        ids = {a.id for a in needed}
        command = {"build": "apply", "measure": "bench"}.get(doing, "verify")
        error.result = RunResult(command, [  # type: ignore[attr-defined]
            action_outcome(a, "environment", missing) if a.id in ids
            else action_outcome(a, "skipped", a.reason) for a in plan.actions])
        raise error


def _acquire_lease(ctx: _Context, action: Action) -> Any:
    if ctx.options.lease_ttl is None or ctx.options.remote is None:
        return None
    from trtops.cache.lease import claim_build, default_owner

    owner = ctx.options.owner or default_owner()
    claim = claim_build(ctx.options.remote, action.key.key, owner, ctx.options.lease_ttl)
    return claim if claim is not None else "other-built"


def _fetch_from_remote(ctx: _Context, action: Action) -> EngineOutcome | None:
    from trtops.cache.entries import entry_state, record_ref
    from trtops.cache.transfer import fetch_entry

    remote = ctx.options.remote
    meta = remote.read_meta(action.key.key)
    if meta is None:
        return None
    state = entry_state(remote, action.key.key)
    if state != "accepted":
        return None  # rejected or unverified engines are never pulled
    started = time.monotonic()
    fetch_entry(remote, ctx.store, action.key.key, meta=meta)
    record_ref(ctx.store, action.id, action.key)
    return _judged(ctx, action, action_outcome(
        action, "downloaded", f"fetched from {remote.url}", seconds=time.monotonic() - started,
        accuracy=_accuracy_summary(ctx.store, action.key.key), engine_bytes=meta.get("engine_size")))


def _build_verify_publish(ctx: _Context, action: Action, item: str, runner: Any) -> EngineOutcome:
    """Build and check (``runner``: an executor slot's, in this process or a worker), then
    publish here: the worker side is :func:`trtops.executors.jobs.run_build_job`. The
    prepared models are pinned throughout, so a concurrent ``gc`` keeps them."""
    from trtops.cache.pins import pinned
    from trtops.prepare.runner import prepared_chain

    chain = prepared_chain(action.key.components["model_digest"], action.key.components.get("prepare"))
    if not chain:
        return _build_prepared(ctx, action, item, runner)
    with pinned(ctx.store.root, chain):
        return _build_prepared(ctx, action, item, runner)


def _build_prepared(ctx: _Context, action: Action, item: str, runner: Any) -> EngineOutcome:
    from trtops.cache.entries import publish_entry
    from trtops.executors.base import default_staging
    from trtops.executors.jobs import BuildJob

    spec, model_path, cast, prepared_note = _prepared_spec(ctx, action, item)
    store = ctx.store
    tensorrt = action.tensorrt or ""
    signature = action.timing_signature or ""
    shared_timing = spec.timing_cache == "shared" and bool(tensorrt and signature)
    timing = None
    if spec.timing_cache != "off" and tensorrt and signature:
        timing = store.read_timing_cache(tensorrt, signature)
        if timing is None and ctx.options.remote is not None:
            timing = ctx.options.remote.read_timing_cache(tensorrt, signature)
    pieces = ctx.ledger.take(tensorrt, signature) if ctx.ledger is not None and shared_timing else ()
    staging_root = default_staging(store)
    staging_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="build-", dir=staging_root))
    try:
        job = BuildJob(spec=spec, key=action.key.key, workdir=str(workdir), timing_cache=timing,
                       timing_pieces=pieces, gpu_index=action.gpu_index, signature=signature or None,
                       model_path=model_path, model_cast=cast, model_digest=_parsed_digest(action),
                       preflight_verdicts=_preflight_dir(store))
        built = runner.run(job, lambda text: ctx.progress.update(item, text))
        if prepared_note:
            built.log_text = prepared_note + "\n" + built.log_text
        _save_log(ctx, spec.id, built.log_text)
        if built.timing_cache and shared_timing:
            _merge_timing(ctx, tensorrt, signature, built.timing_cache, snapshot=timing)
        elif pieces:
            ctx.ledger.give_back(tensorrt, signature, pieces)
        built.raise_failure()

        log_text = built.log_text
        if built.worker:
            log_text = _worker_line(built.worker) + "\n" + log_text
        files: dict[str, Path | bytes] = {ENGINE_FILE: built.engine_source(),
                                          BUILD_LOG_FILE: log_text.encode()}
        if built.layers:
            files[LAYERS_FILE] = json.dumps(built.layers, indent=1).encode()
        if built.calibration_cache:
            files[CALIBRATION_FILE] = built.calibration_cache
        platform_gpu = _build_gpu(ctx.plan, action)
        perf, verdict = _judge_built(ctx, action, built, platform_gpu)
        put, meta = publish_entry(
            store, action.key, spec.id, files, accuracy=built.accuracy, perf=perf,
            build_seconds=round(built.build_seconds, 3), device_memory=built.device_memory,
            io_tensors=built.io["tensors"], tensorrt_version=built.tensorrt_version,
            gpu=platform_gpu,
            extra={"io": built.io, "precision": spec.precision,
                   "target": spec.target.name,
                   "hardware_compatibility": spec.build.hardware_compatibility,
                   "version_compatible": spec.build.version_compatible},
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = _accuracy_summary(store, action.key.key)
    if built.accuracy_passed is False:
        return action_outcome(action, "accuracy_failed", built.accuracy_summary,
                        details=built.accuracy_details, accuracy=summary,
                        engine_bytes=built.engine_bytes)
    if ctx.options.remote is not None and built.accuracy is not None:
        ctx.progress.update(item, "pushing")
        from trtops.cache.transfer import push_entry

        push_entry(store, ctx.options.remote, action.key.key)
        if built.timing_cache and shared_timing:
            if ctx.ledger is None:
                _push_timing(ctx, tensorrt, signature)
            else:
                ctx.ledger.touch(tensorrt, signature)  # pushed once, after the last build
    # DETAILS of a built engine say how it turned out (the accuracy verdict); why it was
    # built ("not built yet") is the plan's story, kept only for rebuilds ("model changed").
    message = built.accuracy_summary or "accuracy not checked"
    if action.kind != "build":
        message = f"{action.reason}; {message}"
    if not put.created:
        message += " (an identical engine was already cached)"
    return _built_outcome(action, message, built, perf, verdict, accuracy=summary)


def _judge_built(ctx: _Context, action: Action, built: Any,
                 gpu: dict | None) -> tuple[dict | None, Any]:
    """(perf.json, verdict) of a freshly built engine's measurement, judged against the
    previous engine of the same logical engine on the same GPU; (None, None) unmeasured."""
    if built.perf is None:
        return None, None
    from trtops.ops.perf_gate import find_baseline, judge_measurement

    name = (built.perf.get("gpu") or {}).get("name") or (gpu or {}).get("name")
    baseline = find_baseline(ctx.store, action.id, action.key.key, name,
                             previous_keys=[action.previous_key],
                             lock_path=ctx.options.lock_path)
    return judge_measurement(built.perf, action.spec, action.key.key, baseline)


def _built_outcome(action: Action, message: str, built: Any, perf: dict | None, verdict: Any,
                   **fields: Any) -> EngineOutcome:
    """A built engine's outcome: built, or perf_failed when its measurement failed the
    gate (or could not be made while budgets were set)."""
    from trtops.ops.perf_gate import gate_message, gated_status
    from trtops.perf.document import perf_summary

    status = gated_status("built", verdict)
    message = gate_message(message, verdict)
    if built.perf_error:
        message += f"; performance not measured: {built.perf_error}"
        if action.spec.performance.gated:
            status = "perf_failed"
    return action_outcome(action, status, message, engine_bytes=built.engine_bytes,
                          perf=perf_summary(perf, verdict), **fields)


def _prepared_spec(ctx: _Context, action: Action, item: str) -> tuple[Any, str | None, str | None, str]:
    """What the build reads: ``(spec, model TensorRT parses, cast, log note)``. The spec's
    source is the gate's reference: the prepared model without the cast (made once per
    source and options, kept in ``<cache>/prepared/``; an input bound by ``constants`` is no
    longer an input), or the source itself. The model TensorRT parses is the cast one where
    the key's ``prepare`` component names a cast (TensorRT 11 fp16/bf16), else None (the
    spec's source). The key says which: what is built is what the key describes."""
    from dataclasses import replace

    from trtops.prepare.options import cast_of, keep_of

    spec = action.spec
    component = action.key.components.get("prepare")
    if component is None:
        return spec, None, None, ""
    from trtops.prepare.runner import ensure_prepared

    cast = cast_of(component)
    ctx.progress.update(item, "preparing the model")
    prepared = ensure_prepared(ctx.store.root, spec.source.path, action.key.components["model_digest"],
                               spec.prepare, cast, keep_of(component))
    note = f"[trtops] built from the prepared model {prepared.model}"
    if cast:
        note += f" (the accuracy gate compares with {prepared.reference})"
    if prepared.report is not None:
        note += "\n" + "\n".join(f"[trtops]   {line}" for line in prepared.report.lines())
    spec = replace(spec, source=replace(spec.source, path=str(prepared.reference)))
    return spec, str(prepared.model) if cast else None, cast, note


def _parsed_digest(action: Action) -> str | None:
    """The content digest of the model the builder parses (its parse preflight's verdict is
    kept under it): the last prepared model of the key's chain, else the source's digest."""
    from trtops.prepare.runner import prepared_chain

    digest = action.key.components.get("model_digest")
    if not isinstance(digest, str):
        return None
    chain = prepared_chain(digest, action.key.components.get("prepare"))
    return chain[-1] if chain else digest


def _preflight_dir(store: Any) -> str | None:
    """The local cache's ``preflight/`` (parse preflight verdicts), or None."""
    from trtops.cache.layout import PREFLIGHT_DIR

    root = getattr(store, "root", None)
    return str(Path(root) / PREFLIGHT_DIR) if root else None


def _worker_line(worker: dict) -> str:
    """The build log's first line for engines built by an executor's worker."""
    where = ", ".join(f"{k}={v}" for k, v in worker.items() if v not in (None, "", {}))
    return f"[trtops] built by a worker: {where}"


def _build_gpu(plan: Plan, action: Action) -> dict | None:
    gpus = getattr(plan.platform, "gpus", None) or []
    index = action.gpu_index
    for gpu in gpus:
        if getattr(gpu, "index", None) == index:
            return {"name": gpu.name, "compute_capability": gpu.compute_capability}
    return None


def _merge_timing(ctx: _Context, tensorrt: str, signature: str, new: bytes,
                  snapshot: bytes | None = None) -> None:
    from trtops.cache.entries import timing_lock_name

    store = ctx.store
    with store.lock(timing_lock_name(tensorrt, signature)):
        current = store.read_timing_cache(tensorrt, signature)
        if ctx.ledger is not None:
            # Parallel builds: ``new`` holds the snapshot the build started from plus what it
            # timed. Merging needs TensorRT, which this process may lack: when another build
            # wrote meanwhile, the next build of this GPU merges ``new`` in its worker.
            if current and current != snapshot:
                ctx.ledger.defer(tensorrt, signature, new)
            else:
                store.write_timing_cache(tensorrt, signature, new)
            return
        merged = ctx.toolchain.merge_timing_caches(current, new) if current else new
        store.write_timing_cache(tensorrt, signature, merged)


def _push_timing(ctx: _Context, tensorrt: str, signature: str) -> None:
    from trtops.cache.transfer import push_timing_cache

    push_timing_cache(ctx.store, ctx.options.remote, tensorrt, signature,
                      merge=ctx.toolchain.merge_timing_caches)


def _save_log(ctx: _Context, spec_id: str, text: str) -> None:
    if ctx.options.log_dir is None or not text:
        return
    ctx.options.log_dir.mkdir(parents=True, exist_ok=True)
    (ctx.options.log_dir / (spec_id.replace("/", "__") + ".log")).write_text(text)


# --------------------------------------------------------------------------- executors


def _fails_unbuilt(ctx: _Context, action: Action) -> bool:
    """True when ``action``'s outcome is a failure that needs no build (see _run_action)."""
    return action.kind == "rejected"


def _local_executor(toolchain: Toolchain) -> Any:
    from trtops.executors.local import LocalExecutor

    return LocalExecutor(toolchain)


def _run_builds(ctx: _Context, executor: Any) -> None:
    """Build every pending engine (one per key) with the executor: its slots take actions
    from one queue and each runs :func:`_build_action` with the slot's runner (the build
    and check run there; this process publishes). Outcomes go to ``ctx.prebuilt``.

    An unreachable remote ends the run: its :class:`RemoteError` is raised here."""
    from trtops.executors.base import TimingLedger, default_staging, run_slots

    builds = ctx.plan.unique_builds()
    if not ctx.options.keep_going:
        # An action that fails without building (a rejected engine) stops the run where it
        # stands in plan order: builds after it are not attempted. (A missing TensorRT or
        # GPU never gets here: apply refuses it upfront, before any build.)
        first_failure = next((i for i, a in enumerate(ctx.plan.actions) if _fails_unbuilt(ctx, a)), None)
        if first_failure is not None:
            before = {a.id for a in ctx.plan.actions[:first_failure]}
            builds = [a for a in builds if a.id in before]
    if not builds:
        return
    if executor.parallel:
        # Concurrent builds of one GPU model must not lose each other's timing caches.
        ctx.ledger = TimingLedger()
    slots, unschedulable = executor.prepare(ctx.plan, builds, toolchain=ctx.toolchain,
                                            staging=default_staging(ctx.store))
    for action in builds:
        if action.id in unschedulable:
            ctx.prebuilt[action.id] = action_outcome(action, "skipped", unschedulable[action.id])

    def work(action: Action, slot: Any) -> EngineOutcome:
        try:
            return _build_action(ctx, action, slot.runner)
        except RemoteError:
            raise  # the remote is unreachable: stop the run (run_slots raises it again)
        except TrtopsError as exc:
            return action_outcome(action, failure_status(exc), failure_text(exc))
        except Exception as exc:  # noqa: BLE001 - a thread must never lose an engine's result
            return action_outcome(action, "error", f"{type(exc).__name__}: {exc}",
                            details=traceback.format_exc())

    queue = [a for a in builds if a.id not in unschedulable]
    done, left = run_slots(slots, queue, work, keep_going=ctx.options.keep_going)
    ctx.prebuilt.update(done)
    stopped = not ctx.options.keep_going and any(o.failed for o in done.values())
    for action in left:
        why = _NOT_ATTEMPTED if stopped else f"not attempted: no {executor.name} worker can build it"
        ctx.prebuilt[action.id] = action_outcome(action, "skipped", why)
    if ctx.ledger is not None:
        _finish_timing(ctx, executor)


def _finish_timing(ctx: _Context, executor: Any) -> None:
    """Merge timing caches that parallel builds left aside (in a worker that has TensorRT)
    and push the shared ones once. Timing caches only save time: failures are ignored."""
    from trtops.cache.entries import timing_lock_name

    store = ctx.store
    for tensorrt, signature, pieces in ctx.ledger.leftovers():
        try:
            with store.lock(timing_lock_name(tensorrt, signature)):
                current = store.read_timing_cache(tensorrt, signature)
                merged = executor.merge_timing(tensorrt, signature, current, pieces)
                if merged:
                    store.write_timing_cache(tensorrt, signature, merged)
        except Exception:  # noqa: BLE001
            pass
    if ctx.options.remote is None:
        return
    from trtops.cache.transfer import push_timing_cache

    for tensorrt, signature in sorted(ctx.ledger.touched):
        def merge(base: bytes, new: bytes, tensorrt: str = tensorrt, signature: str = signature) -> bytes:
            merged = executor.merge_timing(tensorrt, signature, base, [new])
            return merged if merged else base

        try:
            push_timing_cache(store, ctx.options.remote, tensorrt, signature, merge=merge)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- loaders


def _emit(ctx: _Context, result: RunResult) -> None:
    """Write loaders for every accepted engine of this run whose model asks for them."""
    from trtops.emit.emitter import EmitItem, emit_entries

    by_id = {a.id: a for a in ctx.plan.actions}
    items = []
    for outcome in result.outcomes:
        action = by_id.get(outcome.id)
        # A slow engine is still an accurate one: it gets its loaders (exit 6 says the rest).
        if (action is None or not action.spec.loaders or outcome.key is None
                or outcome.status not in ("built", "reused", "downloaded", "perf_failed")):
            continue
        if (outcome.accuracy or {}).get("state") != "accepted":
            continue
        chosen = (result.selected.get(outcome.id) or {}).get("chosen", False)
        items.append(EmitItem(outcome.id, outcome.key, tuple(action.spec.loaders), default=chosen))
    if not items:
        return
    report = emit_entries(ctx.store, items, ctx.options.emit_dest, engine_ref=ctx.options.engine_ref)
    for skipped in report.skipped:
        for outcome in result.outcomes:
            if outcome.id == skipped["engine"]:
                outcome.message += f"; loaders not written: {skipped['reason']}"



@dataclass
class ApplyRequest:
    """One ``trtops apply`` run in plain values (the command converts its flags to this)."""

    paths: list[str]  # manifests, or one saved plan
    cache_url: str
    targets: list[str] | None = None
    keep_going: bool = False
    emit_dest: Path | None = None  # None: write no loaders
    engine_ref: str = "copy"
    remote_url: str | None = None
    lease_ttl: float | None = None  # None: no build lease
    log_dir: Path | None = None
    executor: str | None = None  # local, gpus, ray (trtops.executors.make_executor)
    gpus: str | None = None
    address: str | None = None
    ray_timeout: float | None = None
    lockfile: str | None = None  # --lockfile
    update_lock: bool = True  # record what this run built, reused or fetched in the lock
    report: str | None = None  # --report: the run's HTML report goes here


def run_apply(request: ApplyRequest, *,
              announce: Callable[[str], None] | None = None) -> RunResult:
    """Open the caches and the executor, plan (or load the saved plan), then apply it.

    Args:
        request: what to apply and how.
        announce: called with one line saying how many engines are to be built where,
            when any are (the CLI prints it on stderr).

    Raises:
        EnvironmentMissing: TensorRT or a GPU missing; its ``result`` (when set) holds one
            entry per engine for the reports.
    """
    from trtops.cache import open_store
    from trtops.executors import make_executor
    from trtops.ops.plan import executor_platform, plan_or_load, restrict_targets

    store = open_store(request.cache_url, write_for="apply")
    toolchain = default_toolchain()
    executor = make_executor(request.executor, gpus=request.gpus, address=request.address,
                             ray_timeout=request.ray_timeout, toolchain=toolchain)
    try:
        platform = executor_platform(executor, toolchain)
        plan = plan_or_load(request.paths, store, platform)
        restrict_targets(plan, request.targets)
        options = ApplyOptions(
            keep_going=request.keep_going,
            emit_dest=request.emit_dest,
            engine_ref=request.engine_ref,
            remote=open_store(request.remote_url) if request.remote_url else None,
            lease_ttl=request.lease_ttl,
            log_dir=request.log_dir,
            executor=executor,
            lock_path=(lock_path_for_apply(request.paths, plan, request.lockfile)
                       if request.update_lock else None),
        )
        if plan.pending and announce is not None:
            where = f" ({executor.describe()})" if executor.parallel else ""
            announce(f"apply: {len(plan.unique_builds())} engine(s) to build on "
                     f"{platform.describe()}{where}")
        result = apply_plan(plan, store, toolchain=toolchain, options=options)
        if request.report:
            from trtops.ops.report import write_run_report

            write_run_report(request.report, result, store, plan)
        return result
    finally:
        executor.close()


def lock_path_for_apply(paths: list[str], plan: Plan, lockfile: str | None) -> Path | None:
    """The lock apply records its engines in: ``lockfile``, else ``trtops.lock`` beside
    the manifests (those a saved plan was made from); None when there is none."""
    from trtops.lockfile import lock_path_for
    from trtops.ops.plan import is_plan_file

    manifests = list(plan.manifests) if is_plan_file(paths) else paths
    if not manifests and not lockfile:
        return None
    try:
        path = lock_path_for(manifests, lockfile)
    except InputError:
        return None  # manifests of several directories and no --lockfile: no one lock
    return path if path.is_dir() else None
