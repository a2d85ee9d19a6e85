"""Checks of what TensorRT will make of a model's graph, before anything is built:
dynamic dims that share a name but get different sizes in a profile, ops and attributes
the target TensorRT's ONNX parser cannot import (the table: :mod:`trtops.parser_support`),
input/output types it narrows, and ``prepare.constants`` naming real inputs.

Everything here reads the graph's structure only (:mod:`trtops.onnx_facts`). The
preparation a model asks for is taken into account: what it fixes is not reported.
"""

from __future__ import annotations

from typing import Any

from trtops.errors import Problem
from trtops.manifest.load import LoadedManifest, format_field
from trtops.manifest.models import ModelSpec
from trtops.onnx_facts import GraphInfo, GraphOps
from trtops.parser_support import generations_for, narrowed_io, parser_issues
from trtops.prepare.dims import repeated_within_an_input, shared_dim_names

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _problem(lm: LoadedManifest, path: tuple[Any, ...], message: str, hint: str | None = None,
             *, severity: str = "error", value: bool = False) -> Problem:
    return Problem(lm.location(*path, value=value), format_field(path), message, hint, severity)


def model_prepare(lm: LoadedManifest, model: ModelSpec) -> Any:
    """The model's ``prepare:`` options (its own, else the defaults'), or None."""
    return model.prepare if model.prepare is not None else lm.manifest.defaults.prepare


def bound_inputs(lm: LoadedManifest, model: ModelSpec) -> set[str]:
    """Inputs ``prepare.constants`` binds (they are not engine inputs)."""
    prepare = model_prepare(lm, model)
    return set(prepare.constants) if prepare is not None else set()


def _places(places: list[tuple[str, int]]) -> str:
    by_input: dict[str, list[int]] = {}
    for name, axis in places:
        by_input.setdefault(name, []).append(axis)
    parts = [f"axes {', '.join(map(str, axes))} of input {name!r}" if len(axes) > 1
             else f"axis {axes[0]} of input {name!r}" for name, axes in by_input.items()]
    return " and ".join(parts)


def check_shared_dims(lm: LoadedManifest, index: int, model: ModelSpec, graph: GraphInfo) -> list[Problem]:
    """Dynamic dims with one name (TensorRT ties them together) that a profile sizes
    differently: the build would stop with "Input dimensions with this name are inconsistent"."""
    dims = {name: d for name, d in graph.inputs.items() if d is not None}
    prepare = model_prepare(lm, model)
    fixed = set(repeated_within_an_input(dims)) if prepare is not None and prepare.distinct_dims else set()
    problems = []
    for dim_name, places in shared_dim_names(dims).items():
        if dim_name in fixed:
            continue
        within = dim_name in repeated_within_an_input(dims)
        for p_index, profile in enumerate(model.profiles):
            found = None
            for which in ("min", "opt", "max"):
                sizes = [(inp, axis, getattr(profile[inp], which)[axis]) for inp, axis in places
                         if inp in profile and axis < len(getattr(profile[inp], which))]
                if len({size for _, _, size in sizes}) > 1:
                    found = which, sizes
                    break
            if found is None:
                continue
            which, sizes = found
            first_input = sizes[0][0]
            given = " and ".join(str(size) for _, _, size in sizes)
            hint = ("add prepare: {distinct_dims: true} (what prepare: {} does) to give them distinct names, "
                    "or rename the dims in the model" if within else
                    "give these axes equal sizes in min, opt and max (the model declares them one dimension), "
                    "or rename the dims in the model")
            problems.append(_problem(
                lm, ("models", index, "profiles", p_index, first_input, which),
                f"the model names {_places(places)} {'both' if len(places) == 2 else 'all'} {dim_name!r}, so TensorRT treats them as one dimension, "
                f"but {which} gives {given} (the build would stop with 'Input dimensions with this name are "
                "inconsistent')", hint))
            break
    return problems


def check_constants(lm: LoadedManifest, index: int, model: ModelSpec, graph: GraphInfo) -> list[Problem]:
    """``prepare.constants`` names real inputs, which profiles then leave out."""
    prepare = model_prepare(lm, model)
    if prepare is None:
        return []
    at = ("models", index, "prepare") if model.prepare is not None else ("defaults", "prepare")
    problems = []
    for name in prepare.constants:
        if name not in graph.inputs:
            problems.append(_problem(
                lm, at + ("constants", name), f"the model has no input {name!r} to bind",
                f"inputs of the model: {', '.join(sorted(graph.inputs)) or 'none'}"))
    for p_index, profile in enumerate(model.profiles):
        for name in profile:
            if name in prepare.constants:
                problems.append(_problem(
                    lm, ("models", index, "profiles", p_index, name),
                    f"input {name!r} is bound to a constant by prepare.constants, so the engine has no such input",
                    "remove it from the profiles"))
    return problems


def _target_generations(lm: LoadedManifest, model: ModelSpec) -> tuple[str, ...]:
    names = model.targets if model.targets is not None else list(lm.manifest.targets)
    found: list[str] = []
    for name in names:
        target = lm.manifest.targets.get(name)
        if target is not None:
            found.extend(g for g in generations_for(target.tensorrt.replace(" ", "")) if g not in found)
    return tuple(found)


def check_parser(lm: LoadedManifest, index: int, model: ModelSpec, ops: GraphOps) -> list[Problem]:
    """What the targets' TensorRT parsers refuse (an error when every generation the targets
    admit refuses it, else a warning naming them) and the I/O types they narrow (warnings)."""
    generations = _target_generations(lm, model)
    if not generations:
        return []
    prepare = model_prepare(lm, model)
    at = ("models", index, "source")
    by_issue: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for generation in generations:
        for issue in parser_issues(ops, generation):
            if prepare is not None and issue.kind == "constant_input" and prepare.fold_constants:
                continue  # folding makes the input a constant
            if prepare is not None and issue.kind == "opset" and prepare.opset:
                continue  # converted (a failed conversion is reported by prepare)
            by_issue.setdefault((issue.kind, issue.subject), []).append((generation, issue))
    problems = []
    for found in by_issue.values():
        refused_by = [g for g, _ in found]
        issue = found[-1][1]
        if len(refused_by) == len(generations):
            problems.append(_problem(lm, at, issue.message, issue.hint, value=True))
        else:
            problems.append(_problem(
                lm, at, f"{found[0][1].message} (the targets also allow TensorRT "
                f"{', '.join(g for g in generations if g not in refused_by)}, which imports it)",
                issue.hint, severity="warning", value=True))
    bound = bound_inputs(lm, model)
    ranges = model.accuracy.inputs.ranges if model.accuracy.inputs is not None else {}
    for generation in generations:
        for name, (wide, narrow) in narrowed_io(ops, generation).items():
            if name in bound:
                continue
            is_input = name in ops.input_types
            value_range = ranges.get(name)
            if (is_input and wide == "INT64" and value_range is not None
                    and (value_range.low < INT32_MIN or value_range.high - 1 > INT32_MAX)):
                problems.append(_problem(
                    lm, ("models", index, "accuracy", "inputs", "ranges", name),
                    f"input {name!r} is int64 and TensorRT {generation} makes it int32, but this range does "
                    "not fit int32", "narrow the range to int32 values, or target TensorRT >= 10 (int64 I/O)"))
                continue
            what = "input" if is_input else "output"
            problems.append(_problem(
                lm, at,
                f"{what} {name!r} is {wide.lower()}: TensorRT {generation} makes it {narrow.lower()} (values out "
                f"of range are clamped). The loader then " + (
                    f"takes {narrow.lower()} arrays for it (Python numbers convert) and the gate draws "
                    f"{narrow.lower()} values and gives ONNX Runtime the same values as {wide.lower()}" if is_input else
                    f"returns {narrow.lower()} arrays and the gate compares them with ONNX Runtime's {wide.lower()} "
                    "values"),
                None if generation != "8.6" else "TensorRT >= 10 keeps int64 inputs and outputs",
                severity="warning", value=True))
    return problems
