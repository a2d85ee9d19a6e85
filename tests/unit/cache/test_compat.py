"""Which cached engines run on which machine (trtops.cache.compat)."""

from __future__ import annotations

import pytest

from trtops.cache.compat import (
    hardware_compatibility,
    is_version_compatible,
    match_kind,
    preference,
    runnable_here,
)
from trtops.keys.engine_key import gpu_signature, tensorrt_component
from trtops.keys.platform import GpuInfo, Platform

H100 = ("NVIDIA H100 80GB HBM3", "9.0")
H200 = ("NVIDIA H200", "9.0")
L4 = ("NVIDIA L4", "8.9")
A100 = ("NVIDIA A100-SXM4-80GB", "8.0")
T4 = ("Tesla T4", "7.5")


def meta(gpu=H100, tensorrt="10.13.3.9", hw="none", vc=False):
    """A meta.json as the builder writes it (only the fields compat reads)."""
    build = {"precision": "fp16"}
    if hw != "none":
        build["hardware_compatibility"] = hw
    if vc:
        build["version_compatible"] = True
    return {
        "components": {
            "schema": 1,
            "model_digest": "0" * 64,
            "build": build,
            "tensorrt": tensorrt_component(tensorrt, vc),
            "gpu": gpu_signature(gpu[0], gpu[1], hw),
            "plugins": [],
        },
        "tensorrt_version": tensorrt,
        "gpu": {"name": gpu[0], "compute_capability": gpu[1]},
    }


def platform(*gpus, tensorrt="10.13.3.9"):
    return Platform(
        tensorrt=tensorrt,
        gpus=tuple(GpuInfo(index=i, name=n, compute_capability=cc) for i, (n, cc) in enumerate(gpus)),
        source="flags",
    )


def test_exact_match_runs():
    assert runnable_here(meta(H100), platform(H100)) is None
    assert match_kind(meta(H100), platform(H100)) == "exact"


def test_other_gpu_model_of_same_cc_does_not_run_a_plain_engine():
    reason = runnable_here(meta(H100), platform(H200))
    assert reason == "built for cc9.0-nvidia-h100-80gb-hbm3, this GPU is cc9.0-nvidia-h200"


def test_other_tensorrt_version_does_not_run():
    reason = runnable_here(meta(H100, "10.13.3.9"), platform(H100, tensorrt="10.14.1.48"))
    assert reason == "built with TensorRT 10.13.3.9, here TensorRT 10.14.1.48"


def test_trailing_zero_versions_are_equal():
    assert runnable_here(meta(H100, "8.6.0"), platform(H100, tensorrt="8.6.0.0")) is None


@pytest.mark.parametrize("gpu", [H100, H200, L4, A100])
def test_ampere_plus_runs_on_any_cc8_or_newer(gpu):
    entry = meta(A100, hw="ampere_plus")
    assert hardware_compatibility(entry) == "ampere_plus"
    assert runnable_here(entry, platform(gpu)) is None
    assert match_kind(entry, platform(gpu)) == "ampere_plus"


def test_ampere_plus_not_on_turing():
    reason = runnable_here(meta(A100, hw="ampere_plus"), platform(T4))
    assert "needs compute capability >= 8.0" in reason and "7.5" in reason


def test_ampere_plus_still_needs_the_same_tensorrt():
    reason = runnable_here(meta(A100, "10.13.3.9", hw="ampere_plus"),
                           platform(L4, tensorrt="10.12.0.36"))
    assert reason == "built with TensorRT 10.13.3.9, here TensorRT 10.12.0.36"


def test_same_compute_capability_runs_on_any_gpu_of_that_cc():
    entry = meta(H100, hw="same_compute_capability")
    assert entry["components"]["gpu"] == "cc9.0"
    assert runnable_here(entry, platform(H200)) is None
    assert runnable_here(entry, platform(L4)) == \
        "engine built for compute capability 9.0, NVIDIA L4 has 8.9"


def test_hardware_compatibility_inferred_from_signature_without_build_field():
    entry = meta(H100, hw="same_compute_capability")
    del entry["components"]["build"]["hardware_compatibility"]
    assert hardware_compatibility(entry) == "same_compute_capability"
    assert runnable_here(entry, platform(H200)) is None


def test_version_compatible_runs_on_later_same_major():
    entry = meta(H100, "10.8.0.43", vc=True)
    assert entry["components"]["tensorrt"] == "10"
    assert is_version_compatible(entry)
    assert runnable_here(entry, platform(H100, tensorrt="10.13.3.9")) is None
    assert runnable_here(entry, platform(H100, tensorrt="10.8.0.43")) is None


def test_version_compatible_not_on_older_runtime():
    reason = runnable_here(meta(H100, "10.13.3.9", vc=True), platform(H100, tensorrt="10.8.0.43"))
    assert reason == ("version-compatible engine built with TensorRT 10.13.3.9 needs TensorRT "
                      ">= 10.13.3.9 (here 10.8.0.43)")


def test_version_compatible_not_across_majors():
    reason = runnable_here(meta(H100, "8.6.0", vc=True), platform(H100, tensorrt="10.13.3.9"))
    assert "runs only with TensorRT 8.x" in reason


def test_version_and_hardware_compatible_combined():
    entry = meta(A100, "10.8.0.43", hw="ampere_plus", vc=True)
    assert runnable_here(entry, platform(L4, tensorrt="10.13.3.9")) is None
    assert "compute capability >= 8.0" in runnable_here(entry, platform(T4, tensorrt="10.13.3.9"))


def test_version_compatible_with_only_major_known():
    entry = meta(H100, "10.8.0.43", vc=True)
    entry["tensorrt_version"] = None
    assert runnable_here(entry, platform(H100, tensorrt="10.1.0")) is None


def test_no_tensorrt_or_no_gpu():
    assert runnable_here(meta(), platform(H100, tensorrt=None)) == "TensorRT is not installed here"
    assert runnable_here(meta(), platform()) == "no GPU here"


def test_any_of_several_gpus_is_enough():
    assert runnable_here(meta(L4), platform(H100, L4)) is None
    assert runnable_here(meta(L4), platform(H100, H200)).startswith("built for cc8.9-nvidia-l4")


def test_platform_as_json_dict():
    data = {"tensorrt": "10.13.3.9", "gpus": [{"name": H100[0], "compute_capability": "9.0"}]}
    assert runnable_here(meta(H100), data) is None


def test_missing_gpu_signature_is_a_reason_not_a_crash():
    entry = meta()
    entry["components"]["gpu"] = ""
    assert runnable_here(entry, platform(H100)) == \
        "meta.json does not say which GPU the engine was built for"


def test_preference_orders_exact_before_portable_and_same_version_first():
    here = platform(H100, tensorrt="10.13.3.9")
    exact = meta(H100)
    same_cc = meta(H100, hw="same_compute_capability")
    ampere = meta(A100, hw="ampere_plus")
    old_vc = meta(H100, "10.8.0.43", vc=True)
    ordered = sorted([ampere, old_vc, same_cc, exact], key=lambda m: preference(m, here))
    assert ordered == [exact, old_vc, same_cc, ampere]
    assert preference(exact, here) < preference(old_vc, here)
    assert preference(same_cc, here) < preference(ampere, here)
