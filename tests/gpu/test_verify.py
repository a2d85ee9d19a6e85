"""The accuracy gate on real TensorRT engines (GPU lab).

Engines are built in a fixture directly with TensorRT (the builder module is exercised by
its own tests), from the small real ONNX models of tests/helpers.py, and verified with
:func:`trtops.gate.verify_engine` against ONNX Runtime with trtops' default tolerances:

- fp32 / fp16 / int8 (explicit Q/DQ, and calibrated) engines pass at every profile's
  min/opt/max shape, including a second optimization profile;
- a too-tight tolerance and an engine built from different weights are rejected.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import make_conv_model, make_qdq_model

from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.gate import verify_engine
from trtops.spec import AccuracySpec, ToleranceSpec

pytestmark = pytest.mark.gpu

trt = pytest.importorskip("tensorrt")
pytest.importorskip("polygraphy")
pytest.importorskip("onnxruntime")

try:  # the manifest's defaults are what users get; fall back only while it is in flux
    from trtops.manifest.expand import DEFAULT_TOLERANCES
except ImportError:  # pragma: no cover
    DEFAULT_TOLERANCES = {
        "fp32": ToleranceSpec(atol=1e-4, rtol=1e-3, stat="elemwise"),
        "fp16": ToleranceSpec(atol=1e-2, rtol=1e-2, stat="median"),
        "int8": ToleranceSpec(atol=1e-1, rtol=1e-1, stat="median"),
    }

TRT_MAJOR = int(trt.__version__.split(".")[0])
DYNAMIC_PROFILES = (
    # (min, opt, max) of input [N, 3, H, W]
    ((1, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32)),
    ((4, 3, 16, 16), (4, 3, 32, 24), (8, 3, 48, 64)),
)


@pytest.fixture(scope="module")
def logger():
    log = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(log)
    except Exception as exc:  # noqa: BLE001 - no GPU / driver
        pytest.skip(f"TensorRT cannot create a builder here: {exc}")
    if builder is None:
        pytest.skip("TensorRT cannot create a builder here (no GPU?)")
    return log


def build_engine(logger, onnx_path: Path, out: Path, precision: str,
                 profiles=DYNAMIC_PROFILES, calibration=None, force_fp16=False) -> Path:
    """Build and serialize an engine; returns its path."""
    builder = trt.Builder(logger)
    flags = 0
    if TRT_MAJOR < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise AssertionError(f"ONNX parse failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32; tf32 is its own precision
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if calibration is not None:
            config.int8_calibrator = calibration
    if force_fp16:
        # Without this TensorRT may keep tiny layers in fp32, and "fp16" would not differ.
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        for index in range(network.num_layers):
            network.get_layer(index).precision = trt.float16
    for lo, opt, hi in profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape("input", lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None, f"TensorRT could not build {onnx_path.name} ({precision})"
    out.write_bytes(bytes(serialized))
    return out


def conv_io(profiles=DYNAMIC_PROFILES, static_shape=None) -> EngineIO:
    if static_shape is not None:
        n, _c, h, w = static_shape
        return EngineIO(
            (TensorIO("input", "input", "float32", tuple(static_shape)),
             TensorIO("output", "output", "float32", (n, 4, h, w))),
            (),
        )
    return EngineIO(
        (TensorIO("input", "input", "float32", (-1, 3, -1, -1)),
         TensorIO("output", "output", "float32", (-1, 4, -1, -1))),
        tuple(ProfileShapes((("input", lo, opt, hi),)) for lo, opt, hi in profiles),
    )


def accuracy(precision: str, tolerance: ToleranceSpec | None = None) -> AccuracySpec:
    return AccuracySpec(
        enabled=True, reference="onnxruntime",
        tolerance=tolerance or DEFAULT_TOLERANCES[precision],
        seed=1, ranges=(), data=None, iterations=1,
    )


def assert_all_shapes_checked(report, profiles=DYNAMIC_PROFILES):
    expected = [(f"profile{i}/{point}", i, shape)
                for i, points in enumerate(profiles)
                for point, shape in zip(("min", "opt", "max"), points, strict=False)]
    got = [(c.label, c.profile, c.shapes["input"]) for c in report.cases]
    assert got == expected
    for case in report.cases:
        assert [o.name for o in case.outputs] == ["output"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify_models")
    return {
        "conv": make_conv_model(root / "conv.onnx", seed=0),
        "conv_other_weights": make_conv_model(root / "conv_other.onnx", seed=1),
        "qdq": make_qdq_model(root / "qdq.onnx", seed=0),
        "conv_static": make_conv_model(root / "conv_static.onnx", input_shape=(2, 3, 16, 16), seed=0),
    }


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_passes_with_default_tolerances(logger, models, tmp_path, precision):
    engine = build_engine(logger, models["conv"], tmp_path / "engine.plan", precision)
    report = verify_engine(engine, models["conv"], conv_io(), accuracy(precision), precision=precision)
    print("\n".join(report.summary_lines()))
    assert report.passed, report.summary_lines()
    assert_all_shapes_checked(report)
    assert report.candidate.startswith("tensorrt ")
    assert report.reference.startswith("onnxruntime ")
    data = json.loads(report.to_bytes())
    assert data["passed"] is True and data["precision"] == precision


def test_int8_qdq_engine_passes_with_default_tolerances(logger, models, tmp_path):
    engine = build_engine(logger, models["qdq"], tmp_path / "engine.plan", "int8")
    report = verify_engine(engine, models["qdq"], conv_io(), accuracy("int8"), precision="int8")
    print("\n".join(report.summary_lines()))
    assert report.passed, report.summary_lines()
    assert_all_shapes_checked(report)


def test_int8_calibrated_engine_passes_with_default_tolerances(logger, models, tmp_path):
    from polygraphy.backend.trt import Calibrator

    shape = (2, 3, 16, 16)
    rng = np.random.default_rng(0)
    batches = [{"input": rng.random(shape, dtype=np.float32)} for _ in range(8)]
    engine = build_engine(logger, models["conv_static"], tmp_path / "engine.plan", "int8",
                          profiles=(), calibration=Calibrator(batches))
    report = verify_engine(engine, models["conv_static"], conv_io(static_shape=shape),
                           accuracy("int8"), precision="int8")
    print("\n".join(report.summary_lines()))
    assert report.passed, report.summary_lines()
    assert [c.label for c in report.cases] == ["static"]


def test_too_tight_tolerance_is_rejected(logger, models, tmp_path):
    engine = build_engine(logger, models["conv"], tmp_path / "engine.plan", "fp16", force_fp16=True)
    tight = ToleranceSpec(atol=1e-7, rtol=1e-7, stat="max")
    report = verify_engine(engine, models["conv"], conv_io(), accuracy("fp16", tight), precision="fp16")
    lines = report.summary_lines()
    print("\n".join(lines))
    assert not report.passed
    assert lines[0].startswith("accuracy: FAILED (fp16 vs onnxruntime")
    assert "'output'" in lines[1] and "max abs" in lines[1]
    # the same engine passes its default tolerance: the failure is the tolerance's
    assert verify_engine(engine, models["conv"], conv_io(), accuracy("fp16"), precision="fp16").passed


def test_engine_built_from_different_weights_is_rejected(logger, models, tmp_path):
    engine = build_engine(logger, models["conv_other_weights"], tmp_path / "engine.plan", "fp32")
    report = verify_engine(engine, models["conv"], conv_io(), accuracy("fp32"), precision="fp32")
    print("\n".join(report.summary_lines()))
    assert not report.passed
    assert all(not o.passed for c in report.cases for o in c.outputs)
    worst = report.to_json()["worst"][0]
    assert worst["passed"] is False and worst["cosine"] < 0.999


def test_reverify_a_cached_engine_after_tightening_tolerances(logger, models, tmp_path):
    """`trtops verify`'s core: fetch the engine from the cache, re-check, rewrite accuracy.json."""
    pytest.importorskip("trtops.cache.local")
    from trtops.cache import open_store
    from trtops.gate import verify_cached_engine

    engine = build_engine(logger, models["conv"], tmp_path / "engine.plan", "fp16", force_fp16=True)
    store = open_store(tmp_path / "cache")
    key = "0f" * 32
    # As publish_entry writes it: the gate never hands TensorRT bytes whose sha256 differs.
    engine_sha256 = hashlib.sha256(Path(engine).read_bytes()).hexdigest()
    store.put_entry(key, {"engine.plan": engine},
                    {"key": key, "io": conv_io().to_json(), "engine_sha256": engine_sha256})

    report = verify_cached_engine(store, key, models["conv"], accuracy("fp16"), precision="fp16")
    assert report.passed
    assert json.loads(store.read_file(key, "accuracy.json"))["state"] == "accepted"

    tight = accuracy("fp16", ToleranceSpec(atol=1e-7, rtol=1e-7, stat="max"))
    report = verify_cached_engine(store, key, models["conv"], tight, precision="fp16")
    assert not report.passed
    stored = json.loads(store.read_file(key, "accuracy.json"))
    assert stored["state"] == "rejected" and stored["summary"].startswith("accuracy: FAILED")
    assert stored["tolerances"] == {"atol": 1e-7, "rtol": 1e-7, "stat": "max"}
