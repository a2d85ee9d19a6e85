"""Find a small set of nodes whose fp32 fallback makes the gate pass (pure, deterministic).

Given the nodes ranked most-suspect first and a predicate "the engine built with these nodes
in fp32 passes", with at most ``budget`` predicate calls (each one is a build and a gate run):

1. grow: try the first 1, 2, 4, ... ranked nodes until a prefix passes (the whole ranking
   last); none passing means no repair among these nodes;
2. bisect between the last failing and the first passing prefix for the shortest passing
   prefix (assuming a longer prefix never fails where a shorter one passed);
3. shrink: try dropping each node of that prefix but its last (the bisection showed the
   prefix fails without it), most recently added first; keep every drop that still passes.

A set is never tried twice. Running out of budget in 1 or 2 gives no repair; in 3 the
passing set found so far (reported as not minimal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Trial(Generic[T]):
    """One predicate call: the set tried, in ranking order, and whether it passed."""

    nodes: tuple[T, ...]
    passed: bool
    phase: str  # grow | bisect | shrink


@dataclass
class SearchResult(Generic[T]):
    """What the search found.

    Attributes:
        found: the passing set (ranking order), or None.
        trials: every predicate call, in order.
        minimal: no single node of ``found`` can be dropped (shrink finished).
        exhausted: the budget ran out before the search finished.
    """

    found: tuple[T, ...] | None = None
    trials: list[Trial[T]] = field(default_factory=list)
    minimal: bool = False
    exhausted: bool = False

    @property
    def tries(self) -> int:
        return len(self.trials)


class _Budget(Exception):
    pass


def find_keep_set(ranking: Sequence[T], passes: Callable[[tuple[T, ...]], bool], budget: int,
                  on_trial: Callable[[Trial[T], int], None] | None = None) -> SearchResult[T]:
    """Search ``ranking`` for a small set that ``passes`` (see the module docstring).

    Args:
        ranking: candidates, most suspect first (no duplicates).
        passes: the gate with these nodes held in fp32.
        budget: most predicate calls.
        on_trial: called after each call with the trial and the calls left.

    Returns:
        :class:`SearchResult`.
    """
    ranked = list(dict.fromkeys(ranking))
    result: SearchResult[T] = SearchResult()
    seen: dict[tuple[T, ...], bool] = {}

    def check(nodes: Sequence[T], phase: str) -> bool:
        chosen = set(nodes)
        key = tuple(n for n in ranked if n in chosen)
        if key in seen:
            return seen[key]
        if result.tries >= budget:
            raise _Budget
        verdict = bool(passes(key))
        seen[key] = verdict
        trial = Trial(key, verdict, phase)
        result.trials.append(trial)
        if on_trial is not None:
            on_trial(trial, budget - result.tries)
        return verdict

    if not ranked or budget <= 0:
        result.exhausted = bool(ranked)
        return result
    try:
        low, high = 0, None  # longest failing / shortest passing prefix known
        size = 1
        while True:
            size = min(size, len(ranked))
            if check(ranked[:size], "grow"):
                high = size
                break
            low = size
            if size == len(ranked):
                return result  # even every candidate in fp32 fails
            size *= 2
        while high - low > 1:
            middle = (low + high) // 2
            if check(ranked[:middle], "bisect"):
                high = middle
            else:
                low = middle
    except _Budget:
        result.exhausted = True
        return result
    current = list(ranked[:high])
    result.found = tuple(current)
    try:
        for node in reversed(current[:-1]):
            trial = [n for n in current if n != node]
            if check(trial, "shrink"):
                current = trial
                result.found = tuple(current)
    except _Budget:
        result.exhausted = True
        return result
    result.minimal = True
    return result
