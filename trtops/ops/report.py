"""The HTML report's data, read from the cache: after ``apply --report`` (its outcomes and
plan) and for ``trtops report`` (the manifests' engines as the cache has them, nothing run).

Per engine: meta.json (build time, size), accuracy.json (per-output errors and histograms),
perf.json (latency, throughput, verdict) and what changed since the previous engine (the
plan's changes; else the key components of the performance baseline's entry against this
one's). Entry files are untrusted (they may come from a shared remote): a damaged one is a
note on its engine, never a failed report.
"""

from __future__ import annotations

import os
import platform as host
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trtops import __version__
from trtops.errors import CacheError
from trtops.outcome import EngineOutcome, RunResult
from trtops.report.page import EngineView, PerfView, ReportPage


def machine_line() -> str:
    """``host (Linux 6.1, Python 3.11.2)``: where the page was made."""
    return (f"{socket.gethostname()} ({host.system()} {host.release()}, "
            f"Python {host.python_version()})")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_perf(store: Any, key: str) -> PerfView | None:
    from trtops.cache.entries import read_perf

    document = read_perf(store, key)  # checked against the schema that writes it
    return None if document is None else PerfView.from_json(document)


def _entry_view(store: Any, outcome: EngineOutcome, state: str) -> EngineView:
    """The engine's view with its entry's files (when its entry exists)."""
    from trtops.cache.entries import read_accuracy
    from trtops.cache.store import ACCURACY_FILE, META_FILE, PERF_FILE

    view = EngineView(outcome=outcome, state=state)
    key = outcome.key
    if not key:
        return view
    readers = (("meta", META_FILE, store.read_meta), ("accuracy", ACCURACY_FILE,
               lambda k: read_accuracy(store, k)), ("perf", PERF_FILE, lambda k: _read_perf(store, k)))
    try:
        if not store.has_entry(key):
            return view
    except CacheError as exc:
        view.notes.append(f"cannot read the entry: {exc.message}")
        return view
    for attribute, name, read in readers:
        try:
            setattr(view, attribute, read(key))
        except CacheError as exc:
            view.notes.append(f"{name} not shown: {exc.message}")
    return view


def _changes_from_baseline(store: Any, view: EngineView) -> list[str]:
    """What differs between the performance baseline's entry and this one (key components)."""
    from trtops.plan.explain import explain_changes

    perf, meta = view.perf, view.meta or {}
    if perf is None or not perf.baseline_key or perf.baseline_key == view.outcome.key:
        return []
    try:
        old = store.read_meta(perf.baseline_key) if store.has_entry(perf.baseline_key) else None
    except (CacheError, ValueError):
        old = None
    if not isinstance(old, Mapping) or not isinstance(meta.get("components"), Mapping):
        return []
    return [change.message for change in explain_changes(
        old.get("components") or {}, meta["components"], old.get("model"), meta.get("model"))]


def _changes_from_action(action: Any) -> list[str]:
    if action is None or not action.pending:
        return []
    if action.changes:
        return [change.message for change in action.changes]
    if action.kind == "rebuild":
        return [action.reason]
    return ["first build of this engine (no previous engine of this model/precision/target)"]


def page_for_run(result: RunResult, store: Any, plan: Any = None) -> ReportPage:
    """The report of a run (``apply``): its outcomes, with what their entries hold.

    Args:
        result: the run's outcomes.
        store: the local cache the run published to.
        plan: the plan it ran (for what changed, and the platform), or None.
    """
    actions = {action.id: action for action in getattr(plan, "actions", ())}
    engines = []
    for outcome in result.outcomes:
        view = _entry_view(store, outcome, outcome.status)
        view.selection = result.selected.get(outcome.id)  # select: fastest, as apply chose
        view.changes = (_changes_from_action(actions.get(outcome.id))
                        or _changes_from_baseline(store, view))
        engines.append(view)
    platform = getattr(plan, "platform", None)
    return ReportPage(command=result.command, generated_at=_now(), machine=machine_line(),
                      platform=platform.describe() if platform is not None else "",
                      version=__version__, cache=store.url, engines=engines,
                      exit_code=int(result.exit_code()), seconds=result.seconds)


def write_run_report(path: str | os.PathLike[str], result: RunResult, store: Any,
                     plan: Any = None) -> Path:
    """``apply --report FILE``: write the run's HTML report (failed engines included), and
    its compact Markdown to the GitHub step summary inside GitHub Actions."""
    page = page_for_run(result, store, plan)
    return publish(page, path)


def publish(page: ReportPage, path: str | os.PathLike[str],
            environ: Mapping[str, str] | None = None) -> Path:
    """Write the page, and inside GitHub Actions append its Markdown summary."""
    from trtops.console import in_github_actions
    from trtops.report.github import append_step_summary, report_summary
    from trtops.report.html import write_html

    written = write_html(page, path)
    env = os.environ if environ is None else environ
    if in_github_actions(env):
        try:
            append_step_summary(report_summary(page), env)
        except OSError as exc:  # a summary is a nicety; the page is written
            import sys

            print(f"warning: cannot append to GITHUB_STEP_SUMMARY: {exc}", file=sys.stderr)
    return written


# --------------------------------------------------------------------------- trtops report


@dataclass
class ReportRequest:
    """One ``trtops report`` run in plain values."""

    paths: Sequence[str]  # manifests (none: every ref of the cache)
    cache_url: str
    output: str


def _outcome(engine_id: str, spec: Any, state: str, key: str | None, message: str) -> EngineOutcome:
    from trtops.names import try_parse_engine_id

    if spec is not None:
        return EngineOutcome(id=spec.id, manifest=spec.manifest, line=spec.line, model=spec.model,
                             precision=spec.precision, target=spec.target.name, action="",
                             status=state, key=key, message=message)
    parsed = try_parse_engine_id(engine_id)
    model, precision, target = ((parsed.model, parsed.precision, parsed.target) if parsed
                                else (engine_id, "?", "?"))
    return EngineOutcome(id=engine_id, manifest="", line=None, model=model, precision=precision,
                         target=target, action="", status=state, key=key, message=message)


def _cached_state(store: Any, key: str | None) -> str:
    from trtops.cache import layout
    from trtops.cache.entries import read_accuracy
    from trtops.names import is_sha256

    if not is_sha256(key):
        return "not built"
    try:
        if not store.has_entry(key):
            return "missing"
        return layout.state_from_accuracy(read_accuracy(store, key))
    except CacheError:
        return "damaged"


def page_for_cache(store: Any, paths: Sequence[str]) -> ReportPage:
    """The report of what the cache holds for the manifests' engines (every ref when there
    are no manifests): state, accuracy, performance; nothing is built or measured.

    Raises:
        ManifestError: a manifest is invalid (exit 1).
    """
    specs: dict[str, Any] = {}
    if paths:
        from trtops.plan import load_specs

        cache_dir = getattr(store, "root", None)
        specs = {s.id: s for s in load_specs(list(paths), check_models=False, cache_dir=cache_dir)}
    ids = list(specs) or sorted(ref for ref, _ in store.list_refs())
    # select: fastest, chosen from the cache's perf.json files by the rule apply and emit use
    # (only with manifests: the policy is theirs)
    from trtops.ops.select import select_from_store

    selected = select_from_store(store, list(specs.values())) if specs else {}
    engines = []
    for engine_id in ids:
        try:
            record = store.read_ref(engine_id) or {}
        except CacheError as exc:
            record = {"error": exc.message}
        key = record.get("key") if isinstance(record.get("key"), str) else None
        state = _cached_state(store, key)
        view = _entry_view(store, _outcome(engine_id, specs.get(engine_id), state, key, ""), state)
        if record.get("error"):
            view.notes.append(f"ref not readable: {record['error']}")
        view.selection = selected.get(engine_id)
        if view.accuracy and isinstance(view.accuracy.get("summary"), str):
            view.outcome.message = view.accuracy["summary"]
        if state == "accepted" and view.perf is not None and view.perf.passed is False:
            view.state = view.outcome.status = "perf_failed"
        view.changes = _changes_from_baseline(store, view)
        engines.append(view)
    return ReportPage(command="report", generated_at=_now(), machine=machine_line(), platform="",
                      version=__version__, cache=store.url, engines=engines)


def run_report(request: ReportRequest) -> tuple[ReportPage, Path]:
    """``trtops report``: build the page from the cache and the manifests, write it.

    Returns:
        The page and the file written.
    """
    from trtops.cache import open_store

    store = open_store(request.cache_url)
    page = page_for_cache(store, request.paths)
    return page, publish(page, request.output)
