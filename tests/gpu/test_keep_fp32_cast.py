"""keep_fp32 in strongly typed builds (TensorRT 11, and 10.x with strongly_typed) on real
TensorRT: the preparation stage's cast leaves the kept nodes in float32, TensorRT computes
them in float32, and the builder refuses a cast model made for other keep lists. The model:
a chain of GEMMs whose middle value (~1e9) is past fp16's range (helpers.make_overflow_model,
matmul=True, so TensorRT cannot fuse it into one fp32-inside kernel). Skips where this
TensorRT builds no strongly typed network (8.6). A few seconds on an H100."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_loader import run_engine

from trtops.errors import BuildError

pytestmark = pytest.mark.gpu

X = {"x": np.linspace(0.1, 0.9, 32, dtype=np.float32).reshape(2, 16)}


def _build(tmp_path, trt, model, name, *, keep=(), prepared_keep=None):
    from trtops.capabilities import model_cast
    from trtops.prepare.options import keep_lists
    from trtops.prepare.runner import prepare_file
    from trtops.spec import make_engine_spec
    from trtops.trt.builder import BuildRequest, build_engine
    from trtops.trt.trt_compat import strongly_typed_mode

    if strongly_typed_mode(trt) == "no":
        pytest.skip(f"TensorRT {trt.__version__} builds no strongly typed network (keep_fp32 is layer precisions)")
    spec = make_engine_spec(model, "fp16", keep_fp32=list(keep), strongly_typed=True,
                            builder_optimization_level=0)
    cast = model_cast(spec.build, trt.__version__)
    assert cast == "fp16"
    lists = keep_lists(spec.build) if prepared_keep is None else prepared_keep
    parse, report = prepare_file(model, None, tmp_path / f"{name}-cast", cast=cast, keep=lists)
    lines: list[str] = []
    result = build_engine(BuildRequest(spec=spec, model_path=parse, workdir=tmp_path / name, log=lines.append,
                                       model_cast=cast))
    return result, report


def test_kept_nodes_compute_in_fp32_and_the_rest_in_fp16(tmp_path, trt, ort_run):
    from helpers import make_overflow_model

    model = make_overflow_model(tmp_path / "chain.onnx", matmul=True)
    reference = ort_run(model, X)
    plain, _ = _build(tmp_path, trt, model, "plain")
    kept, report = _build(tmp_path, trt, model, "kept", keep=("overflow", "scale_down"))
    y_plain = run_engine(plain, X)["y"]
    y_kept = run_engine(kept, X)["y"]
    print(f"LAB: TensorRT {trt.__version__}: max |y - fp32| without keep_fp32 "
          f"{np.nanmax(np.abs(y_plain - reference['y'])) if np.all(np.isfinite(y_plain)) else 'inf/nan'}, "
          f"with {np.max(np.abs(y_kept - reference['y'])):.3g}")
    assert not np.allclose(y_plain, reference["y"], rtol=1e-2)  # overflows without it
    # fp32 (TF32 where TensorRT picks it) from the fp16 rounding of x*s1 on: ~1e-3 relative
    np.testing.assert_allclose(y_kept, reference["y"], rtol=5e-3, atol=5e-3)
    np.testing.assert_allclose(run_engine(kept, X)["z"], reference["z"], rtol=1e-2)
    assert report.cast_kept_fp32 == ["overflow", "scale_down"]
    assert "keep_fp32: 2 nodes left in float32 by the preparation stage's cast: overflow, scale_down" in kept.log_text


def test_a_cast_model_for_other_keep_lists_is_refused(tmp_path, trt):
    from helpers import make_overflow_model

    from trtops.prepare.options import KeepLists

    model = make_overflow_model(tmp_path / "chain.onnx", matmul=True)
    with pytest.raises(BuildError, match="was cast to fp16 without them"):
        _build(tmp_path, trt, model, "none", keep=("overflow", "scale_down"), prepared_keep=KeepLists())
    with pytest.raises(BuildError, match="does not ask for"):
        _build(tmp_path, trt, model, "extra", prepared_keep=KeepLists(("overflow",)))
