"""The capability table: release knowledge, precision strategies and THE verdict (pure)."""

import dataclasses

import pytest

from trtops.capabilities import (
    PRECISIONS,
    Features,
    Strategy,
    Unsupported,
    choose_strategy,
    features_for_version,
    parse_version,
    quantization_problem,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8.6.0", (8, 6, 0)),
        ("8.6.1.6", (8, 6, 1, 6)),
        ("10.13.3.9", (10, 13, 3, 9)),
        ("10.0.0b6", (10, 0, 0)),
        (" 11.0 ", (11, 0)),
    ],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "10", "v10.1"])
def test_parse_version_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_version(text)


def test_generations():
    lab = features_for_version("8.6.0")
    assert lab.strongly_typed == "no"
    assert lab.precision_flags == {"FP16", "TF32", "INT8"}
    assert lab.calibrators and lab.version_compatible and not lab.fp8_qdq
    assert lab.hardware_levels == {"AMPERE_PLUS"}

    ten = features_for_version("10.8.0")
    assert ten.strongly_typed == "optional"
    assert {"BF16", "FP8"} <= ten.precision_flags
    assert ten.hardware_levels == {"AMPERE_PLUS"} and ten.fp8_qdq
    assert "SAME_COMPUTE_CAPABILITY" in features_for_version("10.9.0.34").hardware_levels

    eleven = features_for_version("11.0.0")
    assert eleven.strongly_typed == "always"
    assert not eleven.calibrators
    assert "FP16" not in eleven.precision_flags and "INT8" not in eleven.precision_flags


def strategy(precision, version, **kw):
    kw.setdefault("model_has_qdq", False)
    kw.setdefault("has_calibration", False)
    return choose_strategy(precision, features_for_version(version), **kw)


def test_weak_typing_on_86_and_10():
    assert strategy("fp32", "8.6.0") == Strategy(strongly_typed=False, clear_flags=("TF32",))
    assert strategy("tf32", "8.6.0").set_flags == ("TF32",)
    assert strategy("fp16", "8.6.0").set_flags == ("FP16",)
    assert strategy("bf16", "10.13.3").set_flags == ("BF16",)
    calibrated = strategy("int8", "8.6.0", has_calibration=True)
    assert calibrated.set_flags == ("INT8",) and calibrated.calibrate and not calibrated.strongly_typed
    explicit = strategy("int8", "10.3.0", model_has_qdq=True, has_calibration=True)
    assert explicit.set_flags == ("INT8",) and not explicit.calibrate
    fp8 = strategy("fp8", "10.3.0", model_has_qdq=True)
    assert fp8.set_flags[0] == "FP8" and "INT8" in fp8.set_flags


def test_qdq_models_enable_int8_under_weak_typing():
    assert strategy("fp16", "8.6.0", model_has_qdq=True).set_flags == ("FP16", "INT8")
    assert strategy("fp32", "10.0.0", model_has_qdq=True).set_flags == ("INT8",)


def test_strong_typing_on_11():
    assert strategy("fp32", "11.0.0") == Strategy(strongly_typed=True, clear_flags=("TF32",), notes=strategy("fp32", "11.0.0").notes)
    fp16 = strategy("fp16", "11.0.0")
    assert fp16.strongly_typed and fp16.cast == "fp16" and fp16.set_flags == ()
    assert strategy("bf16", "11.2.0").cast == "bf16"
    int8 = strategy("int8", "11.0.0", model_has_qdq=True)
    assert int8.strongly_typed and not int8.calibrate and int8.set_flags == ()


def test_strong_typing_on_request_on_10():
    fp16 = strategy("fp16", "10.13.3", strongly_typed=True)
    assert fp16.strongly_typed and fp16.cast == "fp16"
    with pytest.raises(Unsupported, match="strongly typed"):
        strategy("fp16", "8.6.0", strongly_typed=True)
    with pytest.raises(Unsupported, match="only strongly typed"):
        strategy("fp16", "11.0.0", strongly_typed=False)


@pytest.mark.parametrize(
    "precision, version, kw, match",
    [
        ("bf16", "8.6.0", {}, "TensorRT >= 9.0"),
        ("fp8", "8.6.0", {"model_has_qdq": True}, "TensorRT >= 10.0"),
        ("fp8", "10.3.0", {}, "ModelOpt"),
        ("int8", "10.3.0", {}, "calibration data"),
        ("int8", "11.0.0", {"has_calibration": True}, "ModelOpt"),
        ("fp8", "11.0.0", {}, "ModelOpt"),
        ("int4", "10.3.0", {}, "unknown precision"),
        ("fp32", "8.5.3", {}, "older than 8.6"),
    ],
)
def test_refusals(precision, version, kw, match):
    with pytest.raises(Unsupported, match=match):
        strategy(precision, version, **kw)


def test_detected_features_without_calibrators_refuse_calibration():
    features = Features(
        version=(10, 20, 0),
        precision_flags=frozenset({"FP16", "INT8", "TF32"}),
        strongly_typed="optional",
        calibrators=False,
        hardware_levels=frozenset(),
        version_compatible=True,
    )
    with pytest.raises(Unsupported, match="no INT8 calibrators"):
        choose_strategy("int8", features, model_has_qdq=False, has_calibration=True)


# --------------------------------------------------------------------------- the verdict

from trtops.capabilities import reason_for_version
from trtops.spec import CalibrationSpec, make_engine_spec

CALIB = CalibrationSpec(data="/data/calib.npz", batch_size=8, algorithm="entropy", max_batches=None)


def spec(precision="fp32", **kw):
    return make_engine_spec("/models/m.onnx", precision, **kw)


def reason(s, version="10.13.3.9", cc="9.0", qdq=False, strongly_typed=False):
    build = dataclasses.replace(s.build, strongly_typed=strongly_typed)
    return reason_for_version(build, version, cc, model_has_qdq=qdq)


@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16"])
def test_plain_precisions_everywhere(precision):
    for version in ("8.6.0", "10.0.1", "10.13.3.9", "11.0.0"):
        assert reason(spec(precision), version) is None, version


def test_bf16():
    assert "TensorRT >= 9.0" in reason(spec("bf16"), "8.6.0")
    assert reason(spec("bf16"), "10.13.3") is None
    assert reason(spec("bf16"), "11.0.0") is None  # strongly typed, model cast
    assert "compute capability >= 8.0" in reason(spec("bf16"), "10.13.3", cc="7.5")
    assert reason(spec("bf16"), "10.13.3", cc=None) is None  # unknown GPU: no GPU check


def test_tf32_needs_ampere():
    assert "compute capability >= 8.0" in reason(spec("tf32"), cc="7.0")


def test_fp8():
    assert "TensorRT >= 10.0" in reason(spec("fp8"), "8.6.0", qdq=True)
    assert "ModelOpt" in reason(spec("fp8"), "10.13.3", cc="9.0")
    assert "8.9" in reason(spec("fp8"), "10.13.3", cc="8.6", qdq=True)
    assert reason(spec("fp8"), "10.13.3", cc="8.9", qdq=True) is None
    assert reason(spec("fp8"), "11.0.0", cc="9.0", qdq=True) is None


def test_int8():
    assert "calibration data" in reason(spec("int8"), "8.6.0")
    assert reason(spec("int8", calibration=CALIB), "8.6.0") is None
    assert reason(spec("int8"), "8.6.0", qdq=True) is None
    assert reason(spec("int8", calibration=CALIB), "10.13.3") is None
    text = reason(spec("int8", calibration=CALIB), "11.0.0")
    assert "ModelOpt" in text and "Q/DQ" in text
    assert reason(spec("int8"), "11.0.0", qdq=True) is None


def test_hardware_compatibility():
    assert reason(spec(hardware_compatibility="ampere_plus"), "8.6.0", cc="8.0") is None
    assert "Ampere" in reason(spec(hardware_compatibility="ampere_plus"), "8.6.0", cc="7.5")
    assert "10.9" in reason(spec(hardware_compatibility="same_compute_capability"), "10.8.0")
    assert reason(spec(hardware_compatibility="same_compute_capability"), "10.9.0") is None
    assert "10.9" in reason(spec(hardware_compatibility="same_compute_capability"), "8.6.0")
    text = reason(spec(hardware_compatibility="ampere_plus", tactic_sources=["cublas", "jit_convolutions"]))
    assert "cublas" in text and "tactic" in text


def test_version_compatible():
    assert reason(spec(version_compatible=True), "8.6.0") is None
    assert "lean runtime" in reason(spec(version_compatible=True, tactic_sources=["cudnn"]), "10.13.3")


def test_versions():
    assert "older than 8.6" in reason(spec(), "8.5.3")
    assert "not a version" in reason(spec(), "latest")


def test_unknown_tactic_source():
    s = spec()
    s = dataclasses.replace(s, build=dataclasses.replace(s.build, tactic_sources=("magic",)))
    assert "magic" in reason(s)


def test_strongly_typed_request():
    assert "no strongly typed" in reason(spec("fp16"), "8.6.0", strongly_typed=True)
    assert reason(spec("fp16"), "10.13.3", strongly_typed=True) is None


def test_strongly_typed_on_86_is_refused_clearly():
    assert "no strongly typed networks (TensorRT >= 10.0 has)" in reason(spec("fp32"), "8.6.0", strongly_typed=True)
    assert reason(spec("fp32"), "11.0.0", strongly_typed=True) is None


def test_unknown_qdq_is_not_held_against_a_build():
    assert reason(spec("int8"), "10.13.3", qdq=None) is None
    assert reason(spec("fp8"), "11.0.0", cc="9.0", qdq=None) is None


def test_quantization_problem_is_release_independent():
    assert quantization_problem("fp16", model_has_qdq=False, has_calibration=False) is None
    assert "calibration data" in quantization_problem("int8", model_has_qdq=False, has_calibration=False)
    assert quantization_problem("int8", model_has_qdq=False, has_calibration=True) is None
    assert "Q/DQ" in quantization_problem("int8", model_has_qdq=False, has_calibration=True, strongly_typed=True)
    assert "explicitly quantized" in quantization_problem("fp8", model_has_qdq=False, has_calibration=True)
    assert quantization_problem("fp8", model_has_qdq=True, has_calibration=False) is None


def test_table_rows_are_complete():
    for name, rule in PRECISIONS.items():
        assert rule.name == name
        assert rule.strong in ("plain", "flag", "cast", "qdq")
        assert (rule.strong == "cast") == (rule.cast_onnx_type is not None)
        assert rule.quantized == (rule.strong == "qdq")
        assert rule.tolerance.atol > 0 and rule.tolerance.rtol > 0


def test_model_cast_follows_the_strategy():
    from trtops.capabilities import CAST_TARGETS, PRECISIONS, model_cast

    def cast(precision, version, strongly_typed=False):
        return model_cast(spec(precision, strongly_typed=strongly_typed).build, version)

    for precision in PRECISIONS:
        assert cast(precision, "8.6.0") is None  # precision flags
        assert cast(precision, "10.13.3.9") is None  # weak typing by default
        expected = precision if precision in CAST_TARGETS else None
        assert cast(precision, "11.0.0") == expected
    assert cast("fp16", "10.13.3.9", strongly_typed=True) == "fp16"
    assert cast("bf16", "8.6.0") is None and cast("fp16", "not a version") is None
def test_keep_fp32_needs_layer_precisions_or_a_model_cast():
    from trtops.capabilities import (
        choose_strategy,
        features_for_version,
        keep_fp32_how,
        reason_for_version,
    )
    from trtops.spec import make_engine_spec

    fp16 = make_engine_spec("m.onnx", "fp16", keep_fp32=["n"]).build
    int8 = make_engine_spec("m.onnx", "int8", keep_fp32=["n"], strongly_typed=True).build
    assert reason_for_version(fp16, "8.6.0", "9.0", model_has_qdq=False) is None
    assert reason_for_version(fp16, "11.0.0", "9.0", model_has_qdq=False) is None
    assert "Q/DQ" in reason_for_version(int8, "10.13.3", "9.0", model_has_qdq=True)
    assert keep_fp32_how(choose_strategy("fp16", features_for_version("8.6.0"), model_has_qdq=False,
                                         has_calibration=False)) == "layers"
    assert keep_fp32_how(choose_strategy("fp16", features_for_version("11.0.0"), model_has_qdq=False,
                                         has_calibration=False)) == "casts"
    # fp32 engines carry no keep list at all: their keys never change with it
    assert make_engine_spec("m.onnx", "fp32", keep_fp32=["n"]).build.keep_fp32 == ()
