"""The pure planner: target matching, actions and their reasons, saved plans."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import ACCURACY_FILE, ENGINE_FILE
from trtops.errors import InputError, PlanMismatch
from trtops.keys.memo import DigestMemo
from trtops.keys.model_digest import ModelDigest, digest_models
from trtops.keys.platform import GpuInfo, Platform
from trtops.plan import (
    CacheView,
    EntryView,
    Plan,
    check_plan_current,
    explain_changes,
    make_plan_for_specs,
    match_target,
    plan,
    render_lines,
    spec_from_json,
    spec_key,
    spec_keys,
)
from trtops.spec import (
    AccuracySpec,
    CalibrationSpec,
    EngineSpec,
    InputRange,
    ModelSource,
    TargetSpec,
    ToleranceSpec,
    make_engine_spec,
)

H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0")
L4 = GpuInfo(1, "NVIDIA L4", "8.9")
T4 = GpuInfo(0, "Tesla T4", "7.5")
TRT10 = Platform("10.13.3.9", (H100, L4))
MODEL_PATH = "/models/conv.onnx"
MODEL = ModelDigest.of("a" * 64, [("conv.onnx.data", "b" * 64)], 1000)
DIGESTS = {MODEL_PATH: MODEL}


def target(name="h100", gpu="NVIDIA H100*", cc=None, trt=">=10.13,<10.14", hw="none", vc=False) -> TargetSpec:
    return TargetSpec(name, gpu, cc, trt, hw, vc)


def make_spec(precision="fp16", tgt: TargetSpec | None = None, model="conv", manifest="demo", **build) -> EngineSpec:
    """A spec as a manifest would give; ``build`` overrides BuildConfig fields as they are."""
    spec = make_engine_spec(
        MODEL_PATH, precision,
        profiles=[{"input": ((1, 3, 32, 32), (8, 3, 64, 64), (16, 3, 128, 128))}],
        workspace=64 << 20,
        target=tgt or target(),
        name=model, manifest=f"/m/{manifest}.yaml", manifest_name=manifest,
        accuracy=AccuracySpec(True, "onnxruntime",
                              ToleranceSpec(1e-2, 1e-2, "median", None,
                                            (("mask", ToleranceSpec(5e-3, 0.0, "elemwise")),)),
                              7, (("input", 0.0, 1.0),), None, 2),
        loaders=("python", "triton"),
        line=12,
    )
    return replace(spec, build=replace(spec.build, **build))


def key_for(spec, platform=TRT10, digests=DIGESTS, data=None):
    return spec_key(spec, match_target(spec, platform), digests, data)


def view_with(entries=(), refs=None) -> CacheView:
    return CacheView(url="/cache", entries={e.key: e for e in entries}, refs=dict(refs or {}))


def ref_record(key) -> dict:
    return {"key": key.key, "components": key.components, "model": key.model}


# --------------------------------------------------------------------------- target matching


def test_match_by_glob_case_insensitive():
    match = match_target(make_spec(tgt=target(gpu="nvidia h100*")), TRT10)
    assert match.problem is None and match.gpu == H100
    assert match.signature == "cc9.0-nvidia-h100-80gb-hbm3"
    assert match.tensorrt == "10.13.3.9"


def test_match_picks_the_matching_gpu_of_several():
    match = match_target(make_spec(tgt=target(gpu=None, cc="8.9")), TRT10)
    assert match.gpu == L4 and match.signature == "cc8.9-nvidia-l4"
    assert match_target(make_spec(tgt=target(gpu="NVIDIA L4", cc="8.9")), TRT10).gpu == L4


def test_gpu_any_takes_gpu_zero():
    match = match_target(make_spec(tgt=target(gpu="any", trt="")), TRT10)
    assert match.gpu == H100


@pytest.mark.parametrize(
    "spec, platform, reason",
    [
        (make_spec(), Platform(None, (H100,)), "needs TensorRT >=10.13,<10.14 (not installed here)"),
        (make_spec(), Platform("10.14.1.48", (H100,)), "needs TensorRT >=10.13,<10.14; this platform has TensorRT 10.14.1.48"),
        (make_spec(), Platform("10.13.3.9", ()), "needs a GPU matching 'NVIDIA H100*' (no GPU here)"),
        (make_spec(tgt=target(gpu="any")), Platform("10.13.3.9", ()), "needs a GPU (no GPU here)"),
        (make_spec(tgt=target(gpu=None, cc="8.0")), TRT10,
         "needs a GPU of compute capability 8.0; this platform has NVIDIA H100 80GB HBM3 (cc 9.0), NVIDIA L4 (cc 8.9)"),
        (make_spec(tgt=target(gpu="any", hw="ampere_plus")), Platform("10.13.3.9", (T4,)),
         "hardware_compatibility ampere_plus must be built on a GPU of compute capability >= 8.0 (Ampere); this GPU has 7.5"),
        (make_spec(tgt=target(gpu="any", trt="", hw="same_compute_capability")), Platform("8.6.0", (H100,)),
         "same_compute_capability needs TensorRT >= 10.9"),
        (make_spec("bf16", tgt=target(gpu="any", trt="")), Platform("8.6.0", (H100,)), "bf16 needs TensorRT >= 9"),
        (make_spec("fp8", tgt=target(gpu="any", trt="")), Platform("10.13.3.9", (GpuInfo(0, "NVIDIA A100", "8.0"),)),
         "fp8 needs a GPU of compute capability >= 8.9"),
    ],
)
def test_skip_reasons(spec, platform, reason):
    result = plan([spec], view_with(), platform, DIGESTS)
    action = result.actions[0]
    assert action.kind == "skip"
    assert reason in action.reason
    assert action.key is None


def test_tensorrt_specifier_accepts_four_part_versions():
    assert match_target(make_spec(tgt=target(trt=">=8.6,<8.7")), Platform("8.6.0", (H100,))).problem is None
    assert match_target(make_spec(tgt=target(trt="==10.13.*")), TRT10).problem is None


def test_hardware_compatible_signatures():
    assert key_for(make_spec(tgt=target(gpu="any", hw="ampere_plus"))).components["gpu"] == "ampere_plus"
    spec = make_spec(tgt=target(gpu="any", hw="same_compute_capability"))
    assert key_for(spec).components["gpu"] == "cc9.0"
    # Timing caches stay per GPU model whatever the engine's portability.
    action = plan([spec], view_with(), TRT10, DIGESTS).actions[0]
    assert action.timing_signature == "cc9.0-nvidia-h100-80gb-hbm3"


# --------------------------------------------------------------------------- actions


def test_build_when_never_built():
    result = plan([make_spec()], view_with(), TRT10, DIGESTS)
    action = result.actions[0]
    assert (action.kind, action.reason) == ("build", "not built yet")
    assert action.key == key_for(make_spec())
    assert action.gpu_index == 0 and action.tensorrt == "10.13.3.9"
    assert result.pending == [action]


@pytest.mark.parametrize("state, reason", [("accepted", "up to date"), ("unverified", "not verified")])
def test_reuse(state, reason):
    key = key_for(make_spec())
    result = plan([make_spec()], view_with([EntryView(key.key, state)]), TRT10, DIGESTS)
    action = result.actions[0]
    assert action.kind == "reuse" and action.state == state and reason in action.reason
    assert not result.pending


def test_rejected_says_why():
    key = key_for(make_spec())
    accuracy = {"state": "rejected", "summary": "output 'out' median abs err 0.3 > atol 0.01",
                "checked_at": "2025-01-31T12:00:00Z"}
    result = plan([make_spec()], view_with([EntryView(key.key, "rejected", accuracy)]), TRT10, DIGESTS)
    action = result.actions[0]
    assert action.kind == "rejected"
    assert "median abs err 0.3 > atol 0.01" in action.reason and "2025-01-31" in action.reason
    assert not result.pending


def test_missing_entry_of_the_current_key_is_a_build():
    key = key_for(make_spec())
    result = plan([make_spec()], view_with(refs={make_spec().id: ref_record(key)}), TRT10, DIGESTS)
    assert result.actions[0].kind == "build"
    assert "missing" in result.actions[0].reason


def _rebuild_reason(old_spec, new_spec, old_platform=TRT10, new_platform=TRT10,
                    old_digests=DIGESTS, new_digests=DIGESTS, old_data=None, new_data=None):
    old_key = key_for(old_spec, old_platform, old_digests, old_data)
    new_key = key_for(new_spec, new_platform, new_digests, new_data)
    assert old_key.key != new_key.key
    view = view_with([EntryView(old_key.key, "accepted")], {new_spec.id: ref_record(old_key)})
    result = plan([new_spec], view, new_platform, new_digests, data_digests=new_data)
    action = result.actions[0]
    assert action.kind == "rebuild"
    assert action.previous_key == old_key.key
    return action.reason


def test_rebuild_reason_model_weights():
    new = {MODEL_PATH: ModelDigest.of("a" * 64, [("conv.onnx.data", "c" * 64)])}
    assert _rebuild_reason(make_spec(), make_spec(), new_digests=new) == "model weights changed (conv.onnx.data)"


def test_rebuild_reason_model_file():
    new = {MODEL_PATH: ModelDigest.of("f" * 64, [("conv.onnx.data", "b" * 64)])}
    assert _rebuild_reason(make_spec(), make_spec(), new_digests=new) == "model changed (ONNX file)"


def test_rebuild_reason_tensorrt():
    spec = make_spec(tgt=target(trt=">=10"))
    assert _rebuild_reason(spec, spec, new_platform=Platform("10.14.1.48", (H100,))) == \
        "TensorRT 10.13.3.9 → 10.14.1.48"


def test_rebuild_reason_gpu():
    spec = make_spec(tgt=target(gpu="any"))
    reason = _rebuild_reason(spec, spec, new_platform=Platform("10.13.3.9", (GpuInfo(0, "NVIDIA H200", "9.0"),)))
    assert reason == "GPU cc9.0-nvidia-h100-80gb-hbm3 → cc9.0-nvidia-h200"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"workspace": 128 << 20}, "build config changed: workspace 64 MiB → 128 MiB"),
        ({"workspace": None}, "build config changed: workspace 64 MiB → default"),
        ({"builder_optimization_level": 5}, "build config changed: builder_optimization_level 3 → 5"),
        ({"max_aux_streams": 2}, "build config changed: max_aux_streams default → 2"),
        ({"tactic_sources": ("cublas", "cudnn")}, 'build config changed: tactic_sources default → ["cublas","cudnn"]'),
        ({"profiles": ((InputRange("input", (1, 3, 32, 32), (8, 3, 64, 64), (32, 3, 256, 256)),),)},
         "build config changed: profile 0 'input' max [16,3,128,128] → [32,3,256,256]"),
    ],
)
def test_rebuild_reason_build_config(change, expected):
    assert _rebuild_reason(make_spec(), make_spec(**change)) == expected


def test_rebuild_reason_calibration_data():
    calibration = CalibrationSpec("/m/calib.npz", 8, "entropy", None)
    spec = make_spec("int8", calibration=calibration)
    reason = _rebuild_reason(spec, spec, old_data={"/m/calib.npz": "1" * 64}, new_data={"/m/calib.npz": "2" * 64})
    assert reason == "build config changed: calibration data changed"
    bigger = make_spec("int8", calibration=replace(calibration, batch_size=32))
    reason = _rebuild_reason(spec, bigger, old_data={"/m/calib.npz": "1" * 64}, new_data={"/m/calib.npz": "1" * 64})
    assert reason == "build config changed: calibration batch_size 8 → 32"


def test_rebuild_reason_several_components():
    new = {MODEL_PATH: ModelDigest.of("a" * 64, [("conv.onnx.data", "c" * 64)])}
    reason = _rebuild_reason(make_spec(tgt=target(trt="")), make_spec(tgt=target(trt=""), workspace=1 << 30),
                             new_platform=Platform("10.14.1.48", (H100,)), new_digests=new)
    assert reason == ("model weights changed (conv.onnx.data); build config changed: workspace 64 MiB → 1 GiB; "
                      "TensorRT 10.13.3.9 → 10.14.1.48")


def test_rebuild_reason_without_components_in_the_ref():
    old, new = key_for(make_spec()), key_for(make_spec(workspace=1 << 30))
    view = view_with(refs={make_spec().id: {"key": old.key}})
    action = plan([make_spec(workspace=1 << 30)], view, TRT10, DIGESTS).actions[0]
    assert action.kind == "rebuild" and action.key == new
    assert action.reason == f"engine key changed (the last build, {old.key[:12]}, recorded no key components)"


def test_ref_without_components_is_explained_from_the_old_entry(tmp_path):
    store = LocalStore(tmp_path / "cache")
    old = key_for(make_spec())
    publish_entry(store, old, make_spec().id, {ENGINE_FILE: b"engine"})
    store.write_ref(make_spec().id, {"key": old.key})
    view = CacheView.load(store, [], [make_spec().id])
    action = plan([make_spec(workspace=1 << 30)], view, TRT10, DIGESTS).actions[0]
    assert action.reason == "build config changed: workspace 64 MiB → 1 GiB"


def test_explain_changes_schema_and_plugins():
    old = {"schema": 1, "model_digest": "m", "build": {}, "tensorrt": "8.6.0", "gpu": "g", "plugins": []}
    new = dict(old, schema=2, plugins=["p" * 64])
    messages = [c.message for c in explain_changes(old, new)]
    assert messages == ["engine key schema 1 → 2 (new trtops)", "plugins changed"]


def test_shared_keys_are_built_once():
    by_glob = make_spec(tgt=target(name="h100"))
    by_name = make_spec(tgt=target(name="lab", gpu="NVIDIA H100 80GB HBM3"))
    result = plan([by_glob, by_name], view_with(), TRT10, DIGESTS)
    first, second = result.actions
    assert first.key == second.key
    assert second.same_as == by_glob.id and "built once" in second.reason
    assert result.unique_builds() == [first]


def test_duplicate_spec_ids_are_refused():
    spec = make_spec()
    other = replace(spec, manifest="/elsewhere/demo.yaml")
    with pytest.raises(InputError, match="both named demo/conv/fp16/h100"):
        plan([spec, other], view_with(), TRT10, DIGESTS)


def test_version_compatible_engine_built_by_a_newer_tensorrt_is_skipped():
    spec = make_spec(tgt=target(trt=">=10", vc=True))
    key = key_for(spec, Platform("10.13.3.9", (H100,)))
    meta = {"components": key.components, "tensorrt_version": "10.14.1.48"}
    view = view_with([EntryView(key.key, "accepted", None, meta)])
    action = plan([spec], view, Platform("10.13.3.9", (H100,)), DIGESTS).actions[0]
    assert action.kind == "skip" and "needs TensorRT >= 10.14.1.48" in action.reason
    newer = plan([spec], view, Platform("10.15.0.1", (H100,)), DIGESTS).actions[0]
    assert newer.kind == "reuse"


def test_url_source_needs_no_digest():
    sha = hashlib.sha256(b"model").hexdigest()
    spec = replace(make_spec(), source=ModelSource(path="/cache/sources/x.onnx", url="https://x/m.onnx", sha256=sha))
    action = plan([spec], view_with(), TRT10, {}).actions[0]
    assert action.kind == "build"
    assert action.key.components["model_digest"] == ModelDigest.of(sha).digest


def test_plan_is_pure_and_deterministic():
    specs = [make_spec(p) for p in ("fp32", "fp16")]
    one = plan(specs, view_with(), TRT10, DIGESTS).to_json()
    two = plan(specs, view_with(), TRT10, DIGESTS).to_json()
    assert one == two


# --------------------------------------------------------------------------- saved plans


def test_plan_json_round_trip(tmp_path):
    specs = [make_spec("fp32"), make_spec("int8", calibration=CalibrationSpec("/m/c.npz", 8, "entropy", 4)),
             make_spec(tgt=target(name="l4", gpu="NVIDIA L4")), make_spec(tgt=target(name="t4", gpu="Tesla*"))]
    old = key_for(specs[0])
    view = view_with([EntryView(key_for(specs[2]).key, "accepted")], {specs[0].id: ref_record(old)})
    new_digests = {MODEL_PATH: ModelDigest.of("e" * 64)}
    result = plan(specs, view, TRT10, new_digests, data_digests={"/m/c.npz": "9" * 64}, created_at="now")
    path = tmp_path / "plan.json"
    result.save(path)
    loaded = Plan.load(path)
    assert loaded.to_json() == result.to_json()
    assert [a.spec for a in loaded.actions] == specs
    assert [a.kind for a in loaded.actions] == ["rebuild", "build", "build", "skip"]
    assert loaded.actions[0].changes == result.actions[0].changes


def test_spec_from_json_round_trip():
    spec = make_spec("int8", calibration=CalibrationSpec("/m/c.npz", 8, "minmax", None), tactic_sources=("cublas",))
    again = spec_from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    assert isinstance(again.build.profiles[0][0], InputRange)
    assert isinstance(again.accuracy.tolerance.outputs[0][1], ToleranceSpec)


@pytest.mark.parametrize("data, message", [
    ({"format": "x"}, "not a trtops plan"),
    ({"format": "trtops-plan", "version": 99}, "not supported"),
    ({"format": "trtops-plan", "version": 1, "actions": []}, "damaged"),
])
def test_bad_plan_files(data, message):
    with pytest.raises(InputError, match=message):
        Plan.from_json(data)


def test_render_lines():
    key = key_for(make_spec("fp32"))
    specs = [make_spec("fp32"), make_spec(), make_spec(tgt=target(name="t4", gpu="Tesla*"))]
    result = plan(specs, view_with([EntryView(key.key, "accepted")]), TRT10, DIGESTS)
    text = "\n".join(line for _, line in render_lines(result))
    assert "+ build    demo/conv/fp16/h100" in text
    assert "- skip     demo/conv/fp16/t4" in text
    assert "demo/conv/fp32/h100" not in text  # reuse lines only with show_all
    assert "(1 up to date, not listed; --all lists them)" in text
    assert "Plan: 1 to build, 0 to rebuild, 1 to reuse, 1 skipped, 0 rejected." in text
    assert "= reuse    demo/conv/fp32/h100" in "\n".join(line for _, line in render_lines(result, show_all=True))


# --------------------------------------------------------------------------- with a real store and files


def _settled_model(tmp_path):
    path = make_conv_model(tmp_path / "models" / "conv.onnx", external_data=True)
    past = time.time_ns() - 10_000_000_000
    for p in (path, tmp_path / "models" / "conv.onnx.data"):
        os.utime(p, ns=(past, past))
    return path


def test_make_plan_for_specs_with_a_local_store(tmp_path):
    model = _settled_model(tmp_path)
    store = LocalStore(tmp_path / "cache")
    spec = replace(make_spec(), source=ModelSource(path=str(model)))
    first = make_plan_for_specs([spec], store, TRT10)
    assert [a.kind for a in first.actions] == ["build"]
    # the digest memo goes to the user's cache directory; planning writes nothing to the cache
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "trtops" / "digests.json").exists()
    assert not (tmp_path / "cache").exists()
    action = first.actions[0]
    publish_entry(store, action.key, spec.id, {ENGINE_FILE: b"engine"}, accuracy={"state": "accepted"})
    second = make_plan_for_specs([spec], store, TRT10)
    assert [a.kind for a in second.actions] == ["reuse"]
    store.replace_file(action.key.key, ACCURACY_FILE, json.dumps({"state": "rejected", "summary": "bad"}).encode())
    assert make_plan_for_specs([spec], store, TRT10).actions[0].kind == "rejected"
    (tmp_path / "models" / "conv.onnx.data").write_bytes(os.urandom(10) + b"x" * 2000)
    third = make_plan_for_specs([spec], store, TRT10)
    assert third.actions[0].kind == "rebuild"
    assert third.actions[0].reason == "model weights changed (conv.onnx.data)"


def test_spec_keys_are_the_plans_keys(tmp_path):
    model = _settled_model(tmp_path)
    store = LocalStore(tmp_path / "cache")
    here = replace(make_spec(), source=ModelSource(path=str(model)))
    elsewhere = replace(make_spec(tgt=target(name="t4", gpu="Tesla*")), source=ModelSource(path=str(model)))
    keyed = spec_keys([here, elsewhere], TRT10, DigestMemo(tmp_path / "digests.json"))
    assert list(keyed.keys) == [here.id]  # the platform cannot build the other
    assert (tmp_path / "digests.json").exists()
    planned = make_plan_for_specs([here, elsewhere], store, TRT10)
    assert [a.key for a in planned.actions] == [keyed.keys[here.id], None]
    assert planned.digests == keyed.digests


def test_check_plan_current(tmp_path):
    model = _settled_model(tmp_path)
    store = LocalStore(tmp_path / "cache")
    spec = replace(make_spec(), source=ModelSource(path=str(model)))
    saved = Plan.from_json(json.loads(json.dumps(make_plan_for_specs([spec], store, TRT10).to_json())))
    check_plan_current(saved, store, TRT10)  # nothing moved
    with pytest.raises(PlanMismatch, match="platform changed"):
        check_plan_current(saved, store, Platform("10.13.3.10", TRT10.gpus))
    with pytest.raises(PlanMismatch, match="made for cache"):
        check_plan_current(saved, LocalStore(tmp_path / "other"), TRT10)
    publish_entry(store, saved.actions[0].key, spec.id, {ENGINE_FILE: b"engine"})
    with pytest.raises(PlanMismatch, match="cache changed"):
        check_plan_current(saved, store, TRT10)
    store.delete_entry(saved.actions[0].key.key)
    check_plan_current(saved, store, TRT10)
    (tmp_path / "models" / "conv.onnx.data").write_bytes(b"new weights")
    with pytest.raises(PlanMismatch, match="files changed") as info:
        check_plan_current(saved, store, TRT10, memo=DigestMemo(None))
    assert "trtops plan -o plan.json" in info.value.hint


def test_digests_in_plan_are_only_of_used_models(tmp_path):
    model = _settled_model(tmp_path)
    digests = digest_models([str(model)])
    spec = replace(make_spec(tgt=target(gpu="Tesla*")), source=ModelSource(path=str(model)))
    assert plan([spec], view_with(), TRT10, digests).digests == {}


def test_explain_the_cast_moving_into_preparation():
    """A strongly typed 10.x fp16 engine built before the cast moved into preparation: its
    new key names the cast, and plan says so instead of "preparation turned on"."""
    from trtops.prepare.options import prepare_component
    from trtops.spec import PrepareSpec

    old = {"schema": 1, "model_digest": "a" * 64, "build": {"precision": "fp16", "strongly_typed": True}}
    new = dict(old, prepare=prepare_component(None, "fp16"))
    (change,) = explain_changes(old, new, None, None)
    assert change.message == "the model is cast to fp16 in the preparation stage (strongly typed build)"
    steps = prepare_component(PrepareSpec())
    (change,) = explain_changes(dict(old, prepare=steps), dict(old, prepare=prepare_component(PrepareSpec(), "bf16")),
                                None, None)
    assert change.message.startswith("the model is cast to bf16")
    (change,) = explain_changes(new, old, None, None)
    assert change.message == "the model is no longer cast to fp16"


def test_explain_keep_fp32_in_the_cast():
    """TensorRT 11: keep_fp32 changes the build component and the cast model; plan says what
    the cast now keeps."""
    from trtops.prepare.options import KeepLists, prepare_component

    build = {"precision": "fp16"}
    old = {"schema": 1, "model_digest": "a" * 64, "build": build, "prepare": prepare_component(None, "fp16")}
    kept = dict(old, build=dict(build, keep_fp32=["overflow", "scale_down"]),
                prepare=prepare_component(None, "fp16", KeepLists(("overflow", "scale_down"))))
    messages = [c.message for c in explain_changes(old, kept, None, None)]
    assert "the model is cast to fp16 keeping 2 nodes in fp32 (overflow, scale_down)" in messages
    messages = [c.message for c in explain_changes(kept, old, None, None)]
    assert "the model cast to fp16 no longer keeps 2 nodes in fp32 (overflow, scale_down)" in messages
    first = dict(kept)
    del first["prepare"]
    messages = [c.message for c in explain_changes(first, kept, None, None)]
    assert ("the model is cast to fp16 in the preparation stage (strongly typed build), keeping 2 nodes in fp32 "
            "(overflow, scale_down)") in messages
