"""What every parallel executor shares: slots pulling from one queue, and the bookkeeping
that keeps concurrent builds from losing each other's timing caches.

A *slot* is one place a build can run at a time: a worker process pinned to one GPU
(``--gpus``), or one unit of a Ray cluster's capacity for a GPU type. :func:`run_slots`
gives every slot a parent thread that takes the next queued action the slot can build
(same GPU signature) and runs the parent's pipeline for it with the slot's runner; the
pipeline blocks while the worker builds, then publishes in the parent.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_staging(store: Any) -> Path:
    """Where build work directories go: the cache's tmp dir (same filesystem as the
    entries), or the system's."""
    return Path(getattr(store, "tmp_dir", None) or tempfile.gettempdir())


@dataclass
class Slot:
    """One place a build can run at a time."""

    label: str  # "GPU 1 (NVIDIA H200)", "Ray trtops_gpu:cc9.0-nvidia-h200 #2", "in process"
    signature: str | None  # GPU signature the slot builds for; None: any (the plan's GPU)
    runner: Any  # has run(job, progress) -> JobOutput (e.g. jobs.LocalRunner)

    def accepts(self, action: Any) -> bool:
        """True when this slot can build ``action`` (its GPU signature matches)."""
        return self.signature is None or action.timing_signature == self.signature


def run_slots(slots: Sequence[Slot], actions: Sequence[Any],
              work: Callable[[Any, Slot], Any], *, keep_going: bool) -> tuple[dict[str, Any], list[Any]]:
    """Run ``work(action, slot)`` for every action on the slots that accept it, one action
    per slot at a time, from one shared queue (plan order).

    Args:
        slots: Where builds can run.
        actions: Actions to build (one per engine key).
        work: Returns the action's :class:`~trtops.outcome.EngineOutcome`. An exception
            it raises (a failure that ends the whole run, such as an unreachable remote)
            stops every slot taking new actions and is raised again here.
        keep_going: When False, no new action starts after one has failed.

    Returns:
        (outcomes by action id, actions never started: after a failure, or because no slot
        accepts them).

    A single slot runs in the caller's thread: in-process builds keep the main thread
    (CUDA contexts, Ctrl-C) and their exceptions propagate as they are.
    """
    lock = threading.Lock()
    queue = list(actions)
    outcomes: dict[str, Any] = {}
    state: dict[str, Any] = {"stop": False, "raised": None}

    def take(slot: Slot) -> Any:
        with lock:
            if state["stop"]:
                return None
            for index, action in enumerate(queue):
                if slot.accepts(action):
                    return queue.pop(index)
        return None

    def loop(slot: Slot) -> None:
        while True:
            action = take(slot)
            if action is None:
                return
            outcome = work(action, slot)
            with lock:
                outcomes[action.id] = outcome
                if outcome.failed and not keep_going:
                    state["stop"] = True

    if len(slots) == 1:
        loop(slots[0])
        return outcomes, queue

    def guarded(slot: Slot) -> None:
        try:
            loop(slot)
        except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
            with lock:
                state["stop"] = True
                if state["raised"] is None:
                    state["raised"] = exc

    threads = [threading.Thread(target=guarded, args=(slot,), name=f"trtops-{slot.label}", daemon=True)
               for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if state["raised"] is not None:
        raise state["raised"]
    return outcomes, queue


@dataclass
class TimingLedger:
    """Timing caches of parallel builds that could not be written to the store yet.

    Every build starts from a snapshot of the stored timing cache and returns a superset of
    it. When the store still holds that snapshot, the parent writes the result as is; when
    another build wrote in between, the result is kept here and handed to the next build for
    that GPU signature, whose worker merges it (TensorRT's merge needs TensorRT, which the
    parent may not have). What is left at the end is merged by the executor.
    """

    pieces: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    touched: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def defer(self, tensorrt: str, signature: str, data: bytes) -> None:
        with self._lock:
            self.pieces.setdefault((tensorrt, signature), []).append(bytes(data))

    def take(self, tensorrt: str, signature: str) -> tuple[bytes, ...]:
        with self._lock:
            return tuple(self.pieces.pop((tensorrt, signature), ()))

    def give_back(self, tensorrt: str, signature: str, pieces: Sequence[bytes]) -> None:
        with self._lock:
            if pieces:
                self.pieces.setdefault((tensorrt, signature), [])[:0] = list(pieces)

    def touch(self, tensorrt: str, signature: str) -> None:
        with self._lock:
            self.touched.add((tensorrt, signature))

    def leftovers(self) -> list[tuple[str, str, tuple[bytes, ...]]]:
        with self._lock:
            items = [(t, s, tuple(p)) for (t, s), p in self.pieces.items() if p]
            self.pieces.clear()
            return items
