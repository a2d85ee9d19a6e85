"""Which cached engines can run on a machine: pure functions over ``meta.json`` and a
:class:`trtops.keys.platform.Platform`.

TensorRT plans are not portable by default: a plan runs only with the TensorRT version
that built it, on GPUs of the same model. Two build options relax that, and the key keeps
track of them (see :mod:`trtops.keys.engine_key`):

- hardware compatibility: ``ampere_plus`` plans (key GPU component ``ampere_plus``) run on
  every GPU of compute capability >= 8.0; ``same_compute_capability`` plans (``cc8.9``) run
  on every GPU of that compute capability. Otherwise the signature names the product
  (``cc9.0-nvidia-h100-80gb-hbm3``) and must match exactly.
- version compatibility: the plan runs with any TensorRT of the same major version that is
  at least the version that built it (the key's TensorRT component is then the major).

Without those options the full TensorRT version must be equal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CC_SIGNATURE_RE = re.compile(r"^cc(\d{1,2})\.(\d)$")
_EXACT_SIGNATURE_RE = re.compile(r"^cc(\d{1,2})\.(\d)-")

# Preference among engines that all run here (lower is better): a plan built for exactly
# this GPU model and TensorRT version is tuned for it; portable plans give up some speed.
MATCH_RANK = {"exact": 0, "same_compute_capability": 1, "ampere_plus": 2}


def _version(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _cc(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{1,2})\.(\d)", str(text).strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _components(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    components = meta.get("components")
    return components if isinstance(components, Mapping) else {}


def hardware_compatibility(meta: Mapping[str, Any]) -> str:
    """The entry's hardware compatibility: none | ampere_plus | same_compute_capability.

    Args:
        meta: An entry's meta.json.

    Returns:
        From the build component, else inferred from the GPU signature.
    """
    components = _components(meta)
    build = components.get("build")
    if isinstance(build, Mapping) and build.get("hardware_compatibility"):
        return str(build["hardware_compatibility"])
    signature = str(components.get("gpu") or "")
    if signature == "ampere_plus":
        return "ampere_plus"
    if _CC_SIGNATURE_RE.match(signature):
        return "same_compute_capability"
    return "none"


def is_version_compatible(meta: Mapping[str, Any]) -> bool:
    """True for a version-compatible plan (build flag, or a major-only TensorRT component).

    Args:
        meta: An entry's meta.json.
    """
    components = _components(meta)
    build = components.get("build")
    if isinstance(build, Mapping) and build.get("version_compatible"):
        return True
    tensorrt = str(components.get("tensorrt") or "")
    return tensorrt.isdigit()


def built_with(meta: Mapping[str, Any]) -> str | None:
    """The full TensorRT version that built the entry (None when unknown)."""
    version = meta.get("tensorrt_version")
    if version:
        return str(version)
    tensorrt = _components(meta).get("tensorrt")
    return str(tensorrt) if tensorrt else None


def tensorrt_reason(meta: Mapping[str, Any], runtime: str | None) -> str | None:
    """Why the TensorRT version ``runtime`` cannot run the entry; None when it can.

    Args:
        meta: An entry's meta.json.
        runtime: The full TensorRT version of the machine (None: not installed).

    Returns:
        A reason for humans, or None.
    """
    built = built_with(meta)
    if runtime is None:
        return "TensorRT is not installed here"
    if built is None:
        return "meta.json does not say which TensorRT version built the engine"
    if is_version_compatible(meta):
        major = built.split(".", 1)[0]
        if runtime.split(".", 1)[0] != major:
            return (f"version-compatible engine built with TensorRT {built} runs only with "
                    f"TensorRT {major}.x (here {runtime})")
        ours, theirs = _version(runtime), _version(built)
        if "." in built and ours is not None and theirs is not None and ours < theirs:
            return (f"version-compatible engine built with TensorRT {built} needs TensorRT "
                    f">= {built} (here {runtime})")
        return None
    ours, theirs = _version(runtime), _version(built)
    same = ours == theirs if ours is not None and theirs is not None else runtime == built
    if not same:
        return f"built with TensorRT {built}, here TensorRT {runtime}"
    return None


def gpu_reason(meta: Mapping[str, Any], name: str, compute_capability: str) -> str | None:
    """Why a GPU cannot run the entry; None when it can.

    Args:
        meta: An entry's meta.json.
        name: GPU product name as NVML reports it.
        compute_capability: "major.minor".

    Returns:
        A reason for humans, or None.
    """
    from trtops.keys.engine_key import gpu_signature

    signature = str(_components(meta).get("gpu") or "")
    kind = hardware_compatibility(meta)
    cc = _cc(compute_capability)
    if kind == "ampere_plus":
        if cc is None or cc < (8, 0):
            return (f"hardware-compatible (ampere_plus) engine needs compute capability >= 8.0, "
                    f"{name} has {compute_capability}")
        return None
    if kind == "same_compute_capability":
        match = _CC_SIGNATURE_RE.match(signature)
        wanted = f"{match.group(1)}.{match.group(2)}" if match else None
        if wanted is None:
            built_on = meta.get("gpu") if isinstance(meta.get("gpu"), Mapping) else {}
            wanted = str(built_on.get("compute_capability") or "")
        if cc is None or _cc(wanted) != cc:
            return (f"engine built for compute capability {wanted or '?'}, "
                    f"{name} has {compute_capability}")
        return None
    if not signature:
        return "meta.json does not say which GPU the engine was built for"
    here = gpu_signature(name, compute_capability, "none")
    if here != signature:
        return f"built for {signature}, this GPU is {here}"
    return None


def _gpus(platform: Any) -> list[tuple[str, str]]:
    if isinstance(platform, Mapping):
        gpus = platform.get("gpus") or ()
        return [(str(g["name"]), str(g["compute_capability"])) for g in gpus]
    return [(g.name, g.compute_capability) for g in getattr(platform, "gpus", ())]


def _tensorrt(platform: Any) -> str | None:
    if isinstance(platform, Mapping):
        return platform.get("tensorrt")
    return getattr(platform, "tensorrt", None)


def runnable_here(meta: Mapping[str, Any], platform: Any) -> str | None:
    """Why the entry cannot run on the platform; None when it can run on at least one of
    its GPUs.

    Args:
        meta: An entry's meta.json (``components``, ``tensorrt_version``, ``gpu``).
        platform: A :class:`trtops.keys.platform.Platform` (or a dict in its JSON form).

    Returns:
        None when runnable, else one reason for humans (the TensorRT reason first, else
        the reason for the first GPU).
    """
    reason = tensorrt_reason(meta, _tensorrt(platform))
    if reason:
        return reason
    gpus = _gpus(platform)
    if not gpus:
        return "no GPU here"
    reasons = [gpu_reason(meta, name, cc) for name, cc in gpus]
    if any(r is None for r in reasons):
        return None
    return reasons[0]


def match_kind(meta: Mapping[str, Any], platform: Any) -> str | None:
    """How the entry matches the platform: ``exact`` (this GPU model), ``same_compute_capability``
    or ``ampere_plus``; None when it does not run here."""
    if runnable_here(meta, platform) is not None:
        return None
    kind = hardware_compatibility(meta)
    return "exact" if kind == "none" else kind


def preference(meta: Mapping[str, Any], platform: Any) -> tuple[int, int]:
    """Sort key among runnable entries of one engine (lower is better): exact GPU match
    before portable plans, then the same TensorRT version before version-compatible use."""
    kind = match_kind(meta, platform)
    rank = MATCH_RANK.get(kind or "", len(MATCH_RANK))
    built = built_with(meta)
    runtime = _tensorrt(platform)
    same_version = (built is not None and runtime is not None
                    and _version(built) is not None and _version(built) == _version(runtime))
    return rank, 0 if same_version else 1


__all__ = [
    "MATCH_RANK", "built_with", "gpu_reason", "hardware_compatibility", "is_version_compatible",
    "match_kind", "preference", "runnable_here", "tensorrt_reason",
]
