"""The planner: what to do for every engine, and why.

:func:`plan` is pure: given engine specs, a :class:`CacheView` (what the cache holds for
the keys in question), a :class:`~trtops.keys.platform.Platform` and model digests, it returns a
:class:`Plan` of :class:`Action`s:

``build``     no entry for the key (never built, or its entry was removed)
``rebuild``   the logical engine was built before under another key: the reason says which
              component changed, old → new ("model weights changed (model.onnx.data)",
              "TensorRT 10.13.3.9 → 10.14.1.48", "build config changed: workspace
              64MiB → 128MiB")
``reuse``     the entry exists (accepted, or not verified yet)
``skip``      the target cannot be built on this platform (the reason says which GPU or
              TensorRT it needs)
``rejected``  the entry exists but failed its accuracy check; nothing to do until the
              model, the config or the tolerances change

Cheap checks run first: target matching needs no file access; digests are computed only
for specs that can be built here; the cache is asked only about the resulting keys.

:func:`make_plan` does the non-pure assembly (load manifests, hash models through the
digest memo, read the cache) and is what ``trtops plan`` and ``trtops apply`` call.
A saved plan (``Plan.to_json``) records digests of the platform, the cache view and every
model, and :func:`check_plan_current` refuses to apply it when any of them moved.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from trtops import __version__
from trtops.capabilities import PRECISIONS, reason_for_version
from trtops.errors import InputError, PlanMismatch
from trtops.keys.fingerprint import (
    BUILD_KEY_DEFAULTS,
    DigestMemo,
    EngineKey,
    ModelDigest,
    data_digest,
    declared_model_digest,
    digest_models,
    engine_key,
    gpu_signature,
    sha256_json,
)
from trtops.keys.platform import GpuInfo, Platform
from trtops.onnx_facts import try_model_has_qdq
from trtops.spec import EngineSpec

PLAN_FORMAT = "trtops-plan"
PLAN_VERSION = 1

ACTION_KINDS = ("build", "rebuild", "reuse", "skip", "rejected")
PENDING_KINDS = ("build", "rebuild")



# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Change:
    """One key component that differs from the last build of a logical engine."""

    component: str  # schema | model | build | tensorrt | gpu | plugins
    old: Any
    new: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "old": self.old, "new": self.new, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(data["component"], data.get("old"), data.get("new"), data["message"])


@dataclass(frozen=True)
class Action:
    """What to do for one spec, and why."""

    kind: str  # see ACTION_KINDS
    spec: EngineSpec
    reason: str
    key: EngineKey | None = None  # None for 'skip'
    state: str | None = None  # entry state for 'reuse' / 'rejected'
    previous_key: str | None = None  # the ref's key, when it differs
    changes: tuple[Change, ...] = ()
    gpu_index: int | None = None  # CUDA index of the GPU to build on
    tensorrt: str | None = None  # full TensorRT version to build with
    same_as: str | None = None  # spec id of an earlier action with the same key
    # Timing caches are per TensorRT version and *build* GPU model, even for hardware-
    # compatible engines (whose key says only 'ampere_plus' or 'cc8.9').
    timing_signature: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def pending(self) -> bool:
        """True when apply has to build something for this action."""
        return self.kind in PENDING_KINDS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.spec.id,
            "reason": self.reason,
            "key": self.key.key if self.key else None,
            "components": self.key.components if self.key else None,
            "model": self.key.model if self.key else None,
            "state": self.state,
            "previous_key": self.previous_key,
            "changes": [c.to_json() for c in self.changes],
            "gpu_index": self.gpu_index,
            "tensorrt": self.tensorrt,
            "same_as": self.same_as,
            "timing_signature": self.timing_signature,
            "spec": self.spec.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        key = None
        if data.get("key"):
            key = EngineKey(key=data["key"], components=dict(data.get("components") or {}),
                            model=dict(data.get("model") or {}))
        return cls(
            kind=data["kind"],
            spec=spec_from_json(data["spec"]),
            reason=data["reason"],
            key=key,
            state=data.get("state"),
            previous_key=data.get("previous_key"),
            changes=tuple(Change.from_json(c) for c in data.get("changes") or ()),
            gpu_index=data.get("gpu_index"),
            tensorrt=data.get("tensorrt"),
            same_as=data.get("same_as"),
            timing_signature=data.get("timing_signature"),
        )


@dataclass(frozen=True)
class EntryView:
    """What the planner needs to know about one complete cache entry."""

    key: str
    state: str  # accepted | rejected | unverified
    accuracy: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] | None = None  # only read when needed (version-compatible keys)


@dataclass
class CacheView:
    """A snapshot of the cache, limited to the keys and refs a plan asks about.

    ``entries`` holds the complete entries among the keys asked (absent: no entry);
    ``refs`` the ref records found (absent: no ref, or not asked).
    """

    url: str
    entries: dict[str, EntryView] = field(default_factory=dict)
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return entry.state if entry else None

    def digest(self, keys: Iterable[str]) -> str:
        """Digest of what the cache says about ``keys`` (presence and state): a saved plan
        stays valid while this does not change."""
        return sha256_json(sorted([key, self.state(key)] for key in set(keys)))

    @classmethod
    def load(
        cls,
        store: Any,
        keys: Iterable[str] = (),
        refs: Iterable[str] = (),
        *,
        meta_for: Iterable[str] = (),
    ) -> CacheView:
        """Read the entries of ``keys`` and the records of ``refs`` from a store.

        Args:
            store: An :class:`~trtops.cache.store.EntryStore`.
            keys: Engine keys.
            refs: Ref names (spec ids).
            meta_for: Keys whose meta.json is read as well.

        Returns:
            The view.
        """
        from trtops.cache import layout
        from trtops.cache.entries import read_accuracy

        view = cls(url=store.url)
        wanted_meta = set(meta_for)
        for key in dict.fromkeys(keys):
            if not store.has_entry(key):
                continue
            accuracy = read_accuracy(store, key)
            meta = store.read_meta(key) if key in wanted_meta else None
            view.entries[key] = EntryView(key=key, state=layout.state_from_accuracy(accuracy),
                                          accuracy=accuracy, meta=meta)
        view.add_refs(store, refs)
        return view

    def add_refs(self, store: Any, refs: Iterable[str]) -> None:
        """Read the records of ``refs`` into the view (refs without components get them
        from the old entry's meta.json when it still exists)."""
        from trtops.cache import layout

        view = self
        for ref in dict.fromkeys(refs):
            record = store.read_ref(ref)
            if record is None:
                continue
            if not record.get("components") and isinstance(record.get("key"), str) \
                    and layout.KEY_RE.match(record["key"]):
                # Refs written by other tools may lack components: the old entry has them.
                old_meta = store.read_meta(record["key"]) or {}
                if old_meta.get("components"):
                    record = dict(record, components=old_meta["components"],
                                  model=record.get("model") or old_meta.get("model") or {})
            view.refs[ref] = record


@dataclass
class Plan:
    """The planner's result; ``to_json``/``from_json`` round-trip it for ``apply``."""

    actions: list[Action]
    platform: Platform
    cache_url: str
    cache_digest: str
    digests: dict[str, ModelDigest] = field(default_factory=dict)  # model path -> digest
    data_digests: dict[str, str] = field(default_factory=dict)  # calibration/plugin path -> digest
    manifests: list[str] = field(default_factory=list)
    created_at: str = ""
    trtops_version: str = __version__

    @property
    def platform_digest(self) -> str:
        return self.platform.digest()

    @property
    def pending(self) -> list[Action]:
        """Actions apply must build."""
        return [a for a in self.actions if a.pending]

    def unique_builds(self) -> list[Action]:
        """Pending actions, one per key (specs that share a key are built once)."""
        seen: set[str] = set()
        out = []
        for action in self.pending:
            if action.key and action.key.key not in seen:
                seen.add(action.key.key)
                out.append(action)
        return out

    def counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in ACTION_KINDS}
        for action in self.actions:
            counts[action.kind] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "trtops_version": self.trtops_version,
            "created_at": self.created_at,
            "manifests": list(self.manifests),
            "platform": self.platform.to_json(),
            "platform_digest": self.platform_digest,
            "cache": {"url": self.cache_url, "digest": self.cache_digest},
            "digests": {path: d.details() for path, d in sorted(self.digests.items())},
            "data_digests": dict(sorted(self.data_digests.items())),
            "summary": self.counts(),
            "actions": [a.to_json() for a in self.actions],
        }

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        """Read a saved plan.

        Raises:
            InputError: when the data is not a plan this version understands.
        """
        if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
            raise InputError("not a trtops plan file", hint="write one with `trtops plan -o plan.json`")
        if data.get("version") != PLAN_VERSION:
            raise InputError(f"plan file version {data.get('version')!r} is not supported "
                             f"(this trtops reads version {PLAN_VERSION})",
                             hint="make the plan again with this trtops version")
        try:
            platform = Platform.from_json(data["platform"], source=data["platform"].get("source", "file"))
            plan = cls(
                actions=[Action.from_json(a) for a in data["actions"]],
                platform=platform,
                cache_url=data["cache"]["url"],
                cache_digest=data["cache"]["digest"],
                digests={p: ModelDigest.from_details(d) for p, d in (data.get("digests") or {}).items()},
                data_digests=dict(data.get("data_digests") or {}),
                manifests=list(data.get("manifests") or []),
                created_at=data.get("created_at", ""),
                trtops_version=data.get("trtops_version", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the plan file is damaged ({type(exc).__name__}: {exc})",
                             hint="make the plan again with `trtops plan -o plan.json`") from None
        if plan.platform_digest != data.get("platform_digest", plan.platform_digest):
            raise InputError("the plan file's platform does not match its digest",
                             hint="make the plan again with `trtops plan -o plan.json`")
        return plan

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the plan as JSON (atomically)."""
        from trtops.fsutil import atomic_write

        atomic_write(path, (json.dumps(self.to_json(), indent=1) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Read a plan written by :meth:`save`.

        Raises:
            InputError: when the file is missing or not a plan.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"plan file {path} not found") from None
        except ValueError as exc:
            raise InputError(f"plan file {path} is not valid JSON ({exc})") from None
        return cls.from_json(data)


# --------------------------------------------------------------------------- EngineSpec from JSON


def _from_plain(tp: Any, value: Any, namespace: dict[str, Any]) -> Any:
    if value is None:
        return None
    if isinstance(tp, str):
        tp = eval(tp, namespace)  # noqa: S307 - type names from trtops.spec, not user data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _from_plain(option, value, namespace)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {tp.__name__}")
        hints = typing.get_type_hints(tp, namespace)
        kwargs = {f.name: _from_plain(hints[f.name], value[f.name], namespace)
                  for f in fields(tp) if f.name in value and f.init}
        return tp(**kwargs)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError("expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(args[0], v, namespace) for v in value)
        if args:
            return tuple(_from_plain(a, v, namespace) for a, v in zip(args, value))
        return tuple(value)
    if origin in (dict, Mapping):
        return dict(value)
    if origin is list:
        return list(value)
    return value


def spec_from_json(data: Mapping[str, Any]) -> EngineSpec:
    """Rebuild an :class:`EngineSpec` from :meth:`EngineSpec.to_json` (for saved plans).

    Args:
        data: The JSON form.

    Returns:
        An equal spec.
    """
    import trtops.spec as spec_module

    return _from_plain(EngineSpec, data, vars(spec_module))


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


# --------------------------------------------------------------------------- reasons


def format_bytes(value: Any) -> str:
    """64MiB / 1.5GiB / 1000B; None is 'default'."""
    if value is None:
        return "default"
    if not isinstance(value, int):
        return str(value)
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            number = value / size
            text = f"{number:.0f}" if value % size == 0 else f"{number:.2f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{value}B"


def _show(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _build_default(name: str) -> Any:
    return BUILD_KEY_DEFAULTS.get(name)


def _profile_changes(old: Any, new: Any) -> list[str]:
    old = old or []
    new = new or []
    if len(old) != len(new):
        return [f"profiles {len(old)} → {len(new)}"]
    out = []
    for index, (a, b) in enumerate(zip(old, new)):
        inputs_a = {r["name"]: r for r in a}
        inputs_b = {r["name"]: r for r in b}
        for name in sorted(set(inputs_a) | set(inputs_b)):
            ra, rb = inputs_a.get(name), inputs_b.get(name)
            if ra is None or rb is None:
                out.append(f"profile {index} input '{name}' {'added' if ra is None else 'removed'}")
                continue
            for bound in ("min", "opt", "max"):
                if ra.get(bound) != rb.get(bound):
                    out.append(f"profile {index} '{name}' {bound} {_show(ra.get(bound))} → {_show(rb.get(bound))}")
    return out or ["profiles changed"]


def _build_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    parts = []
    for name in sorted(set(old) | set(new), key=lambda n: (n != "precision", n)):
        a = old.get(name, _build_default(name))
        b = new.get(name, _build_default(name))
        if a == b:
            continue
        if name == "workspace":
            parts.append(f"workspace {format_bytes(a)} → {format_bytes(b)}")
        elif name == "profiles":
            parts.extend(_profile_changes(a, b))
        elif name == "calibration":
            a = a or {}
            b = b or {}
            if not a or not b:
                parts.append(f"calibration {'added' if b else 'removed'}")
                continue
            if a.get("data") != b.get("data"):
                parts.append("calibration data changed")
            for field_name in sorted((set(a) | set(b)) - {"data"}):
                if a.get(field_name) != b.get(field_name):
                    parts.append(f"calibration {field_name} {_show(a.get(field_name))} → {_show(b.get(field_name))}")
        else:
            parts.append(f"{name} {_show(a)} → {_show(b)}")
    return parts


def _model_change(old_model: Mapping[str, Any], new_model: Mapping[str, Any]) -> str:
    if not old_model or "onnx_sha256" not in old_model or "onnx_sha256" not in new_model:
        return "model changed"
    onnx_changed = old_model.get("onnx_sha256") != new_model.get("onnx_sha256")
    old_ext = dict(old_model.get("external_data") or {})
    new_ext = dict(new_model.get("external_data") or {})
    changed = sorted(loc for loc in set(old_ext) | set(new_ext) if old_ext.get(loc) != new_ext.get(loc))
    names = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    if onnx_changed and changed:
        return f"model and its weights changed (ONNX file; {names})"
    if onnx_changed:
        return "model changed (ONNX file)"
    if changed:
        return f"model weights changed ({names})"
    return "model changed"


def explain_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    old_model: Mapping[str, Any] | None = None,
    new_model: Mapping[str, Any] | None = None,
) -> list[Change]:
    """What differs between the key components of the last build and the current ones.

    Args:
        old: Components of the last key (from the ref or the old meta.json).
        new: Current components.
        old_model: Model digest details of the last build (to name changed weight files).
        new_model: Current model digest details.

    Returns:
        One :class:`Change` per differing component, in the order schema, model, build,
        TensorRT, GPU, plugins.
    """
    changes = []
    if old.get("schema") != new.get("schema"):
        changes.append(Change("schema", old.get("schema"), new.get("schema"),
                              f"engine key schema {old.get('schema')} → {new.get('schema')} (new trtops)"))
    if old.get("model_digest") != new.get("model_digest"):
        changes.append(Change("model", old.get("model_digest"), new.get("model_digest"),
                              _model_change(old_model or {}, new_model or {})))
    old_build = old.get("build") or {}
    new_build = new.get("build") or {}
    if old_build != new_build:
        parts = _build_changes(old_build, new_build)
        changes.append(Change("build", old_build, new_build,
                              "build config changed" + (": " + ", ".join(parts) if parts else "")))
    if old.get("tensorrt") != new.get("tensorrt"):
        changes.append(Change("tensorrt", old.get("tensorrt"), new.get("tensorrt"),
                              f"TensorRT {old.get('tensorrt')} → {new.get('tensorrt')}"))
    if old.get("gpu") != new.get("gpu"):
        changes.append(Change("gpu", old.get("gpu"), new.get("gpu"),
                              f"GPU {old.get('gpu')} → {new.get('gpu')}"))
    if sorted(old.get("plugins") or []) != sorted(new.get("plugins") or []):
        changes.append(Change("plugins", old.get("plugins"), new.get("plugins"), "plugins changed"))
    return changes


def _rejected_reason(entry: EntryView) -> str:
    accuracy = entry.accuracy or {}
    summary = accuracy.get("summary") or accuracy.get("reason")
    text = "failed its accuracy check"
    if accuracy.get("checked_at"):
        text += f" on {accuracy['checked_at']}"
    if summary:
        text += f": {summary}"
    return text + "; change the model, build config or tolerances, or re-run `trtops verify`"


# --------------------------------------------------------------------------- the planner


def plugin_paths(spec: EngineSpec) -> list[str]:
    """Plugin libraries a spec needs (``spec.extra['plugins']``, absolute paths)."""
    plugins = spec.extra.get("plugins") if spec.extra else None
    return [str(p) for p in plugins] if plugins else []


def spec_key(
    spec: EngineSpec,
    match: TargetMatch,
    digests: Mapping[str, ModelDigest],
    data_digests: Mapping[str, str] | None = None,
) -> EngineKey:
    """The engine key of a buildable spec.

    Args:
        spec: The spec.
        match: Its :func:`match_target` result (without problem).
        digests: Model digests by model path.
        data_digests: Calibration-data and plugin digests by path.

    Returns:
        The key.

    Raises:
        ValueError: when a needed digest is missing.
    """
    data_digests = data_digests or {}
    model = digests.get(spec.source.path)
    if model is None and spec.source.sha256:
        model = declared_model_digest(spec.source.sha256)
    if model is None:
        raise ValueError(f"{spec.id}: no digest for model {spec.source.path}")
    calibration = None
    if spec.build.calibration is not None:
        calibration = data_digests.get(spec.build.calibration.data)
        if calibration is None:
            raise ValueError(f"{spec.id}: no digest for calibration data {spec.build.calibration.data}")
    plugins = []
    for path in plugin_paths(spec):
        if path not in data_digests:
            raise ValueError(f"{spec.id}: no digest for plugin {path}")
        plugins.append(data_digests[path])
    assert match.tensorrt is not None and match.signature is not None
    return engine_key(spec, model, tensorrt_version=match.tensorrt, gpu=match.signature,
                      calibration_digest=calibration, plugin_digests=plugins)


def check_unique_ids(specs: Sequence[EngineSpec]) -> None:
    """Two specs with one id would share a ref; say which manifests collide.

    Raises:
        InputError: on the first duplicate.
    """
    seen: dict[str, EngineSpec] = {}
    for spec in specs:
        other = seen.get(spec.id)
        if other is not None:
            raise InputError(
                f"two engines are both named {spec.id} (from {other.manifest} and {spec.manifest})",
                hint="manifest file names namespace engines in the cache: rename one of the files",
            )
        seen[spec.id] = spec


def plan(
    specs: Sequence[EngineSpec],
    cache_view: CacheView,
    platform: Platform,
    digests: Mapping[str, ModelDigest],
    *,
    data_digests: Mapping[str, str] | None = None,
    manifests: Sequence[str] = (),
    created_at: str = "",
    keys: Mapping[str, EngineKey] | None = None,
) -> Plan:
    """Decide what to do for every spec (pure: no file, cache or GPU access).

    Args:
        specs: Engine specs (from :func:`trtops.manifest.expand.expand`).
        cache_view: What the cache holds for the specs' keys and refs.
        platform: The platform to plan for.
        digests: Model digests by model path (url sources with a declared sha256 may be
            absent).
        data_digests: Calibration-data and plugin digests by path.
        manifests: Manifest paths, recorded in the plan.
        created_at: Timestamp recorded in the plan.
        keys: Keys already computed by :func:`spec_key` for this platform, by spec id
            (saves computing them twice; missing ones are computed).

    Returns:
        The plan: one action per spec, in spec order.
    """
    check_unique_ids(specs)
    data_digests = dict(data_digests or {})
    actions: list[Action] = []
    first_pending: dict[str, str] = {}
    planned: list[str] = []
    known = keys or {}
    for spec in specs:
        match = match_target(spec, platform)
        if match.problem is not None:
            actions.append(Action(kind="skip", spec=spec, reason=match.problem))
            continue
        key = known.get(spec.id) or spec_key(spec, match, digests, data_digests)
        planned.append(key.key)
        gpu_index = match.gpu.index if match.gpu else None
        timing = gpu_signature(match.gpu.name, match.gpu.compute_capability) if match.gpu else None
        common = dict(spec=spec, key=key, gpu_index=gpu_index, tensorrt=match.tensorrt,
                      timing_signature=timing)
        entry = cache_view.entries.get(key.key)
        ref = cache_view.refs.get(spec.id)
        ref_key = ref.get("key") if ref else None
        previous = ref_key if ref_key and ref_key != key.key else None
        if entry is not None:
            if entry.state == "rejected":
                actions.append(Action(kind="rejected", reason=_rejected_reason(entry), state=entry.state,
                                      previous_key=previous, **common))
                continue
            if entry.meta is not None and str(key.components.get("tensorrt", "")).isdigit():
                from trtops.cache.compat import tensorrt_reason

                problem = tensorrt_reason(entry.meta, platform.tensorrt)
                if problem:
                    actions.append(Action(kind="skip", reason=f"cached {problem}", state=entry.state,
                                          **common))
                    continue
            reason = "up to date" if entry.state == "accepted" else "cached, accuracy not verified yet"
            if previous:
                reason += f" (the last build was {previous[:12]})"
            actions.append(Action(kind="reuse", reason=reason, state=entry.state, previous_key=previous, **common))
            continue
        if ref is None:
            kind, reason, changes = "build", "not built yet", ()
        elif ref_key == key.key:
            kind, reason, changes = "build", f"cache entry {key.key[:12]} is missing (deleted or garbage-collected)", ()
        else:
            old_components = ref.get("components")
            kind = "rebuild"
            if isinstance(old_components, Mapping) and old_components:
                changes = tuple(explain_changes(old_components, key.components, ref.get("model"), key.model))
                reason = "; ".join(c.message for c in changes) if changes else "engine key changed"
            else:
                changes = ()
                reason = f"engine key changed (the last build, {str(ref_key)[:12]}, recorded no key components)"
        same_as = first_pending.get(key.key)
        if same_as is not None:
            reason += f" (same engine as {same_as}: built once)"
        else:
            first_pending[key.key] = spec.id
        actions.append(Action(kind=kind, reason=reason, previous_key=previous, changes=changes,
                              same_as=same_as, **common))
    used_models = {s.source.path for s, a in zip(specs, actions) if a.key is not None}
    return Plan(
        actions=actions,
        platform=platform,
        cache_url=cache_view.url,
        cache_digest=cache_view.digest(planned),
        digests={p: d for p, d in digests.items() if p in used_models},
        data_digests=data_digests,
        manifests=list(manifests),
        created_at=created_at,
    )


# --------------------------------------------------------------------------- assembly (not pure)


def memo_for(store: Any) -> DigestMemo:
    """The digest memo that goes with a store: ``<cache>/digests.json`` for local caches,
    the default local cache's for remote ones."""
    path = getattr(store, "digest_memo_path", None)
    if path is None:
        from trtops.cache import default_cache_url, is_remote
        from trtops.cache.layout import DIGEST_MEMO_FILE

        url = default_cache_url()
        path = None if is_remote(url) else Path(url) / DIGEST_MEMO_FILE
    return DigestMemo(path)


def load_specs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    check_models: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[EngineSpec]:
    """Load, validate and expand manifests into specs.

    Args:
        paths: Manifest files or directories.
        check_models: Also run the checks that read model files (slow; the planner runs
            them only when something is to be built).
        cache_dir: Local cache holding url sources.

    Returns:
        Specs in manifest order.

    Raises:
        ManifestError: for problems in the manifests.
    """
    from trtops.manifest.expand import expand
    from trtops.manifest.load import load_paths

    loaded = load_paths(list(paths), check_models=check_models, cache_dir=cache_dir)
    return expand(loaded, cache_dir=cache_dir)


def compute_digests(
    specs: Sequence[EngineSpec], platform: Platform, memo: DigestMemo, workers: int | None = None
) -> tuple[dict[str, ModelDigest], dict[str, str]]:
    """Digests of the models, calibration data and plugins of the specs buildable on
    ``platform`` (others are skipped by the planner and need no hashing).

    Returns:
        (model digests by path, data digests by path).

    Raises:
        InputError: for missing files.
    """
    buildable = [s for s in specs if match_target(s, platform).problem is None]
    models = [s.source.path for s in buildable if not s.source.sha256]
    digests = digest_models(models, memo, workers) if models else {}
    data_paths: list[str] = []
    for spec in buildable:
        if spec.build.calibration is not None:
            data_paths.append(spec.build.calibration.data)
        data_paths.extend(plugin_paths(spec))
    data = {path: data_digest(path, memo, workers) for path in dict.fromkeys(data_paths)}
    return digests, data


def save_memo(memo: DigestMemo) -> None:
    """Save the digest memo, ignoring a read-only cache (the memo only saves time)."""
    try:
        memo.save()
    except OSError:
        pass  # a read-only cache still plans; the memo only saves time


def make_plan_for_specs(
    specs: Sequence[EngineSpec],
    store: Any,
    platform: Platform,
    *,
    memo: DigestMemo | None = None,
    manifests: Sequence[str] = (),
    workers: int | None = None,
) -> Plan:
    """Hash what is needed, read the cache view, and plan.

    Args:
        specs: Engine specs.
        store: The cache (any EntryStore).
        platform: The platform to plan for.
        memo: Digest memo (default: the store's).
        manifests: Manifest paths to record.
        workers: Hashing threads.

    Returns:
        The plan.
    """
    from trtops.cache.layout import utc_now

    check_unique_ids(specs)
    memo = memo if memo is not None else memo_for(store)
    digests, data = compute_digests(specs, platform, memo, workers)
    save_memo(memo)
    keys: dict[str, EngineKey] = {}
    version_compatible = []
    for spec in specs:
        match = match_target(spec, platform)
        if match.problem is None:
            key = spec_key(spec, match, digests, data)
            keys[spec.id] = key
            if str(key.components.get("tensorrt", "")).isdigit():
                version_compatible.append(key.key)
    view = CacheView.load(store, [k.key for k in keys.values()], meta_for=version_compatible)
    # Refs only explain misses; hits need none.
    view.add_refs(store, [spec_id for spec_id, key in keys.items() if key.key not in view.entries])
    return plan(specs, view, platform, digests, data_digests=data, manifests=manifests,
                created_at=utc_now(), keys=keys)


def make_plan(
    paths: Sequence[str | os.PathLike[str]],
    store: Any,
    platform: Platform,
    *,
    memo: DigestMemo | None = None,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Plan:
    """Plan manifests against a cache and platform (what ``trtops plan`` and ``apply`` run).

    When something is to be built, the manifests are checked once more against their model
    files (profiles vs. graph inputs, data files), so a plan never promises a build that
    cannot start; a plan with nothing pending skips that (it is the slow part).

    Args:
        paths: Manifest files or directories.
        store: The cache.
        platform: The platform to plan for.
        memo: Digest memo (default: the store's).
        workers: Hashing threads.
        cache_dir: Local cache holding url sources (default: the store's directory for a
            local store).

    Returns:
        The plan.

    Raises:
        ManifestError: for problems in the manifests.
        InputError: for missing model or data files.
    """
    if cache_dir is None and hasattr(store, "root"):
        cache_dir = store.root
    specs = load_specs(paths, check_models=False, cache_dir=cache_dir)
    try:
        result = make_plan_for_specs(specs, store, platform, memo=memo,
                                     manifests=[str(p) for p in paths], workers=workers)
    except InputError:
        # A model or data file is missing or unreadable: the checks that read files say
        # which manifest line names it (file:line); raise their ManifestError if they can.
        load_specs(paths, check_models=True, cache_dir=cache_dir)
        raise
    if result.pending:
        load_specs(paths, check_models=True, cache_dir=cache_dir)
    return result


def check_plan_current(plan: Plan, store: Any, platform: Platform, *, memo: DigestMemo | None = None) -> None:
    """Refuse a saved plan when the platform, the cache or a model moved since it was made.

    Args:
        plan: The saved plan.
        store: The cache apply will use.
        platform: The platform apply runs on.
        memo: Digest memo (default: the store's).

    Raises:
        PlanMismatch: saying what moved.
    """
    problems = []
    if plan.platform_digest != platform.digest():
        problems.append(f"the platform changed: the plan is for {plan.platform.describe()}, "
                        f"this is {platform.describe()}")
    if plan.cache_url != store.url:
        problems.append(f"the plan was made for cache {plan.cache_url}, not {store.url}")
    keys = [a.key.key for a in plan.actions if a.key is not None]
    view = CacheView.load(store, keys)
    if view.digest(keys) != plan.cache_digest:
        problems.append("the cache changed (engines were built, removed or re-verified)")
    memo = memo if memo is not None else memo_for(store)
    try:
        current = digest_models(list(plan.digests), memo) if plan.digests else {}
        data = {path: data_digest(path, memo) for path in plan.data_digests}
    except InputError as exc:
        problems.append(f"a model or data file is gone ({exc.message})")
    else:
        save_memo(memo)
        moved = [path for path, digest in plan.digests.items() if current[path].digest != digest.digest]
        moved += [path for path, digest in plan.data_digests.items() if data[path] != digest]
        if moved:
            problems.append("files changed: " + ", ".join(moved))
    if problems:
        raise PlanMismatch("the saved plan is out of date: " + "; ".join(problems),
                           hint="run `trtops plan -o plan.json` again and apply the new plan")


# --------------------------------------------------------------------------- rendering

_SYMBOLS = {"build": "+", "rebuild": "~", "reuse": "=", "skip": "-", "rejected": "!"}
_STYLES = {"build": "green", "rebuild": "yellow", "reuse": "dim", "skip": "cyan", "rejected": "red"}


def summary_line(plan_: Plan) -> str:
    counts = plan_.counts()
    return (f"Plan: {counts['build']} to build, {counts['rebuild']} to rebuild, {counts['reuse']} to reuse, "
            f"{counts['skip']} skipped, {counts['rejected']} rejected.")


def render_lines(plan_: Plan, *, show_all: bool = False) -> list[tuple[str, str]]:
    """The plan as (style, text) lines: header, one line per action (reuse lines only with
    ``show_all``), summary. Styles are rich style names ('' for none)."""
    lines: list[tuple[str, str]] = []
    specs = len(plan_.actions)
    lines.append(("bold", f"trtops plan: {specs} engine{'s' if specs != 1 else ''} for "
                          f"{plan_.platform.describe()} (cache {plan_.cache_url})"))
    shown = [a for a in plan_.actions if show_all or a.kind != "reuse"]
    if shown:
        lines.append(("", ""))
        width = max(len(a.id) for a in shown)
        for action in shown:
            key = action.key.key[:12] if action.key else "-" * 12
            text = f"  {_SYMBOLS[action.kind]} {action.kind:<8} {action.id:<{width}}  {key}  {action.reason}"
            lines.append((_STYLES[action.kind], text))
    hidden = len(plan_.actions) - len(shown)
    lines.append(("", ""))
    if hidden:
        lines.append(("dim", f"  ({hidden} up to date, not listed; --all lists them)"))
    lines.append(("bold", summary_line(plan_)))
    counts = plan_.counts()
    if not plan_.pending:
        if counts["skip"]:
            lines.append(("", f"Nothing to build on this platform ({counts['skip']} skipped)."))
        else:
            lines.append(("green", "No changes. Engines are up to date."))
    if counts["skip"] and plan_.platform.source == "detected":
        lines.append(("dim", "hint: to plan for another machine pass --platform FILE (written there by "
                             "`trtops info --json -o FILE`) or --tensorrt/--gpu/--compute-capability"))
    return lines
