"""The engine key: ``sha256(canonical_json(components))`` with the components::

    schema        KEY_SCHEMA, bumped when the meaning of a component changes
    model_digest  sha256 over the ONNX file's sha256 and every external-data file it
                  references (location and sha256): new weights give a new key
                  (:mod:`trtops.keys.model_digest`)
    build         the normalized build config (defaults and empty values omitted, so that
                  spelling a default out gives the same key, and adding a new option with a
                  registered default keeps existing keys)
    tensorrt      the full TensorRT version ("10.13.3.9"); for version-compatible engines
                  only the major version ("10"): such plans run on later versions of the
                  same major, so one engine serves them all (``meta.json`` keeps the
                  full version that built it)
    gpu           the GPU signature (see :func:`gpu_signature`)
    plugins       sorted sha256 of the plugin libraries the engine needs
    prepare       the model-preparation steps and tool versions
                  (:func:`trtops.prepare.options.prepare_component`), the fp16/bf16 cast of
                  strongly typed builds included (TensorRT 11); absent when the model is
                  built as it is, so keys without preparation did not change
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from trtops.capabilities import model_cast
from trtops.keys.canonical import plain, sha256_json
from trtops.keys.model_digest import ModelDigest
from trtops.prepare.options import keep_lists, prepare_component

KEY_SCHEMA = 1

# Values of build-config fields that are left out of the key (see module docstring).
# Whoever adds a field to spec.BuildConfig registers its default here (None and empty
# values are always left out).
BUILD_KEY_DEFAULTS: dict[str, Any] = {
    "builder_optimization_level": 3,
    "hardware_compatibility": "none",
    "version_compatible": False,
    "strongly_typed": False,
    "keep_fp32": (),  # empty lists are left out anyway; registered for the record
    "keep_fp32_outputs": (),
}


def _slug(text: str) -> str:
    out = []
    dash = False
    for char in text.lower():
        if char.isascii() and char.isalnum():
            out.append(char)
            dash = False
        elif not dash:
            out.append("-")
            dash = True
    return "".join(out).strip("-") or "gpu"


def gpu_signature(name: str, compute_capability: str, hardware_compatibility: str = "none") -> str:
    """What makes a plan non-portable across GPUs.

    Args:
        name: GPU product name as NVML reports it ("NVIDIA H100 80GB HBM3").
        compute_capability: "major.minor".
        hardware_compatibility: none | ampere_plus | same_compute_capability.

    Returns:
        ``cc9.0-nvidia-h100-80gb-hbm3`` (none), ``ampere_plus`` (portable across GPUs of
        compute capability >= 8.0) or ``cc9.0`` (same_compute_capability).
    """
    if hardware_compatibility == "ampere_plus":
        return "ampere_plus"
    if hardware_compatibility == "same_compute_capability":
        return f"cc{compute_capability}"
    return f"cc{compute_capability}-{_slug(name)}"


def tensorrt_component(version: str, version_compatible: bool = False) -> str:
    """The key's TensorRT component: the full version, or the major for version-compatible
    engines (see module docstring)."""
    if version_compatible:
        return version.split(".", 1)[0]
    return version


def build_component(build: Any, calibration_digest: str | None = None) -> dict[str, Any]:
    """The normalized build config that enters the key.

    Profiles keep their order (the index is meaningful) with inputs sorted by name; tactic
    sources are sorted; the calibration data path is replaced by its digest; None, empty and
    registered default values (:data:`BUILD_KEY_DEFAULTS`) are left out.

    Args:
        build: A :class:`trtops.spec.BuildConfig` (or any dataclass with its fields).
        calibration_digest: Digest of the calibration data (required with calibration).

    Returns:
        JSON-ready dict.
    """
    out: dict[str, Any] = {}
    for f in fields(build):
        name = f.name
        value = getattr(build, name)
        if name == "profiles":
            value = [
                [
                    {"name": r.name, "min": list(r.min), "opt": list(r.opt), "max": list(r.max)}
                    for r in sorted(profile, key=lambda r: r.name)
                ]
                for profile in value
            ]
        elif name == "tactic_sources" and value is not None:
            value = sorted(value)
        elif name == "calibration" and value is not None:
            value = {
                "batch_size": value.batch_size,
                "algorithm": value.algorithm,
                "max_batches": value.max_batches,
                "data": calibration_digest,
            }
            value = {k: v for k, v in value.items() if v is not None}
        else:
            value = plain(value)
        if value is None or value == [] or value == {}:
            continue
        if name in BUILD_KEY_DEFAULTS and value == BUILD_KEY_DEFAULTS[name]:
            continue
        out[name] = value
    return out


@dataclass(frozen=True)
class EngineKey:
    """An engine key with the components it was computed from."""

    key: str
    components: dict[str, Any]
    model: dict[str, Any]  # ModelDigest.details(), for reasons and meta.json

    @property
    def version_compatible(self) -> bool:
        """True for a version-compatible engine: its TensorRT component is a major version
        only (:func:`tensorrt_component`), so the entry's meta.json says which versions load it."""
        return str(self.components.get("tensorrt", "")).isdigit()

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "components": self.components, "model": self.model}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineKey:
        return cls(key=data["key"], components=dict(data["components"]), model=dict(data.get("model") or {}))


def key_components(
    *,
    model_digest: str,
    build: Mapping[str, Any],
    tensorrt: str,
    gpu: str,
    plugins: Sequence[str] = (),
    prepare: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All key components as a dict (the exact thing that is hashed)."""
    components = {
        "schema": KEY_SCHEMA,
        "model_digest": model_digest,
        "build": dict(build),
        "tensorrt": tensorrt,
        "gpu": gpu,
        "plugins": sorted(plugins),
    }
    if prepare is not None:
        components["prepare"] = dict(prepare)
    return components


def engine_key(
    spec: Any,
    model: ModelDigest,
    *,
    tensorrt_version: str,
    gpu: str,
    calibration_digest: str | None = None,
    plugin_digests: Sequence[str] = (),
) -> EngineKey:
    """The engine key of a spec on a platform.

    Args:
        spec: The :class:`trtops.spec.EngineSpec`.
        model: Digest of its model.
        tensorrt_version: The full TensorRT version that builds it.
        gpu: The GPU signature (:func:`gpu_signature`).
        calibration_digest: Digest of the spec's calibration data, if it has some.
        plugin_digests: sha256 of plugin libraries.

    Returns:
        The key with its components.
    """
    build = spec.build
    if build.calibration is not None and calibration_digest is None:
        raise ValueError(f"{spec.id}: calibration data digest is required")
    components = key_components(
        model_digest=model.digest,
        build=build_component(build, calibration_digest),
        tensorrt=tensorrt_component(tensorrt_version, build.version_compatible),
        gpu=gpu,
        plugins=plugin_digests,
        prepare=prepare_component(getattr(spec, "prepare", None), model_cast(build, tensorrt_version),
                                  keep_lists(build)),
    )
    return EngineKey(key=sha256_json(components), components=components, model=model.details())


def key_of(components: Mapping[str, Any]) -> str:
    """The key of a components dict (to check a meta.json against its key)."""
    return sha256_json(components)
