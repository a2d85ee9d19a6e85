"""validate catches what TensorRT would refuse or narrow, with the manifest line: the two
real failures of exported models (one name for H and W; computed Slice axes and a branch on
a sample rate), the parser table per TensorRT generation, int64 I/O on 8.6."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import (
    make_rate_branching_model,
    make_shared_dims_classifier,
    write_manifest,
)

from trtops.ops.validate import validate
from trtops.parser_support import generations_for, parser_issues

CLS = """
version: 1
targets: {{lab: {{gpu: any, tensorrt: "{trt}"}}}}
models:
  - name: cls
    source: models/cls.onnx
    precisions: [fp16]
{prepare}    profiles:
      - x: {{min: [1, 3, 48, 16], opt: [8, 3, 48, 192], max: [16, 3, 48, 640]}}
"""

VAD = """
version: 1
targets: {{lab: {{gpu: any, tensorrt: "{trt}"}}}}
models:
  - name: vad
    source: models/vad.onnx
    precisions: [fp32]
{prepare}    profiles:
      - x: {{min: [1, 300], opt: [1, 512], max: [4, 512]}}
{sr}"""


def _messages(result, severity="error"):
    return [p.render() for p in result.problems if p.severity == severity]


@pytest.fixture
def project(tmp_path):
    make_shared_dims_classifier(tmp_path / "models" / "cls.onnx")
    make_rate_branching_model(tmp_path / "models" / "vad.onnx")
    return tmp_path


def test_one_name_for_h_and_w_sized_differently_is_caught_with_the_fix(project):
    path = write_manifest(project, CLS.format(trt=">=8.6,<8.7", prepare=""))
    (problem,) = _messages(validate([str(path)]))
    assert problem.startswith(f"{path}:8:") and "profiles[0].x.min" in problem
    assert "axes 2, 3 of input 'x' both '?'" in problem and "48 and 16" in problem
    assert "prepare: {distinct_dims: true}" in problem


def test_prepare_fixes_the_shared_names(project):
    path = write_manifest(project, CLS.format(trt=">=8.6,<8.7", prepare="    prepare: {}\n"))
    assert _messages(validate([str(path)])) == []


def test_equal_sizes_for_the_shared_name_are_fine(project):
    text = CLS.format(trt="", prepare="").replace("[1, 3, 48, 16]", "[1, 3, 48, 48]").replace(
        "[8, 3, 48, 192]", "[8, 3, 96, 96]").replace("[16, 3, 48, 640]", "[16, 3, 640, 640]")
    assert _messages(validate([str(write_manifest(project, text))])) == []


def test_computed_slice_axes_refused_by_8_6_and_fixed_by_folding(project):
    sr = "    accuracy: {inputs: {ranges: {sr: [16000, 16001]}}}\n"
    path = write_manifest(project, VAD.format(trt=">=8.6,<8.7", prepare="", sr=sr))
    result = validate([str(path)])
    (error,) = _messages(result)
    assert "models[0].source" in error and "TensorRT 8.6 needs the 'axes' input of Slice" in error
    assert "prepare: {fold_constants: true}" in error
    (warning,) = _messages(result, "warning")
    assert "input 'sr' is int64: TensorRT 8.6 makes it int32" in warning
    # with the rate bound and constants folded: nothing left to say
    prepared = VAD.format(trt=">=8.6,<8.7", prepare="    prepare: {constants: {sr: 16000}}\n", sr="")
    assert validate([str(write_manifest(project, prepared))]).problems == []


def test_an_8_6_only_refusal_is_a_warning_when_targets_allow_newer(project):
    path = write_manifest(project, VAD.format(trt="", prepare="", sr=""))
    result = validate([str(path)])
    assert _messages(result) == []
    warnings = _messages(result, "warning")
    assert any("Slice" in w and "also allow TensorRT 10, 11" in w for w in warnings)
    assert validate([str(write_manifest(project, VAD.format(trt=">=10", prepare="", sr="")))]).problems == []


def test_int64_range_that_does_not_fit_int32_is_an_error_on_8_6(project):
    sr = "    accuracy: {inputs: {ranges: {sr: [0, 5000000000]}}}\n"
    path = write_manifest(project, VAD.format(trt="==8.6.0", prepare="    prepare: {}\n", sr=sr))
    (error,) = _messages(validate([str(path)]))
    assert "accuracy.inputs.ranges.sr" in error and "does not fit int32" in error


def test_constants_must_name_inputs_and_leave_the_profiles(project):
    text = VAD.format(trt="", prepare="    prepare: {constants: {rate: 16000, sr: 16000}}\n", sr="").replace(
        "max: [4, 512]}", "max: [4, 512]}\n        sr: {min: [1], opt: [1], max: [1]}")
    errors = _messages(validate([str(write_manifest(project, text))]))
    assert any("prepare.constants.rate" in e and "no input 'rate'" in e for e in errors)
    assert any("profiles[0].sr" in e and "bound to a constant" in e for e in errors)


def test_a_ragged_constant_is_a_schema_error(project):
    text = VAD.format(trt="", prepare="    prepare: {constants: {sr: [[1, 2], [3]]}}\n", sr="")
    (error,) = _messages(validate([str(write_manifest(project, text))]))
    assert "prepare.constants.sr" in error and "rectangular" in error


def _model_with(tmp_path, op_type, domain="", opset=17, **attrs):
    helper, TP = onnx.helper, onnx.TensorProto
    node = helper.make_node(op_type, ["x"], ["y"], domain=domain, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TP.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [4])])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=imports)
    path = tmp_path / "models" / f"{op_type}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    from trtops.onnx_facts import read_ops

    return read_ops(path)


def test_parser_table(tmp_path):
    unique = _model_with(tmp_path, "Unique")
    assert [i.kind for g in ("8.6", "10", "11") for i in parser_issues(unique, g)] == ["op", "op", "op"]
    is_inf = _model_with(tmp_path, "IsInf")
    assert [i.subject for i in parser_issues(is_inf, "8.6")] == ["IsInf"] and not parser_issues(is_inf, "10")
    custom = _model_with(tmp_path, "FancyOp", domain="com.example")
    assert parser_issues(custom, "10")[0].kind == "domain"
    new_opset = _model_with(tmp_path, "Relu", opset=19)
    (issue,) = parser_issues(new_opset, "8.6")
    assert issue.kind == "opset" and "prepare: {opset: 17}" in issue.hint
    assert not parser_issues(new_opset, "10")


def test_generations_of_a_specifier():
    assert generations_for("") == ("8.6", "10", "11")
    assert generations_for(">=8.6,<8.7") == ("8.6",)
    assert generations_for(">=10.13,<10.14") == ("10",)
    assert generations_for(">=10") == ("10", "11")


def test_warnings_do_not_fail_validate_on_the_cli(project, capsys):
    from trtops.cli import main

    path = write_manifest(project, VAD.format(trt="", prepare="", sr=""))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "Slice" in err
    assert np  # numpy imported for the helpers' models
