"""`apply --report FILE.html` and `trtops report -o FILE.html` end to end (the toolchain
test double stands in for TensorRT; perf.json files are planted as the performance gate
writes them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from apply_helpers import builds, make_project, trtops
from report_helpers import perf_json


def ref_key(project: Path, engine: str) -> str:
    return json.loads((project / "cache" / "refs" / f"{engine}.json").read_text())["key"]


def entry(project: Path, key: str) -> Path:
    return project / "cache" / "engines" / key[:2] / key


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project applied once: heavy fails its accuracy check (perturbed engine), conv's
    engines are accepted on `lab`; the `h100` target is skipped here."""
    project = make_project(tmp_path_factory.mktemp("report"))
    done = trtops(project, "apply", "--no-emit", "--keep-going", "--report", "reports/apply.html",
                  env={"TRTOPS_FAKE_PERTURB": "heavy"})
    assert done.returncode == 4, done.stderr
    return project


def test_apply_writes_the_report_even_when_an_engine_failed(built):
    html = (built / "reports" / "apply.html").read_text(encoding="utf-8")
    assert html.count('<article class="engine"') == 5
    assert "accuracy failed" in html and "skipped" in html and "built" in html
    heavy = html[html.index("heavy/fp32/lab"):]
    assert '<svg class="chart histogram"' in heavy and 'class="bar"' in heavy  # real errors
    assert "first build of this engine" in html
    assert "exit code</dt><dd>4" in html


def test_apply_refused_for_a_missing_tensorrt_still_writes_the_report(built, tmp_path):
    done = trtops(built, "apply", "--no-emit", "--report", str(tmp_path / "r.html"),
                  env={"TRTOPS_FAKE_TENSORRT": ""})
    assert done.returncode == 5, done.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "environment missing" in html and "TensorRT is not installed here" in html


def test_report_reads_the_cache_without_building(built):
    before = builds(built)
    key = ref_key(built, "demo/conv/fp32/lab")
    old = ref_key(built, "demo/conv/fp16/lab")
    (entry(built, key) / "perf.json").write_text(json.dumps(
        perf_json(0.6, baseline={"key": old, "median_ms": 0.5})))
    done = trtops(built, "report", "-o", "out/report.html")
    assert done.returncode == 0, done.stderr
    assert builds(built) == before
    assert re.search(r"report: 5 engine\(s\) \(.*\) -> out/report.html", done.stderr)
    html = (built / "out" / "report.html").read_text(encoding="utf-8")
    assert html.count('<article class="engine"') == 5
    assert "accepted" in html and "rejected" in html and "not built" in html
    conv = html[html.index("conv/fp32/lab"):html.index("conv/fp32/h100")]
    assert '<svg class="chart latency"' in conv and '<svg class="chart throughput"' in conv
    assert "+20.0%" in conv
    # what changed since the baseline's entry, from the key components of both
    assert "precision fp16 → fp32" in conv


def test_a_damaged_perf_json_is_a_note_not_a_failure(built, tmp_path):
    key = ref_key(built, "demo/conv/fp16/lab")
    (entry(built, key) / "perf.json").write_text("{not json")
    done = trtops(built, "report", "-o", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "perf.json not shown" in html
    (entry(built, key) / "perf.json").unlink()


def test_a_failed_performance_verdict_shows_in_the_matrix(built, tmp_path):
    key = ref_key(built, "demo/conv/fp16/lab")
    (entry(built, key) / "perf.json").write_text(json.dumps(perf_json(0.9, passed=False)))
    try:
        done = trtops(built, "report", "-o", str(tmp_path / "r.html"))
    finally:
        (entry(built, key) / "perf.json").unlink()
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "performance failed" in html and "median 0.9 ms &gt; budget 0.5 ms" in html


def test_in_github_actions_the_step_summary_gets_the_compact_version(built, tmp_path):
    summary = tmp_path / "summary.md"
    done = trtops(built, "report", "-o", str(tmp_path / "r.html"),
                  env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 0, done.stderr
    text = summary.read_text(encoding="utf-8")
    assert "| engine | `lab` | `h100` |" in text
    assert text.startswith("### trtops report: 1 rejected (accuracy), 2 not built, 2 accepted")
    assert "| `demo/heavy/fp32` | ❌ rejected (accuracy) | · |" in text


def test_bad_input_is_exit_1(built, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodels: [{name: x}]\n")
    done = trtops(built, "report", str(bad), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and not (tmp_path / "r.html").exists()
    done = trtops(built, "report", "-o", str(tmp_path))
    assert done.returncode == 1 and "is a folder" in done.stderr
    done = trtops(built, "apply", "--report", str(tmp_path))
    assert done.returncode == 1 and "--report" in done.stderr
    done = trtops(built, "report")
    assert done.returncode == 1 and "-o" in done.stderr
