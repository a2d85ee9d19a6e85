"""`trtops apply` end to end on the CLI, with the toolchain test double standing in for
TensorRT (tests/doubles.py). Everything else is real: manifests, ONNX models, ONNX Runtime,
the cache on disk, the planner, emitters and reports. The same flows run on real TensorRT in
tests/gpu/test_apply_lab.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import PLATFORM, builds, make_project, trtops
from helpers import make_conv_model

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_apply_builds_verifies_publishes_and_emits_then_is_a_no_op(project):
    first = trtops(project, "apply", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    status = {e["id"]: e["status"] for e in doc["engines"]}
    assert status == {
        "demo/conv/fp32/lab": "built", "demo/conv/fp16/lab": "built",
        "demo/heavy/fp32/lab": "built",
        "demo/conv/fp32/h100": "skipped", "demo/conv/fp16/h100": "skipped",
    }
    assert sorted(builds(project)) == ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    # every built engine passed the gate and says so in the cache
    for engine in doc["engines"]:
        if engine["status"] == "built":
            assert engine["accuracy"]["state"] == "accepted"
            entry = project / "cache" / "engines" / engine["key"][:2] / engine["key"]
            assert {"engine.plan", "meta.json", "accuracy.json", "build.log"} <= {p.name for p in entry.iterdir()}
    # loaders for the model that asked for them, only
    emitted = {p.relative_to(project / "out").as_posix() for p in (project / "out").rglob("*") if p.is_file()}
    assert any(p.startswith("python/") and p.endswith(".py") for p in emitted)
    assert any(p.startswith("triton/") and p.endswith("config.pbtxt") for p in emitted)
    assert not any("heavy" in p for p in emitted)

    second = trtops(project, "apply", "--json")
    assert second.returncode == 0, second.stderr
    assert {e["status"] for e in json.loads(second.stdout)["engines"]} == {"reused", "skipped"}
    assert len(builds(project)) == 3  # nothing rebuilt

    plan = trtops(project, "plan", *PLATFORM, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_changed_external_weights_rebuild_exactly_one_engine(project):
    assert trtops(project, "apply").returncode == 0
    make_conv_model(project / "manifests" / "models" / "heavy.onnx", seed=3, external_data=True)
    plan = trtops(project, "plan", *PLATFORM, "--detailed-exitcode")
    assert plan.returncode == 2
    assert "heavy" in plan.stdout and "weights" in plan.stdout.lower()
    result = trtops(project, "apply", "--json")
    assert result.returncode == 0, result.stderr
    rebuilt = [e["id"] for e in json.loads(result.stdout)["engines"] if e["status"] == "built"]
    assert rebuilt == ["demo/heavy/fp32/lab"]
    assert builds(project).count("demo/heavy/fp32/lab") == 2 and len(builds(project)) == 4


def test_build_failure_exits_3_and_leaves_no_entry(project):
    result = trtops(project, "apply", "--json", env={"TRTOPS_FAKE_BUILD_FAIL": "conv"})
    assert result.returncode == 3, result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    failed = engines["demo/conv/fp32/lab"]
    assert failed["status"] == "build_failed" and "node 3" in failed["message"]
    # stopped at the first failure: the rest were not attempted
    assert engines["demo/heavy/fp32/lab"]["status"] == "skipped"
    assert "not attempted" in engines["demo/heavy/fp32/lab"]["message"]
    assert not (project / "cache" / "engines" / failed["key"][:2] / failed["key"]).exists()

    going = trtops(project, "apply", "--keep-going", "--json", env={"TRTOPS_FAKE_BUILD_FAIL": "conv"})
    assert going.returncode == 3
    statuses = {e["id"]: e["status"] for e in json.loads(going.stdout)["engines"]}
    assert statuses["demo/heavy/fp32/lab"] == "built"
    leftovers = list((project / "cache" / "tmp").glob("*")) if (project / "cache" / "tmp").exists() else []
    assert leftovers == []


def test_accuracy_failure_exits_4_keeps_the_engine_rejected_and_emits_nothing(project):
    result = trtops(project, "apply", "--keep-going", "--json", env={"TRTOPS_FAKE_PERTURB": "conv"})
    assert result.returncode == 4, result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    rejected = engines["demo/conv/fp32/lab"]
    assert rejected["status"] == "accuracy_failed"
    assert rejected["accuracy"]["state"] == "rejected"
    assert "accuracy: FAILED" in rejected["message"]
    assert engines["demo/heavy/fp32/lab"]["status"] == "built"
    assert not (project / "out" / "python").exists() or not any(
        "conv" in p.name for p in (project / "out").rglob("*"))
    # the planner remembers: no blind rebuild, and apply keeps failing until fixed
    plan = trtops(project, "plan", *PLATFORM)
    assert "rejected" in plan.stdout
    again = trtops(project, "apply")
    assert again.returncode == 4
    assert builds(project).count("demo/conv/fp32/lab") == 1


def test_saved_plan_is_applied_exactly_and_refused_once_stale(project):
    saved = trtops(project, "plan", *PLATFORM, "-o", "plan.json")
    assert saved.returncode == 0, saved.stderr
    assert trtops(project, "apply", "plan.json").returncode == 0
    assert len(builds(project)) == 3
    stale = trtops(project, "apply", "plan.json")
    assert stale.returncode == 1
    assert "out of date" in stale.stderr and "Traceback" not in stale.stderr


def test_target_restriction_and_unknown_target(project):
    result = trtops(project, "apply", "--target", "h100", "--json")
    assert result.returncode == 0
    assert {e["target"] for e in json.loads(result.stdout)["engines"]} == {"h100"}
    assert builds(project) == []
    unknown = trtops(project, "apply", "--target", "a100")
    assert unknown.returncode == 1 and "a100" in unknown.stderr


def test_apply_without_tensorrt_is_an_environment_error(project):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_")}
    environ["CI"] = "true"
    result = subprocess.run([sys.executable, "-m", "trtops", "apply"], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    if "tensorrt" in sys.modules or _has_tensorrt():
        pytest.skip("TensorRT is installed here")
    assert result.returncode == 5, result.stdout + result.stderr
    # One upfront error: no cascade of "not attempted" lines, no message said twice.
    assert result.stderr.count("error:") == 1, result.stderr
    assert "TensorRT is not installed here" in result.stderr
    assert "not attempted" not in result.stdout + result.stderr
    assert "not installed here) (" not in result.stdout + result.stderr
    # verify too: one error, exit 5 (docs/exit-codes.md), not a table of skipped engines
    verify = subprocess.run([sys.executable, "-m", "trtops", "verify"], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 5, verify.stdout + verify.stderr
    assert verify.stderr.count("error:") == 1 and "cannot check the" in verify.stderr
    assert "skipped" not in verify.stdout


def _has_tensorrt() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def test_verify_rechecks_cached_engines_with_new_tolerances(project):
    assert trtops(project, "apply", "--no-emit").returncode == 0
    ok = trtops(project, "verify", "--json")
    assert ok.returncode == 0, ok.stderr
    statuses = {e["id"]: e["status"] for e in json.loads(ok.stdout)["engines"]}
    assert statuses["demo/conv/fp32/lab"] == "verified"
    # A corrupted engine file is caught by its sha256 before anything deserializes it.
    key = next(e["key"] for e in json.loads(ok.stdout)["engines"] if e["id"] == "demo/heavy/fp32/lab")
    plan_file = project / "cache" / "engines" / key[:2] / key / "engine.plan"
    plan_file.chmod(0o644)
    plan_file.write_bytes(plan_file.read_bytes()[:-1] + b"\0")
    bad = trtops(project, "verify", "--json")
    assert bad.returncode == 1
    engines = {e["id"]: e for e in json.loads(bad.stdout)["engines"]}
    assert "sha256" in engines["demo/heavy/fp32/lab"]["message"]


def test_concurrent_applies_on_one_cache_build_each_engine_once(project):
    """8 applies at once on one local cache: every engine is built exactly once."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: trtops(project, "apply", "--no-emit", "--json"), range(8)))
    assert [r.returncode for r in results] == [0] * 8, [r.stderr[-500:] for r in results]
    assert sorted(builds(project)) == ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    check = trtops(project, "cache", "verify")
    assert check.returncode == 0, check.stdout + check.stderr


# --------------------------------------------------------------------------- url sources


@pytest.fixture
def model_server(tmp_path):
    """Static files from tmp_path/served over http on 127.0.0.1, with the paths requested."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


URL_MANIFEST = """
version: 1
targets:
  lab: {{gpu: any}}
models:
  - name: remote
    source: {{url: "{url}", sha256: "{sha}", allow_http: true}}
    precisions: [fp32]
    profiles:
      - input: {{min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}}
"""
LOOPBACK = {"TRTOPS_ALLOW_LOOPBACK_SOURCES": "1"}


def _url_project(tmp_path, url, sha):
    from helpers import write_manifest

    write_manifest(tmp_path / "manifests", URL_MANIFEST.format(url=url, sha=sha), name="remote.yaml")
    return tmp_path


def test_url_source_downloaded_once_verified_and_built(tmp_path, model_server):
    import hashlib
    import shutil

    served, base, hits = model_server
    model = make_conv_model(served / "m.onnx", seed=3)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    project = _url_project(tmp_path, base + "/m.onnx", sha)
    sources = project / "cache" / "sources"

    first = trtops(project, "apply", "--json", env=LOOPBACK)
    assert first.returncode == 0, first.stderr
    assert [e["status"] for e in json.loads(first.stdout)["engines"]] == ["built"]
    assert hits == ["/m.onnx"] and sorted(p.name for p in sources.iterdir()) == [f"{sha}.onnx"]

    # Built again from the cached file: no second request.
    shutil.rmtree(project / "cache" / "engines")
    again = trtops(project, "apply", "--json", env=LOOPBACK)
    assert again.returncode == 0, again.stderr
    assert hits == ["/m.onnx"]

    # A wrong file under the declared name is never built: it is replaced by the download.
    (sources / f"{sha}.onnx").write_bytes(b"planted, not the declared model")
    shutil.rmtree(project / "cache" / "engines")
    planted = trtops(project, "apply", "--json", env=LOOPBACK)
    assert planted.returncode == 0, planted.stderr
    assert hits == ["/m.onnx", "/m.onnx"] and (sources / f"{sha}.onnx").read_bytes() == model.read_bytes()


def test_url_source_with_a_wrong_sha256_exits_1_and_keeps_nothing(tmp_path, model_server):
    served, base, hits = model_server
    make_conv_model(served / "m.onnx", seed=3)
    project = _url_project(tmp_path, base + "/m.onnx", "ab" * 32)
    result = trtops(project, "apply", env=LOOPBACK)
    assert result.returncode == 1, result.stderr
    assert "abab" in result.stderr and "nothing was kept" in result.stderr and "Traceback" not in result.stderr
    assert hits == ["/m.onnx"]
    assert not list((project / "cache" / "sources").iterdir())
    assert not builds(project)


def test_url_source_offline_exits_5(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project = _url_project(tmp_path, f"http://127.0.0.1:{port}/m.onnx", "ab" * 32)
    result = trtops(project, "apply", env=LOOPBACK)
    assert result.returncode == 5, result.stderr
    assert "cannot download" in result.stderr and "Traceback" not in result.stderr
    assert not builds(project)


def test_apply_records_what_it_built_in_an_existing_lock(project):
    """The merge step of the release flow: keys locked as pending in the pull request,
    apply on the GPU type fills in sha256, size and verdict; --no-lock-update leaves it."""
    lock_dir = project / "manifests" / "trtops.lock"
    assert trtops(project, "apply", "--no-emit").returncode == 0
    assert not lock_dir.exists()  # no lock: apply creates none
    (project / "cache").rename(project / "old-cache")
    locked = trtops(project, "lock", *PLATFORM)
    assert locked.returncode == 0, locked.stderr
    [section] = list(lock_dir.iterdir())
    assert section.name == "cc9.0-nvidia-h200-trt8.6.0.json"
    assert {e["engine"] for e in json.loads(section.read_text())["engines"].values()} == {None}

    unchanged = trtops(project, "apply", "--no-emit", "--no-lock-update")
    assert unchanged.returncode == 0, unchanged.stderr
    assert {e["engine"] for e in json.loads(section.read_text())["engines"].values()} == {None}
    (project / "cache").rename(project / "cache-2")
    applied = trtops(project, "apply", "--no-emit", "--json")
    assert applied.returncode == 0, applied.stderr
    engines = json.loads(section.read_text())["engines"]
    built = {e["id"]: e["key"] for e in json.loads(applied.stdout)["engines"] if e["status"] == "built"}
    assert sorted(engines) == sorted(built) == [
        "demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    for spec_id, entry in engines.items():
        assert entry["key"] == built[spec_id] and entry["accuracy"]["state"] == "accepted"
        meta = json.loads((project / "cache" / "engines" / entry["key"][:2] / entry["key"]
                           / "meta.json").read_text())
        assert entry["engine"] == {"sha256": meta["engine_sha256"], "size": meta["engine_size"]}
    check = trtops(project, "plan", "--check-lock")
    assert check.returncode == 0, check.stdout + check.stderr
