"""The emitted Python loader module: valid, lint-clean, safe with hostile names, and able
to find its engine file by each kind of reference."""

from __future__ import annotations

import ast
import hashlib
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from emit_fakes import (
    affine_engine,
    engine_bytes,
    engine_io_json,
    import_file,
    mixed_engine,
)

from trtops.emit import python_loader
from trtops.emit.assemble import runtime_source
from trtops.emit.python_loader import (
    EngineRef,
    LoaderInfo,
    format_literal,
    module_name_for,
    py_str,
    render_loader,
    write_loader,
)
from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.errors import InputError

HOSTILE = [
    '"; import os #',
    "'; import os #",
    '"""',
    "'''",
    "a\\",
    "line\nbreak",
    "\r\x00\x1b[31m",
    "\u202eevil\u2066",  # bidi overrides: must not reach the source unescaped
    "\udc80",  # lone surrogate
    "\U0001f600",
    "__import__('os').system('touch PWNED')",
    "x" * 400,
]


def _ruff() -> list[str] | None:
    candidate = Path(sys.executable).with_name("ruff")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("ruff")
    return [found] if found else None


def _hostile_io() -> EngineIO:
    tensors = tuple(TensorIO(name, "input", "float32", (-1, 4)) for name in HOSTILE)
    tensors += (TensorIO("out'\"", "output", "float32", (-1, 4)),)
    profile = ProfileShapes(tuple((name, (1, 4), (2, 4), (8, 4)) for name in HOSTILE))
    return EngineIO(tensors, (profile,))


def _info(**overrides) -> LoaderInfo:
    fields = {"module": "fake_fp16_lab", "model": "fake", "precision": "fp16",
              "target": "lab", "key": "b" * 64, "tensorrt": "8.6.0",
              "gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    fields.update(overrides)
    return LoaderInfo(**fields)


def _render(io: EngineIO, **info) -> str:
    return render_loader(io, EngineRef("copy", "a" * 64, path="fake_fp16_lab.plan"),
                         _info(**info))


def test_py_str_round_trips_every_character_as_ascii():
    for text in HOSTILE + ["", "plain", "it's", 'say "hi"', "\\n", "\t"]:
        literal = py_str(text)
        assert literal.isascii()
        assert "\n" not in literal and "\r" not in literal
        assert ast.literal_eval(literal) == text


def test_format_literal_is_valid_and_exact():
    data = {"a": [1, -1, 2.5, None, True], "b": {"c" * 90: ["x" * 100, {"d": []}]}, "e": {}}
    text = format_literal(data)
    assert ast.literal_eval(text) == data
    assert "\n" in text  # too long for one line: exploded with trailing commas
    assert format_literal({"a": [1, 2]}) == '{"a": [1, 2]}'


def test_rendered_module_compiles_and_carries_the_io(tmp_path: Path):
    io = EngineIO.from_json(engine_io_json(mixed_engine()))
    source = _render(io)
    path = tmp_path / "fake_fp16_lab.py"
    path.write_text(source, encoding="ascii")
    py_compile.compile(str(path), doraise=True)
    tree = ast.parse(source)
    assert ast.get_docstring(tree).startswith("TensorRT loader for fake fp16 (target lab).")
    (metadata,) = [node for node in tree.body if isinstance(node, ast.AnnAssign)
                   and getattr(node.target, "id", None) == "METADATA"]
    value = ast.literal_eval(metadata.value)
    assert value["io"] == io.to_json()
    assert value["engine"]["mode"] == "copy"
    assert value["engine"]["env"] == "TRTOPS_ENGINE_FAKE_FP16_LAB"
    assert "image float32 [-1, 3, -1, -1]" in ast.get_docstring(tree)
    assert "engine.infer(image=..., scale=...)" in ast.get_docstring(tree)


def test_the_runtime_is_copied_verbatim_outside_header_and_metadata():
    template = runtime_source()
    source = _render(EngineIO.from_json(engine_io_json(affine_engine())))
    body = template[template.index("from __future__"):]
    emitted = source[source.index("from __future__"):]
    def strip(text: str) -> str:
        return (text[:text.index(python_loader.BEGIN_MARKER)]
                + text[text.index(python_loader.END_MARKER):])

    assert strip(body) == strip(emitted)


def test_hostile_tensor_names_are_data_never_code(tmp_path: Path, monkeypatch):
    io = _hostile_io()
    source = _render(io)
    assert source.isascii()
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree)
    for name in HOSTILE:
        if name != "x" * 400:
            assert name not in docstring
    # No statement besides the runtime's own: the names added no code.
    template_tree = ast.parse(runtime_source())
    assert [type(n).__name__ for n in tree.body] == [type(n).__name__ for n in template_tree.body]
    path = tmp_path / "fake_fp16_lab.py"
    path.write_text(source, encoding="ascii")
    monkeypatch.chdir(tmp_path)
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('m', {str(path)!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "names = [t['name'] for t in m.METADATA['io']['tensors']]\n"
            "print(ascii(names))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert ast.literal_eval(result.stdout.strip()) == HOSTILE + ["out'\""]
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("io_factory", [
    lambda: EngineIO.from_json(engine_io_json(mixed_engine())),
    _hostile_io,
])
def test_emitted_module_is_lint_clean_and_formatted(tmp_path: Path, io_factory):
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "fake_fp16_lab.py"
    path.write_text(_render(io_factory()), encoding="ascii")
    # An isolated config: ruff's defaults, whatever the project configures.
    (tmp_path / "ruff.toml").write_text("")
    lint = subprocess.run([*ruff, "check", "--no-cache", str(path)], capture_output=True,
                          text=True, cwd=tmp_path, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    strict = subprocess.run(
        [*ruff, "check", "--no-cache", "--select", "E,F,W,B,BLE,UP,SIM,I,RUF", "--ignore",
         "B905,E501", "--target-version", "py310", str(path)],
        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert strict.returncode == 0, strict.stdout + strict.stderr
    if io_factory is not _hostile_io:  # 400-character names cannot fit a line anyway
        fmt = subprocess.run([*ruff, "format", "--no-cache", "--check", "--diff", str(path)],
                             capture_output=True, text=True, cwd=tmp_path, check=False)
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_emitted_module_imports_without_tensorrt_or_cuda(tmp_path: Path):
    path = tmp_path / "fake_fp16_lab.py"
    path.write_text(_render(EngineIO.from_json(engine_io_json(affine_engine()))))
    code = ("import importlib.util, sys\n"
            "sys.modules['tensorrt'] = None\n"  # any import of it would fail
            f"spec = importlib.util.spec_from_file_location('m', {str(path)!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "heavy = [n for n in ('pycuda', 'cuda', 'trtops', 'torch') if n in sys.modules]\n"
            "print(heavy, m.check_inputs(x=[[1.0] * 4] * 3))\n")
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                p for p in sys.path if p)}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] 0"


@pytest.mark.parametrize("field,value", [
    ("module", "1abc"), ("module", "class"), ("module", "a-b"), ("module", "a" * 65),
    ("model", "x; import os"), ("target", "a b"), ("precision", "fp16\n"),
])
def test_unsafe_identifiers_are_refused(field, value):
    with pytest.raises(InputError):
        _render(EngineIO.from_json(engine_io_json(affine_engine())), **{field: value})


def test_unsupported_dtype_is_refused():
    io = EngineIO((TensorIO("x", "input", "float64", (1,)), TensorIO("y", "output", "float32",
                                                                    (1,))), ())
    with pytest.raises(InputError, match="float64"):
        _render(io)


def test_module_name_for_long_names_stays_an_identifier():
    name = module_name_for("m" * 60, "fp16", "t" * 60)
    assert python_loader.IDENTIFIER_RE.fullmatch(name)
    assert module_name_for("resnet50", "fp16", "h100") == "resnet50_fp16_h100"


# --------------------------------------------------------------------------- engine refs


def test_copy_reference(emit_fake, tmp_path: Path):
    module, emitted = emit_fake(affine_engine(), engine_ref="copy")
    assert emitted.engine_path == tmp_path / "loaders" / "fake_fp16_lab.plan"
    assert emitted.engine_path.read_bytes() == engine_bytes(affine_engine())
    assert Path(module.resolve_engine_path()) == emitted.engine_path
    # Moving the directory keeps the module working: the path is relative to it.
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "loaders", moved)
    again = import_file(moved / "fake_fp16_lab.py")
    assert Path(again.resolve_engine_path()) == moved / "fake_fp16_lab.plan"


def test_relative_reference(emit_fake, tmp_path: Path):
    module, emitted = emit_fake(affine_engine(), engine_ref="relative")
    assert emitted.engine_path is None
    assert module.METADATA["engine"]["path"] == "../cache/engine.plan"
    assert Path(module.resolve_engine_path()) == tmp_path / "cache" / "engine.plan"


def test_env_reference(emit_fake, tmp_path: Path, monkeypatch):
    module, emitted = emit_fake(affine_engine(), engine_ref="env")
    monkeypatch.delenv(emitted.env_var, raising=False)
    with pytest.raises(module.EngineLoadError, match="TRTOPS_ENGINE_FAKE_FP16_LAB"):
        module.resolve_engine_path()
    monkeypatch.setenv(emitted.env_var, str(tmp_path / "x.plan"))
    assert module.resolve_engine_path() == str(tmp_path / "x.plan")


def test_key_reference(emit_fake, tmp_path: Path, monkeypatch):
    with pytest.raises(InputError):
        emit_fake(affine_engine(), engine_ref="key")  # no key known
    key = hashlib.sha256(b"k").hexdigest()
    module, _ = emit_fake(affine_engine(), engine_ref="key", key=key)
    monkeypatch.setenv("TRTOPS_CACHE", str(tmp_path / "c"))
    assert Path(module.resolve_engine_path()) == \
        tmp_path / "c" / "engines" / key[:2] / key / "engine.plan"


def test_env_variable_overrides_every_reference(emit_fake, tmp_path: Path, monkeypatch):
    module, emitted = emit_fake(affine_engine(), engine_ref="copy")
    monkeypatch.setenv(emitted.env_var, "/somewhere/else.plan")
    assert module.resolve_engine_path() == "/somewhere/else.plan"


def test_rewriting_is_idempotent(emit_fake, tmp_path: Path):
    _, first = emit_fake(affine_engine())
    before = first.module_path.read_bytes(), first.engine_path.stat().st_mtime_ns
    _, second = emit_fake(affine_engine())
    assert second.module_path.read_bytes() == before[0]
    assert second.engine_path.stat().st_mtime_ns == before[1]  # identical copy kept


def test_missing_engine_file(tmp_path: Path):
    with pytest.raises(InputError, match="does not exist"):
        write_loader(tmp_path, EngineIO.from_json(engine_io_json(affine_engine())),
                     tmp_path / "nope.plan", _info())
