"""What a preparation asks for, as the engine key and ``plan`` see it (no ONNX work here).

The engine key gets a ``prepare`` component only when preparation does something, so
models without ``prepare:`` keep the keys they had. The fp16/bf16 cast of strongly typed
builds (every one on TensorRT 11; :func:`trtops.capabilities.model_cast` says where) is the
last step: it is ``steps.cast`` in the component, so the prepared model, and the key, differ
per precision only where the cast applies (8.6 and weakly typed 10.x keys are unchanged).
A build's ``keep_fp32`` / ``keep_fp32_outputs`` lists (:class:`KeepLists`) are
``steps.cast_keep_fp32`` beside it, only where a cast applies and the lists are not empty:
two engines that keep different nodes never share a cast model, and every other key stays
as it was. The lists enter as written (sorted), not resolved to node names: the source
model's digest fixes what they resolve to, and the planner never reads the graph for a key.
The component names the steps and the
versions of the tools whose output the engine is built from (onnx, onnx-graphsurgeon):
upgrading one of them rebuilds prepared engines. ONNX Runtime, which evaluates the folded
constants, is named only in the prepared model's cache digest (:mod:`trtops.prepare.runner`):
a planning machine without it must still compute the keys an ``apply`` machine does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from trtops.node_select import is_pattern

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

# The step of a cast component that names the nodes the cast leaves in float32.
KEEP_STEP = "cast_keep_fp32"


@dataclass(frozen=True)
class KeepLists:
    """A build's ``keep_fp32`` (node names or patterns) and ``keep_fp32_outputs`` (tensor
    names or patterns), sorted: what the model cast of a strongly typed build leaves in
    float32 (:func:`trtops.prepare.cast.cast_model` resolves them with
    :mod:`trtops.node_select`)."""

    keep_fp32: tuple[str, ...] = ()
    keep_fp32_outputs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keep_fp32 or self.keep_fp32_outputs)

    def component(self) -> dict[str, list[str]]:
        """The key's ``steps.cast_keep_fp32`` (empty lists left out)."""
        out = {}
        if self.keep_fp32:
            out["nodes"] = list(self.keep_fp32)
        if self.keep_fp32_outputs:
            out["outputs"] = list(self.keep_fp32_outputs)
        return out

    def text(self) -> str:
        """``2 nodes in fp32 (overflow, scale_down)``; with a pattern, which can match any
        number of nodes, ``the nodes of overflow, scale_* in fp32``."""
        entries = list(self.keep_fp32) + [f"output {o}" for o in self.keep_fp32_outputs]
        if any(is_pattern(e) for e in (*self.keep_fp32, *self.keep_fp32_outputs)):
            return f"the nodes of {', '.join(entries)} in fp32"
        return f"{len(entries)} node{'s' if len(entries) != 1 else ''} in fp32 ({', '.join(entries)})"


def keep_lists(build: Any) -> KeepLists:
    """The :class:`KeepLists` of a build config (empty where it keeps nothing)."""
    return KeepLists(tuple(sorted(set(getattr(build, "keep_fp32", ()) or ()))),
                     tuple(sorted(set(getattr(build, "keep_fp32_outputs", ()) or ()))))


def keep_of(component: Any) -> KeepLists:
    """The :class:`KeepLists` a key's ``prepare`` component names (empty without a cast)."""
    steps = component.get("steps") if isinstance(component, dict) else None
    raw = steps.get(KEEP_STEP) if isinstance(steps, dict) else None
    if not isinstance(raw, dict):
        return KeepLists()
    return KeepLists(tuple(raw.get("nodes") or ()), tuple(raw.get("outputs") or ()))


@functools.lru_cache(maxsize=None)
def tool_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("absent" when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def steps_on(prepare: Any, cast: str | None = None, keep: KeepLists = KeepLists()) -> list[str]:
    """The steps a :class:`trtops.spec.PrepareSpec` (and the target's cast, with the nodes it
    keeps in fp32) turn on, in the order they run, in words (``plan`` shows them)."""
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
        keeping = f" keeping {keep.text()}" if keep else ""
        steps.append(f"cast to {cast}{keeping} (strongly typed build: inputs and outputs keep their types)")
    return steps


def _value_text(bound: Any) -> str:
    if not bound.shape:
        return f"{bound.values[0]:g}" if isinstance(bound.values[0], float) else str(bound.values[0])
    return f"<{'x'.join(map(str, bound.shape))} values>"


def prepare_component(prepare: Any, cast: str | None = None,
                      keep: KeepLists = KeepLists()) -> dict[str, Any] | None:
    """The engine key's ``prepare`` component of a :class:`trtops.spec.PrepareSpec`, the
    target's cast (:func:`trtops.capabilities.model_cast`) and the build's :class:`KeepLists`
    (they count only with a cast), or None (no component) when there is nothing to prepare."""
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
        if keep:  # only here: keys without keep lists are what they were
            steps[KEEP_STEP] = keep.component()
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
    """The component of the same preparation without its cast and the nodes the cast keeps
    in fp32 (the gate's reference model and the cast's input), or None when the cast is all
    it does."""
    raw = component.get("steps")
    steps = {k: v for k, v in raw.items() if k not in ("cast", KEEP_STEP)} if isinstance(raw, dict) else {}
    if not any(steps.values()):  # every step off: the source model itself
        return None
    return {**component, "steps": steps}
