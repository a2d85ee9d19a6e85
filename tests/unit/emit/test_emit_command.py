"""`trtops emit`: loaders for accepted engines of a real local cache, through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from emit_fakes import affine_engine, engine_bytes, engine_io_json, import_file

from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cli import main
from trtops.keys.fingerprint import EngineKey


def _publish(store: LocalStore, spec_id: str, state: str | None, cc: str = "9.0",
             hardware: str = "none", description: dict | None = None) -> str:
    description = description or affine_engine()
    key = hashlib.sha256(spec_id.encode()).hexdigest()
    engine_key = EngineKey(key, {"build": {"hardware_compatibility": hardware,
                                           "version_compatible": False},
                                 "tensorrt": "8.6.0", "gpu": f"cc{cc}-gpu"}, {})
    accuracy = {"state": state, "summary": state} if state else None
    publish_entry(store, engine_key, spec_id, {"engine.plan": engine_bytes(description)},
                  accuracy=accuracy, tensorrt_version="8.6.0",
                  gpu={"name": "NVIDIA H100 80GB HBM3", "compute_capability": cc},
                  extra={"io": engine_io_json(description)})
    return key


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> LocalStore:
    monkeypatch.chdir(tmp_path)  # no ./manifests: engines come from the cache's refs
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    return LocalStore(tmp_path / "cache")


def _emit(tmp_path: Path, cache: LocalStore, *args: str) -> int:
    return main(["emit", "--cache", str(cache.root), "--dest", str(tmp_path / "out"), *args])


def test_emits_accepted_engines_from_refs(tmp_path, cache, capsys):
    key = _publish(cache, "demo/tiny/fp16/h100", "accepted")
    assert _emit(tmp_path, cache, "--loaders", "python,triton") == 0
    out = capsys.readouterr().out
    assert f"python  demo/tiny/fp16/h100 ({key[:12]})" in out
    module = tmp_path / "out" / "python" / "tiny_fp16_h100.py"
    assert module.is_file()
    assert (tmp_path / "out" / "python" / "tiny_fp16_h100.plan").read_bytes() == \
        engine_bytes(affine_engine())
    config = (tmp_path / "out" / "triton" / "tiny_fp16" / "config.pbtxt").read_text()
    assert 'platform: "tensorrt_plan"' in config and "max_batch_size: 64" in config
    assert (tmp_path / "out" / "triton" / "tiny_fp16" / "1" / "model.plan").is_file()
    loader = import_file(module)
    assert loader.METADATA["key"] == key
    assert loader.METADATA["tensorrt"] == "8.6.0"
    assert loader.METADATA["compute_capability"] == "9.0"


def test_rejected_and_unverified_engines_are_not_emitted(tmp_path, cache, capsys):
    _publish(cache, "demo/good/fp16/h100", "accepted")
    _publish(cache, "demo/bad/fp16/h100", "rejected")
    _publish(cache, "demo/new/fp16/h100", None)
    assert _emit(tmp_path, cache) == 4  # an accuracy failure outranks the rest
    captured = capsys.readouterr()
    assert "skipped demo/bad/fp16/h100: its accuracy check failed" in captured.err
    assert "skipped demo/new/fp16/h100: its accuracy was never checked" in captured.err
    written = sorted(p.name for p in (tmp_path / "out" / "python").glob("*.py"))
    assert written == ["good_fp16_h100.py"]
    assert _emit(tmp_path, cache, "--include-unverified", "--model", "new") == 0
    assert (tmp_path / "out" / "python" / "new_fp16_h100.py").is_file()


def test_several_targets_become_one_triton_model(tmp_path, cache, capsys):
    _publish(cache, "demo/tiny/fp16/h100", "accepted", cc="9.0")
    _publish(cache, "demo/tiny/fp16/l4", "accepted", cc="8.9")
    _publish(cache, "demo/tiny/fp16/h200", "accepted", cc="9.0")
    # h100 and h200 share compute capability 9.0: Triton cannot tell them apart.
    assert _emit(tmp_path, cache, "--loaders", "triton") == 1
    assert "--target" in capsys.readouterr().err
    assert _emit(tmp_path, cache, "--loaders", "triton", "--target", "h100", "--target",
                 "l4", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["engine"] for row in report["written"]] == ["demo/tiny/fp16/h100",
                                                           "demo/tiny/fp16/l4"]
    version = tmp_path / "out" / "triton" / "tiny_fp16" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model_sm89.plan", "model_sm90.plan"]
    config = (tmp_path / "out" / "triton" / "tiny_fp16" / "config.pbtxt").read_text()
    assert 'key: "8.9"' in config and 'value: "model_sm90.plan"' in config


def test_engine_references(tmp_path, cache, monkeypatch):
    key = _publish(cache, "demo/tiny/fp16/h100", "accepted")
    assert _emit(tmp_path, cache, "--engine-ref", "key") == 0
    loader = import_file(tmp_path / "out" / "python" / "tiny_fp16_h100.py")
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    assert Path(loader.resolve_engine_path()) == cache.entry_dir(key) / "engine.plan"
    assert not (tmp_path / "out" / "python" / "tiny_fp16_h100.plan").exists()
    assert _emit(tmp_path, cache, "--engine-ref", "relative") == 0
    loader = import_file(tmp_path / "out" / "python" / "tiny_fp16_h100.py")
    assert Path(loader.resolve_engine_path()).resolve() == \
        (cache.entry_dir(key) / "engine.plan").resolve()


def test_manifest_loaders_and_missing_builds(tmp_path, cache, capsys, monkeypatch):
    manifest = tmp_path / "demo.yaml"
    model = tmp_path / "tiny.onnx"
    model.write_bytes(b"")  # not read: emit does not check models
    manifest.write_text(
        "version: 1\n"
        "targets:\n  h100: {gpu: 'NVIDIA H100*'}\n  l4: {compute_capability: '8.9'}\n"
        "models:\n"
        "  - name: tiny\n    source: tiny.onnx\n    precisions: [fp16]\n"
        "    loaders: [python]\n"
        "  - name: other\n    source: tiny.onnx\n    precisions: [fp32]\n")
    _publish(cache, "demo/tiny/fp16/h100", "accepted")
    code = _emit(tmp_path, cache, str(manifest))
    captured = capsys.readouterr()
    assert code == 1  # tiny/fp16/l4 was never built
    assert "skipped demo/tiny/fp16/l4: not built" in captured.err
    assert "note: demo/other/fp32/h100: no loaders: in its manifest" in captured.err
    assert (tmp_path / "out" / "python" / "tiny_fp16_h100.py").is_file()
    assert not (tmp_path / "out" / "triton").exists()
    # what was written, what was skipped and why, and the count: also when one failed
    assert "python  demo/tiny/fp16/h100" in captured.out
    assert captured.err.rstrip().endswith(
        "emit: 1 loader for 1 engine written to " + str(tmp_path / "out") + "; 1 engine skipped (exit 1)")


def test_nothing_to_emit(tmp_path, cache, capsys):
    assert _emit(tmp_path, cache) == 1
    assert "no engines to emit" in capsys.readouterr().err
    assert main(["emit", "--cache", str(cache.root), "--dest", str(tmp_path),
                 "--loaders", "onnx"]) == 1


def test_engine_names_two_manifests_share_get_the_manifest_in_front(tmp_path, cache):
    _publish(cache, "a/tiny/fp16/h100", "accepted")
    _publish(cache, "b-2/tiny/fp16/h100", "accepted")
    assert _emit(tmp_path, cache, "--loaders", "python,triton") == 0
    python = sorted(p.name for p in (tmp_path / "out" / "python").glob("*.py"))
    assert python == ["a_tiny_fp16_h100.py", "b_2_tiny_fp16_h100.py"]
    triton = sorted(p.name for p in (tmp_path / "out" / "triton").iterdir())
    assert triton == ["b_2_tiny_fp16", "tiny_fp16"]


@pytest.mark.parametrize("engine_ref", ["key", "relative", "absolute"])
def test_non_ascii_and_backslash_paths_work_with_every_engine_reference(tmp_path, monkeypatch,
                                                                          engine_ref):
    """The loader's docstring cannot show such paths (ASCII, no backslashes): it points at
    METADATA, whose literal holds them exactly. No crash after the build."""
    monkeypatch.chdir(tmp_path)  # no ./manifests: engines come from the cache's refs
    cache = LocalStore(tmp_path / "cäche\\b")
    key = _publish(cache, "demo/tiny/fp16/h100", "accepted")
    dest = tmp_path / "öut\\x"
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    assert main(["emit", "--cache", str(cache.root), "--dest", str(dest),
                 "--engine-ref", engine_ref]) == 0
    loader = import_file(dest / "python" / "tiny_fp16_h100.py")
    assert Path(loader.resolve_engine_path()).resolve() == \
        (cache.entry_dir(key) / "engine.plan").resolve()
