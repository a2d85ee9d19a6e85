"""Outcome helpers shared by apply, verify and plan reports."""

from __future__ import annotations

from trtops.keys.engine_key import EngineKey
from trtops.outcome import accuracy_summary, action_outcome
from trtops.plan.model import Action
from trtops.spec import make_engine_spec


def test_action_outcome_carries_the_engine_identity(tmp_path):
    spec = make_engine_spec(tmp_path / "conv.onnx", "fp16", target="lab", line=7, manifest="m.yaml")
    key = EngineKey("k" * 64, {}, {})
    outcome = action_outcome(Action("build", spec, "not built yet", key=key), "built", "ok", seconds=1.5)
    assert (outcome.id, outcome.manifest, outcome.line) == ("direct/conv/fp16/lab", "m.yaml", 7)
    assert (outcome.model, outcome.precision, outcome.target) == ("conv", "fp16", "lab")
    assert (outcome.action, outcome.status, outcome.key) == ("build", "built", "k" * 64)
    assert (outcome.message, outcome.seconds) == ("ok", 1.5)
    assert action_outcome(Action("skip", spec, "no GPU"), "skipped").key is None


def test_accuracy_summary_keeps_the_reported_fields():
    accuracy = {"state": "accepted", "passed": True, "summary": "s", "worst": [], "outputs": {"y": {}}}
    assert accuracy_summary(accuracy) == {"state": "accepted", "passed": True, "summary": "s", "worst": []}
    assert accuracy_summary({"passed": False}) == {"passed": False}
