"""Checks of a model's ``performance:`` block and ``select:`` that need more than one field:
named shape cases against the profiles (every input, each dim within a profile's min/max),
``select: fastest`` on a model with one precision or without measurements. Each problem
points at its line; no files are read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trtops.errors import Problem
from trtops.manifest.load import LoadedManifest, format_field
from trtops.manifest.models import ModelSpec
from trtops.textsafe import name_list


def _problem(lm: LoadedManifest, path: tuple[Any, ...], message: str, hint: str | None = None,
             *, value: bool = False) -> Problem:
    return Problem(lm.location(*path, value=value), format_field(path), message, hint)


def _shapes_block(lm: LoadedManifest, index: int, model: ModelSpec) -> tuple[dict, tuple[Any, ...]]:
    """The shape cases this model gets (its own, else the defaults') and where they are."""
    if model.performance is not None and model.performance.shapes is not None:
        return model.performance.shapes, ("models", index, "performance", "shapes")
    defaults = lm.manifest.defaults.performance
    if defaults is not None and defaults.shapes is not None:
        return defaults.shapes, ("defaults", "performance", "shapes")
    return {}, ()


def _fits(profile: dict[str, Any], case: dict[str, list[int]]) -> bool:
    for name, dims in case.items():
        ranges = profile[name]
        if len(dims) != len(ranges.min):
            return False
        if not all(lo <= d <= hi for d, lo, hi in zip(dims, ranges.min, ranges.max)):
            return False
    return True


def _check_case(lm: LoadedManifest, model: ModelSpec, name: str, case: dict[str, list[int]],
                where: tuple[Any, ...]) -> list[Problem]:
    from trtops.perf.cases import OPT_LABEL

    if name == OPT_LABEL:
        return [_problem(lm, where, f"shape case name {OPT_LABEL!r} is taken: it labels each "
                         "profile's opt shape, which is always measured", "pick another name")]
    if not model.profiles:
        return [_problem(lm, where, f"model {model.name!r} has no profiles: its one shape is "
                         "measured already", "list shape cases only for models with "
                         "optimization profiles")]
    inputs = sorted(model.profiles[0])
    missing = [i for i in inputs if i not in case]
    unknown = sorted(set(case) - set(inputs))
    if unknown:
        return [_problem(lm, where + (unknown[0],), f"shape case {name!r} names {unknown[0]!r}, "
                         "which no profile covers", f"the profiles' inputs: {name_list(inputs)}")]
    if missing:
        return [_problem(lm, where, f"shape case {name!r} gives no shape for "
                         f"{name_list(missing)}", "give every input of the profiles a shape")]
    for profile in model.profiles:
        if _fits(profile, case):
            return []
    # Say what is wrong against the first profile (the usual case: one profile).
    first = model.profiles[0]
    for input_name in inputs:
        ranges, dims = first[input_name], case[input_name]
        if len(dims) != len(ranges.min):
            return [_problem(lm, where + (input_name,), f"shape case {name!r}: {input_name!r} "
                             f"has rank {len(dims)}, the profile rank {len(ranges.min)}")]
        for axis, (d, lo, hi) in enumerate(zip(dims, ranges.min, ranges.max)):
            if not lo <= d <= hi:
                return [_problem(lm, where + (input_name, axis),
                                 f"shape case {name!r}: {input_name!r} axis {axis} is {d}, "
                                 f"outside the profile's min/max {lo}..{hi}",
                                 "a shape the engine cannot run cannot be measured", value=True)]
    return [_problem(lm, where, f"shape case {name!r} fits no single profile",
                     "all inputs of a case must be within the min/max of one profile")]


#: What opts one model out of the ``defaults:`` shape cases (README and the hint say it).
SHAPES_OPT_OUT = "performance: {shapes: {}}"


def _from_defaults(problem: Problem, model: ModelSpec) -> Problem:
    """A problem of the ``defaults:`` shape cases on one model: the line is shared by every
    model, so the message names the model, and the hint says how to opt it out (a model's
    own ``shapes``, empty included, replaces the defaults')."""
    opt_out = f"or opt model {model.name!r} out with `{SHAPES_OPT_OUT}` on it"
    return replace(problem, message=f"model {model.name!r}: {problem.message}",
                   hint=f"{problem.hint}; {opt_out}" if problem.hint else opt_out)


def check_performance(lm: LoadedManifest, index: int, model: ModelSpec) -> list[Problem]:
    """Problems of one model's shape cases and ``select:``.

    Args:
        lm: the loaded manifest.
        index: the model's index in ``models``.
        model: the model.

    Returns:
        Problems, in file order.
    """
    from trtops.manifest.expand import performance_value

    problems: list[Problem] = []
    shapes, where = _shapes_block(lm, index, model)
    for name in shapes:
        problems.extend(_check_case(lm, model, name, shapes[name], where + (name,)))
    if where[:1] == ("defaults",):
        problems = [_from_defaults(problem, model) for problem in problems]
    if model.select is not None:
        at = ("models", index, "select")
        if len(model.precisions) < 2:
            problems.append(_problem(
                lm, at, f"select: {model.select} needs several precisions to choose from "
                f"(precisions: {', '.join(model.precisions)})",
                "list two or more precisions, e.g. [fp16, int8], or remove select", value=True))
        if not performance_value(lm.manifest, model, "enabled"):
            problems.append(_problem(
                lm, at, f"select: {model.select} needs measurements, but performance is "
                "disabled for this model", "remove `enabled: false` from performance, or "
                "remove select", value=True))
    return problems


__all__ = ["SHAPES_OPT_OUT", "check_performance"]
