"""`trtops push`: publish accepted local entries to a remote cache, in parallel.

Writes are create-only (see :func:`trtops.cache.transfer.push_entry`): when several machines
push the same engine at once exactly one object is created and the others confirm that its
sha256 equals theirs. Rejected and unverified entries are never pushed. Timing caches the
remote does not have yet are uploaded too (never overwriting a remote one: merging needs
TensorRT, `apply` does it).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trtops.cache import layout
from trtops.cache.entries import (
    entry_size,
    entry_state,
    list_timing_caches,
    state_of_accuracy,
)
from trtops.cache.store import ACCURACY_FILE
from trtops.cache.transfer import check_remote, push_entry, push_timing_cache
from trtops.errors import CacheError, InputError, RemoteError
from trtops.names import KEY_PREFIX_RE, SHA256_RE, TRANSFER_JOBS, format_bytes
from trtops.ops.progress import TransferProgress


@dataclass
class PushOutcome:
    key: str
    spec_id: str
    status: str  # created | exists | different | skipped | failed
    detail: str = ""
    size: int = 0


def push_entries(local: Any, remote: Any, keys: Iterable[str] | None = None, *,
                 jobs: int = TRANSFER_JOBS, progress: bool | None = None) -> list[PushOutcome]:
    """Push accepted local entries (all, or ``keys``) in parallel.

    Args:
        local: The local store.
        remote: The remote store.
        keys: Keys to push (default: every complete local entry).
        jobs: Entries in flight at once.
        progress: None: a bar in a terminal, a line per entry elsewhere; True: the bar;
            False: silent.

    Returns:
        One outcome per key: created, exists (identical), different (remote kept its own
        engine), skipped (not accepted) or failed (with the error message).
    """
    keys = list(local.list_keys() if keys is None else keys)
    candidates: list[tuple[str, dict]] = []
    outcomes: list[PushOutcome] = []
    for key in keys:
        layout.check_key(key)
        meta = local.read_meta(key)
        if meta is None:
            outcomes.append(PushOutcome(key, "?", "failed", f"no complete entry in {local.url}"))
            continue
        state = state_of_accuracy(local.read_file(key, ACCURACY_FILE), key)
        if state != "accepted":
            outcomes.append(PushOutcome(key, meta.get("spec_id", "?"), "skipped",
                                        f"{state}: only accepted entries are pushed"))
            continue
        candidates.append((key, meta))
    total = sum(entry_size(meta) for _, meta in candidates)
    with TransferProgress(total, len(candidates), "push", interactive=progress,
                          quiet=progress is False) as bar, \
            ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="trtops-push") as pool:

        gave_up: list[str] = []  # as in pull_entries: stop after the remote failed

        def one(item: tuple[str, dict]) -> PushOutcome:
            key, meta = item
            spec_id = meta.get("spec_id", "?")
            label = f"{spec_id} ({key[:12]})"
            if gave_up:
                bar.item_done(label, "not attempted: the remote failed")
                return PushOutcome(key, spec_id, "failed", f"not attempted: {gave_up[0]}")
            try:
                result = push_entry(local, remote, key, progress=bar.advance)
            except CacheError as exc:
                if isinstance(exc, RemoteError):
                    gave_up.append(exc.message)
                bar.item_done(label, f"failed: {exc.message}")
                return PushOutcome(key, spec_id, "failed", exc.message)
            if result.created:
                status, detail = "created", f"pushed {format_bytes(entry_size(meta))}"
            elif result.identical:
                status, detail = "exists", "already on the remote"
            else:
                status, detail = "different", "the remote has a different engine for this key; kept it"
            bar.item_done(label, detail)
            return PushOutcome(key, spec_id, status, detail, entry_size(meta))

        outcomes.extend(pool.map(one, candidates))
    return outcomes


def resolve_keys(store: Any, given: list[str]) -> list[str]:
    """Expand unique key prefixes (at least 6 hex digits) against a store's keys.

    Raises:
        InputError: for unknown or ambiguous prefixes.
    """
    if not given:
        return []
    known = None
    keys = []
    for text in given:
        text = text.strip().lower()
        if SHA256_RE.match(text):
            keys.append(text)
            continue
        if not KEY_PREFIX_RE.match(text):
            raise InputError(f"{text!r} is not an engine key",
                             hint="give a key or a prefix of at least 6 hex digits")
        if known is None:
            known = list(store.list_keys())
        matches = [k for k in known if k.startswith(text)]
        if len(matches) != 1:
            raise InputError(
                f"key prefix {text!r} matches {len(matches)} entries in {store.url}",
                hint="give more digits" if matches else "list entries with `trtops status`",
            )
        keys.append(matches[0])
    return list(dict.fromkeys(keys))


def plan_push(local: Any, remote: Any, keys: list[str] | None) -> list[dict[str, Any]]:
    """What ``push --dry-run`` shows: per entry, push or skip (with why).

    Args:
        local: The local store.
        remote: The remote store.
        keys: Keys to consider (None: every complete local entry).

    Returns:
        Rows ``{"key", "spec_id", "action"}``.
    """
    check_remote(remote)
    rows = []
    for key in keys if keys is not None else list(local.list_keys()):
        meta = local.read_meta(key) or {}
        state = entry_state(local, key) or "missing"
        action = "push" if state == "accepted" else f"skip ({state})"
        if state == "accepted" and remote.has_entry(key):
            action = "skip (already on the remote)"
        rows.append({"key": key, "spec_id": meta.get("spec_id"), "action": action})
    return rows


@dataclass
class PushResult:
    """What ``trtops push`` did."""

    outcomes: list[PushOutcome]
    timing_caches: list[str] = field(default_factory=list)  # "tensorrt/signature" uploaded
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Outcomes per status."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    @property
    def pushed_bytes(self) -> int:
        return sum(o.size for o in self.outcomes if o.status == "created")

    @property
    def failed(self) -> list[PushOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def push(local: Any, remote: Any, keys: list[str] | None = None, *, jobs: int = TRANSFER_JOBS,
         timing_caches: bool = True, progress: bool | None = None) -> PushResult:
    """Push accepted entries (all, or ``keys``), then, when pushing all, the timing caches
    the remote lacks (a failed timing cache is a warning, not a failure).

    Args:
        local: The local store.
        remote: The remote store.
        keys: Full keys (see :func:`resolve_keys`); None: every accepted entry.
        jobs: Entries in flight at once.
        timing_caches: Also upload timing caches (only when pushing all).
        progress: As for :func:`push_entries`.

    Returns:
        A :class:`PushResult`.
    """
    check_remote(remote)
    result = PushResult(push_entries(local, remote, keys, jobs=jobs, progress=progress))
    if timing_caches and keys is None:
        for tensorrt, signature in list_timing_caches(local):
            try:
                if push_timing_cache(local, remote, tensorrt, signature):
                    result.timing_caches.append(f"{tensorrt}/{signature}")
            except CacheError as exc:
                result.warnings.append(
                    f"timing cache {tensorrt}/{signature} not pushed: {exc.message}")
    return result
