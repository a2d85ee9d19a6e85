"""The fix ``trtops repair`` writes: a model's ``keep_fp32`` list edited into the manifest's
text, everything else kept byte for byte (comments, anchors, key order, quoting, line
endings); never a re-dump of the YAML. The positions come from the loader's index
(:class:`trtops.manifest.load.LoadedManifest`, 1-based line and column).

Rules:

* the list goes right after the model's ``name:`` line, at the column of its keys (a
  ``name:`` value is one line: identifiers only), so it lands inside the model whatever
  order its keys are in;
* a list already there is replaced, with its value lines (block items at the key's
  column or deeper, a flow list over several lines);
* a short list is written in flow style (``keep_fp32: [a, b]``), a long one as a block
  sequence indented the way the file indents ``models:`` (``- `` under the key, or
  further in);
* names that are not plain YAML scalars are written as double-quoted (JSON) strings.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trtops.errors import InputError

FIELDS = ("keep_fp32", "keep_fp32_outputs")
_PLAIN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_FLOW_WIDTH = 100


@dataclass(frozen=True)
class ManifestPatch:
    """The edited manifest text and its unified diff."""

    path: str
    old: str
    new: str

    @property
    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True),
                                            fromfile=f"a/{self.path}", tofile=f"b/{self.path}"))

    @property
    def changed(self) -> bool:
        return self.old != self.new


def yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when unambiguous, else a double-quoted string."""
    if _PLAIN_RE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _value_end(lines: Sequence[str], key_line: int, column: int) -> int:
    """Index after the last line of the value of the key on ``key_line`` (0-based), whose
    key starts at 0-based ``column``."""
    first = lines[key_line]
    rest = first[column:].split(":", 1)[1] if ":" in first[column:] else ""
    rest = rest.split(" #", 1)[0].strip()
    end = key_line + 1
    if rest.startswith("[") and "]" not in rest:  # a flow list over several lines
        while end < len(lines):
            closed = "]" in lines[end]
            end += 1
            if closed:
                break
        return end
    if rest:
        return end
    last = end
    while end < len(lines):
        line = lines[end]
        if _is_blank(line):
            end += 1
            continue
        indent = _indent(line)
        if indent > column or (indent == column and line.lstrip(" ").startswith("- ")):
            end += 1
            last = end
            continue
        break
    return last


def _render(field: str, values: Sequence[str], column: int, item_offset: int) -> list[str]:
    pad = " " * column
    flow = f"{pad}{field}: [{', '.join(yaml_scalar(v) for v in values)}]"
    if len(values) <= 4 and len(flow) <= _FLOW_WIDTH:
        return [flow]
    item_pad = " " * (column + item_offset)
    return [f"{pad}{field}:"] + [f"{item_pad}- {yaml_scalar(v)}" for v in values]


def keep_fp32_patch(lm: Any, index: int, lists: Mapping[str, Sequence[str]]) -> ManifestPatch:
    """The manifest of ``lm`` with model ``index``'s keep lists set to ``lists``.

    Args:
        lm: the :class:`trtops.manifest.load.LoadedManifest` (its file is read again).
        index: the model's position in ``models:``.
        lists: ``{"keep_fp32": [...], "keep_fp32_outputs": [...]}``; an empty or missing
            list leaves that field as it is.

    Returns:
        The :class:`ManifestPatch`.

    Raises:
        InputError: the model is written in flow style (``- {name: ...}``), which this
            editor does not rewrite (the message gives the lines to add by hand).
    """
    raw = lm.path.read_bytes().decode("utf-8")
    newline = "\r\n" if "\r\n" in raw else "\n"
    lines = raw.split(newline)
    index_ = lm._index
    name_key = index_.keys.get(("models", index, "name"))
    item = index_.values.get(("models", index))
    if name_key is None or item is None:
        raise InputError(f"{lm.path}: cannot find model {index} in the file")
    line0, column = name_key[0] - 1, name_key[1] - 1
    item_line, item_col = item[0] - 1, item[1] - 1
    wanted = {f: list(v) for f, v in lists.items() if f in FIELDS and v}
    if lines[item_line][item_col:item_col + 1] == "{":
        block = "\n".join(line for f, v in wanted.items() for line in _render(f, v, 0, 2))
        raise InputError(f"{lm.path}:{item[0]}: the model is written in flow style ({{...}}), which "
                         "trtops does not edit", hint=f"add to the model by hand:\n{block}")
    item_offset = _sequence_offset(index_)
    edits: list[tuple[int, int, list[str]]] = []  # (start, end, new lines), on the original
    insert_at = line0 + 1
    for field in FIELDS:
        if field not in wanted:
            continue
        rendered = _render(field, wanted[field], column, item_offset)
        key = index_.keys.get(("models", index, field))
        if key is not None:
            start = key[0] - 1
            edits.append((start, _value_end(lines, start, key[1] - 1), rendered))
        else:
            edits.append((insert_at, insert_at, rendered))
    new_lines = list(lines)
    for start, end, rendered in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        new_lines[start:end] = rendered
    return ManifestPatch(str(lm.path), raw, newline.join(new_lines))


def _sequence_offset(index: Any) -> int:
    """How far this file indents block sequence items past their key (``models:`` then
    ``- name``): 0 or 2 (or whatever it uses)."""
    key = index.keys.get(("models",))
    item = index.values.get(("models", 0))
    if key is None or item is None or item[0] == key[0]:
        return 2
    # The item's mark is its first key, two columns after its dash.
    return max(item[1] - key[1] - 2, 0)
