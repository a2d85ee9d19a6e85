"""Target matching: can a spec be built on a platform, and on which GPU (pure).

:func:`match_target` is the one place that says why an engine is skipped on a platform.
"""
from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

from trtops.keys.fingerprint import gpu_signature
from trtops.keys.platform import GpuInfo, Platform
from trtops.spec import EngineSpec

# Precisions that need more than any GPU TensorRT 8.6+ supports: (minimum TensorRT major,
# minimum compute capability). BF16 builder support came with TensorRT 9; FP8 tensor cores
# with Ada/Hopper (8.9).
PRECISION_REQUIREMENTS: dict[str, tuple[int, tuple[int, int]]] = {
    "bf16": (9, (8, 0)),
    "fp8": (9, (8, 9)),
}
# kSAME_COMPUTE_CAPABILITY exists from TensorRT 10.9 (see DESIGN.md).
SAME_CC_MIN_TENSORRT = (10, 9)


# --------------------------------------------------------------------------- target matching


@dataclass(frozen=True)
class TargetMatch:
    """How a spec's target maps onto a platform: the GPU to build on, or why not."""

    gpu: GpuInfo | None
    signature: str | None
    tensorrt: str | None
    problem: str | None = None


@functools.lru_cache(maxsize=256)
def _version_tuple(version: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(version).release


def describe_target(spec: EngineSpec) -> str:
    """'a GPU matching NVIDIA H100* (cc 9.0)' for messages."""
    target = spec.target
    parts = []
    if target.gpu and target.gpu != "any":
        parts.append(f"matching '{target.gpu}'")
    if target.compute_capability:
        parts.append(f"of compute capability {target.compute_capability}")
    return "a GPU " + " ".join(parts) if parts else "a GPU"


@functools.lru_cache(maxsize=1024)
def _tensorrt_allowed(specifier: str, version: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(specifier).contains(version, prereleases=True)


def _gpu_matches(spec: EngineSpec, gpu: GpuInfo) -> bool:
    target = spec.target
    if target.gpu and target.gpu != "any" and not fnmatch.fnmatchcase(gpu.name.lower(), target.gpu.lower()):
        return False
    if target.compute_capability and gpu.compute_capability != target.compute_capability:
        return False
    return True


def match_target(spec: EngineSpec, platform: Platform) -> TargetMatch:
    """Can ``spec`` be built on ``platform``, and on which GPU? (pure, no file access)

    Rules: the target's TensorRT specifier must contain the platform's version; the GPU
    is the first whose product name matches the target's glob (case-insensitive) and whose
    compute capability equals the target's; ``gpu: any`` takes GPU 0. Hardware-compatible
    and reduced-precision engines have further needs (see PRECISION_REQUIREMENTS).

    Args:
        spec: The engine spec.
        platform: The platform.

    Returns:
        A match; ``problem`` is the skip reason when it cannot be built here.
    """
    target = spec.target
    version = platform.tensorrt
    wanted = f"TensorRT {target.tensorrt}" if target.tensorrt else "TensorRT"
    if version is None:
        return TargetMatch(None, None, None, f"needs {wanted} (not installed here)")
    if target.tensorrt and not _tensorrt_allowed(target.tensorrt, version):
        return TargetMatch(None, None, version, f"needs {wanted}; this platform has TensorRT {version}")
    if not platform.gpus:
        return TargetMatch(None, None, version, f"needs {describe_target(spec)} (no GPU here)")
    if target.gpu == "any":
        candidates = [platform.gpus[0]]
    else:
        candidates = [g for g in platform.gpus if _gpu_matches(spec, g)]
    if not candidates:
        here = ", ".join(sorted({f"{g.name} (cc {g.compute_capability})" for g in platform.gpus}))
        return TargetMatch(None, None, version, f"needs {describe_target(spec)}; this platform has {here}")
    gpu = candidates[0]
    cc = gpu.cc_tuple
    release = _version_tuple(version)
    hardware = spec.build.hardware_compatibility
    if hardware == "ampere_plus" and cc < (8, 0):
        return TargetMatch(None, None, version,
                           f"hardware_compatibility ampere_plus must be built on a GPU of compute "
                           f"capability >= 8.0; {gpu.name} has {gpu.compute_capability}")
    if hardware == "same_compute_capability" and release[:2] < SAME_CC_MIN_TENSORRT:
        return TargetMatch(None, None, version,
                           "hardware_compatibility same_compute_capability needs TensorRT >= "
                           f"{'.'.join(map(str, SAME_CC_MIN_TENSORRT))}; this platform has {version}")
    needs = PRECISION_REQUIREMENTS.get(spec.precision)
    if needs is not None:
        major, min_cc = needs
        if release[0] < major:
            return TargetMatch(None, None, version,
                               f"{spec.precision} needs TensorRT >= {major}; this platform has {version}")
        if cc < min_cc:
            return TargetMatch(None, None, version,
                               f"{spec.precision} needs a GPU of compute capability >= "
                               f"{min_cc[0]}.{min_cc[1]}; {gpu.name} has {gpu.compute_capability}")
    signature = gpu_signature(gpu.name, gpu.compute_capability, hardware)
    return TargetMatch(gpu, signature, version)
