"""The HTML report as a real browser renders it: headless Chromium (Debian's `chromium`)
driven through the DevTools protocol (tests/browser.py). Checks what parsing HTML cannot:
no console errors, exceptions or Content-Security-Policy violations, the matrix rows as
laid out, every chart drawn with a non-empty box, the page readable without JavaScript,
hostile names inert, and a screenshot.

Skipped when no Chromium binary is found (`apt-get install chromium`; `.ci/run` installs it
where it can)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import make_project, trtops
from browser import Browser, find_chromium
from report_helpers import hostile_page, perf_json

from trtops.report.html import write_html

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get "
                                "install chromium, or set CHROMIUM=/path/to/chrome)")

ROWS = """[...document.querySelectorAll('table.matrix tbody tr')].map(
  r => [...r.children].map(c => c.textContent.trim()))"""
CHARTS = """[...document.querySelectorAll('svg.chart')].map(s => {
  const box = s.getBoundingClientRect();
  const marks = [...s.querySelectorAll('rect')].map(r => r.getBoundingClientRect())
    .filter(b => b.width > 0 && b.height > 0).length;
  return {cls: s.getAttribute('class'), width: box.width, height: box.height, marks: marks,
          visible: getComputedStyle(s).display !== 'none'};
})"""
VISIBLE_ROWS = """[...document.querySelectorAll('table.matrix tbody tr')]
  .filter(r => getComputedStyle(r).display !== 'none').length"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The apply report of a real run (one engine fails its accuracy check), the cache's
    report with a measured engine, and a page full of hostile names."""
    project = make_project(tmp_path_factory.mktemp("browser"))
    done = trtops(project, "apply", "--no-emit", "--keep-going", "--report", "apply.html",
                  env={"TRTOPS_FAKE_PERTURB": "heavy"})
    assert done.returncode == 4, done.stderr
    key = json.loads((project / "cache/refs/demo/conv/fp32/lab.json").read_text())["key"]
    (project / "cache/engines" / key[:2] / key / "perf.json").write_text(json.dumps(perf_json(0.6)))
    done = trtops(project, "report", "-o", "report.html")
    assert done.returncode == 0, done.stderr
    hostile = write_html(hostile_page(), project / "hostile.html")
    return {"apply": project / "apply.html", "report": project / "report.html", "hostile": hostile}


@pytest.fixture(scope="module")
def browser():
    with Browser(CHROMIUM) as started:
        yield started


def load(browser: Browser, path: Path, *, javascript: bool = True) -> None:
    browser.open_page(javascript=javascript)
    browser.navigate(path.as_uri())


def test_the_apply_report_renders_without_errors_with_matrix_and_charts(browser, pages, tmp_path):
    load(browser, pages["apply"])
    assert browser.evaluate("document.title") == "trtops apply report"
    assert browser.evaluate(ROWS) == [
        ["demo/conv/fp32", "✓ built", "– skipped"],
        ["demo/conv/fp16", "✓ built", "– skipped"],
        ["demo/heavy/fp32", "✗ accuracy failed", "·"],
    ]
    charts = browser.evaluate(CHARTS)
    assert all(c["visible"] and c["width"] > 0 and c["height"] > 0 for c in charts)
    histograms = [c for c in charts if c["cls"] == "chart histogram"]
    assert len(histograms) == 3 and histograms[-1]["marks"] > 0  # heavy's perturbed outputs
    # apply measured both accepted conv engines (the toolchain double's measure): heavy,
    # rejected by its accuracy check, is not measured
    for kind in ("chart latency", "chart throughput"):
        drawn = [c for c in charts if c["cls"] == kind]
        assert len(drawn) == 2 and all(c["marks"] > 0 for c in drawn), kind
    assert len(charts) == 7
    # the inline script ran under the page's Content-Security-Policy: the filter works
    assert browser.evaluate("document.getElementById('failures-only').click(), 0") == 0
    assert browser.evaluate(VISIBLE_ROWS) == 1
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    (tmp_path / "apply.png").write_bytes(png)
    assert browser.problems() == []


def test_the_cache_report_draws_latency_and_throughput(browser, pages):
    load(browser, pages["report"])
    assert [row[0] for row in browser.evaluate(ROWS)] == [
        "demo/conv/fp32", "demo/conv/fp16", "demo/heavy/fp32"]
    charts = {c["cls"]: c for c in browser.evaluate(CHARTS)}
    for kind in ("chart latency", "chart throughput"):
        assert charts[kind]["width"] > 0 and charts[kind]["height"] > 0 and charts[kind]["marks"] > 0
    assert browser.problems() == []


def test_the_page_reads_the_same_without_javascript(browser, pages):
    load(browser, pages["apply"], javascript=False)
    assert len(browser.evaluate(ROWS)) == 3 and browser.evaluate(VISIBLE_ROWS) == 3
    assert browser.evaluate("document.getElementById('failures-only')") is None
    assert all(c["width"] > 0 for c in browser.evaluate(CHARTS))
    assert browser.problems() == []


def test_hostile_names_stay_text_in_the_browser(browser, pages):
    load(browser, pages["hostile"])
    assert browser.evaluate("typeof window.alert_called") == "undefined"
    assert browser.evaluate("document.scripts.length") == 1
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    text = browser.evaluate("document.body.innerText")
    assert "<script>alert(1)</script>" in text and "evil\\u202eexe.onnx" in text
    assert browser.problems() == []  # no dialog opened, nothing blocked, nothing thrown
