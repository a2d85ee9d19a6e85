"""Adversarial manifests through the CLI: `trtops validate` and `trtops plan` must refuse each
one with a clear error at file:line, exit code 1 and no traceback, without running code from
the input, following links out of the manifest's directory, hanging, or flooding the
terminal.

Each case writes ``m.yaml`` (unless it names another file) into a temporary directory that
also holds ``models/conv.onnx`` (input ``input`` [N, 3, H, W], output ``output``). The
expected line is the one marked ``# <-`` unless the case gives ``line``. The plainer
mistakes (typos, wrong types, profile errors) are in tests/unit/manifest/
test_manifest_invalid.py; at the end of this file every one of those is also run through
`trtops plan`.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import make_conv_model

from trtops.cli import main
from trtops.manifest.load import MAX_FILE_BYTES

HEADER = """\
version: 1
targets:
  lab: {gpu: any}
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
models:
"""
PROFILE = "      - input: {min: [1, 3, 8, 8], opt: [1, 3, 16, 16], max: [2, 3, 32, 32]}\n"
CONV = """\
  - name: conv
    source: models/conv.onnx
    precisions: [fp16]
    profiles:
""" + PROFILE
PLATFORM = ["--tensorrt", "8.6.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0"]
ANY_LINE = -1  # some line of the file (where an expansion passes a limit depends on the walk)
FILE_LEVEL = -2  # a problem with the whole file: `m.yaml: ...`
MARKER = "PWNED"  # created by the pickled payloads if they ever ran


def src(path: str) -> str:
    """CONV with another source, marked as the line of the problem."""
    return HEADER + CONV.replace("    source: models/conv.onnx\n", f"    source: {path}  # <-\n")


def with_model(extra: str) -> str:
    return HEADER + CONV + extra


@dataclass
class Case:
    id: str
    text: str | bytes
    fragment: str  # in the message (or its hint)
    line: int | None = None  # default: the line marked '# <-'
    setup: Callable[[Path], None] | None = None
    file: str = "m.yaml"


# --------------------------------------------------------------------------- YAML bombs


def _mapping_laughs() -> str:
    lines = ["l0: &l0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}"]
    for level in range(1, 10):
        refs = ", ".join(f"k{i}: *l{level - 1}" for i in range(8))
        lines.append(f"l{level}: &l{level} {{{refs}}}")
    return with_model("\n".join(lines) + "\n")


def _many_values() -> str:
    # No alias at all: 100,100 values written out (200 KB) still exceed the node limit.
    return with_model("big: [" + ",".join("0" for _ in range(100_100)) + "]\n")


def _quadratic_string() -> str:
    uses = ", ".join("*s" for _ in range(1100))
    return with_model(f's: &s "{"x" * 1000}"\nbig: [{uses}]\n')


def _merge_bomb() -> str:
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: 1" for i in range(10)) + "}"]
    for level in range(1, 10):
        merged = ", ".join(f"*m{level - 1}" for _ in range(10))
        lines.append(f"m{level}: &m{level} {{<<: [{merged}], own{level}: 1}}")
    return with_model("\n".join(lines) + "\n")


def _nested(open_: str, close: str, depth: int) -> str:
    return with_model("deep: " + open_ * depth + close * depth + "  # <-\n")


# --------------------------------------------------------------------------- files


def _outside(tmp: Path) -> Path:
    outside = tmp.parent / f"{tmp.name}-outside"
    outside.mkdir(exist_ok=True)
    return outside


def _link_dir_outside(tmp: Path) -> None:
    outside = _outside(tmp)
    make_conv_model(outside / "conv.onnx")
    os.symlink(outside, tmp / "shared")


def _link_chain_outside(tmp: Path) -> None:
    outside = _outside(tmp)
    make_conv_model(outside / "real.onnx")
    os.symlink(outside / "real.onnx", tmp / "models" / "hop2.onnx")
    os.symlink("hop2.onnx", tmp / "models" / "hop1.onnx")


def _link_absolute(tmp: Path) -> None:
    os.symlink("/etc/hostname", tmp / "models" / "host.onnx")


def _fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "models" / "fifo.onnx")  # opening it would block forever


def _external(location: str, link_outside: bool = False) -> Callable[[Path], None]:
    """models/ext.onnx whose weights are external data at ``location``."""
    def setup(tmp: Path) -> None:
        import onnx

        path = make_conv_model(tmp / "models" / "ext.onnx", external_data=True)
        if link_outside:
            outside = _outside(tmp)
            (outside / "weights.data").write_bytes((tmp / "models" / "ext.onnx.data").read_bytes())
            (tmp / "models" / "ext.onnx.data").unlink()
            os.symlink(outside / "weights.data", tmp / "models" / "ext.onnx.data")
            return
        model = onnx.load(str(path), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        path.write_bytes(model.SerializeToString())
        secret = (tmp / "models" / location) if not os.path.isabs(location) else None
        if secret is not None:  # the file it points at exists: refused anyway
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_bytes(b"\0" * 4096)
    return setup


class _Payload:
    """Unpickling this creates a directory named MARKER: proof that code ran."""

    def __init__(self, where: Path) -> None:
        self.where = where

    def __reduce__(self):
        return (os.mkdir, (str(self.where / MARKER),))


def _pickled_npz(relative: str, name: str = "input") -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: np.array([_Payload(tmp)], dtype=object)}
        np.savez(path, **arrays)  # object arrays are stored pickled
    return setup


def _pickled_npy_dir(relative: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        directory = tmp / relative
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "input.npy", np.array([_Payload(tmp)], dtype=object), allow_pickle=True)
    return setup


def _raw_pickle(relative: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps({"input": _Payload(tmp)}))
    return setup


def _link_data_outside(tmp: Path) -> None:
    outside = _outside(tmp)
    np.savez(outside / "calib.npz", input=np.zeros((2, 3, 8, 8), np.float32))
    (tmp / "data").mkdir(exist_ok=True)
    os.symlink(outside / "calib.npz", tmp / "data" / "calib.npz")


INT8 = HEADER + CONV.replace("precisions: [fp16]", "precisions: [int8]")


CASES = [
    # ---- YAML resource exhaustion -----------------------------------------------------
    Case("alias-bomb-mappings", _mapping_laughs(), "alias bomb", line=ANY_LINE),
    Case("too-many-values", _many_values(), "expands to more than", line=ANY_LINE),
    Case("alias-quadratic-strings", _quadratic_string(), "alias expansions", line=ANY_LINE),
    Case("merge-key-bomb", _merge_bomb(), "alias", line=ANY_LINE),
    Case("recursive-alias-mapping", with_model("loop: &x {again: *x}  # <-\n"), "recursive alias"),
    Case("deep-nesting-mappings", _nested("{a: ", "}", 100), "nesting deeper than 64"),
    Case("deep-nesting-lists", _nested("[", "]", 100), "nesting deeper than 64"),
    Case("oversized-one-line", "version: 1\n# " + "x" * MAX_FILE_BYTES + "\n",
         "larger than 1024 KiB", line=FILE_LEVEL),
    # ---- YAML tags: nothing but plain data ----------------------------------------------
    Case("tag-python-object-new", with_model("x: !!python/object/new:os.system [echo PWNED]  # <-\n"),
         "is not allowed"),
    Case("tag-python-name", with_model("x: !!python/name:os.system  # <-\n"), "is not allowed"),
    Case("tag-python-module", with_model("x: !!python/module:os  # <-\n"), "is not allowed"),
    Case("tag-verbatim", with_model("x: !<tag:yaml.org,2002:python/object/apply:os.system> [id]  # <-\n"),
         "is not allowed"),
    Case("tag-binary", with_model("    workspace: !!binary aGVsbG8=  # <-\n"), "is not allowed"),
    Case("tag-set", with_model("    loaders: !!set {python: null}  # <-\n"), "is not allowed"),
    Case("tag-omap", with_model("    loaders: !!omap [{python: 1}]  # <-\n"), "is not allowed"),
    Case("tag-include", with_model("    accuracy: !include ../../etc/passwd  # <-\n"), "is not allowed"),
    Case("tag-on-key", with_model("    !!python/str workspace: 4GiB  # <-\n"), "is not allowed"),
    # ---- keys -----------------------------------------------------------------------------
    Case("complex-key", with_model("    ? [a, b]  # <-\n    : 1\n"), "mapping keys must be plain strings"),
    Case("null-key", with_model("    ~: 1\n"), "Keys should be strings", line=6),
    Case("duplicate-key-quoted", with_model('    "precisions": [fp32]  # <-\n'),
         "duplicate key 'precisions' (first written on line 8)"),
    Case("duplicate-key-yes-true", "version: 1\ntrue: 1\nyes: 2  # <-\n", "duplicate key True"),
    Case("duplicate-key-int-forms", with_model(
        "    accuracy:\n      tolerances:\n        fp16:\n          outputs:\n"
        "            1: {atol: 1}\n            0x1: {atol: 2}  # <-\n"), "duplicate key 1"),
    Case("duplicate-key-flow", HEADER.replace("  lab: {gpu: any}", "  lab: {gpu: any, gpu: 'NVIDIA*'}  # <-")
         + CONV, "duplicate key 'gpu'"),
    Case("duplicate-models-section", HEADER + CONV + "models:  # <-\n" + CONV, "duplicate key 'models'"),
    # ---- scalars --------------------------------------------------------------------------
    Case("huge-integer", with_model("    builder_optimization_level: " + "9" * 5000 + "  # <-\n"),
         "invalid value"),
    Case("impossible-date", HEADER + CONV.replace("name: conv", "name: 2024-02-31  # <-"), "invalid value"),
    Case("nan-tolerance", with_model("    accuracy:\n      tolerances:\n        fp16: {atol: .nan}  # <-\n"),
         "finite number"),
    Case("infinite-workspace", with_model("    workspace: 1e400  # <-\n"), "got inf"),
    Case("dim-beyond-int32", HEADER + CONV.replace(PROFILE, PROFILE.replace("max: [2, 3, 32, 32]}",
                                                                             "max: [2, 3, 32, 99999999999999999999]}  # <-")),
         "must be at most 2147483647"),
    # ---- characters and encodings ---------------------------------------------------------
    Case("nul-byte", "version: 1\nmodels: [\x00]  # <-\n", "invalid character"),
    Case("utf16-file", (HEADER + CONV).encode("utf-16"), "not UTF-8", line=1),
    Case("bidi-override-name", HEADER + CONV.replace("name: conv", "name: \"conv\u202egnp.exe\"  # <-"),
         "is not a safe name"),
    Case("zero-width-target", HEADER.replace("  lab: {gpu: any}", "  \"la\u200bb\": {gpu: any}  # <-") + CONV,
         "is not a safe name"),
    Case("homoglyph-name", HEADER + CONV.replace("name: conv", "name: c\u043env  # <-"), "is not a safe name"),
    Case("terminal-escape-name", HEADER + CONV.replace("name: conv", 'name: "\\e[2J\\e[31mconv"  # <-'),
         "is not a safe name"),
    # ---- identifiers that end up in generated code and cache paths -------------------------
    Case("name-code-injection", HEADER + CONV.replace("name: conv", "name: \"x'); import os; os.system('id') #\"  # <-"),
         "is not a safe name"),
    Case("name-too-long", HEADER + CONV.replace("name: conv", f"name: {'a' * 65}  # <-"), "is not a safe name"),
    Case("name-huge", HEADER + CONV.replace("name: conv", f"name: {'a' * 300_000}-  # <-"), "300001 characters"),
    Case("target-traversal", HEADER.replace("  lab: {gpu: any}", "  ../../etc: {gpu: any}  # <-") + CONV,
         "is not a safe name"),
    Case("target-absolute", HEADER.replace("  lab: {gpu: any}", "  /tmp/x: {gpu: any}  # <-") + CONV,
         "is not a safe name"),
    Case("precision-injection", HEADER + CONV.replace("precisions: [fp16]", 'precisions: ["fp16; rm -rf /"]  # <-'),
         "expected one of"),
    Case("loader-injection", with_model("    loaders: [\"python\\nimport os\"]  # <-\n"), "expected one of"),
    Case("manifest-name-dotdot", HEADER + CONV, "file name gives the manifest name '.'", line=1, file="..yaml"),
    Case("manifest-name-space", HEADER + CONV, "file name gives the manifest name 'my vision'", line=1,
         file="my vision.yaml"),
    # ---- paths: sources ---------------------------------------------------------------------
    Case("source-etc-passwd", src("/etc/passwd"), "absolute path '/etc/passwd' is not allowed"),
    Case("source-home", src("~/.ssh/id_rsa"), "is not allowed"),
    Case("source-dev-zero", src("/dev/zero"), "is not allowed"),
    Case("source-deep-traversal", src("models/../../../../../../etc/passwd"), "leads outside the manifest's directory"),
    Case("source-symlinked-dir", src("shared/conv.onnx"), "symlink", setup=_link_dir_outside),
    Case("source-symlink-chain", src("models/hop1.onnx"), "symlink", setup=_link_chain_outside),
    Case("source-symlink-absolute", src("models/host.onnx"), "symlink", setup=_link_absolute),
    Case("source-fifo", src("models/fifo.onnx"), "is not a file", setup=_fifo),
    Case("source-file-url", src('{url: "file:///etc/passwd", sha256: "' + "a" * 64 + '"}'), "http(s) URL"),
    Case("source-javascript-url", src('{url: "javascript:alert(1)", sha256: "' + "a" * 64 + '"}'), "http(s) URL"),
    Case("external-data-traversal", src("models/ext.onnx"), "lie outside its directory",
         setup=_external("../../secret.bin")),
    Case("external-data-absolute", src("models/ext.onnx"), "lie outside its directory",
         setup=_external("/etc/passwd")),
    Case("external-data-symlink", src("models/ext.onnx"), "lie outside its directory",
         setup=_external("", link_outside=True)),
    # ---- paths: data files ------------------------------------------------------------------
    Case("calibration-symlink-outside", INT8 + "    calibration: {data: data/calib.npz}  # <-\n", "symlink",
         setup=_link_data_outside),
    Case("calibration-absolute", INT8 + "    calibration: {data: /etc/calib.npz}  # <-\n", "is not allowed"),
    Case("accuracy-data-traversal", with_model("    accuracy:\n      data: data/../../x.npz  # <-\n"),
         "leads outside the manifest's directory"),
    # ---- pickles: never unpickled ----------------------------------------------------------
    Case("calibration-pickled-npz", INT8 + "    calibration: {data: data/calib.npz}  # <-\n",
         "pickled (object) arrays (input)", setup=_pickled_npz("data/calib.npz")),
    Case("accuracy-pickled-npz", with_model("    accuracy:\n      data: data/acc.npz  # <-\n"),
         "pickled (object) arrays (input)", setup=_pickled_npz("data/acc.npz")),
    Case("accuracy-pickled-npy-dir", with_model("    accuracy:\n      data: data/sets  # <-\n"),
         "pickled (object) arrays (input)", setup=_pickled_npy_dir("data/sets")),
    Case("accuracy-raw-pickle-as-npz", with_model("    accuracy:\n      data: data/acc.npz  # <-\n"),
         "is not a readable .npz file", setup=_raw_pickle("data/acc.npz")),
]


# --------------------------------------------------------------------------- running


def _marked_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if "# <-" in line:
            return number
    raise AssertionError("case has neither a '# <-' marker nor a line")


def _expected(case: Case) -> str:
    """A regex for the location the error must start with."""
    file = re.escape(case.file)
    if case.line == FILE_LEVEL:
        return rf"(^|\n)(error: )?{file}: "
    if case.line == ANY_LINE:
        return rf"(^|\n)(error: )?{file}:\d+:"
    line = case.line if case.line is not None else _marked_line(case.text)  # type: ignore[arg-type]
    return rf"(^|\n)(error: )?{file}:{line}:"


@pytest.fixture(scope="module")
def conv_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_conv_model(tmp_path_factory.mktemp("model") / "conv.onnx").read_bytes()


def _prepare(case: Case, tmp: Path, conv_bytes: bytes) -> None:
    (tmp / "models").mkdir()
    (tmp / "models" / "conv.onnx").write_bytes(conv_bytes)
    if case.setup is not None:
        case.setup(tmp)
    path = tmp / case.file
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _check(case: Case, code: int, out: str, err: str) -> None:
    assert code == 1, f"exit {code}\n{out}\n{err[:2000]}"
    assert "Traceback" not in out + err and "internal error" not in err, err[:2000]
    assert re.search(_expected(case), err), f"expected {_expected(case)!r} in:\n{err[:2000]}"
    assert case.fragment in err, f"expected {case.fragment!r} in:\n{err[:2000]}"
    # Hostile input must not flood or drive the terminal.
    assert len(err) < 20_000, f"{len(err)} characters of error output"
    assert "\x1b" not in err and "\u202e" not in err


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_adversarial_manifest_is_refused(case: Case, command: str, tmp_path: Path, conv_bytes: bytes,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", raising=False)
    monkeypatch.chdir(tmp_path)
    _prepare(case, tmp_path, conv_bytes)
    argv = [command, case.file]
    if command == "plan":
        argv += [*PLATFORM, "--cache", "cache"]
    code, out, err = run_cli(argv)
    _check(case, code, out, err)
    assert not (tmp_path / MARKER).exists(), "a pickled payload was executed"
    # Nothing was built or written into the cache.
    assert not (tmp_path / "cache" / "engines").exists()


# A few cases in a fresh interpreter, exactly as a user (or CI) runs them.
SUBPROCESS_CASES = ["huge-integer", "impossible-date", "alias-bomb-mappings", "tag-python-object-new",
                    "manifest-name-dotdot", "source-fifo", "accuracy-pickled-npz"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_adversarial_manifest_in_a_real_process(case_id: str, tmp_path: Path, conv_bytes: bytes) -> None:
    case = next(c for c in CASES if c.id == case_id)
    _prepare(case, tmp_path, conv_bytes)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_")}
    env["CI"] = "true"
    for argv in (["validate", case.file], ["plan", case.file, *PLATFORM, "--cache", "cache"]):
        result = subprocess.run([sys.executable, "-m", "trtops", *argv], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        _check(case, result.returncode, result.stdout, result.stderr)
    assert not (tmp_path / MARKER).exists()


# --------------------------------------------------------------------------- the unit cases, planned


def _unit_cases():
    path = Path(__file__).resolve().parents[1] / "unit" / "manifest" / "test_manifest_invalid.py"
    spec = importlib.util.spec_from_file_location("_manifest_invalid_cases", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


UNIT = _unit_cases()
# Their targets are h100 (TensorRT 10.13) and l4: plan for an H100 so that the checks which
# read model files run (a plan with nothing to build on this platform does not read them).
H100 = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]


@pytest.mark.parametrize("case", UNIT.CASES, ids=[c.id for c in UNIT.CASES])
def test_every_invalid_manifest_also_fails_plan_at_its_line(case, tmp_path: Path, conv_bytes: bytes,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", raising=False)
    monkeypatch.chdir(tmp_path)
    paths = UNIT._prepare(case, tmp_path, conv_bytes)
    relative = [str(p.relative_to(tmp_path)) for p in paths]
    code, out, err = run_cli(["plan", *relative, *H100, "--cache", "cache"])
    assert code == 1, err
    assert "Traceback" not in out + err and "internal error" not in err, err
    line = UNIT._expected_line(case)
    where = f"{case.file}:{line}:" if line is not None else f"{case.file}: "
    assert where in err, err
