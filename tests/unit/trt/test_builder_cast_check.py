"""The builder casts nothing: it checks it got the model the preparation stage cast
(pure, no TensorRT)."""

from __future__ import annotations

from trtops.trt.builder import BuildRequest, cast_problem


def test_matching_casts_build():
    assert cast_problem(None, None, "8.6.0") is None
    assert cast_problem("fp16", "fp16", "11.0.0") is None


def test_an_uncast_model_is_refused_where_the_cast_is_needed():
    problem = cast_problem("fp16", None, "11.0.0")
    assert "model cast to fp16" in problem and "was not cast" in problem and "trtops apply" in problem
    assert "cast to bf16" in cast_problem("fp16", "bf16", "11.0.0")


def test_a_cast_model_is_refused_where_no_cast_applies():
    assert "does not make here" in cast_problem(None, "fp16", "10.13.3.9")


def test_requests_carry_no_cast_by_default(tmp_path):
    from trtops.spec import make_engine_spec

    request = BuildRequest(spec=make_engine_spec(tmp_path / "m.onnx", "fp16"), model_path=tmp_path / "m.onnx",
                           workdir=tmp_path)
    assert request.model_cast is None
