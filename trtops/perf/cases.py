"""The cases an engine is measured at: each optimization profile's opt shape (label
``opt``, or ``profile<i>.opt`` when there are several), then the manifest's named shapes.
Budgets (``max_latency_ms``, ``min_throughput``) apply to the opt cases; every case is
compared with the previous engine."""

from __future__ import annotations

import re
from typing import Any

OPT_LABEL = "opt"
_OPT_RE = re.compile(r"^(opt|profile\d+\.opt)\Z")


def is_opt(label: str) -> bool:
    """True for the label of a profile's opt case (``opt``, ``profile1.opt``)."""
    return bool(_OPT_RE.match(label))


def measure_cases(spec: Any, io: Any = None) -> list[dict[str, Any]]:
    """The cases of :meth:`trtops.ops.toolchain.Toolchain.measure` for one engine.

    Args:
        spec: The :class:`~trtops.spec.EngineSpec`.
        io: The engine's :class:`~trtops.engine_io.EngineIO` (or its JSON), when known:
            inputs of fixed shape get that shape in every case.

    Returns:
        ``[{"label": str, "shapes": {input: [dims]}}]``, opt cases first.
    """
    fixed: dict[str, list[int]] = {}
    tensors = getattr(io, "tensors", None) if io is not None and not isinstance(io, dict) \
        else (io or {}).get("tensors")
    for tensor in tensors or ():
        name, mode, shape = ((tensor.name, tensor.mode, tensor.shape) if not isinstance(tensor, dict)
                             else (tensor["name"], tensor["mode"], tensor["shape"]))
        if mode == "input" and all(int(d) >= 0 for d in shape):
            fixed[name] = [int(d) for d in shape]
    profiles = spec.build.profiles
    cases: list[dict[str, Any]] = []
    for index, profile in enumerate(profiles):
        label = OPT_LABEL if len(profiles) == 1 else f"profile{index}.{OPT_LABEL}"
        shapes = dict(fixed)
        shapes.update({r.name: list(r.opt) for r in profile})
        cases.append({"label": label, "shapes": shapes})
    if not profiles:
        cases.append({"label": OPT_LABEL, "shapes": dict(fixed)})
    for name, inputs in spec.performance.shapes:
        shapes = dict(fixed)
        shapes.update({input_name: list(dims) for input_name, dims in inputs})
        cases.append({"label": name, "shapes": shapes})
    return cases


__all__ = ["OPT_LABEL", "is_opt", "measure_cases"]
