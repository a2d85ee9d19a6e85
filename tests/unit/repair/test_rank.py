"""Ranking nodes by the error they add (trtops.repair.rank), on real graphs read by onnx_facts."""

from __future__ import annotations

import math

from helpers import make_overflow_model

from trtops.onnx_facts import read_graph
from trtops.repair.rank import node_errors, rank_nodes


def test_the_overflowing_node_ranks_first_then_the_one_carrying_it(tmp_path):
    nodes = read_graph(make_overflow_model(tmp_path / "m.onnx")).nodes
    # what an fp16 probe measures: a rounds, b overflows, y is inf from b, z rounds
    errors = {"a": 0.02, "b": math.inf, "y": math.inf, "z": 0.01}
    ranked = [e.node.name for e in rank_nodes(nodes, errors)]
    assert ranked[:2] == ["overflow", "scale_down"]
    by_name = {e.node.name: e for e in node_errors(nodes, errors)}
    assert by_name["overflow"].added == math.inf and by_name["scale_down"].added == 0.0


def test_error_that_grows_ranks_by_what_each_node_adds(tmp_path):
    nodes = read_graph(make_overflow_model(tmp_path / "m.onnx")).nodes
    errors = {"a": 0.1, "b": 5.0, "y": 40.0, "z": 0.2}
    ranked = rank_nodes(nodes, errors)
    assert [e.node.name for e in ranked][:2] == ["scale_down", "overflow"]
    assert ranked[0].added == 35.0


def test_nan_counts_as_infinite_and_unmeasured_nodes_are_no_candidates(tmp_path):
    nodes = read_graph(make_overflow_model(tmp_path / "m.onnx")).nodes
    ranked = rank_nodes(nodes, {"b": float("nan")})
    assert [e.node.name for e in ranked] == ["overflow"] and ranked[0].error == math.inf
