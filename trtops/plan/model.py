"""The plan's data: actions and why, what the cache holds, and the plan itself.

Everything here round-trips through JSON (``Plan.save``/``Plan.load``): a saved plan is
applied exactly, on the condition that nothing it depends on moved (see
:func:`trtops.plan.assemble.check_plan_current`).
"""
from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from trtops import __version__
from trtops.errors import InputError
from trtops.keys.canonical import sha256_json
from trtops.keys.engine_key import EngineKey
from trtops.keys.model_digest import ModelDigest
from trtops.keys.platform import Platform
from trtops.spec import EngineSpec

PLAN_FORMAT = "trtops-plan"
PLAN_VERSION = 1

ACTION_KINDS = ("build", "rebuild", "reuse", "skip", "rejected")
PENDING_KINDS = ("build", "rebuild")

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Change:
    """One key component that differs from the last build of a logical engine."""

    component: str  # schema | model | build | tensorrt | gpu | plugins | prepare
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
    perf: Mapping[str, Any] | None = None  # perf.json (the last measurement), when measured


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
        from trtops.cache.entries import read_accuracy, read_perf
        from trtops.errors import CacheError

        view = cls(url=store.url)
        wanted_meta = set(meta_for)
        for key in dict.fromkeys(keys):
            if not store.has_entry(key):
                continue
            accuracy = read_accuracy(store, key)
            meta = store.read_meta(key) if key in wanted_meta else None
            try:
                perf = read_perf(store, key)
            except CacheError:
                perf = None  # numbers to show only: a damaged one is `cache verify`'s to report
            view.entries[key] = EntryView(key=key, state=layout.state_from_accuracy(accuracy),
                                          accuracy=accuracy, meta=meta, perf=perf)
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
