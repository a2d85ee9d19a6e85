"""What a preparation asks for, as the engine key and ``plan`` see it (no ONNX work here).

The engine key gets a ``prepare`` component only when preparation does something, so
models without ``prepare:`` keep the keys they had. The fp16/bf16 cast of strongly typed
builds (every one on TensorRT 11; :func:`trtops.capabilities.model_cast` says where) is the
last step: it is ``steps.cast`` in the component, so the prepared model, and the key, differ
per precision only where the cast applies (8.6 and weakly typed 10.x keys are unchanged). The component names the steps and the
versions of the tools whose output the engine is built from (onnx, onnx-graphsurgeon):
upgrading one of them rebuilds prepared engines. ONNX Runtime, which evaluates the folded
constants, is named only in the prepared model's cache digest (:mod:`trtops.prepare.runner`):
a planning machine without it must still compute the keys an ``apply`` machine does.
"""

from __future__ import annotations

import functools
from typing import Any

# Bumped when a step's output changes for the same options and tools (prepared engines
# are then rebuilt).
PREPARE_FORMAT = 1
KEY_TOOLS = ("onnx", "onnx-graphsurgeon")


class _NoSteps:
    """What a model without ``prepare:`` gets (a cast alone may still apply)."""

    fold_constants = infer_shapes = distinct_dims = False
    constants: tuple[Any, ...] = ()
    opset = None
    is_noop = True


_NOTHING = _NoSteps()


@functools.lru_cache(maxsize=None)
def tool_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("absent" when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def steps_on(prepare: Any, cast: str | None = None) -> list[str]:
    """The steps a :class:`trtops.spec.PrepareSpec` (and the target's cast) turn on, in the
    order they run, in words (``plan`` shows them)."""
    steps = []
    if prepare is None:
        prepare = _NOTHING
    if prepare.opset:
        steps.append(f"convert to opset {prepare.opset}")
    if prepare.constants:
        steps.append("bind " + ", ".join(f"{b.name}={_value_text(b)}" for b in prepare.constants))
    if prepare.distinct_dims:
        steps.append("distinct dim names")
    if prepare.fold_constants:
        steps.append("fold constants" + (" and inline If" if prepare.constants else ""))
    if prepare.infer_shapes:
        steps.append("infer shapes")
    if cast:
        steps.append(f"cast to {cast} (strongly typed build: inputs and outputs keep their types)")
    return steps


def _value_text(bound: Any) -> str:
    if not bound.shape:
        return f"{bound.values[0]:g}" if isinstance(bound.values[0], float) else str(bound.values[0])
    return f"<{'x'.join(map(str, bound.shape))} values>"


def prepare_component(prepare: Any, cast: str | None = None) -> dict[str, Any] | None:
    """The engine key's ``prepare`` component of a :class:`trtops.spec.PrepareSpec` and the
    target's cast (:func:`trtops.capabilities.model_cast`), or None (no component) when there
    is nothing to prepare."""
    if prepare is None:
        prepare = _NOTHING
    if prepare.is_noop and not cast:
        return None
    steps: dict[str, Any] = {
        "fold_constants": prepare.fold_constants,
        "infer_shapes": prepare.infer_shapes,
        "distinct_dims": prepare.distinct_dims,
    }
    if prepare.constants:
        steps["constants"] = {b.name: {"shape": list(b.shape), "values": list(b.values)}
                              for b in prepare.constants}
    if prepare.opset:
        steps["opset"] = prepare.opset
    if cast:
        steps["cast"] = cast
    return {
        "format": PREPARE_FORMAT,
        "steps": steps,
        "tools": {name: tool_version(name) for name in KEY_TOOLS},
    }


def cast_of(component: Any) -> str | None:
    """The cast a key's ``prepare`` component names (``"fp16"``), or None."""
    steps = component.get("steps") if isinstance(component, dict) else None
    cast = steps.get("cast") if isinstance(steps, dict) else None
    return cast if isinstance(cast, str) else None


def without_cast(component: dict[str, Any]) -> dict[str, Any] | None:
    """The component of the same preparation without its cast (the gate's reference model
    and the cast's input), or None when the cast is all it does."""
    raw = component.get("steps")
    steps = {k: v for k, v in raw.items() if k != "cast"} if isinstance(raw, dict) else {}
    if not any(steps.values()):  # every step off: the source model itself
        return None
    return {**component, "steps": steps}
