"""Guards of the package layout (issue #16): no ``build`` package, no module over 900 lines,
no import cycles, and TensorRT imported only by trtops/trt.

Imports are read with ``ast`` (nothing is imported; ``if TYPE_CHECKING:`` blocks never run and
are skipped). Cycles are checked twice: among module-level imports (those break at import
time), and counting imports inside functions too (lazy imports are right for heavy packages,
but a cycle through them still shows tangled layering). ``python tests/unit/test_layout.py``
prints both lists.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "trtops"

MAX_LINES = 900
# The emitted loader's runtime: source parts assembled into one standalone file at emit time,
# and the only code besides trtops/trt that may import tensorrt (it runs without trtops).
EMITTED_RUNTIME = PACKAGE / "emit" / "runtime"
TENSORRT_PACKAGE = PACKAGE / "trt"


def _module_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


@dataclass(frozen=True)
class Import:
    """One imported module name, where it was imported, and whether at module level."""

    module: str
    line: int
    module_level: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> list[Import]:
    """The modules the file ``path`` of trtops imports (see :func:`_imports_in`)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package, modules)


def _imports_in(source: str, package: str, modules: set[str]) -> list[Import]:
    """The modules ``source`` (a module of ``package``) imports, trtops' own and others.

    ``if TYPE_CHECKING:`` blocks are skipped (they never run). ``from pkg import name``
    counts as importing ``pkg.name`` when that is one of ``modules``, else ``pkg``.
    """
    tree = ast.parse(source)
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, module_level)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, module_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(Import(candidate if candidate in modules else base, node.lineno, module_level))
        in_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, module_level and not in_function)

    visit(tree, True)
    return found


def _import_graph(*, module_level_only: bool) -> dict[str, set[str]]:
    files = _module_files()
    modules = {_module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        name = _module_name(path)
        graph[name] = {
            imp.module for imp in _imports(path, modules)
            if imp.module in modules and imp.module != name and (imp.module_level or not module_level_only)
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    # Restored afterwards: a raised limit leaking into later tests changes how deep YAML
    # fails to compose (tests/unit/manifest), i.e. makes them depend on test order.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                connect(node)
    finally:
        sys.setrecursionlimit(limit)
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, as ``[a, b, ..., a]``."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    return sorted(component)  # pragma: no cover - a component always has a cycle


def _render(cycles: list[list[str]]) -> str:
    return "\n".join("  " + " -> ".join(cycle) for cycle in cycles)


def test_no_package_named_build():
    # `build/` is what tools take for build output and skip (the TensorRT layer is trtops/trt).
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("build") if p.is_dir()]
    assert not offenders, f"rename these packages: {offenders}"


def test_no_module_over_900_lines():
    long_modules = {
        str(path.relative_to(ROOT)): count
        for path in _module_files()
        if not _inside(path, EMITTED_RUNTIME)
        and (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long_modules, f"modules over {MAX_LINES} lines (split them by concern): {long_modules}"


def test_no_import_cycles_among_module_level_imports():
    cycles = _cycles(_import_graph(module_level_only=True))
    assert not cycles, "import cycles (module-level imports):\n" + _render(cycles)


def test_no_import_cycles_through_lazy_imports_either():
    # An import inside a function breaks a cycle at run time but not in the layering: issue #16
    # names three such cycles (apply <-> jobs, journal -> sync -> journal, load -> check -> load).
    cycles = _cycles(_import_graph(module_level_only=False))
    assert not cycles, "import cycles (counting imports inside functions):\n" + _render(cycles)


def test_only_the_trt_package_imports_tensorrt():
    modules = {_module_name(p) for p in _module_files()}
    offenders = [
        f"{path.relative_to(ROOT)}:{imp.line}"
        for path in _module_files()
        if not _inside(path, TENSORRT_PACKAGE) and not _inside(path, EMITTED_RUNTIME)
        for imp in _imports(path, modules)
        if imp.module.split(".")[0] in ("tensorrt", "tensorrt_bindings")
    ]
    assert not offenders, f"only trtops/trt may import tensorrt: {offenders}"


def test_import_reader_resolves_relative_imports_and_tells_lazy_from_module_level():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import trtops.names\n"
        "from . import jobs\n"
        "from ..errors import BuildError\n"
        "if TYPE_CHECKING:\n"
        "    import tensorrt\n"
        "class C:\n"
        "    import json\n"
        "def f():\n"
        "    from trtops.ops import apply\n"
        "    import tensorrt as trt\n"
    )
    modules = {"trtops.names", "trtops.errors", "trtops.executors.jobs", "trtops.ops.apply", "trtops.ops"}
    found = [(i.module, i.module_level) for i in _imports_in(source, "trtops.executors", modules)]
    assert found == [
        ("typing", True), ("trtops.names", True), ("trtops.executors.jobs", True), ("trtops.errors", True),
        ("json", True), ("trtops.ops.apply", False), ("tensorrt", False),
    ]


def test_cycle_finder_finds_a_cycle_and_names_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def main() -> int:
    module_level = _cycles(_import_graph(module_level_only=True))
    print(f"module-level import cycles: {len(module_level)}")
    print(_render(module_level))
    every = _cycles(_import_graph(module_level_only=False))
    print(f"cycles counting imports inside functions too: {len(every)}")
    print(_render(every))
    return 1 if module_level or every else 0


if __name__ == "__main__":
    sys.exit(main())
