"""`trtops repair`: for an engine that failed its accuracy gate, find a small ``keep_fp32`` list
of ONNX nodes that makes it pass, publish that engine, and write the list into the manifest.

Per engine (an action the plan calls ``rejected``):

1. probe (one build): the model with its intermediate tensors as outputs, built at the
   engine's precision and compared with ONNX Runtime by the gate (:mod:`trtops.repair.probe`);
   prepared as the engine is (its key's ``prepare`` component: on strongly typed builds,
   TensorRT 11's fp16/bf16, the cast with the engine's keep lists);
2. rank the nodes by the error they introduce (:mod:`trtops.repair.rank`);
3. search the ranking (:mod:`trtops.repair.search`): each try is the manifest's own spec
   with a keep_fp32 list, planned and applied exactly as ``trtops apply`` would (same key
   as a manifest with that list, shared timing cache, failing tries kept as rejected entries,
   so a second run does not build them again); the passing one is the published engine;
4. the patch: the manifest's text with the list added (:mod:`trtops.repair.patch`), printed,
   written with ``--write``.

Names are ONNX node names (``keep_fp32``), or the tensor an unnamed node computes
(``keep_fp32_outputs``). Builds count against ``--max-builds`` (the probe included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trtops.errors import EnvironmentMissing, InputError
from trtops.textsafe import name_list

DEFAULT_MAX_BUILDS = 12
_PASSING = ("built", "reused", "downloaded")
_BUILT = ("built", "accuracy_failed")


@dataclass
class RepairRequest:
    """One ``trtops repair`` run in plain values."""

    paths: list[str]
    cache_url: str
    engine: str | None = None  # spec id (manifest/model/precision/target) or engine key
    max_builds: int = DEFAULT_MAX_BUILDS
    write: bool = False


@dataclass
class RepairOutcome:
    """What repair did for one engine."""

    id: str
    repaired: bool
    message: str
    builds: int = 0
    tries: int = 0
    lists: dict[str, list[str]] = field(default_factory=dict)  # the manifest's new lists
    key: str | None = None
    diff: str = ""
    written: str | None = None  # the manifest file, when --write wrote it
    minimal: bool = False
    latency: str | None = None  # what the nodes in fp32 cost, where the performance gate measures


class _Quiet:
    """apply's progress, silenced: repair prints its own lines."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def start(self, *args: Any, **kwargs: Any) -> None:
        return None

    update = finish = start


def run_repair(request: RepairRequest, *, say: Callable[[str], None] = print,
               toolchain: Any = None) -> list[RepairOutcome]:
    """Repair the engines of ``request`` (see the module docstring).

    Raises:
        InputError: no such engine, the engine did not fail its gate, not a reduced
            precision, bad manifests.
        EnvironmentMissing: no TensorRT or GPU here.
    """
    from trtops.cache import open_store
    from trtops.ops.plan import platform_here
    from trtops.ops.toolchain import default_toolchain
    from trtops.plan import make_plan

    if request.max_builds < 2:
        raise InputError("--max-builds must be at least 2 (one probe build and one try)")
    store = open_store(request.cache_url, write_for="repair")
    toolchain = toolchain or default_toolchain()
    platform = platform_here(toolchain)
    if not getattr(platform, "tensorrt", None) or not getattr(platform, "gpus", None):
        raise EnvironmentMissing("repair builds engines: TensorRT and a GPU are needed here",
                                 hint="run it where `trtops apply` builds (`trtops info` shows what this machine has)")
    plan = make_plan(request.paths, store, platform)
    actions = _failed_actions(plan, request.engine)
    outcomes = []
    for action in actions:
        outcome, repaired = _repair_one(action, store, platform, toolchain, request, say)
        if repaired is not None:
            outcome.latency = _latency_cost(action, repaired, plan, store, toolchain)
        outcomes.append(outcome)
    return outcomes


def _failed_actions(plan: Any, engine: str | None) -> list[Any]:
    from trtops.suggest import did_you_mean

    if engine is None:
        failed = [a for a in plan.actions if a.kind == "rejected"]
        if not failed:
            raise InputError("no engine of these manifests failed its accuracy gate: nothing to repair",
                             hint="`trtops plan` says 'rejected' for engines that did; build them first with "
                             "`trtops apply`")
        return failed
    chosen = [a for a in plan.actions if engine in (a.id, a.key.key if a.key else None)]
    if not chosen:
        ids = [a.id for a in plan.actions]
        raise InputError(f"no engine {engine!r} in these manifests{did_you_mean(engine, ids)}",
                         hint=f"engines: {name_list(ids)}")
    action = chosen[0]
    if action.kind != "rejected":
        what = {"reuse": "passed its accuracy gate", "build": "is not built yet",
                "rebuild": "is not built yet (its inputs changed)", "skip": "is not built here"}
        raise InputError(f"engine {action.id} {what.get(action.kind, action.kind)}: only an engine that "
                         "failed its accuracy gate can be repaired",
                         hint="`trtops apply` builds and checks it; repair the engines it reports as failed")
    return [action]


def _repair_one(action: Any, store: Any, platform: Any, toolchain: Any, request: RepairRequest,
                say: Callable[[str], None]) -> tuple[RepairOutcome, Any]:
    """What repair did for ``action``'s engine, and the apply outcome of the published
    repaired engine (None when no repair was found)."""
    from trtops.capabilities import KEEP_FP32_PRECISIONS
    from trtops.node_select import entry_for, select_nodes
    from trtops.onnx_facts import read_graph
    from trtops.repair.rank import rank_nodes
    from trtops.repair.search import find_keep_set

    spec = action.spec
    if spec.precision not in KEEP_FP32_PRECISIONS:
        raise InputError(f"engine {spec.id} is {spec.precision}: keep_fp32 cannot help an engine that runs "
                         "in fp32 already", hint="loosen accuracy.tolerances, or check the model")
    budget = request.max_builds
    say(f"repair {spec.id}: probing intermediate tensors (build 1 of at most {budget})")
    nodes = read_graph(spec.source.path).nodes
    errors = _probe(action, store, toolchain)
    already = {n.index for n in select_nodes(nodes, spec.build.keep_fp32, spec.build.keep_fp32_outputs)}
    ranking = [e for e in rank_nodes(nodes, errors) if e.node.index not in already]
    if not ranking:
        return RepairOutcome(spec.id, False, "no node with a measurable float output to hold in fp32",
                             builds=1), None
    top = ", ".join(f"{entry_for(e.node, nodes)[1]} ({_fmt(e.added)})" for e in ranking[:5])
    say(f"repair {spec.id}: {len(ranking)} candidate nodes; most suspect (error added, in tolerances): {top}")
    builds = [1]

    def passes(chosen: tuple[Any, ...]) -> bool:
        trial = _with_nodes(spec, [e.node for e in chosen], nodes)
        outcome = _apply_one(trial, store, platform, toolchain)
        if outcome.status in _BUILT or outcome.status == "build_failed":
            builds[0] += 1
        return outcome.status in _PASSING

    def progress(trial: Any, left: int) -> None:
        names = name_list([entry_for(e.node, nodes)[1] for e in trial.nodes])
        say(f"repair {spec.id}: try {len(result_trials) + 1} ({trial.phase}): {len(trial.nodes)} node(s) in fp32 "
            f"[{names}]: {'passed' if trial.passed else 'failed'} ({builds[0]} builds so far)")
        result_trials.append(trial)

    result_trials: list[Any] = []
    result = find_keep_set(ranking, passes, budget - 1, on_trial=progress)
    if result.found is None:
        why = ("the build budget ran out" if result.exhausted
               else "even every candidate in fp32 fails the gate")
        tried = "; ".join(f"{len(t.nodes)} node(s): failed" for t in result.trials[-3:])
        return RepairOutcome(spec.id, False, f"no repair found: {why} ({result.tries} tries, {builds[0]} builds"
                             + (f"; last: {tried}" if tried else "") + ")",
                             builds=builds[0], tries=result.tries), None
    final = _with_nodes(spec, [e.node for e in result.found], nodes)
    published = _apply_one(final, store, platform, toolchain)  # a reuse: the passing try is published
    key = published.key
    lists = _manifest_lists(spec, [e.node for e in result.found], nodes)
    outcome = RepairOutcome(spec.id, True, "", builds=builds[0], tries=result.tries, lists=lists, key=key,
                            minimal=result.minimal)
    outcome.diff, outcome.written = _patch(spec, lists, request.write)
    added = sum(len(v) for v in lists.values()) - len(spec.build.keep_fp32) - len(spec.build.keep_fp32_outputs)
    outcome.message = (f"repaired with {added} node(s) in fp32 after {builds[0]} builds"
                       + ("" if result.minimal else " (the budget ran out while shrinking: maybe not minimal)"))
    return outcome, published


def _latency_cost(action: Any, repaired: Any, plan: Any, store: Any, toolchain: Any) -> str | None:
    """``latency: 0.085 ms at opt with keep_fp32; the failed fp16 engine 0.060 ms (+41.7%);
    the fp32 engine 0.092 ms`` where the performance gate measures this model: the repaired
    engine's measurement (apply's), the failed engine measured now (apply never measures an
    engine that failed its gate) and the cached fp32 engine of the same model and target
    when it was measured. A number measured on another GPU model than the repaired engine's
    is left out (a pulled perf.json may come from another machine of the same compute
    capability), as the performance gate compares only measurements of one GPU model.
    None when the gate is off or nothing was measured."""
    from trtops.names import format_percent
    from trtops.perf.judge import format_ms

    spec = action.spec
    summary = repaired.perf or {}
    if not spec.performance.enabled or summary.get("latency_ms") is None:
        return None
    after, label, gpu = float(summary["latency_ms"]), summary.get("case", "opt"), summary.get("gpu")
    parts = [f"{format_ms(after)} ms at {label} with keep_fp32"]
    before = _case_median(_measure_failed(action, store, toolchain), label, gpu)
    if before:
        change = after / before - 1
        parts.append(f"the failed {spec.precision} engine {format_ms(before)} ms "
                     f"({'+' if change >= 0 else '-'}{format_percent(abs(change))})")
    fp32 = _case_median(_sibling_perf(action, plan, store, "fp32"), label, gpu)
    if fp32:
        parts.append(f"the fp32 engine {format_ms(fp32)} ms")
    return "latency: " + "; ".join(parts)


def _case_median(document: Any, label: str, gpu: str | None) -> float | None:
    """The median latency of case ``label`` in a measurement made on ``gpu`` (a GPU name)."""
    document = document or {}
    if (document.get("gpu") or {}).get("name") != gpu:
        return None
    for case in document.get("cases") or ():
        if case.get("label") == label:
            return float(case["latency_ms"]["median"])
    return None


def _measure_failed(action: Any, store: Any, toolchain: Any) -> dict | None:
    """The failed engine (a rejected entry in this cache) measured now, as ``bench`` would;
    None when it cannot be (a cost line is information, never a reason to fail repair)."""
    from trtops.ops.bench import measure_cached

    try:
        return measure_cached(store, action.key.key, action.spec, toolchain)
    except Exception as exc:  # noqa: BLE001 - as apply's measuring: any failure leaves the number out
        import logging

        logging.getLogger(__name__).warning("repair: the failed engine of %s not measured: %s",
                                            action.spec.id, getattr(exc, "message", None) or exc)
        return None


def _sibling_perf(action: Any, plan: Any, store: Any, precision: str) -> dict | None:
    """The cached perf.json of the same model and target at ``precision``, if measured."""
    from trtops.cache.entries import read_perf
    from trtops.errors import TrtopsError

    spec = action.spec
    for other in plan.actions:
        theirs = other.spec
        if (theirs.manifest_name, theirs.model, theirs.target.name, theirs.precision) == \
                (spec.manifest_name, spec.model, spec.target.name, precision) and other.key is not None:
            try:
                return read_perf(store, other.key.key)
            except TrtopsError:
                return None
    return None


def _fmt(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.3g}"


def _with_nodes(spec: Any, chosen: list[Any], nodes: Any) -> Any:
    """``spec`` with ``chosen`` added to its keep lists (sorted, unique: as the expander makes them)."""
    from trtops.node_select import entry_for

    lists = {"keep_fp32": set(spec.build.keep_fp32), "keep_fp32_outputs": set(spec.build.keep_fp32_outputs)}
    for node in chosen:
        field_name, value = entry_for(node, nodes)
        lists[field_name].add(value)
    build = replace(spec.build, keep_fp32=tuple(sorted(lists["keep_fp32"])),
                    keep_fp32_outputs=tuple(sorted(lists["keep_fp32_outputs"])))
    return replace(spec, build=build)


def _manifest_lists(spec: Any, chosen: list[Any], nodes: Any) -> dict[str, list[str]]:
    """The model's keep lists as the manifest will say them: what it has, in its order, then
    the new entries in graph order."""
    from trtops.manifest.collect import load_paths
    from trtops.node_select import entry_for

    model = _manifest_model(spec, load_paths([spec.manifest], check_models=False))[1]
    lists = {"keep_fp32": list(model.keep_fp32), "keep_fp32_outputs": list(model.keep_fp32_outputs)}
    for node in sorted(chosen, key=lambda n: n.index):  # graph order reads best
        field_name, value = entry_for(node, nodes)
        if value not in lists[field_name]:
            lists[field_name].append(value)
    return {k: v for k, v in lists.items() if v}


def _manifest_model(spec: Any, loaded: list[Any]) -> tuple[Any, Any, int]:
    for lm in loaded:
        if os.path.abspath(lm.path) != os.path.abspath(spec.manifest):
            continue
        for index, model in enumerate(lm.manifest.models):
            if model.name == spec.model:
                return lm, model, index
    raise InputError(f"model {spec.model} is not in {spec.manifest} any more")


def _patch(spec: Any, lists: dict[str, list[str]], write: bool) -> tuple[str, str | None]:
    from trtops.manifest.collect import load_paths
    from trtops.repair.patch import keep_fp32_patch

    lm, _model, index = _manifest_model(spec, load_paths([spec.manifest], check_models=False))
    try:
        patch = keep_fp32_patch(lm, index, lists)
    except InputError as exc:
        if write:
            raise
        return f"# {exc.message}\n# {exc.hint}\n", None  # printed: the lines to add by hand
    if not write or not patch.changed:
        return patch.diff, None
    path = Path(lm.path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:  # the manifest keeps its mode (copymode): atomic_write would reset it
        tmp.write_bytes(patch.new.encode("utf-8"))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only checkout is the user's to fix, not a bug (exit 1)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise InputError(f"{path}: cannot write the repaired keep_fp32 list: {exc.strerror or exc}",
                         hint="run repair without --write and apply the printed patch by hand") from exc
    return patch.diff, str(path)


def _apply_one(spec: Any, store: Any, platform: Any, toolchain: Any) -> Any:
    """Plan and apply one spec as ``trtops apply`` would; its one outcome."""
    from trtops.ops.apply import ApplyOptions, apply_plan
    from trtops.plan import make_plan_for_specs

    plan = make_plan_for_specs([spec], store, platform, manifests=[spec.manifest])
    result = apply_plan(plan, store, toolchain=toolchain, options=ApplyOptions(),
                        progress_factory=lambda total, title: _Quiet())
    return result.outcomes[0]


def _probe(action: Any, store: Any, toolchain: Any) -> dict[str, float]:
    """Build the probe model at the engine's precision and gate it: each tensor's error.

    The probe is the engine's own input with intermediate tensors marked as outputs: the
    preparation the engine's key names (its ``prepare`` component: the steps, and on strongly
    typed builds the cast with the keep lists) through the same runner as ``apply``
    (:func:`trtops.prepare.runner.prepare_variant`), the outputs marked before the cast, so
    the cast model is built with ``model_cast`` and gated against the uncast one."""
    from trtops.cache.pins import pinned
    from trtops.executors.base import default_staging
    from trtops.prepare.options import cast_of, keep_of
    from trtops.prepare.runner import prepare_variant, prepared_chain
    from trtops.repair.probe import tensor_errors, write_probe_model
    from trtops.trt.builder import BuildRequest

    spec = action.spec
    digest = action.key.components["model_digest"]
    component = action.key.components.get("prepare")
    cast = cast_of(component)
    staging = default_staging(store)
    staging.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="repair-probe-", dir=staging))
    try:
        with pinned(store.root, prepared_chain(digest, component)):
            probe = prepare_variant(store.root, spec.source.path, digest, spec.prepare, cast, keep_of(component),
                                    write_probe_model, workdir / "probe")
        timing = None
        if spec.timing_cache != "off" and action.tensorrt and action.timing_signature:
            timing = store.read_timing_cache(action.tensorrt, action.timing_signature)
        probe_spec = replace(spec, source=replace(spec.source, path=str(probe.reference)), prepare=None)
        (workdir / "build").mkdir()
        built = toolchain.build(BuildRequest(spec=probe_spec, model_path=probe.model, workdir=workdir / "build",
                                             timing_cache=timing, model_cast=cast))
        # The model's own outputs count too: a node that computes one is a candidate.
        return tensor_errors(toolchain.verify(built.engine_path, probe.reference, built.io, spec.accuracy,
                                              precision=spec.precision))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
