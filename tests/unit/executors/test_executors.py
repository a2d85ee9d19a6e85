"""The executors' pure parts: flag parsing, GPU pinning, slot routing and the shared queue,
the timing-cache ledger, the worker-side job function (with the toolchain test double) and
the Ray executor's resource names and input shipping. Processes and clusters: tests/func/
test_apply_gpus.py and tests/ray."""

from __future__ import annotations

import pickle
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.errors import BuildError, InputError
from trtops.executors import make_executor
from trtops.executors.base import Slot, TimingLedger, run_slots
from trtops.executors.gpus import GpuExecutor, parse_gpus, visible_device
from trtops.executors.jobs import (
    BuildJob,
    JobError,
    JobFailure,
    JobOutput,
    run_build_job,
)
from trtops.keys.platform import GpuInfo, Platform
from trtops.outcome import EngineOutcome

# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize("text, expected", [
    ("all", "all"), ("ALL", "all"), ("0,1", (0, 1)), (" 1 , 0 ", (1, 0)), ("2", (2,)), ("0,0,1", (0, 1)),
])
def test_parse_gpus(text, expected):
    assert parse_gpus(text) == expected


@pytest.mark.parametrize("text", ["", "first", "-1", "0;1", "1.5"])
def test_parse_gpus_refuses_anything_else(text):
    with pytest.raises(InputError, match="--gpus"):
        parse_gpus(text)


def test_make_executor_picks_and_checks_flags():
    assert make_executor().name == "local"
    assert make_executor(gpus="0,1").name == "gpus"
    assert make_executor("gpus").gpus == "all"
    assert make_executor("ray", address="127.0.0.1:6379", ray_timeout=5).timeout == 5
    with pytest.raises(InputError, match="--gpus goes with"):
        make_executor("local", gpus="all")
    with pytest.raises(InputError, match="--address needs --executor ray"):
        make_executor("gpus", address="x:1")
    with pytest.raises(InputError, match="must be positive"):
        make_executor("ray", ray_timeout=0)
    with pytest.raises(InputError, match="unknown executor"):
        make_executor("slurm")


def test_visible_device_follows_the_parents_visibility():
    gpu = GpuInfo(1, "NVIDIA H200", "9.0")
    assert visible_device(gpu, {}) == "1"
    assert visible_device(replace(gpu, uuid="GPU-1234-abcd"), {}) == "GPU-1234-abcd"
    # CUDA index 1 of a process that sees physical GPUs 2 and 3 is physical GPU 3
    assert visible_device(gpu, {"CUDA_VISIBLE_DEVICES": "2,3"}) == "3"
    assert visible_device(replace(gpu, uuid="GPU-x"), {"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}) == "GPU-b"


# --------------------------------------------------------------------------- GPU selection


@dataclass
class _Plan:
    platform: Platform


@dataclass(frozen=True)
class _Action:
    id: str
    timing_signature: str
    gpu_index: int = 0


MIXED = Platform(tensorrt="10.13.3.9", gpus=(
    GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0"), GpuInfo(1, "NVIDIA L4", "8.9"), GpuInfo(2, "NVIDIA L4", "8.9")))
H100 = "cc9.0-nvidia-h100-80gb-hbm3"
L4 = "cc8.9-nvidia-l4"


def test_gpu_slots_follow_each_gpus_model(tmp_path):
    executor = GpuExecutor("all")
    actions = [_Action("a", H100, 0), _Action("b", L4, 1)]
    slots, unschedulable = executor.prepare(_Plan(MIXED), actions, toolchain=None, staging=tmp_path)
    assert [(s.label, s.signature) for s in slots] == [
        ("GPU 0 (NVIDIA H100 80GB HBM3)", H100), ("GPU 1 (NVIDIA L4)", L4), ("GPU 2 (NVIDIA L4)", L4)]
    assert unschedulable == {}
    assert [w.visible for w in executor.workers] == ["0", "1", "2"]
    assert not any(w.alive for w in executor.workers)  # started on their first job only
    executor.close()


def test_gpus_that_leave_out_an_engines_model_say_so(tmp_path):
    executor = GpuExecutor((1, 2))
    slots, unschedulable = executor.prepare(
        _Plan(MIXED), [_Action("h", H100, 0), _Action("l", L4, 1)], toolchain=None, staging=tmp_path)
    assert {s.signature for s in slots} == {L4}
    assert unschedulable == {"h": "needs GPU 0 (NVIDIA H100 80GB HBM3), which --gpus 1, 2 leaves out"}
    with pytest.raises(InputError, match="no GPU 5"):
        GpuExecutor((0, 5)).check_platform(MIXED)


# --------------------------------------------------------------------------- shared queue


def _outcome(action_id: str, status: str) -> EngineOutcome:
    return EngineOutcome(id=action_id, manifest="m.yaml", line=1, model="m", precision="fp32",
                         target="t", action="build", status=status)


def test_run_slots_routes_by_signature_and_runs_slots_side_by_side():
    running: list[str] = []
    peak = {"n": 0}
    lock = threading.Lock()
    # Each slot's first action waits until all three slots are inside one: side by side
    # by construction, not by a sleep that a loaded machine may outlast (a serial
    # run_slots breaks the barrier instead).
    together = threading.Barrier(3, timeout=60)
    first: set[str] = set()

    def work(action, slot):
        with lock:
            running.append(slot.label)
            peak["n"] = max(peak["n"], len(running))
            wait = slot.label not in first
            first.add(slot.label)
        if wait:
            together.wait()
        with lock:
            running.remove(slot.label)
        return _outcome(action.id, "built" if slot.signature == action.timing_signature else "error")

    slots = [Slot("h100", H100, None), Slot("l4-a", L4, None), Slot("l4-b", L4, None)]
    actions = [_Action(f"e{i}", H100 if i % 3 == 0 else L4) for i in range(9)]
    done, left = run_slots(slots, actions, work, keep_going=False)
    assert left == [] and {o.status for o in done.values()} == {"built"} and len(done) == 9
    assert peak["n"] == 3


def test_run_slots_starts_nothing_new_after_a_failure_unless_keep_going():
    def work(action, slot):
        time.sleep(0.01)
        return _outcome(action.id, "build_failed" if action.id == "e0" else "built")

    actions = [_Action(f"e{i}", L4) for i in range(4)]
    done, left = run_slots([Slot("one", L4, None)], actions, work, keep_going=False)
    assert list(done) == ["e0"] and [a.id for a in left] == ["e1", "e2", "e3"]
    done, left = run_slots([Slot("one", L4, None)], actions, work, keep_going=True)
    assert len(done) == 4 and left == []
    # nobody takes an action whose GPU model no slot has
    done, left = run_slots([Slot("one", L4, None)], [_Action("x", H100)], work, keep_going=True)
    assert done == {} and [a.id for a in left] == ["x"]


def test_timing_ledger_keeps_pieces_until_a_build_takes_them():
    ledger = TimingLedger()
    ledger.defer("10.13", L4, b"a")
    ledger.defer("10.13", L4, b"b")
    assert ledger.take("10.13", H100) == ()
    pieces = ledger.take("10.13", L4)
    assert pieces == (b"a", b"b") and ledger.take("10.13", L4) == ()
    ledger.give_back("10.13", L4, pieces)  # that build failed: the next one merges them
    ledger.defer("10.13", L4, b"c")
    assert ledger.leftovers() == [("10.13", L4, (b"a", b"b", b"c"))]
    assert ledger.leftovers() == []


# --------------------------------------------------------------------------- the worker side


@pytest.fixture
def fake():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    from doubles import FakeToolchain

    return FakeToolchain()


def _spec(tmp_path: Path):
    from trtops.spec import make_engine_spec

    model = make_conv_model(tmp_path / "models" / "conv.onnx")
    return make_engine_spec(model, "fp32", profiles=[{"input": ((1, 3, 8, 8), (2, 3, 16, 16), (4, 3, 32, 32))}])


def test_run_build_job_builds_checks_and_merges_timing_pieces_first(tmp_path, fake):
    job = BuildJob(_spec(tmp_path), "0" * 64, str(tmp_path / "work"), timing_cache=b"timing:old\n",
                   timing_pieces=(b"timing:other\n",))
    (tmp_path / "work").mkdir()
    phases: list[str] = []
    output = run_build_job(job, fake, phases.append)
    assert not output.failed
    assert Path(output.engine_path).is_file() and output.engine_bytes > 0
    assert output.io["tensors"][0]["name"] == "input"
    assert output.timing_cache.split() == [b"timing:conv/fp32", b"timing:old", b"timing:other"]
    assert output.accuracy["state"] == "accepted" and output.accuracy_passed is True
    assert output.accuracy_summary.startswith("accuracy: passed")
    assert phases == ["checking accuracy", "measuring"]
    assert output.perf["cases"][0]["label"] == "opt" and output.perf_error is None
    # what crosses a pipe or Ray's object store
    assert pickle.loads(pickle.dumps(output)).accuracy == output.accuracy


def test_run_build_job_reports_failures_as_data(tmp_path, fake, monkeypatch):
    (tmp_path / "work").mkdir()
    job = BuildJob(_spec(tmp_path), "0" * 64, str(tmp_path / "work"))
    monkeypatch.setenv("TRTOPS_FAKE_BUILD_FAIL", "conv")
    failed = run_build_job(job, fake)
    assert isinstance(failed.exception, BuildError)
    assert failed.error.status == "build_failed" and "node 3" in failed.error.message
    assert "[fake] building" in failed.error.details and "[fake] building" in failed.log_text
    sent = pickle.loads(pickle.dumps(failed))  # a worker's failure, as the parent gets it
    assert sent.exception is None
    with pytest.raises(JobFailure) as raised:
        sent.raise_failure()
    assert raised.value.outcome_status == "build_failed" and int(raised.value.exit_code) == 3

    monkeypatch.delenv("TRTOPS_FAKE_BUILD_FAIL")
    broken = replace(job.spec, accuracy=replace(job.spec.accuracy, data=str(tmp_path / "missing.npz")))
    checked = run_build_job(replace(job, spec=broken), fake)
    # the check failed, but the build's log and timing cache are there for the parent
    assert checked.error.status == "invalid" and "missing.npz" in checked.error.message
    assert checked.timing_cache and checked.log_text


def test_only_in_process_builds_ask_for_the_parse_preflight(tmp_path):
    """A crash of TensorRT's parser ends an in-process apply; in a worker of its own
    (--gpus, Ray: isolated) it fails that worker's engine, so the child process is skipped."""
    requests = []

    class Recorder:
        def build(self, request):
            requests.append(request)
            raise BuildError("recorded")

    (tmp_path / "work").mkdir()
    job = BuildJob(_spec(tmp_path), "0" * 64, str(tmp_path / "work"))
    run_build_job(job, Recorder())
    run_build_job(job, Recorder(), isolated=True)
    assert [r.parse_preflight for r in requests] == [True, False]


def test_job_failure_statuses_map_to_apply_statuses():
    from trtops.outcome import failure_status

    for status in ("build_failed", "accuracy_failed", "environment", "invalid", "error"):
        assert failure_status(JobFailure(JobError(status, "m"))) == status
    output = JobOutput(error=JobError("error", "ValueError: boom", details="Traceback..."))
    with pytest.raises(JobFailure, match="boom"):
        output.raise_failure()


# --------------------------------------------------------------------------- Ray, without a cluster


def test_ray_resources_name_gpu_signatures():
    from trtops.executors.ray_executor import node_resources, resource_name

    assert resource_name(L4) == "trtops_gpu:cc8.9-nvidia-l4"
    assert node_resources(MIXED) == {"trtops_gpu:cc9.0-nvidia-h100-80gb-hbm3": 1, "trtops_gpu:cc8.9-nvidia-l4": 2}


def test_ray_inputs_are_shipped_with_external_data_and_relocated(tmp_path):
    import numpy as np

    from trtops.executors.ray_executor import _materialize, _relocate, make_bundle
    from trtops.spec import CalibrationSpec, make_engine_spec

    model = make_conv_model(tmp_path / "src" / "heavy.onnx", external_data=True)
    calibration = tmp_path / "calib"
    calibration.mkdir()
    np.save(calibration / "input.npy", np.zeros((2, 3, 8, 8), np.float32))
    spec = make_engine_spec(model, "int8", calibration=CalibrationSpec(str(calibration), 1, "entropy", None))
    bundle = make_bundle(spec)
    assert set(bundle["model"][1]) == {"heavy.onnx", "heavy.onnx.data"}
    assert bundle["calibration"] == ("", {"input.npy": (calibration / "input.npy").read_bytes()})
    moved = _relocate(spec, _materialize(bundle, tmp_path / "node"))
    assert moved.source.path == str(tmp_path / "node" / "model" / "heavy.onnx")
    assert (tmp_path / "node" / "model" / "heavy.onnx.data").read_bytes() == model.with_name("heavy.onnx.data").read_bytes()
    assert Path(moved.build.calibration.data, "input.npy").is_file()
    assert moved.build == replace(spec.build, calibration=moved.build.calibration)  # nothing else moved
    with pytest.raises(ValueError, match="outside"):
        _materialize({"model": ("x.onnx", {"../escape": b""})}, tmp_path / "node2")
    assert make_bundle(replace(spec, source=replace(spec.source, path=str(tmp_path / "gone.onnx")))) is None


def test_ray_ships_the_cast_model_beside_the_gate_reference(tmp_path):
    from trtops.executors.ray_executor import _materialize, make_bundle
    from trtops.prepare.runner import prepare_file
    from trtops.spec import make_engine_spec

    model = make_conv_model(tmp_path / "src" / "conv.onnx")
    cast, _ = prepare_file(model, None, tmp_path / "prepared", cast="fp16")
    spec = make_engine_spec(model, "fp16")
    paths = _materialize(make_bundle(spec, str(cast)), tmp_path / "node")
    assert Path(paths["model"]).read_bytes() == model.read_bytes()  # the gate's fp32 reference
    assert Path(paths["parse"]).read_bytes() == cast.read_bytes()  # what TensorRT parses
    assert "parse" not in make_bundle(spec)
