"""What a cast model says about the nodes its cast left in float32 for ``keep_fp32``, and
whether that is what a build asks for.

A strongly typed network ignores layer precisions: ``keep_fp32`` holds only if the model
TensorRT parses was cast keeping those nodes (:func:`trtops.prepare.cast.cast_model`). The
cast writes the lists it applied and the nodes they matched into the model's
``metadata_props`` (only when it kept some, so other cast models stay byte for byte what
they were); the builder reads them back without loading the weights
(:func:`trtops.onnx_facts.model_facts`) and refuses a model cast for other lists. The record
travels inside the file, so a worker that gets only the model checks it too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from trtops.prepare.options import KeepLists

METADATA_KEY = "trtops.cast.keep_fp32"


@dataclass(frozen=True)
class KeptRecord:
    """The record of a cast: the lists it applied and the nodes they matched (names, or the
    first output of an unnamed node), in graph order."""

    lists: KeepLists
    nodes: tuple[str, ...]


def write_record(model: Any, record: KeptRecord) -> None:
    """Put ``record`` into ``model.metadata_props`` (an ``onnx.ModelProto``; replaces an older one)."""
    value = json.dumps({"keep_fp32": list(record.lists.keep_fp32),
                        "keep_fp32_outputs": list(record.lists.keep_fp32_outputs),
                        "nodes": list(record.nodes)}, separators=(",", ":"))
    for index in reversed(range(len(model.metadata_props))):
        if model.metadata_props[index].key == METADATA_KEY:
            del model.metadata_props[index]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, value


def parse_record(value: str) -> KeptRecord | None:
    """A record from its metadata value, or None when it is not one trtops wrote."""
    try:
        data = json.loads(value)
        lists = KeepLists(tuple(map(str, data["keep_fp32"])), tuple(map(str, data["keep_fp32_outputs"])))
        return KeptRecord(lists, tuple(map(str, data["nodes"])))
    except (ValueError, KeyError, TypeError):
        return None


def read_record(path: str | os.PathLike[str]) -> KeptRecord | None:
    """The record of the model at ``path``, or None (cast keeping nothing, or not cast).

    Raises:
        InputError: the file is not a valid ONNX model.
    """
    from trtops.onnx_facts import model_facts

    value = dict(model_facts(path).metadata).get(METADATA_KEY)
    return parse_record(value) if value is not None else None


def kept_problem(wanted: KeepLists, record: KeptRecord | None, cast: str) -> str | None:
    """Why a model cast to ``cast`` with ``record`` does not hold the nodes ``wanted`` names
    in fp32, or None."""
    have = record.lists if record is not None else KeepLists()
    if have == wanted:
        return None
    if not have:
        return (f"keep_fp32 holds {wanted.text()}, and the model was cast to {cast} without them: a strongly "
                "typed network ignores layer precisions, so the cast must leave them in float32; build through "
                "`trtops apply` (its preparation stage does), or pass the model of "
                "trtops.prepare.runner.ensure_prepared(..., cast, keep)")
    if not wanted:
        return (f"the model was cast to {cast} keeping {have.text()}, which this engine's keep_fp32 does not "
                "ask for; prepare it again without them")
    return (f"the model was cast to {cast} keeping {have.text()}, and this engine's keep_fp32 asks for "
            f"{wanted.text()}; prepare it again with the engine's lists")
