"""keep_fp32 / keep_fp32_outputs in the manifest: checked against the graph (read without
weights) with file:line and a did-you-mean, meaningful only for reduced precisions, in the
engine key only where they apply."""

from __future__ import annotations

import onnx
import pytest
from helpers import make_overflow_model, write_manifest

from trtops.manifest.collect import load_paths
from trtops.manifest.expand import expand
from trtops.node_select import entry_for, select_nodes, unmatched
from trtops.onnx_facts import read_graph
from trtops.ops.validate import validate

MANIFEST = """\
version: 1
targets: {{lab: {{gpu: any}}}}
models:
  - name: chain
    source: models/chain.onnx
    precisions: [{precisions}]
{keep}"""


@pytest.fixture
def model(tmp_path):
    return make_overflow_model(tmp_path / "models" / "chain.onnx")


def _validate(tmp_path, keep, precisions="fp32, fp16"):
    path = write_manifest(tmp_path, MANIFEST.format(keep=keep, precisions=precisions))
    return path, [p.render() for p in validate([str(path)]).problems if p.severity == "error"]


def test_names_patterns_and_outputs_that_exist_are_valid(tmp_path, model):
    keep = "    keep_fp32: [overflow, 'scale_*']\n    keep_fp32_outputs: [z]\n"
    assert _validate(tmp_path, keep)[1] == []


def test_a_name_matching_no_node_is_an_error_at_its_line_with_a_suggestion(tmp_path, model):
    path, problems = _validate(tmp_path, "    keep_fp32:\n      - overflow\n      - scale_dwon\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:9:")
    assert "models[0].keep_fp32[1]: the model has no node 'scale_dwon'; did you mean 'scale_down'?" in problems[0]


def test_a_pattern_or_tensor_matching_nothing_is_an_error(tmp_path, model):
    _, problems = _validate(tmp_path, "    keep_fp32: ['/blocks.*']\n    keep_fp32_outputs: [yy]\n")
    assert any("pattern '/blocks.*' matches no node" in p for p in problems)
    assert any("keep_fp32_outputs[0]: the model has no tensor computed by a node 'yy'; did you mean 'y'?" in p
               for p in problems)


def test_keep_fp32_on_a_model_built_only_in_fp32_is_an_error(tmp_path, model):
    _, problems = _validate(tmp_path, "    keep_fp32: [overflow]\n", precisions="fp32, tf32")
    assert len(problems) == 1 and "keep_fp32 has no effect" in problems[0]


def test_enters_the_key_of_reduced_precisions_only(tmp_path, model):
    path = write_manifest(tmp_path, MANIFEST.format(keep="    keep_fp32: [scale_down, overflow, overflow2]\n"
                                                    .replace(", overflow2", ""), precisions="fp32, fp16"))
    specs = {s.precision: s for s in expand(load_paths([path], check_models=False))}
    assert specs["fp16"].build.keep_fp32 == ("overflow", "scale_down")  # sorted: order is no change
    assert specs["fp32"].build.keep_fp32 == ()


def test_duplicates_and_empty_names_are_schema_errors(tmp_path, model):
    _, problems = _validate(tmp_path, "    keep_fp32: [overflow, overflow]\n")
    assert any("'overflow' is listed twice" in p for p in problems)
    _, problems = _validate(tmp_path, "    keep_fp32: [overflow, '']\n")
    assert any("keep_fp32[1]" in p and "cannot be empty" in p for p in problems)


def test_selection_rules(tmp_path):
    path = make_overflow_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    proto.graph.node[3].name = ""  # an unnamed node: reachable through its output only
    onnx.save(proto, str(path))
    nodes = read_graph(path).nodes
    assert [n.name for n in select_nodes(nodes, ["scale_*"])] == ["scale_up", "scale_down"]
    assert [n.index for n in select_nodes(nodes, [], ["z"])] == [3]
    assert [u.pattern for u in unmatched(nodes, ["scale_*", "nope"], ["z", "q*"])] == ["nope", "q*"]
    assert entry_for(nodes[1], nodes) == ("keep_fp32", "overflow")
    assert entry_for(nodes[3], nodes) == ("keep_fp32_outputs", "z")
