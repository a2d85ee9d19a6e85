"""The manifest patch repair writes (trtops.repair.patch): the text edited, never re-dumped."""

from __future__ import annotations

from helpers import make_overflow_model

from trtops.manifest.collect import load_paths
from trtops.repair.patch import keep_fp32_patch, yaml_scalar


def _patched(tmp_path, text, lists, index=0, name="m.yaml"):
    make_overflow_model(tmp_path / "chain.onnx")
    path = tmp_path / name
    path.write_bytes(text.encode())
    lm = load_paths([path], check_models=False)[0]
    patch = keep_fp32_patch(lm, index, lists)
    # the result is a valid manifest with the lists
    path.write_bytes(patch.new.encode())
    model = load_paths([path], check_models=False)[0].manifest.models[index]
    return patch, model


BASE = """\
version: 1
x-common: &common
  precisions: [fp32, fp16]   # anchors stay
targets:
  lab: {gpu: any}
models:
  - name: first    # first model
    source: chain.onnx
    <<: *common
  - source: chain.onnx
    name: second
    precisions: [fp16]
    # a comment inside the model
    accuracy: {enabled: true}
"""


def test_inserts_after_the_name_and_keeps_comments_and_anchors(tmp_path):
    patch, model = _patched(tmp_path, BASE, {"keep_fp32": ["overflow", "scale_down"]}, index=1)
    assert model.keep_fp32 == ["overflow", "scale_down"]
    assert patch.new.count("\n") == BASE.count("\n") + 1
    assert "    name: second\n    keep_fp32: [overflow, scale_down]\n    precisions: [fp16]" in patch.new
    for kept in ("# first model", "&common", "*common", "# a comment inside the model", "# anchors stay"):
        assert kept in patch.new
    assert patch.diff.startswith("--- a/") and "+    keep_fp32: [overflow, scale_down]" in patch.diff


def test_replaces_an_existing_block_list(tmp_path):
    text = BASE.replace("    name: second\n", "    name: second\n    keep_fp32:\n    - scale_up\n    -   old\n"
                        "    # after\n")
    patch, model = _patched(tmp_path, text, {"keep_fp32": ["scale_up", "overflow"]}, index=1)
    assert model.keep_fp32 == ["scale_up", "overflow"]
    assert "old" not in patch.new and "# after" in patch.new


def test_replaces_a_flow_list_over_several_lines(tmp_path):
    text = BASE.replace("    name: second\n", "    name: second\n    keep_fp32: [scale_up,\n      old]\n")
    patch, model = _patched(tmp_path, text, {"keep_fp32": ["overflow"]}, index=1)
    assert model.keep_fp32 == ["overflow"] and "old" not in patch.new


def test_long_lists_are_block_sequences_in_the_files_indentation(tmp_path):
    names = [f"/blocks.{i}/norm/Mul" for i in range(6)]
    unindented = BASE.replace("  - name: first", "- name: first").replace("  - source:", "- source:")
    unindented = unindented.replace("\n    ", "\n  ")
    for text, item in ((BASE, "\n      - "), (unindented, "\n  keep_fp32_outputs:\n  - ")):
        patch, model = _patched(tmp_path, text, {"keep_fp32_outputs": names}, index=0)
        assert model.keep_fp32_outputs == names
        assert f'{item}"/blocks.0/norm/Mul"' in patch.new


def test_a_model_in_flow_style_is_refused_with_the_lines_to_add(tmp_path):
    import pytest

    from trtops.errors import InputError

    text = BASE.replace("  - source: chain.onnx\n    name: second\n    precisions: [fp16]\n"
                        "    # a comment inside the model\n    accuracy: {enabled: true}\n",
                        "  - {name: second, source: chain.onnx, precisions: [fp16]}\n")
    make_overflow_model(tmp_path / "chain.onnx")
    (tmp_path / "m.yaml").write_text(text)
    lm = load_paths([tmp_path / "m.yaml"], check_models=False)[0]
    with pytest.raises(InputError) as caught:
        keep_fp32_patch(lm, 1, {"keep_fp32": ["overflow"]})
    assert "flow style" in caught.value.message and "keep_fp32: [overflow]" in caught.value.hint


def test_crlf_files_stay_crlf(tmp_path):
    patch, model = _patched(tmp_path, BASE.replace("\n", "\r\n"), {"keep_fp32": ["overflow"]})
    assert model.keep_fp32 == ["overflow"] and "\n" not in patch.new.replace("\r\n", "")


def test_scalars_are_quoted_when_yaml_would_read_them_otherwise():
    assert yaml_scalar("conv1") == "conv1"
    assert yaml_scalar("/a/b:c") == '"/a/b:c"'
    assert yaml_scalar("on") == '"on"' and yaml_scalar("1e5") == '"1e5"'
    assert yaml_scalar("x #y") == '"x #y"'
