"""The keep_fp32 search with a fake gate (trtops.repair.search): pure and deterministic."""

from __future__ import annotations

import pytest

from trtops.repair.search import find_keep_set

RANKING = list("abcdefghij")


def gate(needed: set[str]):
    calls: list[tuple[str, ...]] = []

    def passes(nodes: tuple[str, ...]) -> bool:
        calls.append(nodes)
        return needed <= set(nodes)

    return passes, calls


@pytest.mark.parametrize("needed", [{"a"}, {"b"}, {"a", "b"}, {"a", "c"}, {"b", "e"}, {"h"}, {"a", "j"}])
def test_finds_exactly_the_needed_nodes(needed):
    passes, calls = gate(needed)
    result = find_keep_set(RANKING, passes, budget=30)
    assert result.found is not None and set(result.found) == needed
    assert result.minimal and not result.exhausted
    assert len(calls) == result.tries == len(set(calls))  # no set tried twice


def test_a_top_ranked_culprit_costs_one_try():
    passes, calls = gate({"a"})
    assert find_keep_set(RANKING, passes, budget=5).found == ("a",)
    assert calls == [("a",)]


def test_deterministic():
    runs = [find_keep_set(RANKING, gate({"c", "f"})[0], budget=30).trials for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_nothing_passes_even_all_nodes():
    passes, calls = gate({"zz"})
    result = find_keep_set(RANKING, passes, budget=30)
    assert result.found is None and not result.exhausted
    assert calls[-1] == tuple(RANKING)  # the whole ranking was the last try


def test_budget_runs_out_before_a_passing_set():
    passes, calls = gate({"j"})
    result = find_keep_set(RANKING, passes, budget=2)
    assert result.found is None and result.exhausted and len(calls) == 2


def test_budget_runs_out_while_shrinking_keeps_the_passing_set():
    passes, calls = gate({"a", "b", "c", "d"})
    result = find_keep_set(RANKING, passes, budget=4)
    assert result.found is not None and {"a", "b", "c", "d"} <= set(result.found)
    assert result.exhausted and not result.minimal


def test_on_trial_reports_each_try_with_the_budget_left():
    seen = []
    find_keep_set(RANKING, gate({"b"})[0], budget=10, on_trial=lambda t, left: seen.append((t.phase, left)))
    assert [left for _, left in seen] == list(range(9, 9 - len(seen), -1))
    assert seen[0][0] == "grow"


def test_empty_ranking_finds_nothing():
    result = find_keep_set([], gate({"a"})[0], budget=5)
    assert result.found is None and result.tries == 0
