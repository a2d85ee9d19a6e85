"""``select: fastest`` in apply, emit and the lock: group a model's engines per target,
let :func:`trtops.perf.select.choose_fastest` choose (pure), and say which engine is the
model's default loader. Apply chooses from its outcomes (built, reused, fetched: all
measured or judged there); ``trtops emit`` chooses from the cache's perf.json files, with
the same rule, so both name the same engine."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from trtops.perf.select import POLICY, choose_fastest, group_key

log = logging.getLogger("trtops.ops.select")

#: Outcome statuses of an engine that is in the cache, accepted and may be chosen.
CHOOSABLE = ("built", "reused", "downloaded", "perf_failed", "benched")


def group_label(spec: Any) -> str:
    manifest, model, target = group_key(spec)
    return f"{manifest}/{model}/{target}"


def _choose(specs: Sequence[Any], candidates: dict[str, dict[str, Any]]) -> tuple[
        dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(selection per group label, the lock's record per spec id) of the ``select:
    fastest`` specs, from ``candidates`` by spec id ({key, accepted, perf})."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for spec in specs:
        if spec.select == POLICY:
            groups.setdefault(group_key(spec), []).append(spec)
    selections: dict[str, dict[str, Any]] = {}
    per_spec: dict[str, dict[str, Any]] = {}
    for members in groups.values():
        rows = [dict(candidates.get(s.id) or {"key": None, "accepted": False, "perf": None},
                     precision=s.precision) for s in members]
        choice = choose_fastest(rows)
        if choice is None:
            continue
        label = group_label(members[0])
        selections[label] = choice
        for spec in members:
            per_spec[spec.id] = {"policy": POLICY, "chosen": spec.precision == choice["precision"],
                                 "precision": choice["precision"], "reason": choice["reason"]}
    return selections, per_spec


def select_from_outcomes(actions: Iterable[Any], outcomes: Iterable[Any]) -> tuple[
        dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The choices of one apply (or bench) run, from its outcomes.

    Returns:
        (selection per ``manifest/model/target``, the lock's record per spec id).
    """
    by_id = {o.id: o for o in outcomes}
    specs = [a.spec for a in actions if a.id in by_id]
    candidates = {}
    for spec in specs:
        outcome = by_id[spec.id]
        accepted = (outcome.status in CHOOSABLE
                    and (outcome.accuracy or {}).get("state") == "accepted")
        candidates[spec.id] = {"key": outcome.key, "accepted": accepted, "perf": outcome.perf}
    return _choose(specs, candidates)


def select_from_store(store: Any, specs: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The lock's record per spec id of the ``select: fastest`` specs, from the engines
    their refs name in the cache (for ``trtops emit``)."""
    from trtops.cache.entries import entry_state, read_perf
    from trtops.errors import CacheError
    from trtops.perf.document import perf_summary

    candidates = {}
    for spec in specs:
        if spec.select != POLICY:
            continue
        try:
            record = store.read_ref(spec.id) or {}
            key = record.get("key")
            if not key or entry_state(store, key) != "accepted":
                continue
            candidates[spec.id] = {"key": key, "accepted": True,
                                   "perf": perf_summary(read_perf(store, key))}
        except CacheError as exc:
            log.warning("%s: not a candidate of select: fastest: %s", spec.id, exc.message)
    return _choose(specs, candidates)[1]


def chosen_ids(per_spec: dict[str, dict[str, Any]]) -> set[str]:
    """Spec ids whose engine is their model's default loader."""
    return {spec_id for spec_id, record in per_spec.items() if record.get("chosen")}


__all__ = ["CHOOSABLE", "chosen_ids", "group_label", "select_from_outcomes", "select_from_store"]
