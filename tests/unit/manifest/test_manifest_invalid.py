"""Invalid manifests: every problem is reported with its exact file:line and a useful message.

Each case writes ``m.yaml`` (and maybe more files) into a temporary directory that also
holds ``models/conv.onnx`` (input ``input`` [N, 3, H, W], output ``output``). The expected
line is the one marked ``# <-`` unless the case gives ``line``. Every case is also run
through ``trtops validate``: exit code 1, the location on stderr, no traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from helpers import make_conv_model, make_multi_input_model, make_qdq_model
from trtops.cli import main
from trtops.errors import ManifestError
from trtops.manifest import load_paths
from trtops.manifest.load import MAX_FILE_BYTES

HEADER = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {compute_capability: "8.9"}
models:
"""
PROFILE = """\
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
"""
CONV = """\
  - name: conv
    source: models/conv.onnx
    precisions: [fp16]
""" + PROFILE

NO_LINE = -1  # the problem is about the whole file


@dataclass
class Case:
    id: str
    text: str | bytes
    fragment: str
    line: int | None = None  # default: the line marked '# <-'
    setup: Callable[[Path], None] | None = None
    others: dict[str, str] = field(default_factory=dict)  # more manifests, loaded before m.yaml
    file: str = "m.yaml"  # the file the problem is in
    field: str | None = None  # expected field path, when worth asserting


def _marked_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if "# <-" in line:
            return number
    raise AssertionError("case has neither a '# <-' marker nor a line")


def _link_outside(tmp: Path) -> None:
    outside = tmp.parent / f"{tmp.name}-outside"
    make_conv_model(outside / "real.onnx")
    os.symlink(outside / "real.onnx", tmp / "models" / "link.onnx")


def _calib(names: list[str]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "data").mkdir(exist_ok=True)
        np.savez(tmp / "data" / "calib.npz", **{n: np.zeros((2, 3, 8, 8), np.float32) for n in names})
    return setup


def _garbage_model(tmp: Path) -> None:
    (tmp / "models" / "bad.onnx").write_bytes(b"\xff\xfe this is not a protobuf \x00\x01" * 10)


def _external_without_data(tmp: Path) -> None:
    make_conv_model(tmp / "models" / "ext.onnx", external_data=True)
    (tmp / "models" / "ext.onnx.data").unlink()


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        refs = ",".join(f"*{prev}" for _ in range(9))
        marker = "  # <-" if name == "d" else ""  # where the expansions pass the limit
        lines.append(f"{name}: &{name} [{refs}]{marker}")
    return HEADER + CONV + "\n".join(lines) + "\n"


CASES = [
    # ---- YAML level ------------------------------------------------------------------
    Case("empty-file", "", "the file is empty", line=1),
    Case("only-comments", "# nothing here\n", "the file is empty", line=1),
    Case("non-mapping-doc", "- version: 1  # <-\n- models: []\n", "expected a mapping at the top level, got a list"),
    Case("scalar-doc", "just a string  # <-\n", "expected a mapping at the top level, got a string"),
    Case("yaml-syntax-error", HEADER + CONV.replace("precisions: [fp16]", "precisions: [fp16")
         .replace("    profiles:", "    profiles:  # <-"),
         "(while parsing a flow sequence started on line 8)"),
    Case("tab-indentation", HEADER + "  - name: conv\n\tsource: models/conv.onnx  # <-\n", "indent with spaces"),
    Case("duplicate-key", HEADER + CONV.replace("    precisions: [fp16]\n", "    precisions: [fp16]\n    precisions: [fp32]  # <-\n"),
         "duplicate key 'precisions' (first written on line 8)"),
    Case("duplicate-target-key", HEADER.replace('  l4: {compute_capability: "8.9"}\n', '  h100: {gpu: any}  # <-\n') + CONV,
         "duplicate key 'h100' (first written on line 3)"),
    Case("python-tag", HEADER + CONV + "extra: !!python/object/apply:os.system ['true']  # <-\n",
         "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    Case("custom-tag", HEADER + CONV.replace("[fp16]", "!fancy [fp16]  # <-"), "is not allowed"),
    Case("alias-bomb", _billion_laughs(), "alias"),
    Case("recursive-alias", HEADER + CONV + "loop: &x [*x]  # <-\n", "recursive alias"),
    Case("multiple-documents", HEADER + CONV + "---  # <-\nversion: 1\n", "more than one YAML document"),
    Case("deep-nesting", "version: 1\nx: " + "[" * 2000 + "]" * 2000 + "\n", "nesting deeper than 64", line=2),
    Case("oversized-file", "version: 1\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1),
         "larger than 1024 KiB", line=NO_LINE),
    Case("not-utf8", b"version: 1\nmodels:\n  - name: caf\xe9  # <-\n", "not UTF-8", line=3),
    Case("control-character", 'version: 1\nmodels: "\x07"  # <-\n', "invalid character"),
    # ---- schema ----------------------------------------------------------------------
    Case("version-2", HEADER.replace("version: 1", "version: 2  # <-") + CONV, "unsupported manifest version 2"),
    Case("missing-version", HEADER.replace("version: 1\n", "") + CONV,
         "missing required key 'version'", line=1),
    Case("unknown-key-did-you-mean", HEADER + CONV + "    worksapce: 4GiB  # <-\n",
         "unknown key 'worksapce'; did you mean 'workspace'?", field="models[0].worksapce"),
    Case("unknown-top-level-key", HEADER + CONV + "defualts: {}  # <-\n", "did you mean 'defaults'?"),
    Case("unknown-key-in-profile-range", HEADER + CONV.replace("max: [4, 3, 256, 256]}", "max: [4, 3, 256, 256], mid: [1]}  # <-"),
         "unknown key 'mid'"),
    Case("precisions-not-a-list", HEADER + CONV.replace("precisions: [fp16]", "precisions: fp16  # <-"),
         "expected a list, got 'fp16'"),
    Case("unknown-precision", HEADER + CONV.replace("precisions: [fp16]", "precisions: [fp16, int9]  # <-"),
         "got 'int9'", field="models[0].precisions[1]"),
    Case("duplicate-precision", HEADER + CONV.replace("precisions: [fp16]", "precisions: [fp16, fp16]  # <-"),
         "'fp16' is listed twice", field="models[0].precisions[1]"),
    Case("empty-precisions", HEADER + CONV.replace("precisions: [fp16]", "precisions: []  # <-"), "at least 1 item"),
    Case("opt-level-string", HEADER + CONV + "    builder_optimization_level: three  # <-\n", "expected an integer"),
    Case("opt-level-7", HEADER + CONV + "    builder_optimization_level: 7  # <-\n", "must be at most 5, got 7"),
    Case("bad-workspace-unit", HEADER + CONV + "    workspace: 64 MiBs  # <-\n", "which is not a size: write a number of bytes"),
    Case("negative-workspace", "version: 1\ndefaults:\n  workspace: -1  # <-\n" + HEADER.replace("version: 1\n", "") + CONV,
         "size must be positive"),
    Case("tactic-source-typo", HEADER + CONV + "    tactic_sources: [cublas, cudnnn]  # <-\n", "did you mean 'cudnn'"),
    Case("timing-cache-bool", HEADER + CONV + "    timing_cache: yes  # <-\n", "quote the word"),
    Case("empty-models", HEADER.replace("models:", "models: []  # <-"), "must list at least 1 item"),
    Case("no-targets", "version: 1\ntargets: {}  # <-\nmodels:\n" + CONV, "must list at least 1 item"),
    Case("name-path-traversal", HEADER + CONV.replace("name: conv", "name: ../x  # <-"), "is not a safe name"),
    Case("name-dash", HEADER + CONV.replace("name: conv", "name: a-b  # <-"), "is not a safe name"),
    Case("name-code", HEADER + CONV.replace("name: conv", "name: import os  # <-"), "is not a safe name"),
    Case("name-trailing-newline", HEADER + CONV.replace("name: conv", 'name: "conv\\n"  # <-'), "is not a safe name"),
    Case("name-keyword", HEADER + CONV.replace("name: conv", "name: class  # <-"), "Python keyword"),
    Case("target-name-dash", HEADER.replace("  l4:", "  l-4: {gpu: any}  # <-\n  l4:") + CONV, "is not a safe name"),
    Case("target-without-gpu", HEADER.replace('  l4: {compute_capability: "8.9"}', "  l4: {tensorrt: '>=10'}  # <-") + CONV,
         "a target needs 'gpu'"),
    Case("gpu-any-with-cc", HEADER.replace('  l4: {compute_capability: "8.9"}', '  l4: {gpu: any, compute_capability: "8.9"}  # <-') + CONV,
         "cannot be combined"),
    Case("bad-compute-capability", HEADER.replace('  l4: {compute_capability: "8.9"}', '  l4: {compute_capability: sm_89}  # <-')
         + CONV, "expected 'major.minor'"),
    Case("bad-tensorrt-specifier", HEADER.replace('tensorrt: ">=10.13,<10.14"}', 'tensorrt: "10.13+"}  # <-') + CONV,
         "not a PEP 440 version specifier"),
    Case("tensorrt-unquoted-number", HEADER.replace('tensorrt: ">=10.13,<10.14"}', 'tensorrt: 10.13}  # <-') + CONV,
         "expected a string, got 10.13"),
    # What the user wrote, not the float's repr: YAML reads 10.10 as 10.1.
    Case("tensorrt-unquoted-float-keeps-its-text", HEADER.replace('tensorrt: ">=10.13,<10.14"}', 'tensorrt: 10.10}  # <-') + CONV,
         "quote it: '10.10'"),
    Case("compute-capability-unquoted", HEADER.replace('  l4: {compute_capability: "8.9"}', '  l4: {compute_capability: 8.10}  # <-')
         + CONV, "quote it: '8.10'"),
    Case("workspace-unit-without-bytes", HEADER + CONV + "    workspace: 4G  # <-\n", "did you mean 4GiB or 4GB?"),
    Case("workspace-unit-wrong-case", HEADER + CONV + "    workspace: 64mb  # <-\n", "did you mean 64MB?"),
    Case("workspace-unit-lists-forms", HEADER + CONV + "    workspace: 64 megs  # <-\n", "KiB, MiB, GiB, TiB"),
    Case("name-dash-suggests", HEADER + CONV.replace("name: conv", "name: tiny-cnn  # <-"),
         "did you mean 'tiny_cnn'?"),
    Case("name-digit-first", HEADER + CONV.replace("name: conv", "name: 3conv  # <-"), "starts with a digit"),
    Case("name-too-long-says-so", HEADER + CONV.replace("name: conv", f"name: {'a' * 65}  # <-"),
         "is 65 characters long"),
    Case("name-non-ascii-says-so", HEADER + CONV.replace("name: conv", "name: c\u043env  # <-"), "non-ASCII"),
    Case("x-key-below-top-level", HEADER + CONV.replace("    precisions: [fp16]", "    x-notes: hi  # <-\n    precisions: [fp16]"),
         "unknown key 'x-notes'"),
    Case("url-without-sha256", HEADER + CONV.replace("source: models/conv.onnx",
                                                     'source: {url: "https://example.com/m.onnx"}  # <-'),
         "missing required key 'sha256'", field="models[0].source.sha256"),
    Case("bad-sha256", HEADER + CONV.replace("source: models/conv.onnx",
                                             'source: {url: "https://example.com/m.onnx", sha256: abc123}  # <-'),
         "expected 64 hexadecimal digits"),
    Case("url-not-http", HEADER + CONV.replace("source: models/conv.onnx",
                                               f'source: {{url: "ftp://example.com/m.onnx", sha256: {"a" * 64}}}  # <-'),
         "expected an http(s) URL"),
    Case("source-wrong-type", HEADER + CONV.replace("source: models/conv.onnx", "source: 42  # <-"),
         "expected a path relative to the manifest file"),
    Case("source-empty-path", HEADER + CONV.replace("source: models/conv.onnx", 'source: ""  # <-'), "path is empty"),
    Case("source-control-chars", HEADER + CONV.replace("source: models/conv.onnx", 'source: "models/a\\x07.onnx"  # <-'),
         "control characters"),
    Case("min-greater-than-opt", HEADER + CONV.replace(
             "      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}\n",
             "      - input:\n          min: [1, 3, 200, 64]\n          opt: [1, 3, 128, 128]  # <-\n"
             "          max: [4, 3, 256, 256]\n"),
         "axis 2: need min <= opt <= max, got 200, 128, 256", field="models[0].profiles[0].input.opt[2]"),
    Case("range-rank-mismatch", HEADER + CONV.replace(
        "      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}\n",
        "      - input:\n          min: [1, 3, 64, 64]\n          opt: [1, 3, 128, 128]\n          max: [4, 3, 256]  # <-\n"),
        "min, opt and max must have one rank"),
    Case("zero-dim", HEADER + CONV.replace("min: [1, 3, 64, 64]", "min: [1, 3, 0, 64]")
         .replace("max: [4, 3, 256, 256]}", "max: [4, 3, 256, 256]}  # <-"),
        "must be at least 1, got 0", field="models[0].profiles[0].input.min[2]"),
    Case("symbolic-dim-in-profile", HEADER + CONV.replace("min: [1, 3, 64, 64]", "min: [N, 3, 64, 64]")
         .replace("max: [4, 3, 256, 256]}", "max: [4, 3, 256, 256]}  # <-"), "expected an integer, got 'N'"),
    Case("empty-profile", HEADER + CONV.replace(
        "      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}\n", "      - {}  # <-\n"),
        "profile 0 is empty"),
    Case("profiles-cover-different-inputs", HEADER + CONV + "      - other: {min: [1], opt: [1], max: [1]}  # <-\n",
         "every profile must cover the same inputs"),
    Case("quantile-without-value", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp16: {stat: quantile}  # <-\n",
         "stat 'quantile' needs 'quantile'", field="models[0].accuracy.tolerances.fp16.stat"),
    Case("quantile-with-other-stat", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp16: {stat: mean, quantile: 0.9}  # <-\n",
         "only used with stat 'quantile'"),
    Case("negative-atol", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp16: {atol: -1}  # <-\n", "must be at least 0"),
    Case("tolerance-unknown-precision-key", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp61: {atol: 1}  # <-\n",
         "did you mean 'fp16'"),
    Case("accuracy-inputs-and-data", HEADER + CONV + "    accuracy:\n      inputs: {seed: 3}\n      data: data/acc.npz  # <-\n",
         "either 'inputs' (generated) or 'data' (files), not both"),
    Case("value-range-reversed", HEADER + CONV + "    accuracy:\n      inputs:\n        ranges: {input: [1, 0]}  # <-\n",
         "low must be below high"),
    Case("empty-targets-list", HEADER + CONV + "    targets: []  # <-\n", "list at least one target"),
    Case("loader-typo", HEADER + CONV + "    loaders: [python, trition]  # <-\n", "did you mean 'triton'"),
    # ---- semantic checks -------------------------------------------------------------
    Case("unknown-target", HEADER + CONV + "    targets: [h100, h10]  # <-\n",
         "unknown target 'h10'; did you mean 'h100'?", field="models[0].targets[1]"),
    Case("tolerances-unbuilt-precision", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp32: {atol: 1}  # <-\n",
         "tolerances for 'fp32', which is not built"),
    Case("duplicate-model-in-file", HEADER + CONV + CONV.replace("  - name: conv", "  - name: conv  # <-"),
         "model name 'conv' is already used on line 6"),
    Case("duplicate-model-across-files", HEADER + CONV.replace("  - name: conv", "  - name: conv  # <-"),
         "model name 'conv' is already used in a.yaml:6:11", others={"a.yaml": HEADER + CONV}),
    Case("same-manifest-name-in-two-dirs", HEADER + CONV.replace("name: conv", "name: other") + "# <-",
         "their engines would share refs", line=1, others={"sub/m.yaml": HEADER + CONV},
         setup=lambda t: make_conv_model(t / "sub" / "models" / "conv.onnx")),
    Case("source-escapes-dotdot", HEADER + CONV.replace("source: models/conv.onnx", "source: ../conv.onnx  # <-"),
         "leads outside the manifest's directory"),
    Case("source-escapes-dotdot-inside", HEADER + CONV.replace("source: models/conv.onnx",
                                                                "source: models/../../x/conv.onnx  # <-"),
         "leads outside the manifest's directory"),
    Case("source-absolute", HEADER + CONV.replace("source: models/conv.onnx", "source: /etc/conv.onnx  # <-"),
         "absolute path '/etc/conv.onnx' is not allowed"),
    Case("source-symlink-outside", HEADER + CONV.replace("source: models/conv.onnx", "source: {path: models/link.onnx}  # <-"),
         "symlink", setup=_link_outside, field="models[0].source.path"),
    Case("source-missing", HEADER + CONV.replace("source: models/conv.onnx", "source: models/nope.onnx  # <-"),
         "not found"),
    Case("source-is-directory", HEADER + CONV.replace("source: models/conv.onnx", "source: models  # <-"), "is not a file"),
    Case("source-not-onnx", HEADER + CONV.replace("source: models/conv.onnx", "source: models/bad.onnx  # <-"),
         "cannot read it as an ONNX model", setup=_garbage_model),
    Case("external-weights-missing", HEADER + CONV.replace("source: models/conv.onnx", "source: models/ext.onnx  # <-"),
         "external weights file 'ext.onnx.data' is missing", setup=_external_without_data),
    Case("int8-without-calibration", HEADER + CONV.replace("precisions: [fp16]", "precisions: [fp16, int8]  # <-"),
         "int8 needs calibration data", field="models[0].precisions[1]"),
    Case("fp8-without-qdq", HEADER + CONV.replace("precisions: [fp16]", "precisions: [fp8]  # <-"),
         "fp8 needs an explicitly quantized model"),
    Case("profile-input-not-in-graph", HEADER + CONV.replace("      - input:", "      - inptu:").replace(
        "max: [4, 3, 256, 256]}", "max: [4, 3, 256, 256]}  # <-"),
        "the model has no input 'inptu'; did you mean 'input'?"),
    Case("profile-rank-vs-graph", HEADER + CONV.replace(
        "      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}\n",
        "      - input:\n          min: [1, 3, 64]  # <-\n          opt: [1, 3, 128]\n          max: [4, 3, 256]\n"),
        "rank 3 does not match the model's input 'input' of rank 4"),
    Case("static-dim-mismatch", HEADER + CONV.replace(
        "      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}\n",
        "      - input:\n          min: [1, 3, 64, 64]\n          opt: [1, 4, 128, 128]  # <-\n          max: [4, 4, 256, 256]\n"),
        "axis 1 of input 'input' is fixed at 3", field="models[0].profiles[0].input.opt[1]"),
    Case("dynamic-input-without-profiles", HEADER + CONV.replace("  - name: conv", "  - name: conv  # <-").replace(PROFILE, ""),
         "has dynamic input 'input' [N, 3, H, W] but no profiles"),
    Case("uncovered-dynamic-input", HEADER + """\
  - name: multi
    source: models/multi.onnx
    precisions: [fp32]
    profiles:  # <-
      - ids: {min: [1, 8], opt: [1, 64], max: [4, 128]}
""", "dynamic input 'mask' [B, S] is not covered by the profiles",
         setup=lambda t: make_multi_input_model(t / "models" / "multi.onnx",
                                                {"ids": ["B", "S"], "mask": ["B", "S"], "scale": [1]})),
    Case("unknown-output-tolerance", HEADER + CONV + "    accuracy:\n      tolerances:\n        fp16:\n          outputs:\n"
         "            ouptut: {atol: 1}  # <-\n", "the model has no output 'ouptut'; did you mean 'output'?"),
    Case("unknown-range-input", HEADER + CONV + "    accuracy:\n      inputs:\n        ranges:\n          imput: [0, 1]  # <-\n",
         "the model has no input 'imput'"),
    Case("calibration-missing", HEADER + CONV.replace("precisions: [fp16]", "precisions: [int8]") +
         "    calibration: {data: data/calib.npz}  # <-\n", "calibration data", field="models[0].calibration.data"),
    Case("calibration-wrong-inputs", HEADER + CONV.replace("precisions: [fp16]", "precisions: [int8]") +
         "    calibration: {data: data/calib.npz}  # <-\n", "has no array for input(s) input", setup=_calib(["images"])),
    Case("calibration-not-npz", HEADER + CONV.replace("precisions: [fp16]", "precisions: [int8]") +
         "    calibration: {data: models/conv.onnx}  # <-\n", "must be an .npz file or a directory"),
    Case("calibration-escapes", HEADER + CONV.replace("precisions: [fp16]", "precisions: [int8]") +
         "    calibration: {data: ../calib.npz}  # <-\n", "TRTOPS_ALLOW_OUTSIDE_SOURCES"),
    Case("accuracy-data-missing", HEADER + CONV + "    accuracy:\n      data: data/acc  # <-\n", "accuracy data"),
]


def _write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def conv_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_conv_model(tmp_path_factory.mktemp("model") / "conv.onnx").read_bytes()


def _prepare(case: Case, tmp: Path, conv_bytes: bytes) -> list[Path]:
    (tmp / "models").mkdir()
    (tmp / "models" / "conv.onnx").write_bytes(conv_bytes)
    if case.setup is not None:
        case.setup(tmp)
    paths = [_write(tmp, name, text) for name, text in case.others.items()]
    paths.append(_write(tmp, "m.yaml", case.text))
    return paths


def _expected_line(case: Case) -> int | None:
    if case.line == NO_LINE:
        return None
    if case.line is not None:
        return case.line
    assert isinstance(case.text, str)
    return _marked_line(case.text)


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_manifest(case: Case, tmp_path: Path, conv_bytes: bytes,
                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", raising=False)
    monkeypatch.chdir(tmp_path)
    paths = _prepare(case, tmp_path, conv_bytes)
    relative = [str(p.relative_to(tmp_path)) for p in paths]
    with pytest.raises(ManifestError) as caught:
        load_paths(relative)
    problems = caught.value.problems
    line = _expected_line(case)
    matching = [
        p for p in problems
        if p.location.file == case.file and p.location.line == line
        and (case.fragment in p.message or case.fragment in (p.hint or ""))
    ]
    assert matching, f"expected {case.file}:{line}: ...{case.fragment}...; got:\n" + "\n".join(
        p.render() for p in problems)
    if case.field is not None:
        assert any(p.field == case.field for p in matching), [p.field for p in matching]

    # The same through the CLI: exit 1, location on stderr, no traceback.
    capsys.readouterr()
    code = main(["validate", *relative])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    where = f"{case.file}:{line}:" if line is not None else f"{case.file}: "
    assert where in err, err


def test_all_problems_of_all_files_at_once(tmp_path: Path, conv_bytes: bytes,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "conv.onnx").write_bytes(conv_bytes)
    _write(tmp_path, "a.yaml", HEADER + CONV + "    workspace: lots\n    builder_optimization_level: 9\n")
    _write(tmp_path, "b.yaml", HEADER + CONV.replace("name: conv", "name: conv2") + "    targets: [h200]\n")
    _write(tmp_path, "c.yaml", "version: [\n")
    with pytest.raises(ManifestError) as caught:
        load_paths(["."])
    rendered = [p.render() for p in caught.value.problems]
    assert [r.split(":")[0] for r in rendered] == ["a.yaml", "a.yaml", "b.yaml", "c.yaml"], rendered
    assert "nothing was built" in caught.value.render()


def test_int8_with_qdq_model_needs_no_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_qdq_model(tmp_path / "models" / "qdq.onnx")
    _write(tmp_path, "m.yaml", HEADER + CONV.replace("models/conv.onnx", "models/qdq.onnx")
           .replace("[fp16]", "[fp16, int8, fp8]"))
    (loaded,) = load_paths(["m.yaml"])
    assert loaded.manifest.models[0].precisions == ["fp16", "int8", "fp8"]


def test_outside_sources_allowed_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_conv_model(tmp_path / "shared" / "conv.onnx")
    _write(tmp_path, "manifests/m.yaml", HEADER + CONV.replace("models/conv.onnx", "../shared/conv.onnx"))
    monkeypatch.delenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", raising=False)
    with pytest.raises(ManifestError, match="problem"):
        load_paths([tmp_path / "manifests"])
    monkeypatch.setenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", "1")
    assert len(load_paths([tmp_path / "manifests"])) == 1
