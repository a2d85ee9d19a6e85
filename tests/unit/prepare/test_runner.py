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


def test_a_new_preparation_revision_re_prepares_but_keeps_engine_keys(monkeypatch):
    """A fixed step (the If-branch IR version, 2026-12-06) must not reuse what the old code
    wrote: the prepared model's name moves with PREPARE_REVISION, the key component does not."""
    import trtops.prepare.runner as runner

    component = prepare_component(PrepareSpec())
    before = prepared_digest("a" * 64, component)
    monkeypatch.setattr(runner, "PREPARE_REVISION", runner.PREPARE_REVISION + 1)
    assert prepared_digest("a" * 64, component) != before
    assert prepare_component(PrepareSpec()) == component


def test_a_failed_preparation_leaves_nothing(tmp_path):
    from trtops.prepare.graph import PreparationFailed

    source = make_rate_branching_model(tmp_path / "vad.onnx")
    cache = tmp_path / "cache"
    with pytest.raises(PreparationFailed):
        ensure_prepared(cache, source, "e" * 64, PrepareSpec(constants=(BoundInput("nope", (), (1,)),)))
    assert not (cache / "prepared").exists() or not any((cache / "prepared").iterdir())
    assert not any((cache / "tmp").iterdir())


def tiny_cnn(tmp_path):
    from trtops.examples import models as examples

    return examples.make_tiny_cnn(tmp_path / "cnn.onnx")


def ort_run(path, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_the_cast_is_the_last_step_and_the_reference_stays_fp32(tmp_path):
    import numpy as np
    import onnx

    from trtops.prepare.options import prepare_component
    from trtops.prepare.runner import prepared_chain, prepared_dir

    source = tiny_cnn(tmp_path)
    cache = tmp_path / "cache"
    cast = ensure_prepared(cache, source, "c" * 64, PrepareSpec(), "fp16")
    plain = ensure_prepared(cache, source, "c" * 64, PrepareSpec())
    # The fp32 build's prepared model is the cast's input and the gate's reference.
    assert cast.reference == plain.model and cast.model != plain.model
    assert plain.report is None  # made once, by the cast's preparation
    chain = prepared_chain("c" * 64, prepare_component(PrepareSpec(), "fp16"))
    assert cast.digests == chain and [prepared_dir(cache, d) / MODEL_FILE for d in chain] == [plain.model, cast.model]
    assert sorted(p.name for p in (cache / "prepared").iterdir()) == sorted(chain)

    lines = cast.report.lines()
    assert any(line.startswith("cast to fp16: ") and " initializers, " in line and " Cast nodes inserted" in line
               for line in lines), lines
    assert cast.report.cast_initializers > 0 and cast.report.cast_nodes_inserted >= 2
    model = onnx.load(str(cast.model))
    assert {v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)} == {
        onnx.TensorProto.FLOAT}  # cast at the boundary: the loader and the gate feed fp32
    feeds = {"input": np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)}
    np.testing.assert_allclose(ort_run(cast.model, feeds), ort_run(source, feeds), atol=1e-2, rtol=1e-2)


def test_a_cast_alone_prepares_from_the_source(tmp_path):
    source = tiny_cnn(tmp_path)
    cache = tmp_path / "cache"
    prepared = ensure_prepared(cache, source, "c" * 64, None, "bf16")
    assert prepared.reference == source and len(prepared.digests) == 1
    assert prepared.report.cast == "bf16" and prepared.report.nodes_folded == 0
    with pytest.raises(ValueError, match="does something"):
        ensure_prepared(cache, source, "c" * 64, PrepareSpec(False, False, False), None)


def test_steps_on_names_the_cast():
    assert steps_on(None, "fp16") == ["cast to fp16 (strongly typed build: inputs and outputs keep their types)"]
    assert steps_on(PrepareSpec(), "bf16")[-1].startswith("cast to bf16")


def test_keep_fp32_gets_its_own_cast_model_that_holds_the_nodes_exactly(tmp_path):
    """TensorRT 11: the prepared (cast) model with keep_fp32 computes the overflowing chain in
    fp32 (exact against the fp32 model in ONNX Runtime); without it, it is far off. Each keep
    list has its own cast model; the uncast reference is shared."""
    import numpy as np
    from helpers import make_overflow_model

    from trtops.prepare.kept import read_record
    from trtops.prepare.options import KeepLists
    from trtops.prepare.runner import read_report

    source = make_overflow_model(tmp_path / "chain.onnx")
    cache = tmp_path / "cache"
    chain = KeepLists(("overflow", "scale_down"))
    kept = ensure_prepared(cache, source, "c" * 64, PrepareSpec(), "fp16", chain)
    plain = ensure_prepared(cache, source, "c" * 64, PrepareSpec(), "fp16")
    other = ensure_prepared(cache, source, "c" * 64, PrepareSpec(), "fp16", KeepLists(("overflow",)))
    assert kept.reference == plain.reference == other.reference
    assert len({kept.model, plain.model, other.model}) == 3
    feeds = {"x": np.linspace(0.1, 0.9, 32, dtype=np.float32).reshape(2, 16)}
    exact = ort_run(kept.reference, feeds)  # y, the chain's output
    np.testing.assert_array_equal(ort_run(kept.model, feeds), exact)
    assert not np.allclose(ort_run(plain.model, feeds), exact, rtol=1e-2)
    assert "cast to fp16 keeping 2 nodes in fp32 (keep_fp32): overflow, scale_down" in kept.report.lines()
    assert read_report(kept.model).cast_kept_fp32 == ["overflow", "scale_down"]  # report.json too
    assert read_record(kept.model).nodes == ("overflow", "scale_down")
    assert read_record(plain.model) is None and not any("keeping" in line for line in plain.report.lines())
    # made once: the second call finds it under its digest
    assert ensure_prepared(cache, source, "c" * 64, PrepareSpec(), "fp16", chain).report is None


def test_a_variant_is_the_edit_of_the_steps_model_then_the_same_cast(tmp_path):
    """prepare_variant (the repair probe): the steps' model from the cache, edited, then cast
    with the build's keep lists as ensure_prepared casts; nothing of the variant is cached."""
    import onnx
    from helpers import make_overflow_model

    from trtops.prepare.kept import read_record
    from trtops.prepare.options import KeepLists
    from trtops.prepare.runner import prepare_variant
    from trtops.repair.probe import write_probe_model

    source = make_overflow_model(tmp_path / "chain.onnx")
    cache = tmp_path / "cache"
    keep = KeepLists(("overflow",))
    spec = PrepareSpec()
    real = ensure_prepared(cache, source, "c" * 64, spec, "fp16", keep)
    cached = sorted((cache / "prepared").iterdir())
    seen = []

    def edit(model, out):
        seen.append(model)
        return write_probe_model(model, out)

    variant = prepare_variant(cache, source, "c" * 64, spec, "fp16", keep, edit, tmp_path / "probe")
    assert seen == [real.reference]  # the steps' model the engine's cast started from
    assert sorted((cache / "prepared").iterdir()) == cached and variant.digests == real.digests[:1]
    assert variant.reference.parent.parent == variant.model.parent.parent == tmp_path / "probe"
    outputs = lambda path: [o.name for o in onnx.load(str(path)).graph.output]  # noqa: E731
    assert outputs(variant.reference) == outputs(variant.model) == ["y", "z", "a", "b"]
    cast = onnx.load(str(variant.model))
    assert {o.type.tensor_type.elem_type for o in cast.graph.output} == {onnx.TensorProto.FLOAT}
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in cast.graph.initializer)
    assert read_record(variant.model) == read_record(real.model)  # the same keep lists, the same nodes
    assert variant.report.cast == "fp16"

    # without a cast (8.6) and without preparation: the source itself, edited
    plain = prepare_variant(cache, source, "c" * 64, None, None, KeepLists(), write_probe_model, tmp_path / "p2")
    assert plain.model == plain.reference and plain.digests == [] and plain.report is None
    assert outputs(plain.model) == ["y", "z", "a", "b"]
