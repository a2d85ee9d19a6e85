"""Fingerprints (trtops.keys.*): canonical JSON, streamed digests and their memo, external data, keys."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import MISSING, fields, replace
from pathlib import Path

import numpy as np
import pytest
from helpers import make_conv_model

from trtops.errors import InputError
from trtops.keys import engine_key as engine_key_module
from trtops.keys import memo as memo_module
from trtops.keys import model_digest as md
from trtops.keys.canonical import canonical_json
from trtops.keys.engine_key import (
    BUILD_KEY_DEFAULTS,
    build_component,
    engine_key,
    gpu_signature,
    tensorrt_component,
)
from trtops.keys.memo import DigestMemo, hash_files, sha256_file
from trtops.keys.model_digest import (
    ModelDigest,
    data_digest,
    declared_model_digest,
    digest_models,
)
from trtops.onnx_facts import external_data_locations
from trtops.spec import (
    BuildConfig,
    CalibrationSpec,
    EngineSpec,
    InputRange,
    ModelSource,
    TargetSpec,
    make_engine_spec,
)


def settle(*paths: Path) -> None:
    """Date files 10 s back, as files at rest are (fresh files are 'racy' for the memo)."""
    past = time.time_ns() - 10_000_000_000
    for path in paths:
        os.utime(path, ns=(past, past))


def make_spec(build: BuildConfig | None = None, **changes) -> EngineSpec:
    """An fp16 spec for an H100 target; ``build`` replaces its BuildConfig whole."""
    spec = make_engine_spec(
        "/m/models/conv.onnx", "fp16",
        profiles=[{"input": ((1, 3, 32, 32), (8, 3, 64, 64), (16, 3, 128, 128))}],
        workspace=64 << 20,
        target=TargetSpec("h100", "NVIDIA H100*", None, ">=10", "none", False),
        name="conv", manifest="/m/demo.yaml", manifest_name="demo",
        loaders=("python",),
    )
    if build is not None:
        spec = replace(spec, build=build, precision=build.precision)
    return replace(spec, **changes)


MODEL = ModelDigest.of("a" * 64, [("conv.onnx.data", "b" * 64)], 100)


def key_of(spec: EngineSpec, model: ModelDigest = MODEL, trt: str = "10.13.3.9",
           gpu: str = "cc9.0-nvidia-h100-80gb-hbm3", **kwargs) -> str:
    return engine_key(spec, model, tensorrt_version=trt, gpu=gpu, **kwargs).key


# --------------------------------------------------------------------------- canonical JSON


def test_canonical_json_ignores_dict_order():
    a = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": "é"}
    b = {"c": "é", "a": {"x": None, "y": (1, 2)}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == '{"a":{"x":null,"y":[1,2]},"b":1,"c":"é"}'.encode()


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


# --------------------------------------------------------------------------- hashing and memo


def test_sha256_file_streams_across_chunks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_files_parallel_matches_serial(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(50_000 * (i + 1)))
        paths.append(str(path))
    parallel = hash_files(paths, None, workers=4)
    assert parallel == {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}
    assert hash_files(paths, None, workers=1) == parallel


def test_memo_hit_skips_reading(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"w" * 1000)
    settle(path)
    memo = DigestMemo(tmp_path / "digests.json")
    first = hash_files([str(path)], memo)
    memo.save()

    def no_reading(_path):
        raise AssertionError("the memo should have answered")

    monkeypatch.setattr(memo_module, "sha256_file", no_reading)
    reloaded = DigestMemo(tmp_path / "digests.json")  # from disk
    assert hash_files([str(path)], reloaded) == first
    assert not reloaded.dirty


@pytest.mark.parametrize("change", ["content", "mtime", "inode"])
def test_memo_misses_when_the_file_changes(tmp_path, change):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    settle(path)
    memo = DigestMemo(None)
    before = hash_files([str(path)], memo)[str(path)]
    st = path.stat()
    if change == "content":  # same size, same mtime: only the content differs... and the memo
        path.write_bytes(b"b" * 1000)  # sees it because the mtime moved
    elif change == "mtime":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    else:  # replaced by rename: new inode, same size and mtime
        other = tmp_path / "new.bin"
        other.write_bytes(b"c" * 1000)
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(other, path)
    after = hash_files([str(path)], memo)[str(path)]
    assert after == hashlib.sha256(path.read_bytes()).hexdigest()
    if change != "mtime":
        assert after != before


def test_racy_files_are_hashed_again(tmp_path, monkeypatch):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"x" * 100)  # modified just now: mtime within RACY_NS of the hash
    memo = DigestMemo(None)
    hash_files([str(path)], memo)
    calls = []
    real = memo_module.sha256_file
    monkeypatch.setattr(memo_module, "sha256_file", lambda p: calls.append(p) or real(p))
    hash_files([str(path)], memo)
    assert calls == [str(path)]


def test_memo_file_damaged_is_ignored(tmp_path):
    memo_path = tmp_path / "digests.json"
    memo_path.write_text("{broken")
    path = tmp_path / "f"
    path.write_bytes(b"data")
    memo = DigestMemo(memo_path)
    assert hash_files([str(path)], memo)[str(path)] == hashlib.sha256(b"data").hexdigest()
    memo.save()
    assert json.loads(memo_path.read_text())["version"] == 1


def test_memo_save_merges_other_writers(tmp_path):
    memo_path = tmp_path / "digests.json"
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    settle(a, b)
    one, two = DigestMemo(memo_path), DigestMemo(memo_path)
    hash_files([str(a)], one)
    hash_files([str(b)], two)
    one.save()
    two.save()
    assert set(DigestMemo(memo_path).entries) == {str(a), str(b)}


# --------------------------------------------------------------------------- ONNX external data


def _onnx_view(path: Path) -> list[str]:
    """External-data locations as the onnx package sees them."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    found = set()
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            found.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(found)


def _model_with_subgraph(path: Path, *, per_tensor_files: bool) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "weight")
    then_const = helper.make_node(
        "Constant", [], ["then_out"],
        value=numpy_helper.from_array(rng.standard_normal((4, 16)).astype(np.float32), "then_value"))
    else_const = helper.make_node(
        "Constant", [], ["else_out"],
        value=numpy_helper.from_array(rng.standard_normal((4, 16)).astype(np.float32), "else_value"))
    then_graph = helper.make_graph([then_const], "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [4, 16])])
    else_graph = helper.make_graph([else_const], "else", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [4, 16])])
    nodes = [
        helper.make_node("MatMul", ["x", "weight"], ["y"]),
        helper.make_node("If", ["cond"], ["branch"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Add", ["y", "branch"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4, 16])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    convert_model_to_external_data(model, all_tensors_to_one_file=not per_tensor_files,
                                   location="shared.bin", size_threshold=0, convert_attribute=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def test_no_external_data(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx")
    assert external_data_locations(path) == [] == _onnx_view(path)


def test_one_external_file(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True)
    assert external_data_locations(path) == ["conv.onnx.data"] == _onnx_view(path)


@pytest.mark.parametrize("per_tensor_files", [False, True])
def test_external_data_in_subgraph_attributes(tmp_path, per_tensor_files):
    path = _model_with_subgraph(tmp_path / "m" / "if.onnx", per_tensor_files=per_tensor_files)
    found = external_data_locations(path)
    assert found == _onnx_view(path)
    assert len(found) == (3 if per_tensor_files else 1)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff\xff this is not protobuf")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        external_data_locations(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InputError):
        external_data_locations(empty)


# --------------------------------------------------------------------------- model digests


def test_model_digest_covers_external_weights(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True, seed=1)
    data = tmp_path / "conv.onnx.data"
    first = digest_models([str(path)])[str(path)]
    assert first.onnx_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.external_data == (("conv.onnx.data", hashlib.sha256(data.read_bytes()).hexdigest()),)
    assert first.size == path.stat().st_size + data.stat().st_size
    # New weights of the same shape: the ONNX file is unchanged, the digest is not.
    data.write_bytes(os.urandom(data.stat().st_size))
    second = digest_models([str(path)])[str(path)]
    assert second.onnx_sha256 == first.onnx_sha256
    assert second.digest != first.digest


def test_model_digest_is_location_independent(tmp_path):
    a = make_conv_model(tmp_path / "a" / "conv.onnx", external_data=True)
    b = tmp_path / "b" / "conv.onnx"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    (b.parent / "conv.onnx.data").write_bytes((a.parent / "conv.onnx.data").read_bytes())
    digests = digest_models([str(a), str(b)])
    assert digests[str(a)].digest == digests[str(b)].digest


def test_missing_model_and_external_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        digest_models([str(tmp_path / "nope.onnx")])
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True)
    (tmp_path / "conv.onnx.data").unlink()
    with pytest.raises(InputError) as info:
        digest_models([str(path)])
    assert "conv.onnx.data" in info.value.message


def test_warm_model_digest_only_stats(tmp_path, monkeypatch):
    path = make_conv_model(tmp_path / "conv.onnx", external_data=True)
    settle(path, tmp_path / "conv.onnx.data")
    memo = DigestMemo(tmp_path / "digests.json")
    first = digest_models([str(path)], memo)
    memo.save()
    monkeypatch.setattr(memo_module, "sha256_file", lambda p: pytest.fail(f"read {p}"))
    monkeypatch.setattr(md, "external_data_locations", lambda p: pytest.fail(f"scanned {p}"))
    assert digest_models([str(path)], DigestMemo(tmp_path / "digests.json")) == first


def test_declared_digest_equals_hashed_single_file(tmp_path):
    path = make_conv_model(tmp_path / "conv.onnx")
    hashed = digest_models([str(path)])[str(path)]
    declared = declared_model_digest(hashlib.sha256(path.read_bytes()).hexdigest().upper())
    assert declared.digest == hashed.digest


def test_model_digest_details_round_trip():
    assert ModelDigest.from_details(MODEL.details()) == MODEL


def test_data_digest_of_file_and_directory(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "input.npy").write_bytes(b"one")
    (calib / ".DS_Store").write_bytes(b"ignored")
    first = data_digest(str(calib))
    (calib / "input.npy").write_bytes(b"two")
    assert data_digest(str(calib)) != first
    single = tmp_path / "calib.npz"
    single.write_bytes(b"npz")
    assert data_digest(str(single)) == hashlib.sha256(b"npz").hexdigest()
    with pytest.raises(InputError):
        data_digest(str(tmp_path / "missing.npz"))


# --------------------------------------------------------------------------- key components


def test_gpu_signatures():
    assert gpu_signature("NVIDIA H100 80GB HBM3", "9.0") == "cc9.0-nvidia-h100-80gb-hbm3"
    assert gpu_signature("NVIDIA A100-SXM4-80GB", "8.0") == "cc8.0-nvidia-a100-sxm4-80gb"
    assert gpu_signature("NVIDIA L4", "8.9", "ampere_plus") == "ampere_plus"
    assert gpu_signature("NVIDIA L4", "8.9", "same_compute_capability") == "cc8.9"


def test_tensorrt_component():
    assert tensorrt_component("10.13.3.9") == "10.13.3.9"
    assert tensorrt_component("10.13.3.9", version_compatible=True) == "10"
    assert tensorrt_component("8.6.0", version_compatible=True) == "8"


def test_key_is_stable_under_input_order_and_defaults():
    spec = make_spec()
    ranges = spec.build.profiles[0]
    two = (InputRange("b", (1,), (2,), (3,)), InputRange("a", (1, 2), (1, 2), (1, 2)))
    ordered = replace(spec.build, profiles=(two,), tactic_sources=("cudnn", "cublas"))
    reordered = replace(spec.build, profiles=(tuple(reversed(two)),), tactic_sources=("cublas", "cudnn"))
    assert key_of(make_spec(ordered)) == key_of(make_spec(reordered))
    # Defaults, spelled out or not, are not part of the key.
    component = build_component(spec.build)
    assert component == {"precision": "fp16", "profiles": [[{"name": "input", "min": [1, 3, 32, 32],
                         "opt": [8, 3, 64, 64], "max": [16, 3, 128, 128]}]], "workspace": 64 << 20}
    assert ranges  # the spec has one profile


def test_key_ignores_what_does_not_change_the_engine():
    spec = make_spec()
    base = key_of(spec)
    assert key_of(replace(spec, loaders=("python", "triton"), timing_cache="off", line=42,
                          manifest="/elsewhere/demo.yaml", model="renamed",
                          source=ModelSource(path="/other/place.onnx"))) == base


CALIBRATION = CalibrationSpec(data="/m/calib.npz", batch_size=8, algorithm="entropy", max_batches=None)


# How to change each BuildConfig field away from make_spec()'s value. The test below walks
# the dataclass's fields, so a new field fails until it is listed here.
BUILD_CHANGES = {
    "workspace": lambda b: replace(b, workspace=128 << 20),
    "builder_optimization_level": lambda b: replace(b, builder_optimization_level=5),
    "profiles": lambda b: replace(b, profiles=((InputRange("input", (1, 3, 32, 32), (8, 3, 64, 64), (32, 3, 128, 128)),),)),
    "tactic_sources": lambda b: replace(b, tactic_sources=("cublas",)),
    "max_aux_streams": lambda b: replace(b, max_aux_streams=2),
    "hardware_compatibility": lambda b: replace(b, hardware_compatibility="ampere_plus"),
    "version_compatible": lambda b: replace(b, version_compatible=True),
    "precision": lambda b: replace(b, precision="fp32"),
    "calibration": lambda b: replace(b, precision="int8", calibration=CALIBRATION),
    "strongly_typed": lambda b: replace(b, strongly_typed=True),
    "keep_fp32": lambda b: replace(b, keep_fp32=("conv1",)),
    "keep_fp32_outputs": lambda b: replace(b, keep_fp32_outputs=("output",)),
}
# Fields whose unset value is None (always left out of the key) or that have no default.
UNSET_IS_NONE = {"workspace", "tactic_sources", "max_aux_streams", "calibration"}
REQUIRED = {"precision", "profiles"}


@pytest.mark.parametrize("name", [f.name for f in fields(BuildConfig)])
def test_every_build_option_changes_the_key(name):
    assert name in BUILD_CHANGES, (
        f"BuildConfig.{name} is new: add how to change it to BUILD_CHANGES, and register its "
        "default in BUILD_KEY_DEFAULTS so that existing keys do not change"
    )
    spec = make_spec()
    changed = BUILD_CHANGES[name](spec.build)
    kwargs = {"calibration_digest": "c" * 64} if changed.calibration else {}
    assert key_of(make_spec(changed), **kwargs) != key_of(spec)


@pytest.mark.parametrize("name", [f.name for f in fields(BuildConfig)])
def test_every_build_option_default_is_registered(name):
    """A new option with a registered default keeps every existing key."""
    assert name in BUILD_KEY_DEFAULTS or name in UNSET_IS_NONE or name in REQUIRED, (
        f"register the default of BuildConfig.{name} in BUILD_KEY_DEFAULTS"
    )
    default = next(f.default for f in fields(BuildConfig) if f.name == name)
    if default is not MISSING:
        assert BUILD_KEY_DEFAULTS.get(name) == default
        assert name not in build_component(replace(make_spec().build, **{name: default}))


def test_other_components_change_the_key():
    spec = make_spec()
    base = key_of(spec)
    assert key_of(spec, model=ModelDigest.of("a" * 64, [("conv.onnx.data", "c" * 64)])) != base
    assert key_of(spec, trt="10.14.1.48") != base
    assert key_of(spec, gpu="cc8.9-nvidia-l4") != base
    assert key_of(spec, plugin_digests=["d" * 64]) != base
    int8 = make_spec(replace(spec.build, precision="int8", calibration=CALIBRATION))
    assert key_of(int8, calibration_digest="1" * 64) != key_of(int8, calibration_digest="2" * 64)
    with pytest.raises(ValueError):
        key_of(int8)


def test_version_compatible_key_spans_minor_versions():
    spec = make_spec(replace(make_spec().build, version_compatible=True))
    assert key_of(spec, trt="10.13.3.9") == key_of(spec, trt="10.14.1.48")
    assert key_of(spec, trt="10.13.3.9") != key_of(spec, trt="11.0.0.1")


def test_key_components_are_kept():
    key = engine_key(make_spec(), MODEL, tensorrt_version="10.13.3.9", gpu="cc9.0-nvidia-h100-80gb-hbm3")
    assert set(key.components) == {"schema", "model_digest", "build", "tensorrt", "gpu", "plugins"}
    assert key.components["model_digest"] == MODEL.digest
    assert key.model == MODEL.details()
    assert engine_key_module.key_of(key.components) == key.key


# --------------------------------------------------------------------------- preparation


def test_no_preparation_keeps_the_key_and_its_components():
    from trtops.spec import PrepareSpec

    spec = make_spec()
    components = engine_key(spec, MODEL, tensorrt_version="10.13.3.9", gpu="g").components
    assert "prepare" not in components
    # A prepare: that turns every step off is no preparation either.
    noop = replace(spec, prepare=PrepareSpec(False, False, False))
    assert key_of(noop) == key_of(spec)


def test_preparation_enters_the_key_and_the_plan_says_so():
    from trtops.plan.explain import explain_changes
    from trtops.spec import BoundInput, PrepareSpec

    spec = make_spec()
    prepared = replace(spec, prepare=PrepareSpec())
    bound = replace(spec, prepare=PrepareSpec(constants=(BoundInput("sr", (), (16000,)),)))
    assert len({key_of(spec), key_of(prepared), key_of(bound)}) == 3
    old = engine_key(spec, MODEL, tensorrt_version="10.13.3.9", gpu="g").components
    new = engine_key(prepared, MODEL, tensorrt_version="10.13.3.9", gpu="g").components
    assert [c.message for c in explain_changes(old, new)] == ["model preparation turned on"]
    newer = dict(new, prepare=dict(new["prepare"], tools={"onnx": "9.9", "onnx-graphsurgeon": "0.6.1"}))
    (change,) = explain_changes(new, newer)
    assert change.component == "prepare" and change.message.startswith("preparation tools changed: onnx ")
