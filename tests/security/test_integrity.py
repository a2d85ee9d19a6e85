"""Engine bytes are checked against the sha256 recorded in their entry's meta.json before
anything deserializes them or hands them out: `trtops verify` (which loads the engine to
run it), `trtops emit` (which copies it beside a Python loader or into a Triton
repository) and the emitted Python loader itself.

The toolchain double records the sha256 of every engine it is asked to load, so a test can
tell which bytes ever reached the runtime. Repair of a corrupt entry (detected by `trtops
cache verify`, rebuilt or pulled again) is in tests/reliability/test_corruption.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from apply_helpers import TESTS, make_project, trtops

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

SECURITY = Path(__file__).resolve().parent


def run(project: Path, *args: str, log: Path | None = None):
    env = {"TRTOPS_TEST_TOOLCHAIN": "security_doubles:RecordingToolchain",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(SECURITY), os.environ.get("PYTHONPATH", "")])}
    if log is not None:
        env["TRTOPS_FAKE_VERIFY_LOG"] = str(log)
    return trtops(project, *args, env=env)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corrupt(path: Path) -> bytes:
    """Flip one byte in the middle of a file; returns the new content."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def engine_file(project: Path, key: str) -> Path:
    return project / "cache" / "engines" / key[:2] / key / "engine.plan"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def keys_of(result) -> dict[str, str]:
    return {e["id"]: e["key"] for e in json.loads(result.stdout)["engines"] if e["key"]}


def test_a_corrupt_engine_never_reaches_the_runtime_in_verify(project: Path) -> None:
    applied = run(project, "apply", "--no-emit", "--json")
    assert applied.returncode == 0, applied.stderr
    keys = keys_of(applied)
    bad = corrupt(engine_file(project, keys["demo/heavy/fp32/lab"]))

    log = project / "loaded.log"
    result = run(project, "verify", "--json", log=log)
    assert result.returncode == 1, result.stdout + result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    assert engines["demo/heavy/fp32/lab"]["status"] == "invalid"
    assert "sha256" in engines["demo/heavy/fp32/lab"]["message"]
    assert engines["demo/conv/fp32/lab"]["status"] == "verified"
    loaded = log.read_text().split()
    intact = {sha256(engine_file(project, keys[i]).read_bytes())
              for i in ("demo/conv/fp32/lab", "demo/conv/fp16/lab")}
    assert set(loaded) == intact, "only the intact engines were loaded"
    assert sha256(bad) not in loaded
    assert "Traceback" not in result.stderr


def test_emit_refuses_a_corrupt_engine_for_python_and_triton(project: Path) -> None:
    applied = run(project, "apply", "--no-emit", "--json")
    assert applied.returncode == 0, applied.stderr
    keys = keys_of(applied)
    bad = corrupt(engine_file(project, keys["demo/conv/fp32/lab"]))

    result = run(project, "emit", "--dest", "out", "--loaders", "python,triton", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    skipped = {s["engine"]: s["reason"] for s in report["skipped"]}
    assert "does not match the sha256" in skipped["demo/conv/fp32/lab"]
    written = {(w["engine"], w["loader"]) for w in report["written"]}
    assert ("demo/conv/fp16/lab", "python") in written and ("demo/conv/fp16/lab", "triton") in written
    out = project / "out"
    assert not (out / "python" / "conv_fp32_lab.py").exists()
    assert not (out / "triton" / "conv_fp32").exists()
    for plan in out.rglob("*.plan"):
        assert sha256(plan.read_bytes()) != sha256(bad), plan


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"emitted_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_the_emitted_loader_checks_sha256_before_touching_tensorrt(project: Path) -> None:
    applied = run(project, "apply", "--json")
    assert applied.returncode == 0, applied.stderr
    module_path = project / "out" / "python" / "conv_fp32_lab.py"
    plan = module_path.with_suffix(".plan")
    assert plan.is_file()
    corrupt(plan)
    module = _load_module(module_path)
    imported = []
    module._import_tensorrt = lambda: imported.append(True)  # would deserialize next
    with pytest.raises(module.EngineLoadError, match="sha256"):
        module.Engine()
    assert imported == []
