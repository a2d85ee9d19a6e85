"""Why an engine is rebuilt: the key components that changed, in words people read.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trtops.keys.engine_key import BUILD_KEY_DEFAULTS
from trtops.names import format_bytes
from trtops.plan.model import Change, EntryView
from trtops.prepare.options import cast_of, keep_of, without_cast


def _show(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple, dict)):
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
            parts.append(f"workspace {format_bytes(a, none='default')} → {format_bytes(b, none='default')}")
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


def _prepare_change(old: Any, new: Any) -> str:
    old_cast, new_cast = cast_of(old), cast_of(new)
    old_keep, new_keep = keep_of(old), keep_of(new)
    if (without_cast(old) if old else None) == (without_cast(new) if new else None):
        keeping = f", keeping {new_keep.text()}" if new_keep else ""
        if old_cast != new_cast and new_cast:
            return f"the model is cast to {new_cast} in the preparation stage (strongly typed build){keeping}"
        if old_cast != new_cast:
            return f"the model is no longer cast to {old_cast}"
        if old_keep != new_keep:
            if new_keep:
                return f"the model is cast to {new_cast} keeping {new_keep.text()}"
            return f"the model cast to {new_cast} no longer keeps {old_keep.text()}"
    if not old:
        return "model preparation turned on"
    if not new:
        return "model preparation turned off"
    if old.get("tools") != new.get("tools"):
        moved = [f"{name} {old['tools'].get(name)} → {version}"
                 for name, version in (new.get("tools") or {}).items()
                 if (old.get("tools") or {}).get(name) != version]
        if old.get("steps") == new.get("steps"):
            return "preparation tools changed: " + ", ".join(moved)
    return "preparation steps changed"


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
    if old.get("prepare") != new.get("prepare"):
        changes.append(Change("prepare", old.get("prepare"), new.get("prepare"),
                              _prepare_change(old.get("prepare"), new.get("prepare"))))
    return changes


def rejected_reason(entry: EntryView) -> str:
    """Why a rejected entry is not rebuilt: its accuracy verdict, and what to change."""
    accuracy = entry.accuracy or {}
    summary = accuracy.get("summary") or accuracy.get("reason")
    text = "failed its accuracy check"
    if accuracy.get("checked_at"):
        text += f" on {accuracy['checked_at']}"
    if summary:
        text += f": {summary}"
    return text + "; change the model, build config or tolerances, or re-run `trtops verify`"
