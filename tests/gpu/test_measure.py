"""trtops.trt.measure on real engines (built by trtops' builder from tiny onnx.helper
models): sane numbers, two measurements of one engine agree, CUDA graphs on a static
engine, two labelled cases of a dynamic one, a data-dependent output measured without a
graph, and shapes outside the profiles refused as user errors. ``-s`` prints every
measurement (the lab copies them into RESULTS.md). About 10-20 s, mostly the builds."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtops.errors import InputError
from trtops.ops.toolchain import TensorRTToolchain
from trtops.perf.stats import SUMMARY_KEYS
from trtops.spec import make_engine_spec, profile
from trtops.trt.builder import BuildRequest, build_engine
from trtops.trt.measure import measure_engine

pytestmark = pytest.mark.gpu

SETTINGS = {"warmup": 50, "iterations": 300, "repeats": 5, "cuda_graph": "auto"}
BATCH = profile(input=([1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]))


@pytest.fixture(autouse=True)
def _needs_tensorrt_and_gpu(trt):
    """Every test here builds and runs real engines."""


def _save(model: onnx.ModelProto, path):
    model.opset_import[0].version = 17
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def static_mlp(path):
    """``x`` [16, 512] -> three 512x512 MatMul+Relu -> ``y`` [16, 512]: fixed shapes, a
    few microseconds of GPU work."""
    rng = np.random.default_rng(3)
    nodes, inits, last = [], [], "x"
    for i in range(3):
        weight = numpy_helper.from_array((rng.standard_normal((512, 512)) / 32).astype(np.float32), f"w{i}")
        inits.append(weight)
        nodes.append(helper.make_node("MatMul", [last, f"w{i}"], [f"m{i}"]))
        last = "y" if i == 2 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [last]))
    graph = helper.make_graph(nodes, "static_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 512])], inits)
    return _save(helper.make_model(graph), path)


def nonzero_model(path):
    """``x`` [64] float -> indices of x > 0.5 (``NonZero``): an output whose shape depends on
    the data."""
    threshold = numpy_helper.from_array(np.array(0.5, np.float32), "t")
    nodes = [helper.make_node("Greater", ["x", "t"], ["g"]), helper.make_node("NonZero", ["g"], ["idx"])]
    graph = helper.make_graph(nodes, "nonzero", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])],
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "n"])], [threshold])
    return _save(helper.make_model(graph), path)


def build(tmp_path, model, name, profiles=()):
    spec = make_engine_spec(model, "fp32", profiles=list(profiles))
    return build_engine(BuildRequest(spec=spec, model_path=model, workdir=tmp_path / name)).engine_path


def show(title, result):
    print(f"\n--- {title}\n{json.dumps(result, indent=1)}")


def assert_sane(case, iterations=SETTINGS["iterations"], repeats=SETTINGS["repeats"]):
    latency, gpu = case["latency_ms"], case["gpu_ms"]
    assert tuple(latency) == SUMMARY_KEYS and tuple(gpu) == SUMMARY_KEYS
    assert 0 < latency["min"] <= latency["median"] <= latency["p90"] <= latency["p99"]
    assert 0 < gpu["min"] <= gpu["median"] <= gpu["p90"] <= gpu["p99"]
    # The events sit inside the wall-clock window: GPU time cannot exceed it by more than
    # the events' own resolution (~0.5 us).
    assert gpu["median"] <= latency["median"] * 1.05 + 0.002
    assert case["throughput"] == pytest.approx(case["batch"] / (latency["median"] / 1000), rel=1e-3)
    assert case["iterations"] == iterations and len(case["repeat_medians_ms"]) == repeats
    assert all(m > 0 for m in case["repeat_medians_ms"]) and case["cv"] >= 0


@pytest.fixture(scope="module")
def static_engine(trt, tmp_path_factory):
    root = tmp_path_factory.mktemp("measure_static")
    return build(root, static_mlp(root / "mlp.onnx"), "mlp")


def test_static_engine_with_cuda_graph(static_engine):
    result = measure_engine(static_engine, [{"label": "fixed", "shapes": {}}], SETTINGS)
    show("static engine, cuda_graph auto", result)
    assert set(result) == {"gpu", "tensorrt", "cases", "seconds"} and result["seconds"] > 0
    assert set(result["gpu"]) == {"name", "driver", "sm_clock_mhz", "mem_clock_mhz", "temperature_c"}
    assert result["gpu"]["name"]  # "unknown GPU" (and None clocks) where nvidia-smi is missing
    (case,) = result["cases"]
    assert case["label"] == "fixed" and case["shapes"] == {"x": [16, 512]} and case["batch"] == 16
    assert case["cuda_graph"] is True
    assert_sane(case)


def test_two_measurements_of_one_engine_agree(static_engine):
    settings = {**SETTINGS, "cuda_graph": "off"}
    first, second = (measure_engine(static_engine, [{"label": "fixed", "shapes": {"x": [16, 512]}}], settings)
                     for _ in range(2))
    a, b = first["cases"][0], second["cases"][0]
    assert a["cuda_graph"] is False and b["cuda_graph"] is False
    assert_sane(a)
    assert_sane(b)
    gap = abs(a["latency_ms"]["median"] - b["latency_ms"]["median"]) / a["latency_ms"]["median"]
    print(f"\nmedians {a['latency_ms']['median']} / {b['latency_ms']['median']} ms (gap {gap:.2%}), "
          f"gpu {a['gpu_ms']['median']} / {b['gpu_ms']['median']} ms, cv {a['cv']:.4f} / {b['cv']:.4f}, "
          f"clocks {first['gpu']['sm_clock_mhz']} / {second['gpu']['sm_clock_mhz']} MHz")
    # Loose on purpose (tens of microseconds per call on a shared lab machine): the lab
    # reports the real spread; the target is cv within 2% on real models.
    assert gap < 0.25
    assert a["cv"] < 0.2 and b["cv"] < 0.2


def test_dynamic_engine_two_labelled_cases(tmp_path, models):
    engine = build(tmp_path, models["tiny_cnn"], "cnn", [BATCH])
    cases = [{"label": "opt", "shapes": {"input": [4, 3, 32, 32]}},
             {"label": "max", "shapes": {"input": [8, 3, 32, 32]}}]
    result = TensorRTToolchain().measure(engine, cases, SETTINGS)
    show("tiny_cnn dynamic batch", result)
    opt, top = result["cases"]
    assert (opt["label"], opt["batch"], top["label"], top["batch"]) == ("opt", 4, "max", 8)
    assert top["shapes"] == {"input": [8, 3, 32, 32]}
    for case in (opt, top):
        assert_sane(case)
        assert case["cuda_graph"] is True
    with pytest.raises(InputError, match=r"case 'huge'.*axis 0 is 9, the profile allows 1..8"):
        measure_engine(engine, [{"label": "huge", "shapes": {"input": [9, 3, 32, 32]}}], SETTINGS)


@pytest.mark.xfail(reason="TensorRT 8.6.0 (lab, H100, 2026-12-06): the parsed network has input 'x' "
                   "(64,), but the built engine reports get_tensor_shape('x') == (0) for this graph, whose "
                   "only input feeds a NonZero; the measurement refuses the case with the engine's own shape "
                   "(a clear InputError: apply says 'performance not measured'). TensorRT 10/11 not reachable",
                   strict=False)
def test_data_dependent_output_runs_without_graph(tmp_path):
    engine = build(tmp_path, nonzero_model(tmp_path / "nonzero.onnx"), "nonzero")
    settings = {"warmup": 5, "iterations": 50, "repeats": 2, "cuda_graph": "auto"}
    result = measure_engine(engine, [{"label": "x", "shapes": {"x": [64]}}], settings)
    show("NonZero (data-dependent output shape)", result)
    (case,) = result["cases"]
    assert case["cuda_graph"] is False and case["batch"] == 64
    assert_sane(case, iterations=50, repeats=2)
