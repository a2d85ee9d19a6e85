"""Emit a standalone Python loader module for one engine.

The module is the standalone runtime (the parts of :mod:`trtops.emit.runtime`, assembled
by :mod:`trtops.emit.assemble`) copied verbatim, with two parts replaced: the module
docstring (an engine-specific header, built only from validated identifiers and
whitelisted tensor names, followed by the runtime's own documentation)
and the ``METADATA`` block (the engine's I/O, profiles and file reference as a Python
literal). Every string in the literal is written as an ASCII-only, double-quoted literal
with escapes, and the literal is checked to evaluate back to the same data, so no user
string (tensor names, paths) can ever become code. The result is compiled before it is
written.

The emitted module needs only ``tensorrt``, ``numpy`` and ``pycuda`` or ``cuda-python``.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtops import __version__
from trtops.dtypes import PYTHON_LOADER_TYPES
from trtops.emit.assemble import runtime_source
from trtops.emit.entries import Entry, file_sha256, name_part
from trtops.emit.registry import (
    ENGINE_REFS,
    EmitOptions,
    LoaderOutput,
    Refused,
    Written,
)
from trtops.engine_io import EngineIO
from trtops.errors import ExitCode, InputError, InternalError, TrtopsError
from trtops.fsutil import atomic_copy, atomic_write
from trtops.names import IDENTIFIER_RE, SHA256_RE

BEGIN_MARKER = "# --- trtops:metadata:begin ---"
END_MARKER = "# --- trtops:metadata:end ---"
FORMAT_VERSION = 1
LINE_WIDTH = 88  # ruff format's default, so emitted modules pass `ruff format --check`

# Tensor names that may appear in the docstring as they are; any other name is shown as
# "<input 2>" there (the metadata literal carries every name, escaped).
_DOC_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")


@dataclass(frozen=True)
class EngineRef:
    """How an emitted module finds its engine file.

    ``mode``: ``copy`` (the engine is copied next to the module), ``relative`` (a path
    relative to the module, e.g. into the cache), ``env`` (an environment variable names
    the file), ``key`` (the trtops cache key, resolved under ``$TRTOPS_CACHE`` or
    ``cache``), ``absolute`` (a fixed path). ``env`` always names a variable that, when
    set, overrides the other modes.
    """

    mode: str
    sha256: str
    path: str | None = None
    env: str | None = None
    key: str | None = None
    cache: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "sha256": self.sha256, "path": self.path, "env": self.env,
                "key": self.key, "cache": self.cache}


@dataclass(frozen=True)
class LoaderInfo:
    """What the module says about its engine (validated identifiers and versions)."""

    module: str
    model: str | None = None
    precision: str | None = None
    target: str | None = None
    key: str | None = None
    tensorrt: str | None = None
    gpu: str | None = None
    compute_capability: str | None = None
    version_compatible: bool = False


@dataclass(frozen=True)
class EmittedLoader:
    module_path: Path
    engine_path: Path | None  # where a copy was written (copy mode), else None
    env_var: str


def check_identifier(value: str, what: str) -> str:
    """``value`` if it is a safe identifier (letters, digits, '_'; not a keyword)."""
    if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value) or keyword.iskeyword(value):
        raise InputError(
            f"{what} {value!r} is not a safe Python identifier",
            hint="use letters, digits and '_', starting with a letter or '_', at most 64 "
                 "characters, and not a Python keyword")
    return value


def module_name_for(model: str, precision: str, target: str | None = None) -> str:
    """The default module name for an engine: ``<model>_<precision>[_<target>]``."""
    parts = [model, precision] + ([target] if target else [])
    name = "_".join(parts)
    if not IDENTIFIER_RE.fullmatch(name):  # too long once joined: keep it unique by a digest
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return check_identifier(name, "module name")


def env_var_for(module: str) -> str:
    return "TRTOPS_ENGINE_" + check_identifier(module, "module name").upper()


# --------------------------------------------------------------------------- literals


def py_str(text: str) -> str:
    """An ASCII-only Python string literal for any ``str``: escapes for quotes, backslashes,
    control and non-ASCII characters (lone surrogates included), so that no character of a
    name can end the literal or hide in the source (bidi overrides). Quotes as ruff/black
    pick them: double, unless the text holds more double than single quotes."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = [quote]
    for char in text:
        code = ord(char)
        if char in (quote, "\\"):
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_str(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return _atom(value)


def _atom(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InternalError(f"non-finite float {value!r} in loader metadata")
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    raise InternalError(f"unsupported value {type(value).__name__} in loader metadata")


def format_literal(value: Any, indent: int = 0, used: int = 0, trailer: int = 0) -> str:
    """``value`` as a Python literal in ruff/black style: on one line when the line fits
    in :data:`LINE_WIDTH` (``used`` columns before it, ``trailer`` after), otherwise one
    item per line with a trailing comma."""
    flat = _flat(value)
    if not isinstance(value, (dict, list)) or not value or \
            used + len(flat) + trailer <= LINE_WIDTH:
        return flat
    pad = " " * (indent + 4)
    lines = []
    if isinstance(value, dict):
        open_, close = "{", "}"
        for key, item in value.items():
            head = f"{py_str(key)}: "
            lines.append(pad + head + format_literal(item, indent + 4, len(pad) + len(head), 1)
                         + ",")
    else:
        open_, close = "[", "]"
        for item in value:
            lines.append(pad + format_literal(item, indent + 4, len(pad), 1) + ",")
    return open_ + "\n" + "\n".join(lines) + "\n" + " " * indent + close


def _check_plain(value: Any, where: str = "metadata") -> Any:
    """Copy of ``value`` with tuples as lists; only JSON-like types are allowed."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise InternalError(f"{where}: non-string key {key!r}")
        return {key: _check_plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_plain(item, f"{where}[]") for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InternalError(f"{where}: unsupported value of type {type(value).__name__}")


# --------------------------------------------------------------------------- rendering


def _validate_io(io: EngineIO) -> dict[str, Any]:
    data = io.to_json()
    names = [t["name"] for t in data["tensors"]]
    if len(set(names)) != len(names):
        raise InputError("the engine lists a tensor name twice", hint="rebuild the engine")
    if not any(t["mode"] == "input" for t in data["tensors"]):
        raise InputError("the engine has no inputs")
    for tensor in data["tensors"]:
        if tensor["mode"] not in ("input", "output"):
            raise InputError(f"tensor {tensor['name']!r} has mode {tensor['mode']!r}")
        if tensor["dtype"] not in PYTHON_LOADER_TYPES:
            raise InputError(
                f"tensor {tensor['name']!r} has dtype {tensor['dtype']!r}, which the Python "
                "loader does not support", hint=f"supported: {', '.join(PYTHON_LOADER_TYPES)}")
        if any(not isinstance(d, int) or d < -1 for d in tensor["shape"]):
            raise InputError(f"tensor {tensor['name']!r} has an invalid shape {tensor['shape']}")
    inputs = {t["name"]: t for t in data["tensors"] if t["mode"] == "input"}
    for index, profile in enumerate(data["profiles"]):
        for name, ranges in profile.items():
            if name not in inputs:
                raise InputError(f"profile {index} names {name!r}, which is not an input")
            rank = len(inputs[name]["shape"])
            lo, opt, hi = ranges["min"], ranges["opt"], ranges["max"]
            if not len(lo) == len(opt) == len(hi) == rank or not all(
                    0 <= a <= b <= c for a, b, c in zip(lo, opt, hi)):
                raise InputError(f"profile {index} has invalid ranges for {name!r}: "
                                 f"min {lo}, opt {opt}, max {hi}")
    return data


def _doc_name(name: str, index: int, mode: str) -> str:
    return name if _DOC_NAME_RE.fullmatch(name) else f"<{mode} {index}>"


def _shape_text(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _doc_path(path: str | None) -> str:
    """A path as the docstring may show it: plain ASCII as is; any other (non-ASCII, a
    backslash, quotes) by where to find it exactly: METADATA holds every path escaped."""
    text = str(path or "")
    if text and all(32 <= ord(c) < 127 for c in text) and "\\" not in text and '"' not in text:
        return text
    return "the path in METADATA['engine'] (it has characters this docstring does not show)"


def _header(info: LoaderInfo, io_data: dict[str, Any], ref: EngineRef, env_var: str) -> str:
    """The engine-specific part of the docstring (safe text only)."""
    title = " ".join(x for x in (info.model, info.precision) if x) or info.module
    lines = [f"TensorRT loader for {title}"
             + (f" (target {info.target})" if info.target else "") + "."]
    lines.append("")
    lines.append(f"Generated by trtops {__version__}; `trtops emit` overwrites this file.")
    facts = []
    if info.tensorrt:
        facts.append(f"TensorRT {info.tensorrt}")
    if info.gpu or info.compute_capability:
        gpu = info.gpu or "GPU"
        cc = f" (compute capability {info.compute_capability})" if info.compute_capability \
            else ""
        facts.append(f"{gpu}{cc}")
    if facts:
        lines.append("Built with " + ", for ".join(facts) + ".")
    if info.key:
        lines.append(f"Engine key: {info.key}")
    lines.append("")
    where = {
        "copy": f"the engine file next to this module ({_doc_path(ref.path)})",
        "relative": f"{_doc_path(ref.path)}, relative to this module",
        "absolute": _doc_path(ref.path),
        "env": f"the file named by the environment variable {env_var}",
        "key": "the trtops cache entry of the key above, under $TRTOPS_CACHE"
               + (f" (default {_doc_path(ref.cache)})" if ref.cache else ""),
    }[ref.mode]
    lines.append(f"Engine file: {where}; {env_var}, when set, overrides it.")
    lines.append("")
    lines.append("Inputs and outputs (-1: dynamic)::")
    lines.append("")
    counters = {"input": 0, "output": 0}
    for tensor in io_data["tensors"]:
        mode = tensor["mode"]
        name = _doc_name(tensor["name"], counters[mode], mode)
        counters[mode] += 1
        lines.append(f"    {mode:<6} {name} {tensor['dtype']} {_shape_text(tensor['shape'])}")
    for index, profile in enumerate(io_data["profiles"]):
        for position, tensor in enumerate(t for t in io_data["tensors"] if t["mode"] == "input"):
            ranges = profile.get(tensor["name"])
            if ranges is None:
                continue
            name = _doc_name(tensor["name"], position, "input")
            lines.append(f"    profile {index}: {name} min {_shape_text(ranges['min'])} "
                         f"opt {_shape_text(ranges['opt'])} max {_shape_text(ranges['max'])}")
    lines.append("")
    inputs = [t["name"] for t in io_data["tensors"] if t["mode"] == "input"]
    module = info.module
    if all(n.isidentifier() and not keyword.iskeyword(n) for n in inputs):
        call = "engine.infer(" + ", ".join(f"{n}=..." for n in inputs) + ")"
    elif all(_DOC_NAME_RE.fullmatch(n) for n in inputs):
        call = "engine.infer({" + ", ".join(f"'{n}': ..." for n in inputs) + "})"
    else:
        call = "engine.infer({name: array, ...})"
    lines += ["Example::", "", f"    from {module} import Engine", "",
              "    engine = Engine()", f"    outputs = {call}"]
    text = "\n".join(lines)
    # Defense in depth: the pieces above are validated, but never let the docstring end.
    if '"""' in text or "\\" in text or any(not (32 <= ord(c) < 127 or c == "\n") for c in text):
        raise InternalError("unsafe text in the loader docstring")
    return text


def render_loader(io: EngineIO, ref: EngineRef, info: LoaderInfo) -> str:
    """The source of a loader module for an engine.

    Args:
        io: the engine's tensors and profiles.
        ref: how the module finds the engine file.
        info: names and versions for the header (identifiers are validated).

    Returns:
        Python source, already compiled once to check it.
    """
    check_identifier(info.module, "module name")
    for what, value in (("model", info.model), ("precision", info.precision),
                        ("target", info.target)):
        if value is not None:
            check_identifier(value, what)
    if ref.mode not in ENGINE_REFS:
        raise InputError(f"unknown engine reference {ref.mode!r}",
                         hint=f"use one of {', '.join(ENGINE_REFS)}")
    if not SHA256_RE.fullmatch(ref.sha256 or ""):
        raise InternalError(f"engine sha256 {ref.sha256!r} is not 64 lowercase hex digits")
    for what, value in (("key", info.key), ("key", ref.key)):
        if value is not None and not SHA256_RE.fullmatch(value):
            raise InternalError(f"{what} {value!r} is not 64 lowercase hex digits")
    if ref.mode == "key" and not ref.key:
        raise InternalError("engine reference 'key' without a key")
    if ref.mode in ("copy", "relative", "absolute") and not ref.path:
        raise InternalError(f"engine reference {ref.mode!r} without a path")
    env_var = ref.env or env_var_for(info.module)
    if not IDENTIFIER_RE.fullmatch(env_var):
        raise InputError(f"environment variable name {env_var!r} is not safe")
    for what, value in (("tensorrt", info.tensorrt), ("compute capability",
                                                      info.compute_capability)):
        if value is not None and not re.fullmatch(r"[0-9][0-9A-Za-z.+-]{0,40}", value):
            raise InternalError(f"{what} {value!r} is not a version string")
    if info.gpu is not None and not re.fullmatch(r"[A-Za-z0-9 ._()-]{1,80}", info.gpu):
        info = LoaderInfo(**{**info.__dict__, "gpu": None})  # shown in the metadata only

    io_data = _validate_io(io)
    ref_data = ref.to_json()
    ref_data["env"] = env_var
    metadata = _check_plain({
        "format": FORMAT_VERSION,
        "trtops": __version__,
        "module": info.module,
        "model": info.model,
        "precision": info.precision,
        "target": info.target,
        "key": info.key,
        "tensorrt": info.tensorrt,
        "gpu": info.gpu,
        "compute_capability": info.compute_capability,
        "version_compatible": bool(info.version_compatible),
        "engine": ref_data,
        "io": io_data,
    })

    source = _assemble(runtime_source(), _header(info, io_data, ref, env_var), metadata)
    try:
        compile(source, f"{info.module}.py", "exec")
    except SyntaxError as exc:  # pragma: no cover - would be a bug in this module
        raise InternalError(f"generated loader does not compile: {exc}") from exc
    return source


def _assemble(runtime: str, header: str, metadata: dict[str, Any]) -> str:
    tree = ast.parse(runtime)
    first = tree.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        raise InternalError("the runtime has no module docstring")
    lines = runtime.splitlines(keepends=True)
    doc = first.value.value
    if '"""' in doc or "\\" in doc:
        raise InternalError("the runtime's docstring must not contain quotes or "
                            "backslashes")
    rest = "".join(lines[first.end_lineno:])
    if rest.count(BEGIN_MARKER) != 1 or rest.count(END_MARKER) != 1:
        raise InternalError("the runtime must hold one metadata block")
    before, _, tail = rest.partition(BEGIN_MARKER + "\n")
    _, _, after = tail.partition(END_MARKER + "\n")
    literal = format_literal(metadata, 0, len("METADATA: dict[str, Any] = "))
    if ast.literal_eval(literal) != metadata:
        raise InternalError("the metadata literal does not evaluate back to the metadata")
    block = (f"{BEGIN_MARKER}\n# Written by `trtops emit`: the engine's description.\n"
             f"METADATA: dict[str, Any] = {literal}\n{END_MARKER}\n")
    docstring = '"""' + header + "\n\n" + doc.strip("\n") + '\n"""\n'
    return docstring + before + block + after


# --------------------------------------------------------------------------- writing


def write_loader(dest_dir: str | os.PathLike[str], io: EngineIO,
                 engine_file: str | os.PathLike[str], info: LoaderInfo, *,
                 engine_ref: str = "copy", sha256: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> EmittedLoader:
    """Write ``<dest_dir>/<module>.py`` (and, for ``copy``, ``<module>.plan``).

    Args:
        dest_dir: directory for the module (created if needed).
        io: the engine's tensors and profiles.
        engine_file: the engine file (in the cache, or anywhere).
        info: module name, model/precision/target identifiers, versions, key.
        engine_ref: ``copy`` | ``relative`` | ``env`` | ``key`` | ``absolute``.
        sha256: the engine's sha256 when known (computed from the file otherwise).
        cache_dir: the local cache root, recorded as the default for ``key``.

    Returns:
        Paths of what was written, and the environment variable that overrides the
        engine path.
    """
    dest = Path(dest_dir)
    engine_path = Path(engine_file)
    if not engine_path.is_file():
        raise InputError(f"engine file {engine_path} does not exist")
    module = check_identifier(info.module, "module name")
    digest = sha256 or file_sha256(engine_path)
    env_var = env_var_for(module)
    copied = None
    if engine_ref == "copy":
        copied = dest / f"{module}.plan"
        if not (copied.is_file() and file_sha256(copied) == digest):
            atomic_copy(engine_path, copied)
        ref = EngineRef("copy", digest, path=copied.name, env=env_var, key=info.key)
    elif engine_ref == "relative":
        relative = os.path.relpath(engine_path.resolve(), dest.resolve())
        ref = EngineRef("relative", digest, path=Path(relative).as_posix(), env=env_var,
                        key=info.key)
    elif engine_ref == "absolute":
        ref = EngineRef("absolute", digest, path=str(engine_path.resolve()), env=env_var,
                        key=info.key)
    elif engine_ref == "env":
        ref = EngineRef("env", digest, env=env_var, key=info.key)
    elif engine_ref == "key":
        if not info.key:
            raise InputError("--engine-ref key needs an engine from the trtops cache")
        ref = EngineRef("key", digest, env=env_var, key=info.key,
                        cache=str(Path(cache_dir).resolve()) if cache_dir else None)
    else:
        raise InputError(f"unknown engine reference {engine_ref!r}",
                         hint=f"use one of {', '.join(ENGINE_REFS)}")
    source = render_loader(io, ref, info)
    module_path = dest / f"{module}.py"
    atomic_write(module_path, source.encode("ascii"))
    return EmittedLoader(module_path, copied, env_var)


class PythonLoader:
    """The ``python`` loader: one standalone module (and its engine reference) per engine,
    ``<dest>/<model>_<precision>_<target>.py``."""

    name = "python"

    def emit(self, entries: Sequence[Entry], dest: Path,
             options: EmitOptions) -> LoaderOutput:
        """Write a module per entry; a name two manifests share gets the manifest's name
        in front (``<manifest>_<model>_<precision>_<target>``)."""
        from trtops.cache.compat import is_version_compatible

        output = LoaderOutput()
        counts: dict[str, int] = {}
        for entry in entries:
            name = module_name_for(entry.engine.model, entry.engine.precision,
                                   entry.engine.target)
            counts[name] = counts.get(name, 0) + 1
        for entry in entries:
            manifest, model, precision, target = entry.engine
            module = module_name_for(model, precision, target)
            if counts[module] > 1:
                module = module_name_for(name_part(manifest) + "_" + model, precision,
                                         target)
            gpu = entry.gpu
            info = LoaderInfo(
                module=module, model=model, precision=precision, target=target,
                key=entry.key, tensorrt=entry.meta.get("tensorrt_version"),
                gpu=gpu.get("name"), compute_capability=gpu.get("compute_capability"),
                version_compatible=is_version_compatible(entry.meta))
            try:
                emitted = write_loader(dest, entry.io, entry.engine_file, info,
                                       engine_ref=options.engine_ref, sha256=entry.sha256,
                                       cache_dir=options.cache_dir)
            except TrtopsError as exc:
                output.refused.append(Refused(entry.spec_id, entry.key,
                                              f"python loader: {exc.message}",
                                              exc.exit_code))
            else:
                output.written.append(Written(entry.spec_id, entry.key, emitted.module_path))
                if entry.default:
                    self._default(entry, module, set(counts), dest, output)
        return output

    @staticmethod
    def _default(entry: Entry, module: str, taken: set[str], dest: Path,
                 output: LoaderOutput) -> None:
        """``<model>_<target>.py``: the model's default loader, the engine ``select:
        fastest`` chose; it re-exports that engine's module (no second copy of the engine)."""
        _, model, precision, target = entry.engine
        alias = module_name_for(model, target)
        if alias in taken:
            output.refused.append(Refused(
                entry.spec_id, entry.key, f"python loader: the default loader {alias} would "
                f"replace the module of another engine", ExitCode.USER_ERROR))
            return
        source = (f'"""Default loader of {model} on {target}: `select: fastest` chose '
                  f'{precision} ({module}.py)."""\n\nfrom {module} import *  # noqa: F403\n'
                  f'from {module} import METADATA  # noqa: F401\n')
        compile(source, f"{alias}.py", "exec")
        path = dest / f"{alias}.py"
        atomic_write(path, source.encode("ascii"))
        output.written.append(Written(entry.spec_id, entry.key, path))


LOADER = PythonLoader()
