"""What a preparation asks for, as the engine key and ``plan`` see it (no ONNX work here).

The engine key gets a ``prepare`` component only when preparation does something, so
models without ``prepare:`` keep the keys they had. The component names the steps and the
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


@functools.lru_cache(maxsize=None)
def tool_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("absent" when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def steps_on(prepare: Any) -> list[str]:
    """The steps a :class:`trtops.spec.PrepareSpec` turns on, in the order they run, in words
    (``plan`` shows them)."""
    if prepare is None:
        return []
    steps = []
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
    return steps


def _value_text(bound: Any) -> str:
    if not bound.shape:
        return f"{bound.values[0]:g}" if isinstance(bound.values[0], float) else str(bound.values[0])
    return f"<{'x'.join(map(str, bound.shape))} values>"


def prepare_component(prepare: Any) -> dict[str, Any] | None:
    """The engine key's ``prepare`` component of a :class:`trtops.spec.PrepareSpec`, or None
    (no component) when there is nothing to prepare."""
    if prepare is None or prepare.is_noop:
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
    return {
        "format": PREPARE_FORMAT,
        "steps": steps,
        "tools": {name: tool_version(name) for name in KEY_TOOLS},
    }
