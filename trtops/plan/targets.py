"""Target matching: can a spec be built on a platform, and on which GPU (pure).

:func:`match_target` is the one place that says why an engine is skipped on a platform.
"""
from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

from trtops.capabilities import PRECISIONS, reason_for_version
from trtops.keys.engine_key import gpu_signature
from trtops.keys.platform import GpuInfo, Platform
from trtops.onnx_facts import try_model_has_qdq
from trtops.spec import EngineSpec

# --------------------------------------------------------------------------- target matching


@dataclass(frozen=True)
class TargetMatch:
    """How a spec's target maps onto a platform: the GPU to build on, or why not."""

    gpu: GpuInfo | None
    signature: str | None
    tensorrt: str | None
    problem: str | None = None


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


def _model_has_qdq(spec: EngineSpec) -> bool | None:
    """Q/DQ presence of the spec's model, only where the verdict depends on it (quantized
    precisions): a structure-only read, memoized by (path, size, mtime). None when unknown."""
    rule = PRECISIONS.get(spec.build.precision)
    if rule is None or not rule.quantized:
        return None
    return try_model_has_qdq(spec.source.path)


def match_target(spec: EngineSpec, platform: Platform) -> TargetMatch:
    """Can ``spec`` be built on ``platform``, and on which GPU?

    Rules: the target's TensorRT specifier must contain the platform's version; the GPU
    is the first whose product name matches the target's glob (case-insensitive) and whose
    compute capability equals the target's; ``gpu: any`` takes GPU 0. Then the builder's
    own verdict (:func:`trtops.capabilities.unsupported_reason`) for that GPU and the
    features known for the platform's TensorRT: precision, strong typing, compatibility
    and tactic-source rules. For int8/fp8 it reads whether the model has Q/DQ nodes (a
    structure-only, memoized read; an unreadable model is not held against the build).

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
    problem = reason_for_version(spec.build, version, gpu.compute_capability, model_has_qdq=_model_has_qdq(spec))
    if problem is not None:
        return TargetMatch(None, None, version, problem)
    hardware = spec.build.hardware_compatibility
    signature = gpu_signature(gpu.name, gpu.compute_capability, hardware)
    return TargetMatch(gpu, signature, version)
