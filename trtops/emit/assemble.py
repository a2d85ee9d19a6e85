"""Assemble the runtime's source parts (:mod:`trtops.emit.runtime`) into the one standalone
module an emitted Python loader ships.

The result is deterministic byte for byte: the parts in :data:`PARTS` order, their imports
merged into one block (sorted as ruff's isort does, so the emitted module stays lint-clean),
imports between parts dropped (they share one namespace once concatenated), and the dtype
table regenerated from :mod:`trtops.dtypes`.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

from trtops.dtypes import NUMPY_LACKS, TRT_TO_NUMPY
from trtops.errors import InternalError

RUNTIME_DIR = Path(__file__).with_name("runtime")
# Order matters only for what runs at import: bases before subclasses, the header first.
PARTS = ("header", "dtypes", "errors", "shapes", "inputs", "integrity", "cuda", "trt_io",
         "engine")
DTYPES_BEGIN = "# --- trtops:generated:dtypes:begin ---"
DTYPES_END = "# --- trtops:generated:dtypes:end ---"
_LINE_WIDTH = 88
_RULER = "# " + "-" * 75


def dtype_block() -> str:
    """The runtime's dtype table, generated from :data:`trtops.dtypes.TRT_TO_NUMPY`."""
    rows = "".join(f'    "{trt}": "{name}",\n' for trt, name in TRT_TO_NUMPY.items())
    lacks = ", ".join(f'"{name}"' for name in NUMPY_LACKS)
    return (f"{DTYPES_BEGIN}\n"
            "# Generated from trtops.dtypes when the runtime is assembled (a test keeps this "
            "copy equal).\n"
            "# TensorRT DataType member name -> numpy dtype name.\n"
            f"_TRT_DTYPES = {{\n{rows}}}\n"
            "# dtypes numpy lacks; ml_dtypes provides them.\n"
            f"_ML_DTYPES = ({lacks})\n"
            f"{DTYPES_END}\n")


def part_source(name: str) -> str:
    """A part's source as checked in."""
    return (RUNTIME_DIR / f"{name}.py").read_text(encoding="utf-8")


def _with_generated_dtypes(text: str) -> str:
    begin, end = text.find(DTYPES_BEGIN), text.find(DTYPES_END)
    if begin < 0 or end < begin:
        raise InternalError("the runtime's dtypes part has no generated block")
    return text[:begin] + dtype_block() + text[end + len(DTYPES_END) + 1:]


class _Imports:
    """The imports of every part, merged: ``import x [as y]`` and ``from x import y [as z]``."""

    def __init__(self) -> None:
        self.future: set[str] = set()
        self.plain: set[tuple[str, str | None]] = set()
        self.from_: dict[str, set[tuple[str, str | None]]] = {}

    def add(self, node: ast.stmt, part: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._check(alias.name, part)
                self.plain.add((alias.name, alias.asname))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # another part: the same namespace once assembled
                return
            module = node.module or ""
            if module == "__future__":
                self.future.update(alias.name for alias in node.names)
                return
            self._check(module, part)
            names = self.from_.setdefault(module, set())
            names.update((alias.name, alias.asname) for alias in node.names)

    @staticmethod
    def _check(module: str, part: str) -> None:
        if module.split(".")[0] == "trtops":
            raise InternalError(f"runtime part {part} imports {module}: the emitted loader "
                                "must stand alone")

    def render(self) -> str:
        sections: list[list[str]] = []
        if self.future:
            sections.append([f"from __future__ import {', '.join(sorted(self.future))}"])
        for stdlib in (True, False):
            def wanted(module: str, stdlib: bool = stdlib) -> bool:
                return (module.split(".")[0] in sys.stdlib_module_names) == stdlib

            lines = [f"import {m}" + (f" as {a}" if a else "")
                     for m, a in sorted(self.plain, key=lambda ma: (ma[0].lower(), ma[1] or ""))
                     if wanted(m)]
            lines += [_from_line(m, self.from_[m]) for m in sorted(self.from_, key=str.lower)
                      if wanted(m)]
            if lines:
                sections.append(lines)
        return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _member_order(item: tuple[str, str | None]) -> tuple[int, str]:
    # isort's order-by-type: CONSTANTS, then Classes, then everything else.
    name = item[0]
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


def _from_line(module: str, names: set[tuple[str, str | None]]) -> str:
    members = [n + (f" as {a}" if a else "") for n, a in sorted(names, key=_member_order)]
    line = f"from {module} import {', '.join(members)}"
    if len(line) <= _LINE_WIDTH:
        return line
    return f"from {module} import (\n" + "".join(f"    {m},\n" for m in members) + ")"


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _split(name: str, text: str, imports: _Imports) -> tuple[str | None, str]:
    """A part's docstring and its body (everything after its imports)."""
    tree = ast.parse(text, filename=f"{name}.py")
    statements = list(tree.body)
    docstring = ast.get_docstring(tree, clean=False)
    if docstring is not None:
        statements.pop(0)
    end = tree.body[0].end_lineno if docstring is not None else 0
    while statements and isinstance(statements[0], (ast.Import, ast.ImportFrom)):
        node = statements.pop(0)
        imports.add(node, name)
        end = node.end_lineno or end
    for node in statements:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise InternalError(f"runtime part {name}: imports must come first (line "
                                f"{node.lineno})")
    lines = text.splitlines(keepends=True)
    return docstring, "".join(lines[end:]).strip("\n") + "\n"


@functools.lru_cache(maxsize=1)
def runtime_source() -> str:
    """The standalone runtime: the parts in :data:`PARTS` order as one module (its docstring
    is the header part's, and it holds the header's ``METADATA`` block).

    Raises:
        InternalError: a part breaks the rules above (imports trtops, imports after code,
            defines a name another part defines, has no docstring for the header).
    """
    imports = _Imports()
    bodies: list[str] = []
    owner: dict[str, str] = {}
    header_doc = None
    for name in PARTS:
        text = part_source(name)
        if name == "dtypes":
            text = _with_generated_dtypes(text)
        for defined in _top_level_names(ast.parse(text)):
            if defined in owner:
                raise InternalError(f"runtime parts {owner[defined]} and {name} both define "
                                    f"{defined!r}")
            owner[defined] = name
        docstring, body = _split(name, text, imports)
        if name == PARTS[0]:
            header_doc = docstring
            bodies.append(body)
        else:
            bodies.append(f"{_RULER} {name}\n\n\n{body}")
    if not header_doc:
        raise InternalError("the runtime's header part has no docstring")
    source = ('"""' + header_doc + '"""\n\n' + imports.render() + "\n"
              + "\n\n".join(bodies))
    compile(source, "runtime.py", "exec")
    return source
