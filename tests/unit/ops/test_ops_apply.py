"""apply_plan's one execution path: in-process builds go through the local executor's one
slot (in the caller's thread), with the toolchain double standing in for TensorRT and a
real cache, real manifests and real ONNX models."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from apply_helpers import make_project
from doubles import FakeToolchain

from trtops.cache.local import LocalStore
from trtops.executors.base import Slot, run_slots
from trtops.executors.local import LocalExecutor
from trtops.ops.apply import ApplyOptions, apply_plan
from trtops.plan import make_plan


class _Quiet:
    def start(self, *args, **kwargs): pass
    def update(self, *args, **kwargs): pass
    def finish(self, *args, **kwargs): pass


@contextmanager
def quiet(total, title):
    yield _Quiet()


class RecordingToolchain(FakeToolchain):
    """The double, noting which thread built what."""

    def __init__(self):
        self.threads: list[str] = []

    def build(self, request):
        self.threads.append(threading.current_thread().name)
        return super().build(request)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("TRTOPS_FAKE_LOG", str(root / "builds.log"))
    return root


def _apply(project: Path, toolchain, **options):
    store = LocalStore(project / "cache")
    plan = make_plan(["manifests"], store, toolchain.platform())
    return plan, apply_plan(plan, store, toolchain=toolchain, options=ApplyOptions(**options),
                            progress_factory=quiet)


def statuses(result) -> dict[str, str]:
    return {o.id: o.status for o in result.outcomes}


def test_in_process_builds_run_through_the_local_executor_in_the_callers_thread(project):
    toolchain = RecordingToolchain()
    plan, result = _apply(project, toolchain)
    assert statuses(result) == {"demo/conv/fp32/lab": "built", "demo/conv/fp32/h100": "skipped",
                                "demo/conv/fp16/lab": "built", "demo/conv/fp16/h100": "skipped",
                                "demo/heavy/fp32/lab": "built"}
    assert set(toolchain.threads) == {threading.current_thread().name}
    assert len(toolchain.threads) == len(plan.unique_builds()) == 3
    # an explicit local executor is the same path
    _, again = _apply(project, RecordingToolchain(), executor=LocalExecutor())
    assert {o.status for o in again.outcomes} == {"reused", "skipped"}


def test_a_failed_build_stops_later_engines_unless_keep_going(project, monkeypatch):
    monkeypatch.setenv("TRTOPS_FAKE_BUILD_FAIL", "conv")
    _, result = _apply(project, FakeToolchain())
    assert statuses(result) == {"demo/conv/fp32/lab": "build_failed", "demo/conv/fp32/h100": "skipped",
                                "demo/conv/fp16/lab": "skipped", "demo/conv/fp16/h100": "skipped",
                                "demo/heavy/fp32/lab": "skipped"}
    assert "not attempted" in result.outcomes[-1].message
    assert int(result.exit_code()) == 3
    _, kept = _apply(project, FakeToolchain(), keep_going=True)
    assert statuses(kept)["demo/heavy/fp32/lab"] == "built"  # went on past the failures


def test_a_rejected_engine_stops_builds_after_it_in_plan_order(project, monkeypatch):
    monkeypatch.setenv("TRTOPS_FAKE_PERTURB", "conv")
    _, first = _apply(project, FakeToolchain(), keep_going=True)
    assert statuses(first)["demo/conv/fp32/lab"] == "accuracy_failed"
    assert statuses(first)["demo/heavy/fp32/lab"] == "built"
    (project / "builds.log").unlink()
    # heavy/fp32/lab changes (new weights): it is pending, after the rejected conv engines
    from helpers import make_conv_model

    make_conv_model(project / "manifests" / "models" / "heavy.onnx", seed=3, external_data=True)
    _, second = _apply(project, FakeToolchain())
    assert statuses(second)["demo/conv/fp32/lab"] == "rejected"
    assert "not attempted" in next(o.message for o in second.outcomes if o.id == "demo/heavy/fp32/lab")
    assert not (project / "builds.log").exists()  # nothing was built after the rejection


def test_run_slots_raises_what_a_slot_raised_after_every_slot_stopped():
    class Action:
        def __init__(self, name):
            self.id, self.timing_signature = name, "sig"

    def work(action, slot):
        raise RuntimeError(f"remote gone while building {action.id}")

    slots = [Slot("a", "sig", None), Slot("b", "sig", None)]
    with pytest.raises(RuntimeError, match="remote gone"):
        run_slots(slots, [Action("x"), Action("y"), Action("z")], work, keep_going=True)
    # one slot: the caller's thread, the exception as it is
    with pytest.raises(RuntimeError, match="building x"):
        run_slots([replace(slots[0])], [Action("x")], work, keep_going=True)


def test_built_engines_report_their_result_not_why_they_were_built(project):
    _plan, result = _apply(project, FakeToolchain())
    built = [o for o in result.outcomes if o.status == "built"]
    assert built
    for outcome in built:
        assert "not built yet" not in outcome.message
        assert outcome.message.startswith("accuracy"), outcome.message


class _NoTensorRT(FakeToolchain):
    def platform(self):
        return replace(super().platform(), tensorrt=None)


def test_no_tensorrt_is_one_upfront_environment_error(project):
    from trtops.errors import EnvironmentMissing

    with pytest.raises(EnvironmentMissing) as caught:
        _apply(project, _NoTensorRT())
    assert "TensorRT is not installed here" in caught.value.message
    assert not (project / "builds.log").exists()
