"""Checks of a model's ``keep_fp32`` / ``keep_fp32_outputs`` lists, each at its exact line.

Every entry must name something in the graph (the one matching rule:
:mod:`trtops.node_select`; the graph read without weights by :mod:`trtops.onnx_facts`),
and the lists must matter for at least one of the model's precisions: a model built only
in fp32/tf32 runs nothing below fp32, so a keep list there is a mistake, not a no-op to
carry around silently.
"""

from __future__ import annotations

from typing import Any

from trtops.capabilities import KEEP_FP32_PRECISIONS
from trtops.errors import Problem
from trtops.manifest.load import LoadedManifest, format_field
from trtops.manifest.models import ModelSpec
from trtops.node_select import is_pattern, unmatched
from trtops.onnx_facts import GraphInfo
from trtops.suggest import did_you_mean
from trtops.textsafe import name_list


def _problem(lm: LoadedManifest, path: tuple[Any, ...], message: str, hint: str | None = None,
             *, value: bool = False) -> Problem:
    return Problem(lm.location(*path, value=value), format_field(path), message, hint)


def check_keep_precisions(lm: LoadedManifest, index: int, model: ModelSpec) -> list[Problem]:
    """A keep list on a model whose precisions all compute in fp32 anyway."""
    if not (model.keep_fp32 or model.keep_fp32_outputs):
        return []
    if any(p in KEEP_FP32_PRECISIONS for p in model.precisions):
        return []
    field = "keep_fp32" if model.keep_fp32 else "keep_fp32_outputs"
    return [_problem(
        lm, ("models", index, field),
        f"{field} has no effect: {model.name!r} builds only {', '.join(model.precisions)}, which "
        "compute in fp32 already",
        f"remove {field}, or build a reduced precision ({', '.join(KEEP_FP32_PRECISIONS)})")]


def check_keep_graph(lm: LoadedManifest, index: int, model: ModelSpec, graph: GraphInfo) -> list[Problem]:
    """Entries that name no node of the main graph (or no tensor a node computes)."""
    if not (model.keep_fp32 or model.keep_fp32_outputs):
        return []
    nodes = graph.nodes
    names = sorted({n.name for n in nodes if n.name})
    tensors = sorted({o for n in nodes for o in n.outputs if o})
    problems = []
    for miss in unmatched(nodes, model.keep_fp32, model.keep_fp32_outputs):
        path = ("models", index, miss.field, miss.index)
        if miss.field == "keep_fp32":
            what, options, hint = "node", names, f"node names of the model: {name_list(names)}"
            if len(names) < len(nodes):
                hint += "; name unnamed nodes by a tensor they compute in keep_fp32_outputs"
        else:
            what, options = "tensor computed by a node", tensors
            hint = f"tensors computed by nodes: {name_list(tensors)}"
        shown = repr(miss.pattern) if len(miss.pattern) <= 120 else repr(miss.pattern[:100]) + "..."
        message = (f"pattern {shown} matches no {what}" if is_pattern(miss.pattern)
                   else f"the model has no {what} {shown}")
        problems.append(_problem(lm, path, message + did_you_mean(miss.pattern, options), hint, value=True))
    return problems
