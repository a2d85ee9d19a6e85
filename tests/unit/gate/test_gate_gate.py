"""The gate's runner-agnostic core with real Polygraphy ONNX Runtime runners on both sides:
the original model as reference, an identical or deliberately perturbed copy as candidate."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from gate_helpers import (
    accuracy_spec,
    embedding_io,
    make_embedding,
    make_mlp,
    mlp_io,
    ort_runner_factory,
)

from trtops.errors import InputError
from trtops.gate.gate import input_sets_for, verify_engine, verify_with_runners
from trtops.gate.inputs import generate_input_sets
from trtops.spec import ToleranceSpec

pytest.importorskip("polygraphy")
pytest.importorskip("onnxruntime")

TIGHT = ToleranceSpec(atol=1e-5, rtol=1e-5, stat="elemwise")
LOOSE = ToleranceSpec(atol=1.0, rtol=1.0, stat="elemwise")


def run(reference, candidate, tolerance, io=None, **accuracy):
    io = io or mlp_io()
    sets = generate_input_sets(io, accuracy_spec(tolerance, **accuracy))
    return verify_with_runners(ort_runner_factory(candidate), ort_runner_factory(reference), sets,
                               tolerance, precision="fp32", reference="onnxruntime (test)",
                               candidate="onnxruntime (candidate)")


def test_identical_model_passes(tmp_path):
    model = make_mlp(tmp_path / "mlp.onnx")
    copy = make_mlp(tmp_path / "copy.onnx")
    report = run(model, copy, TIGHT)
    assert report.passed
    assert [c.label for c in report.cases] == ["profile0/min", "profile0/opt", "profile0/max"]
    assert [c.shapes["x"] for c in report.cases] == [(1, 8), (4, 8), (16, 8)]
    for case in report.cases:
        assert [o.name for o in case.outputs] == ["logits", "probs"]
        assert all(o.max_abs == 0.0 and o.cosine == pytest.approx(1.0) for o in case.outputs)
    assert report.summary_lines()[0].startswith("accuracy: passed (fp32 vs onnxruntime (test))")


def test_perturbed_weights_fail_tight_and_pass_loose(tmp_path):
    model = make_mlp(tmp_path / "mlp.onnx")
    perturbed = make_mlp(tmp_path / "perturbed.onnx", weight_noise=1e-2)
    failed = run(model, perturbed, TIGHT)
    assert not failed.passed
    assert all(not o.passed for c in failed.cases for o in c.outputs)
    lines = failed.summary_lines(n=2)
    assert lines[0].startswith("accuracy: FAILED (fp32 vs onnxruntime (test)): 6 of 6 checks failed")
    assert len(lines) == 4 and "more" in lines[-1]
    assert "'logits'" in lines[1] or "'probs'" in lines[1]
    assert run(model, perturbed, LOOSE).passed


@pytest.mark.parametrize(
    "stat,quantile,passed",
    [
        ("elemwise", None, False),  # the last logit of every row is 0.5 off
        ("max", None, False),  # max abs 0.5 > 0.2
        ("mean", None, True),  # mean abs 0.125
        ("median", None, True),  # median abs 0
        ("quantile", 0.5, True),
        ("quantile", 0.99, False),
    ],
)
def test_each_statistic_on_a_model_with_one_logit_off(tmp_path, stat, quantile, passed):
    model = make_mlp(tmp_path / "mlp.onnx")
    shifted = make_mlp(tmp_path / "shifted.onnx", logit_bias_delta=0.5)
    # probs change everywhere: give it a loose per-output override, check logits strictly
    tolerance = ToleranceSpec(atol=0.2, rtol=0.0, stat=stat, quantile=quantile,
                              outputs=(("probs", LOOSE),))
    report = run(model, shifted, tolerance)
    logits = [o for c in report.cases for o in c.outputs if o.name == "logits"]
    assert all(o.passed is passed for o in logits)
    assert all(o.max_abs == pytest.approx(0.5, abs=1e-5) for o in logits)
    assert all(o.mean_abs == pytest.approx(0.125, abs=1e-5) for o in logits)
    assert all(o.median_abs == pytest.approx(0.0, abs=1e-6) for o in logits)
    assert report.passed is passed


def test_per_output_override_decides_per_output(tmp_path):
    model = make_mlp(tmp_path / "mlp.onnx")
    shifted = make_mlp(tmp_path / "shifted.onnx", logit_bias_delta=0.5)
    # tight everywhere except the two outputs' own overrides
    loose_logits = ToleranceSpec(1e-6, 1e-6, "elemwise", outputs=(("logits", LOOSE),))
    report = run(model, shifted, loose_logits)
    results = {o.name: o.passed for o in report.cases[0].outputs}
    assert results == {"logits": True, "probs": False}
    both = ToleranceSpec(1e-6, 1e-6, "elemwise", outputs=(("logits", LOOSE), ("probs", LOOSE)))
    assert run(model, shifted, both).passed


def test_integer_input_ranges_keep_token_ids_valid(tmp_path):
    model = make_embedding(tmp_path / "emb.onnx", vocab=10)
    report = run(model, model, TIGHT, io=embedding_io(), ranges=[("ids", 0, 10)], iterations=3)
    assert report.passed and len(report.cases) == 9
    # ids beyond the vocabulary make the reference itself fail: a model/input problem
    with pytest.raises(InputError, match="reference .* could not run") as info:
        run(model, model, TIGHT, io=embedding_io(), ranges=[("ids", 0, 100000)])
    assert "ranges" in info.value.hint


def test_int32_engine_inputs_are_cast_for_an_int64_model(tmp_path):
    # TensorRT 8.6 narrows int64 inputs to int32; the reference still wants int64.
    model = make_embedding(tmp_path / "emb.onnx", vocab=10)
    report = run(model, model, TIGHT, io=embedding_io("int32"), ranges=[("ids", 0, 10)])
    assert report.passed


def test_candidate_that_cannot_run_fails_its_cases_without_raising(tmp_path):
    model = make_mlp(tmp_path / "mlp.onnx")
    other = make_mlp(tmp_path / "wide.onnx", in_features=9)  # wants [N, 9], gets [N, 8]
    report = run(model, other, TIGHT)
    assert not report.passed
    assert all(c.error for c in report.cases)
    lines = report.summary_lines()
    assert "engine failed to run" in lines[1]
    json.dumps(report.to_json(), allow_nan=False)


def test_user_data_through_input_sets_for(tmp_path):
    model = make_mlp(tmp_path / "mlp.onnx")
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "one.npz", x=np.full((2, 8), 0.5, np.float32))
    np.savez(data / "two.npz", x=np.full((16, 8), -0.5, np.float64))
    io = mlp_io(profiles=[((1, 8), (2, 8), (4, 8)), ((8, 8), (16, 8), (32, 8))])
    sets, info = input_sets_for(io, accuracy_spec(data=str(data)))
    assert [(s.label, s.profile) for s in sets] == [("data/one", 0), ("data/two", 1)]
    assert info == {"kind": "data", "path": str(data), "sets": 2}
    report = verify_with_runners(ort_runner_factory(model), ort_runner_factory(model), sets, TIGHT,
                                 inputs=info)
    assert report.passed and report.to_json()["inputs"]["kind"] == "data"


def test_generated_inputs_description():
    _, info = input_sets_for(embedding_io(), accuracy_spec(seed=9, ranges=[("ids", 0, 10)]))
    assert info == {"kind": "generated", "seed": 9, "ranges": {"ids": [0, 10]}, "iterations": 1}


def test_disabled_accuracy_is_a_skipped_report(tmp_path):
    report = verify_engine(tmp_path / "missing.plan", tmp_path / "missing.onnx", mlp_io(),
                           accuracy_spec(enabled=False), precision="fp16")
    assert report.passed and report.skipped and report.cases == []
    assert report.to_json()["skipped"] is True
    assert report.summary_lines() == ["accuracy: skipped (fp16: accuracy.enabled is false)"]


def test_reference_session_names_onnxruntime_and_provider(tmp_path):
    from trtops.gate.gate import make_reference_session

    session, name = make_reference_session(make_mlp(tmp_path / "mlp.onnx"))
    assert name.startswith("onnxruntime ") and "ExecutionProvider" in name
    assert session.get_inputs()[0].name == "x"
    with pytest.raises(InputError, match="could not load"):
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"not onnx")
        make_reference_session(bad)


def test_verify_cached_engine_reads_and_writes_through_the_store(tmp_path):
    pytest.importorskip("trtops.cache.local")
    from trtops.cache import open_store
    from trtops.errors import CacheError
    from trtops.gate.gate import verify_cached_engine

    model = make_mlp(tmp_path / "mlp.onnx")
    store = open_store(tmp_path / "cache")
    missing, no_io, entry = "ab" * 32, "cd" * 32, "ef" * 32
    with pytest.raises(CacheError, match="no engine"):
        verify_cached_engine(store, missing, model, accuracy_spec(), precision="fp32")
    store.put_entry(no_io, {"engine.plan": b"plan"}, {"key": no_io})
    with pytest.raises(CacheError, match="no 'io'"):
        verify_cached_engine(store, no_io, model, accuracy_spec(), precision="fp32")
    # accuracy disabled: nothing runs (no TensorRT here), the entry records it as unverified
    plan_sha = hashlib.sha256(b"plan").hexdigest()
    corrupt = "12" * 32
    store.put_entry(corrupt, {"engine.plan": b"plan"},
                    {"key": corrupt, "io": mlp_io().to_json(), "engine_sha256": "0" * 64})
    with pytest.raises(CacheError, match="corrupt"):
        verify_cached_engine(store, corrupt, model, accuracy_spec(enabled=False), precision="fp32")
    store.put_entry(entry, {"engine.plan": b"plan"},
                    {"key": entry, "io": mlp_io().to_json(), "engine_sha256": plan_sha})
    report = verify_cached_engine(store, entry, model, accuracy_spec(enabled=False), precision="fp32")
    assert report.skipped
    stored = json.loads(store.read_file(entry, "accuracy.json"))
    assert stored["state"] == "unverified" and stored["skipped"] is True
