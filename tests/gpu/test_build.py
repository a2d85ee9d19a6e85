"""Real TensorRT builds of small models (each a few seconds), run once and compared with
ONNX Runtime. Written for the lab (TensorRT 8.6.0, H100/H200) and valid on 10.x / 11.x:
where generations differ, the test feature-detects and checks the right outcome."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from gpu_loader import run_engine
from onnx import TensorProto, helper

from trtops.errors import BuildError
from trtops.spec import CalibrationSpec, make_engine_spec, profile
from trtops.trt.builder import BuildRequest, build_engine
from trtops.trt.trt_compat import has_precision_flags

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_tensorrt_and_gpu(trt):
    """Every test here builds real engines."""


BATCH = profile(input=([1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]))


def build(tmp_path, model, precision="fp32", *, name="w", timing_cache=None, calibration_cache=None,
          strongly_typed=False, lines=None, policy="shared", cast=True, **spec_kw):
    """Build as apply does: where this TensorRT builds the precision from a cast model
    (strongly typed fp16/bf16: every one on 11.x), the preparation stage casts it first
    (``cast=False``: skip that, the builder must refuse)."""
    import tensorrt

    from trtops.capabilities import model_cast
    from trtops.prepare.options import keep_lists
    from trtops.prepare.runner import prepare_file

    spec = make_engine_spec(model, precision, timing_cache=policy, strongly_typed=strongly_typed, **spec_kw)
    wanted = model_cast(spec.build, tensorrt.__version__) if cast else None
    parse = model
    if wanted:
        parse, _ = prepare_file(model, None, tmp_path / f"{name}-cast", cast=wanted, keep=keep_lists(spec.build))
    request = BuildRequest(
        spec=spec,
        model_path=parse,
        workdir=tmp_path / name,
        timing_cache=timing_cache,
        calibration_cache=calibration_cache,
        log=lines.append if lines is not None else None,
        model_cast=wanted,
    )
    return build_engine(request)


def images(n, seed=0, h=32, w=32):
    return np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32)


def assert_close(reference, got, atol, rtol=0.0):
    assert got.shape == reference.shape
    np.testing.assert_allclose(got, reference, atol=atol, rtol=rtol)


def assert_roughly(reference, got, rel=0.1):
    """For int8: the median error is small next to the output's range."""
    assert got.shape == reference.shape
    scale = max(float(np.abs(reference).max()), 1e-3)
    assert float(np.median(np.abs(got - reference))) <= rel * scale
    assert np.corrcoef(got.ravel(), reference.ravel())[0, 1] > 0.9


def test_fp32_dynamic_batch(tmp_path, trt, models, ort_run):
    lines = []
    result = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], lines=lines)
    assert result.engine_path.is_file() and result.engine_path.stat().st_size == result.engine_bytes
    assert result.tensorrt_version == trt.__version__
    assert result.build_seconds > 0
    assert result.device_memory is None or result.device_memory >= 0
    assert result.timing_cache and isinstance(result.timing_cache, bytes)
    assert result.calibration_cache is None
    assert "engine built" in result.log_text and any("building" in line for line in lines)

    (inp,) = result.io.inputs
    (out,) = result.io.outputs
    assert (inp.name, inp.dtype, inp.shape) == ("input", "float32", (-1, 3, 32, 32))
    assert (out.name, out.dtype, out.shape) == ("logits", "float32", (-1, 10))
    assert len(result.io.profiles) == 1
    assert result.io.profiles[0].get("input") == ((1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32))
    if hasattr(trt.ICudaEngine, "create_engine_inspector"):
        assert result.layers is not None and "Layers" in result.layers

    feeds = {"input": images(3)}
    got = run_engine(result, feeds)["logits"]
    assert_close(ort_run(models["tiny_cnn"], feeds)["logits"], got, atol=1e-3, rtol=1e-3)


def test_fp16(tmp_path, models, ort_run):
    result = build(tmp_path, models["tiny_cnn"], "fp16", profiles=[BATCH])
    feeds = {"input": images(5, seed=1)}
    got = run_engine(result, feeds)["logits"]
    assert_close(ort_run(models["tiny_cnn"], feeds)["logits"], got, atol=5e-2, rtol=5e-2)


def test_fp16_dynamic_spatial_with_resize(tmp_path, models, ort_run):
    seg = profile(input=([1, 3, 16, 16], [1, 3, 64, 80], [2, 3, 128, 128]))
    result = build(tmp_path, models["tiny_seg"], "fp16", profiles=[seg])
    feeds = {"input": images(1, seed=2, h=45, w=77)}
    got = run_engine(result, feeds)["out"]
    assert_close(ort_run(models["tiny_seg"], feeds)["out"], got, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("algorithm", ["entropy", "minmax"])
def test_int8_calibrated(tmp_path, trt, models, calibration_npz, ort_run, algorithm):
    if not has_precision_flags(trt):
        pytest.skip("TensorRT >= 11 has no implicit INT8 calibration (see test_int8_calibration_refused_on_11)")
    calibration = CalibrationSpec(data=str(calibration_npz), batch_size=8, algorithm=algorithm, max_batches=4)
    result = build(tmp_path, models["tiny_cnn"], "int8", profiles=[BATCH], calibration=calibration)
    assert result.calibration_cache and isinstance(result.calibration_cache, bytes)
    assert "calibration batch 1/4" in result.log_text
    feeds = {"input": images(4, seed=3)}
    got = run_engine(result, feeds)["logits"]
    assert_roughly(ort_run(models["tiny_cnn"], feeds)["logits"], got)

    # The stored cache spares the calibration on the next build.
    again = build(tmp_path, models["tiny_cnn"], "int8", name="again", profiles=[BATCH], calibration=calibration,
                  calibration_cache=result.calibration_cache)
    assert "calibration batch" not in again.log_text
    assert again.calibration_cache


def test_int8_calibration_refused_on_11(tmp_path, trt, models, calibration_npz):
    if has_precision_flags(trt):
        pytest.skip("this TensorRT still calibrates")
    calibration = CalibrationSpec(data=str(calibration_npz), batch_size=8, algorithm="entropy", max_batches=2)
    with pytest.raises(BuildError, match="ModelOpt"):
        build(tmp_path, models["tiny_cnn"], "int8", profiles=[BATCH], calibration=calibration)


def test_int8_without_data_or_qdq_is_refused(tmp_path, models):
    with pytest.raises(BuildError, match="calibration data|ModelOpt"):
        build(tmp_path, models["tiny_cnn"], "int8", profiles=[BATCH])


def test_int8_qdq_model(tmp_path, models, ort_run):
    result = build(tmp_path, models["qdq"], "int8", profiles=[BATCH])
    assert result.calibration_cache is None
    feeds = {"input": images(2, seed=4)}
    got = run_engine(result, feeds)["logits"]
    assert_roughly(ort_run(models["qdq"], feeds)["logits"], got)


def test_two_profiles(tmp_path, models, ort_run):
    small = profile(image=([1, 3, 16, 16], [1, 3, 32, 32], [2, 3, 48, 48]), scale=([1, 8], [1, 8], [2, 8]))
    large = profile(image=([4, 3, 64, 64], [8, 3, 96, 96], [8, 3, 128, 128]), scale=([4, 8], [8, 8], [8, 8]))
    result = build(tmp_path, models["two_inputs"], profiles=[small, large])
    assert len(result.io.profiles) == 2
    assert result.io.profiles[1].get("image") == ((4, 3, 64, 64), (8, 3, 96, 96), (8, 3, 128, 128))
    assert result.io.profiles[0].get("scale") == ((1, 8), (1, 8), (2, 8))
    rng = np.random.default_rng(5)
    feeds = {"image": rng.random((5, 3, 70, 66), dtype=np.float32), "scale": rng.random((5, 8), dtype=np.float32)}
    got = run_engine(result, feeds, profile=1)
    expected = ort_run(models["two_inputs"], feeds)
    for name in ("embedding", "mask"):
        assert_close(expected[name], got[name], atol=1e-3, rtol=1e-3)


def test_external_data_model(tmp_path, models, ort_run):
    mlp = profile(input=([1, 64], [4, 64], [16, 64]))
    result = build(tmp_path, models["external"], profiles=[mlp])
    feeds = {"input": np.random.default_rng(6).random((7, 64), dtype=np.float32)}
    assert_close(ort_run(models["external"], feeds)["output"], run_engine(result, feeds)["output"],
                 atol=1e-3, rtol=1e-3)


def test_ampere_plus_hardware_compatible(tmp_path, models, ort_run):
    result = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], hardware_compatibility="ampere_plus")
    feeds = {"input": images(2, seed=7)}
    assert_close(ort_run(models["tiny_cnn"], feeds)["logits"], run_engine(result, feeds)["logits"],
                 atol=1e-3, rtol=1e-3)


def test_version_compatible_as_the_capability_table_predicts(tmp_path, trt_version, models):
    from trtops.capabilities import lean_runtime_expected

    if not lean_runtime_expected(trt_version):
        # The 8.6.0 pip wheel has no lean runtime ("Invalid Engine"): a clear error, not a crash.
        with pytest.raises(BuildError) as info:
            build(tmp_path, models["tiny_cnn"], profiles=[BATCH], version_compatible=True)
        assert "failed to build" in info.value.message
        assert "lean runtime" in (info.value.hint or "")
        return
    result = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], version_compatible=True)
    feeds = {"input": images(2, seed=8)}
    out = run_engine(result, feeds, version_compatible=True)["logits"]
    assert out.shape == (2, 10)


def test_timing_cache_round_trip(tmp_path, models):
    from trtops.trt.timing import merge_timing_caches

    first = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], name="first")
    assert first.timing_cache
    assert "timing cache: starting empty" in first.log_text
    second = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], name="second", timing_cache=first.timing_cache)
    assert "timing cache loaded" in second.log_text
    assert second.timing_cache
    merged = merge_timing_caches(first.timing_cache, second.timing_cache)
    assert isinstance(merged, bytes) and merged
    assert merge_timing_caches(None, second.timing_cache) == second.timing_cache



def test_timing_cache_off(tmp_path, models):
    result = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], policy="off", timing_cache=b"ignored")
    assert result.timing_cache is None
    assert "timing cache loaded" not in result.log_text
    # TensorRT itself says it used a throw-away cache (seen on 8.6.0 in the lab)
    assert "Global timing cache in use" not in result.log_text


def test_build_options(tmp_path, models):
    result = build(
        tmp_path,
        models["tiny_cnn"],
        profiles=[BATCH],
        workspace=64 << 20,
        builder_optimization_level=1,
        max_aux_streams=0,
        tactic_sources=["edge_mask_convolutions", "jit_convolutions"],
    )
    assert "optimization level 1" in result.log_text and "workspace 67108864 B" in result.log_text


def test_parser_error_names_the_node(tmp_path):
    path = tmp_path / "custom.onnx"
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu0"),
            helper.make_node("TotallyUnknownOp", ["a"], ["y"], name="mystery_node", domain="trtops.test"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("trtops.test", 1)])
    model.ir_version = 7
    onnx.save(model, path)
    with pytest.raises(BuildError) as info:
        build(tmp_path, path)
    assert "mystery_node" in info.value.message and "TotallyUnknownOp" in info.value.message


def test_unreadable_model(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xfe")
    with pytest.raises(BuildError, match="not a readable ONNX model|could not parse"):
        build(tmp_path, path)


def test_profile_mismatch_is_a_build_error(tmp_path, models):
    wrong = profile(input=([1, 3, 64, 64], [1, 3, 64, 64], [1, 3, 64, 64]))
    with pytest.raises(BuildError, match="axis 2 is fixed to 32"):
        build(tmp_path, models["tiny_cnn"], profiles=[wrong])
    with pytest.raises(BuildError, match="dynamic inputs"):
        build(tmp_path, models["tiny_cnn"])


def test_bf16_by_generation(tmp_path, trt, trt_version, models, ort_run):
    if trt_version < (9,):
        with pytest.raises(BuildError, match="bf16 needs TensorRT >= 9.0"):
            build(tmp_path, models["tiny_cnn"], "bf16", profiles=[BATCH])
        return
    result = build(tmp_path, models["tiny_cnn"], "bf16", profiles=[BATCH])
    feeds = {"input": images(2, seed=9)}
    got = run_engine(result, feeds)["logits"]
    assert_close(ort_run(models["tiny_cnn"], feeds)["logits"], got, atol=1e-1, rtol=1e-1)


def test_strongly_typed_fp16(tmp_path, trt, models, ort_run):
    from trtops.trt.trt_compat import strongly_typed_mode

    if strongly_typed_mode(trt) == "no":
        with pytest.raises(BuildError, match="strongly typed"):
            build(tmp_path, models["tiny_cnn"], "fp16", profiles=[BATCH], strongly_typed=True)
        return
    with pytest.raises(BuildError, match="was not cast; build through `trtops apply`"):
        build(tmp_path, models["tiny_cnn"], "fp16", profiles=[BATCH], strongly_typed=True, cast=False,
              name="uncast")
    result = build(tmp_path, models["tiny_cnn"], "fp16", profiles=[BATCH], strongly_typed=True)
    assert "parsing the model cast to fp16 by the preparation stage" in result.log_text
    (inp,) = result.io.inputs
    assert inp.dtype == "float32"  # the prepared model keeps its I/O types
    feeds = {"input": images(3, seed=10)}
    got = run_engine(result, feeds)["logits"]
    assert_close(ort_run(models["tiny_cnn"], feeds)["logits"], got, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("name", ["tiny_cnn", "tiny_seg"])
def test_the_preparation_stages_cast_model_parses_and_agrees(tmp_path, trt, models, ort_run, name):
    """What TensorRT 11 parses for fp16 (the preparation stage's cast: fp16 weights, Casts at
    the float32 I/O, Resize scales and shape arithmetic kept), parsed and built by whatever
    TensorRT this is; on 8.6 as a plain fp32/weakly typed network from the cast file."""
    from trtops.prepare.runner import prepare_file

    seg = profile(input=([1, 3, 16, 16], [1, 3, 64, 80], [2, 3, 128, 128]))
    profiles, output = ([BATCH], "logits") if name == "tiny_cnn" else ([seg], "out")
    cast, report = prepare_file(models[name], None, tmp_path / "cast", cast="fp16")
    assert report.cast_initializers > 0
    result = build(tmp_path, cast, "fp32", profiles=profiles, cast=False)
    assert {t.dtype for t in result.io.inputs + result.io.outputs} == {"float32"}
    feeds = {"input": images(2, seed=11) if name == "tiny_cnn" else images(1, seed=12, h=45, w=77)}
    got = run_engine(result, feeds)[output]
    print(f"{name}: cast model built by TensorRT {trt.__version__}: {report.cast_line()}")
    assert_close(ort_run(models[name], feeds)[output], got, atol=5e-2, rtol=5e-2)


def test_a_cast_model_is_refused_where_this_tensorrt_builds_no_cast(tmp_path, trt, models):
    from trtops.capabilities import model_cast
    from trtops.spec import make_engine_spec

    spec = make_engine_spec(models["tiny_cnn"], "fp16", profiles=[BATCH])
    if model_cast(spec.build, trt.__version__):
        pytest.skip(f"TensorRT {trt.__version__} builds every fp16 network from a cast model")
    request = BuildRequest(spec=spec, model_path=models["tiny_cnn"], workdir=tmp_path / "w", model_cast="fp16")
    with pytest.raises(BuildError, match="does not make here"):
        build_engine(request)


def test_corrupt_timing_cache_does_not_fail_the_build(tmp_path, models):
    # Kept last in the file: it feeds TensorRT garbage on purpose. TensorRT either rejects it
    # (trtops warns and starts empty) or reads nothing useful from it; the build succeeds.
    result = build(tmp_path, models["tiny_cnn"], profiles=[BATCH], timing_cache=b"not a cache" * 10)
    assert result.engine_bytes > 0 and result.timing_cache


def test_detected_features_give_the_planners_verdicts(trt):
    """The builder's attribute lookups on the real module agree with what the planner
    knows of this release, for every build the capability table judges (no build needed)."""
    from helpers import verdict_disagreements

    from trtops.trt.trt_compat import detect_features, version_text

    detected = detect_features(trt)
    differ = verdict_disagreements(detected, version_text(trt))
    print(f"TensorRT {version_text(trt)}: {len(differ)} disagreements; detected {detected}")
    assert differ == []
