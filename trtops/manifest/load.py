"""Manifest files → validated :class:`Manifest` objects, with file:line:column for everything.

YAML is composed into nodes with PyYAML's pure-Python *safe* machinery and converted to plain
data by our own walker, which records where every key, value and list item was written,
refuses duplicate keys, unknown tags, alias bombs and runaway nesting. Pydantic's
``ValidationError`` is converted into :class:`~trtops.errors.Problem` objects here and only
here. All problems of all files are collected and raised at once as one
:class:`~trtops.errors.ManifestError`.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from trtops.errors import ManifestError, Problem, SourceLocation
from trtops.manifest.models import ERROR_TYPE, EXTENSION_PREFIX, SOURCE_TAGS, Manifest
from trtops.suggest import closest

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a manifest is a few KiB; anything bigger is a mistake or hostile
MAX_ALIAS_EXPANSIONS = 1000  # counted on every use of an alias, nested uses included
MAX_NODES = 100_000  # after alias expansion
MAX_DEPTH = 64
MANIFEST_SUFFIXES = (".yaml", ".yml")

FieldPath = tuple[Any, ...]
_Mark = tuple[int, int]  # 1-based line, column

_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:timestamp",
}
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# --------------------------------------------------------------------------- locations


@dataclass
class _Index:
    """Where each key, value and list item of a document was written."""

    keys: dict[FieldPath, _Mark] = field(default_factory=dict)
    values: dict[FieldPath, _Mark] = field(default_factory=dict)
    containers: set[FieldPath] = field(default_factory=set)
    #: The text of scalars YAML read as numbers, as written (``10.10``, not ``10.1``).
    numbers: dict[FieldPath, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LoadedManifest:
    """One validated manifest file.

    Attributes:
        path: the file, as found from the paths given to :func:`load_paths`.
        name: the file stem; namespaces the manifest's refs in the cache.
        manifest: the validated schema object.
    """

    path: Path
    name: str
    manifest: Manifest
    _index: _Index = field(default_factory=_Index, repr=False)

    def location(self, *field_path: Any, value: bool = False) -> SourceLocation:
        """Where ``field_path`` (e.g. ``"models", 0, "profiles"``) was written.

        Falls back to the nearest enclosing node that was written (defaults filled in by the
        schema have no line). For a mapping key the key's position is returned unless
        ``value`` is true and the value is a scalar.
        """
        return _locate(str(self.path), self._index, tuple(field_path), value=value)

    def written(self, *field_path: Any) -> bool:
        """Whether ``field_path`` was written in the file (not a default)."""
        return tuple(field_path) in self._index.values


def _locate(file: str, index: _Index, path: FieldPath, *, value: bool = False) -> SourceLocation:
    for end in range(len(path), -1, -1):
        prefix = path[:end]
        prefer_value = value and prefix not in index.containers
        if not prefer_value and prefix in index.keys:
            line, column = index.keys[prefix]
            return SourceLocation(file, line, column)
        if prefix in index.values:
            line, column = index.values[prefix]
            return SourceLocation(file, line, column)
    return SourceLocation(file, 1, 1)


def format_field(path: Iterable[Any]) -> str:
    """``("models", 0, "profiles")`` → ``models[0].profiles``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


# --------------------------------------------------------------------------- YAML


class _YamlProblem(Exception):
    def __init__(self, message: str, mark: _Mark | None = None, hint: str | None = None,
                 path: FieldPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.hint = hint
        self.path = path


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes; values are built by :class:`_Walker`.

    Subclassed so that nothing we register can leak into ``yaml.SafeLoader`` itself.
    """


# YAML 1.1 (PyYAML) reads `1e-3` as a string; YAML 1.2 (editors, yaml-language-server) as a
# number. Tolerances are written like that, so read them as numbers here too.
StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _shorten(text: Any) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:60] + f"... ({len(str(text))} characters)"


def _mark(node: yaml.Node) -> _Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Walker:
    """Node tree → plain data, recording positions; refuses what a manifest never needs."""

    def __init__(self, loader: StrictSafeLoader) -> None:
        self.loader = loader
        self.index = _Index()
        self.nodes = 0
        self.aliases = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def walk(self, node: yaml.Node, path: FieldPath, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _YamlProblem(
                f"the document expands to more than {MAX_NODES} values",
                self._enclosing_key(path, node),
                "this looks like an alias bomb (anchors referencing anchors); write the "
                "manifest out without nested aliases",
            )
        if depth > MAX_DEPTH:
            raise _YamlProblem(f"nesting deeper than {MAX_DEPTH} levels", _mark(node))
        key = id(node)
        if key in self.active:
            raise _YamlProblem("recursive alias: an anchor refers to itself", _mark(node))
        if key in self.seen:
            self.aliases += 1
            if self.aliases > MAX_ALIAS_EXPANSIONS:
                raise _YamlProblem(
                    f"more than {MAX_ALIAS_EXPANSIONS} alias expansions",
                    self._enclosing_key(path, node),
                    "this looks like an alias bomb; use fewer anchors/aliases",
                )
        self.seen.add(key)
        self.index.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _NUMBER_TAGS:
                self.index.numbers[path] = node.value
            return self._scalar(node)
        self.active.add(key)
        try:
            self.index.containers.add(path)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self._bad_tag(node)
                return [self.walk(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    raise self._bad_tag(node)
                return self._mapping(node, path, depth)
        finally:
            self.active.discard(key)
        raise _YamlProblem(f"unsupported YAML node {type(node).__name__}", _mark(node))

    def _enclosing_key(self, path: FieldPath, node: yaml.Node) -> _Mark:
        # An alias resolves to the anchored node itself, whose position is the anchor's;
        # the innermost key being expanded says better where the explosion is written.
        for end in range(len(path) - 1, 0, -1):
            if path[:end] in self.index.keys:
                return self.index.keys[path[:end]]
        return _mark(node)

    def _bad_tag(self, node: yaml.Node) -> _YamlProblem:
        return _YamlProblem(
            f"YAML tag {node.tag!r} is not allowed",
            _mark(node),
            "manifests use plain YAML: mappings, lists, strings, numbers, booleans",
        )

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in _SAFE_SCALAR_TAGS:
            raise self._bad_tag(node)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise _YamlProblem(f"invalid value {_shorten(node.value)}: {exc}",
                               _mark(node)) from None
        except (ValueError, OverflowError) as exc:
            # PyYAML's constructors raise these for a date like 2024-13-45 or an integer
            # of more digits than Python converts (sys.get_int_max_str_digits()).
            raise _YamlProblem(f"invalid value {_shorten(node.value)}: {exc}", _mark(node),
                               "quote it to make it a string") from None

    def _mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, _Mark] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append((key_node, value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlProblem("mapping keys must be plain strings", _mark(key_node))
            key = self._scalar(key_node)
            try:
                hash(key)
            except TypeError:
                raise _YamlProblem("mapping keys must be plain strings", _mark(key_node)) from None
            if key in first_seen:
                line = first_seen[key][0]
                raise _YamlProblem(
                    f"duplicate key {key!r} (first written on line {line})",
                    _mark(key_node),
                    "remove one of them; YAML would silently keep only the last",
                    path + (key,),
                )
            first_seen[key] = _mark(key_node)
            self.index.keys[path + (key,)] = _mark(key_node)
            result[key] = self.walk(value_node, path + (key,), depth + 1)
        # YAML merge keys ('<<: *defaults'): explicit keys win over merged ones.
        merge_index = 0
        for _key_node, value_node in merged:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _YamlProblem("'<<' merges mappings only", _mark(source))
                # A private path per merged mapping, so that locations never mix.
                scratch = path + (("<<", merge_index),)
                merge_index += 1
                data = self.walk(source, scratch, depth + 1)
                for sub_key, sub_value in data.items():
                    if sub_key in result:
                        continue
                    result[sub_key] = sub_value
                    self._copy_locations(scratch, path, sub_key)
        return result

    def _copy_locations(self, src: FieldPath, dst: FieldPath, key: Any) -> None:
        prefix = src + (key,)
        for table in (self.index.keys, self.index.values):
            for old, mark in list(table.items()):
                if old[: len(prefix)] == prefix:
                    table.setdefault(dst + old[len(src):], mark)
        for old in list(self.index.containers):
            if old[: len(prefix)] == prefix:
                self.index.containers.add(dst + old[len(src):])


def _yaml_error_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}"
    context_mark = getattr(exc, "context_mark", None)
    if context:
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            context += f" started on line {context_mark.line + 1}"
        message += f" ({context})"
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    hint = "check the indentation and quoting around this line"
    lines = text.splitlines()
    if line is not None and (
        "\t" in problem or "tab" in problem
        or (0 < line <= len(lines) and "\t" in lines[line - 1][: max(column or 1, 1)])
    ):
        hint = "YAML does not allow tabs for indentation; indent with spaces"
    if context and "single document" in context:
        message = "the file holds more than one YAML document ('---')"
        hint = "a manifest is one document; split it into several files"
    if isinstance(exc, yaml.reader.ReaderError):
        position = min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = exc.character
        shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
        message = f"invalid character {shown} in the file: {exc.reason}"
        hint = "manifests are UTF-8 text without control characters"
    return Problem(SourceLocation(file, line, column), "", message, hint)


def _too_deep(text: str, file: str) -> Problem:
    """The problem for a document too deep for the (recursive) YAML composer.

    Whether composing runs out of stack depends on the interpreter's recursion limit, so the
    location comes from the (iterative) event stream instead: the first collection deeper
    than MAX_DEPTH, the same place the walker names when composing succeeds.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH + 1:  # the document's root collection is depth 0
                    mark = event.start_mark
                    return Problem(SourceLocation(file, mark.line + 1, mark.column + 1), "",
                                   f"nesting deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return Problem(SourceLocation(file), "", f"nesting deeper than {MAX_DEPTH} levels")


def parse_yaml(text: str, file: str) -> tuple[Any, _Index]:
    """Parse one YAML document into plain data and the positions of its nodes.

    Raises:
        ManifestError: syntax errors, duplicate keys, unsupported tags, alias bombs.
    """
    try:
        loader = StrictSafeLoader(text)  # the reader already refuses control characters
    except yaml.YAMLError as exc:
        raise ManifestError([_yaml_error_problem(file, text, exc)]) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ManifestError([_too_deep(text, file)]) from None
        except yaml.YAMLError as exc:
            raise ManifestError([_yaml_error_problem(file, text, exc)]) from None
        if node is None:
            raise ManifestError([Problem(
                SourceLocation(file, 1, 1), "", "the file is empty",
                "a manifest starts with 'version: 1' and lists targets: and models:",
            )])
        walker = _Walker(loader)
        try:
            data = walker.walk(node, ())
        except _YamlProblem as exc:
            line, column = exc.mark if exc.mark else (None, None)
            raise ManifestError([Problem(
                SourceLocation(file, line, column), format_field(exc.path), exc.message, exc.hint,
            )]) from None
        except RecursionError:
            raise ManifestError([_too_deep(text, file)]) from None
        return data, walker.index
    finally:
        loader.dispose()


def read_manifest_text(path: Path) -> str:
    """Read a manifest file, refusing oversized, binary and non-UTF-8 files."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise ManifestError([Problem(SourceLocation(file), "", "is a directory, not a manifest file")]) from None
    except OSError as exc:
        raise ManifestError([Problem(SourceLocation(file), "", f"cannot read: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ManifestError([Problem(
            SourceLocation(file), "",
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB; refusing to parse it",
            "a manifest is a few KiB of YAML; is this the right file?",
        )])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError([Problem(
            SourceLocation(file, line, column), "", "the file is not UTF-8 text",
            "save the manifest as UTF-8",
        )]) from None


# --------------------------------------------------------------------------- pydantic errors


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _pick_member(annotation: Any, data: Any, segment: Any = None) -> Any:
    """The member of a union (Optional, or the source union) that ``data`` is written as."""
    members = [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if isinstance(data, dict) and models:
        if segment is not None:
            models = [m for m in models if segment in m.model_fields] or models
        if "url" in data:  # the source union: written with 'url' it is a UrlSource
            models = [m for m in models if "url" in m.model_fields] or models
        return models[0]
    return members[0] if members else None


def _step_type(annotation: Any, segment: Any, data: Any) -> Any:
    """The type found one step (``segment``) into ``data`` of type ``annotation``."""
    annotation = _unwrap(annotation)
    if _is_union(annotation):
        annotation = _unwrap(_pick_member(annotation, data, segment))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(segment) if isinstance(segment, str) else None
        return info.annotation if info is not None else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, Sequence) and args:
        return args[0]
    if origin in (dict, typing.Mapping) and len(args) == 2:
        return args[1]
    return None


def _model_at(path: FieldPath, data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at ``path``."""
    annotation: Any = Manifest
    for segment in path:
        annotation = _step_type(annotation, segment, data)
        if isinstance(data, dict):
            data = data.get(segment)
        elif isinstance(data, list) and isinstance(segment, int) and 0 <= segment < len(data):
            data = data[segment]
        else:
            data = None
        if annotation is None:
            return None
    annotation = _unwrap(annotation)
    if _is_union(annotation):
        annotation = _unwrap(_pick_member(annotation, data))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _humanize(error: dict[str, Any], field_path: FieldPath, data: Any,
              written: str | None = None) -> tuple[str, str | None]:
    """Pydantic error → (message, hint); ``written`` is a number's text as in the file."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    last = field_path[-1] if field_path else None
    if kind == ERROR_TYPE:
        return str(ctx.get("message", error["msg"])), None
    if kind == "missing":
        model = _model_at(field_path[:-1], data)
        info = model.model_fields.get(last) if model is not None and isinstance(last, str) else None
        hint = None
        if info is not None and info.description:
            hint = info.description[0].lower() + info.description[1:].rstrip(".")
        return f"missing required key {last!r}", hint
    if kind == "extra_forbidden":
        model = _model_at(field_path[:-1], data)
        allowed = sorted(model.model_fields) if model is not None else []
        guess = closest(last, allowed)
        message = f"unknown key {last!r}"
        if guess:
            message += f"; did you mean {guess!r}?"
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else None
        return message, hint
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if field_path == ("version",):
            return (f"unsupported manifest version {_short(value)}",
                    "this trtops reads 'version: 1' manifests")
        message = f"expected one of {', '.join(options)}; got {_short(value)}" if options else error["msg"]
        guess = closest(value, options)
        hint = f"did you mean {guess!r}?" if guess else None
        if isinstance(value, bool):
            hint = "YAML reads unquoted yes/no/on/off as booleans; quote the word"
        return message, hint
    if kind in _TYPE_NAMES:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        shown = written if number and written is not None else _short(value)
        message = f"expected {_TYPE_NAMES[kind]}, got {shown}"
        hint = None
        if kind == "string_type" and number:
            # The text as written: YAML read `10.10` as the float 10.1.
            hint = f"YAML read this as a number; quote it: '{shown}'"
        elif kind == "string_type" and isinstance(value, bool):
            hint = "YAML reads unquoted yes/no/on/off/true/false as booleans; quote the word"
        elif kind in ("int_parsing", "int_type") and isinstance(value, str) and "profiles" in field_path:
            hint = "profiles give concrete sizes; symbolic dims belong in the ONNX model"
        return message, hint
    if kind == "finite_number":
        return f"expected a finite number, got {_short(value)}", None
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), None)
        words = {"greater_than_equal": "at least", "greater_than": "greater than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        return f"must be {words} {bound}, got {_short(value)}", None
    if kind == "too_short":
        minimum = ctx.get("min_length", 1)
        return f"must list at least {minimum} item{'s' if minimum != 1 else ''}", None
    if kind == "too_long":
        return f"must list at most {ctx.get('max_length')} items", None
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return "expected a path or a mapping {url: ..., sha256: ...}", None
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message, None


def _resolve_loc(loc: Sequence[Any], data: Any) -> tuple[FieldPath, FieldPath, bool]:
    """Pydantic ``loc`` → (path of data that exists, field path to report, is a key error)."""
    present: list[Any] = []
    reported: list[Any] = []
    key_error = False
    node = data
    found = True
    for segment in loc:
        if segment == "[key]":
            key_error = True
            continue
        if segment in SOURCE_TAGS and not (isinstance(node, dict) and segment in node):
            continue
        if found and isinstance(node, dict) and segment in node:
            node = node[segment]
            present.append(segment)
            reported.append(segment)
        elif found and isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
            present.append(segment)
            reported.append(segment)
        elif isinstance(segment, str) and ("[" in segment or segment.startswith("function-")):
            continue  # pydantic-internal step (e.g. 'function-after[...]')
        else:
            found = False
            reported.append(segment)
    return tuple(present), tuple(reported), key_error


def validation_problems(exc: ValidationError, data: Any, file: str, index: _Index) -> list[Problem]:
    """Convert a pydantic ``ValidationError`` on ``data`` into located problems."""
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == ERROR_TYPE:
            loc = loc + tuple((error.get("ctx") or {}).get("at", ()))
        present, reported, key_error = _resolve_loc(loc, data)
        message, hint = _humanize(error, reported, data, index.numbers.get(present))
        if key_error and reported and repr(reported[-1]) not in message:
            message = f"key {reported[-1]!r}: {message}"
        value_position = error["type"] not in ("missing", "extra_forbidden") and not key_error
        location = _locate(file, index, present, value=value_position)
        dedupe = (location.line, location.column, format_field(reported), message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        problems.append(Problem(location, format_field(reported), message, hint))
    return problems


# --------------------------------------------------------------------------- files


def find_manifest_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Expand files and directories (their ``*.yaml``/``*.yml``, not recursive), sorted."""
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            if not found:
                problems.append(Problem(
                    SourceLocation(str(path)), "", "no manifest files (*.yaml, *.yml) in this directory",
                ))
        elif path.exists():
            found = [path]
        else:
            problems.append(Problem(SourceLocation(str(path)), "", "no such file or directory"))
            continue
        for file in found:
            key = os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, problems


def load_file(path: Path) -> tuple[LoadedManifest | None, list[Problem]]:
    """Read, parse and schema-validate one manifest file (no cross-checks)."""
    file = str(path)
    try:
        text = read_manifest_text(path)
        data, index = parse_yaml(text, file)
    except ManifestError as exc:
        return None, exc.problems
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string"}.get(type(data), type(data).__name__)
        return None, [Problem(
            SourceLocation(file, 1, 1), "", f"expected a mapping at the top level, got {kind}",
            "a manifest is a mapping with version:, targets: and models:",
        )]
    # `x-` keys hold YAML anchors for the rest of the file; the schema ignores them.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        return None, validation_problems(exc, data, file, index)
    return LoadedManifest(path=path, name=path.stem, manifest=manifest, _index=index), []
