"""The prepared model's cache (content-addressed, made once) and the engine key's
``prepare`` component."""

from __future__ import annotations

import pytest
from helpers import make_rate_branching_model, make_shared_dims_classifier

from trtops.prepare.options import prepare_component, steps_on
from trtops.prepare.runner import (
    MODEL_FILE,
    REPORT_FILE,
    ensure_prepared,
    prepared_digest,
)
from trtops.spec import BoundInput, PrepareSpec

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx_graphsurgeon")


def test_no_preparation_has_no_key_component():
    assert prepare_component(None) is None
    assert prepare_component(PrepareSpec(False, False, False)) is None
    assert PrepareSpec(False, False, False).is_noop


def test_the_component_names_steps_and_tool_versions():
    component = prepare_component(PrepareSpec(constants=(BoundInput("sr", (), (16000,)),), opset=17))
    assert component["steps"] == {"fold_constants": True, "infer_shapes": True, "distinct_dims": True,
                                  "constants": {"sr": {"shape": [], "values": [16000]}}, "opset": 17}
    assert set(component["tools"]) == {"onnx", "onnx-graphsurgeon"}
    assert all(version != "absent" for version in component["tools"].values())


def test_steps_on_in_plan_words():
    assert steps_on(None) == []
    assert steps_on(PrepareSpec(constants=(BoundInput("sr", (), (16000,)),))) == [
        "bind sr=16000", "distinct dim names", "fold constants and inline If", "infer shapes"]


def test_prepared_once_under_its_digest(tmp_path):
    source = make_shared_dims_classifier(tmp_path / "cls.onnx")
    cache = tmp_path / "cache"
    first = ensure_prepared(cache, source, "d" * 64, PrepareSpec())
    path, report = first.model, first.report
    assert first.reference == path  # no cast: the gate compares with the prepared model
    assert path.name == MODEL_FILE and (path.parent / REPORT_FILE).is_file()
    assert path.parent.parent == cache / "prepared"
    assert report is not None and report.dims_renamed
    stamp = path.stat().st_mtime_ns
    cached = ensure_prepared(cache, source, "d" * 64, PrepareSpec())
    again, second = cached.model, cached.report
    assert again == path and second is None and path.stat().st_mtime_ns == stamp
    assert not any((cache / "tmp").iterdir())  # no leftovers


def test_digest_follows_source_and_options():
    base = prepare_component(PrepareSpec())
    other = prepare_component(PrepareSpec(infer_shapes=False))
    assert prepared_digest("a" * 64, base) != prepared_digest("b" * 64, base)
    assert prepared_digest("a" * 64, base) != prepared_digest("a" * 64, other)
    assert prepared_digest("a" * 64, base) == prepared_digest("a" * 64, dict(base))


def test_a_failed_preparation_leaves_nothing(tmp_path):
    from trtops.prepare.graph import PreparationFailed

    source = make_rate_branching_model(tmp_path / "vad.onnx")
    cache = tmp_path / "cache"
    with pytest.raises(PreparationFailed):
        ensure_prepared(cache, source, "e" * 64, PrepareSpec(constants=(BoundInput("nope", (), (1,)),)))
    assert not (cache / "prepared").exists() or not any((cache / "prepared").iterdir())
    assert not any((cache / "tmp").iterdir())
