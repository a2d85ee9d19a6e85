"""The HTML report (trtops.report.html) and its Markdown summary, from pages built in memory:
structure, self-containment, escaping of hostile names, engines without perf/accuracy."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from report_helpers import HOSTILE, accuracy, hostile_page, outcome, page, perf

from trtops.report.github import report_summary
from trtops.report.html import CSS, SCRIPT, render_html, write_html
from trtops.report.page import EngineView, PerfView, ReportPage, state_class


class Tree(HTMLParser):
    """Tags with their attributes, and the text of the page, in document order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.fixture
def mixed() -> ReportPage:
    return page(
        EngineView(outcome("resnet50", "built", key="ab" * 32, engine_bytes=25 * 2**20),
                   "built", meta={"build_seconds": 42.5, "engine_size": 25 * 2**20,
                                  "tensorrt_version": "10.13.3.9",
                                  "gpu": {"name": "NVIDIA H100", "compute_capability": "9.0"}},
                   accuracy=accuracy(), perf=perf(), changes=["TensorRT 10.12.0.36 → 10.13.3.9"]),
        EngineView(outcome("resnet50", "skipped", target="l4", action="skip",
                           message="needs an NVIDIA L4"), "skipped"),
        EngineView(outcome("bert", "accuracy_failed", precision="int8", key="ef" * 32,
                           details="line\n" * 100), "accuracy_failed",
                   accuracy=accuracy("logits", 0.5)),
    )


def test_the_page_is_one_document_with_header_matrix_and_one_article_per_engine(mixed):
    html = render_html(mixed)
    tree = Tree(html)
    assert html.startswith("<!DOCTYPE html>")
    assert [a.get("id") for a in tree.all("article")] == ["engine-1", "engine-2", "engine-3"]
    text = " ".join(tree.text)
    for fact in ("2026-12-06T09:00:00Z", "ci-1 (Linux)", "TensorRT 10.13.3.9", "0.1.0"):
        assert fact in text
    # counts per state, most severe first
    assert re.search(r"accuracy failed\s*× 1.*skipped\s*× 1.*built\s*× 1", text, re.S)
    # the matrix: rows are manifest/model/precision, columns the targets, cells link down
    matrix = html[html.index('<table class="matrix"'):html.index("</table>")]
    assert re.findall(r'<th scope="col">(.*?)</th>', matrix) == ["engine", "lab", "l4"]
    assert re.findall(r'<th scope="row"><bdi>(.*?)</bdi>', matrix) == [
        "vision/resnet50/fp16", "vision/bert/int8"]
    links = re.findall(r'href="#(engine-\d)"', matrix)
    assert links == ["engine-1", "engine-2", "engine-3"]
    assert 'class="none"' in matrix  # bert has no l4 engine
    # state in text and icon, not colour alone
    assert re.search(r'class="state fail"><a href="#engine-3"><span aria-hidden="true">✗</span> '
                     r"accuracy failed</a>", matrix)


def test_engine_facts_changes_accuracy_and_performance(mixed):
    html = render_html(mixed)
    first = html[html.index('id="engine-1"'):html.index('id="engine-2"')]
    assert "42.5s" in first and "25 MiB" in first  # build time, one byte format
    assert "TensorRT 10.12.0.36 → 10.13.3.9" in first
    assert "+20.0%" in first and "delta-up" in first  # median 1.2 vs 1.0 before
    assert first.count('<svg class="chart histogram"') == 1
    assert first.count('<svg class="chart latency"') == 1 and first.count('<svg class="chart throughput"') == 1
    assert 'class="tolerance"' in first and "atol 0.01" in first
    assert 'class="baseline"' in first  # the previous engine's median on the latency chart
    assert "NVIDIA H100 80GB HBM3" in first and "6,667" in first


def test_engines_without_perf_or_accuracy_render_with_what_is_missing(mixed):
    html = render_html(mixed)
    skipped = html[html.index('id="engine-2"'):html.index('id="engine-3"')]
    assert "not measured" in skipped and "not checked" in skipped and "<svg" not in skipped
    failed = html[html.index('id="engine-3"'):]
    assert "not measured" in failed and "<details>" in failed  # the log tail of a failure
    assert "lines above" in failed


def test_old_accuracy_json_without_histograms_renders_the_table_without_plots():
    html = render_html(page(EngineView(outcome("m", "reused", key="ab" * 32), "reused",
                                       accuracy=accuracy(histogram=False))))
    assert "profile0/opt" in html and "median abs" in html and 'class="chart' not in html


def test_exact_outputs_plot_an_empty_histogram_that_says_so():
    html = render_html(page(EngineView(outcome("m", "built"), "built", accuracy=accuracy(offset=0.0))))
    assert "every element matches exactly" in html and "512 exact" in html


def test_unknown_statuses_render_generically_with_their_text():
    html = render_html(page(EngineView(outcome("m", "teleported"), "teleported")))
    assert 'class="state other"' in html and "teleported" in html
    assert state_class("teleported") == "other"


def test_a_failed_performance_gate_is_a_failure_with_the_gates_messages():
    failed = perf(reasons=("opt: median 1.20 ms over the budget of 1.00 ms",))
    html = render_html(page(EngineView(outcome("m", "perf_failed"), "perf_failed", perf=failed)))
    assert state_class("perf_failed") == "fail"
    matrix = html[html.index('<table class="matrix"'):html.index("</table>")]
    assert re.search(r'class="state fail"><a href="#engine-1"><span aria-hidden="true">✗</span> '
                     r"performance failed</a>", matrix)
    assert 'performance gate: <span class="state fail">✗ failed</span>' in html
    assert '<li class="fail"><span aria-hidden="true">✗</span> opt: median 1.20 ms over the budget' in html
    assert "compared with the previous engine" in html and "cdcdcdcdcdcd" in html
    assert "(from the cache)" in html
    markdown = report_summary(page(EngineView(outcome("m", "perf_failed"), "perf_failed", perf=failed)))
    assert "❌ `m/fp16/lab`" in markdown and "over the budget of 1.00 ms" in markdown


def test_every_case_is_compared_with_the_previous_engines_same_case(mixed):
    first = render_html(mixed)
    first = first[first.index('id="engine-1"'):first.index('id="engine-2"')]
    table = first[first.index('<table class="perf"'):]
    table = table[:table.index("</table>")]
    assert "previous median" in table
    assert re.search(r"<td>opt</td>.*?>1 ms<.*?delta-up\">\+20\.0%", table, re.S)
    assert re.search(r"<td>big</td>.*?>4\.4 ms<.*?delta-down\">-9\.1%", table, re.S)
    assert first.count('class="baseline"') == 2  # one dashed median per compared case
    assert "performance gate: <span class=\"state ok\">✓ passed</span>" in first


def test_the_measured_state_says_no_budget_was_set():
    view = PerfView.from_json({"cases": [], "verdict": {"state": "measured", "passed": True,
                                                        "checks": [], "notes": ["no previous engine"],
                                                        "baseline": None}})
    html = render_html(page(EngineView(outcome("m", "built"), "built", perf=view)))
    assert "measured (no budget or regression limit set)" in html and "no previous engine" in html


def test_the_select_fastest_choice_shows_on_the_chosen_and_the_other_engines():
    record = {"policy": "fastest", "precision": "fp16", "reason": f"fp16 0.8 ms at opt, {HOSTILE}"}
    chosen = EngineView(outcome("m", "built"), "built", perf=perf(), selection=dict(record, chosen=True))
    other = EngineView(outcome("m", "built", precision="fp32"), "built",
                       selection=dict(record, chosen=False))
    html = render_html(page(chosen, other))
    matrix = html[html.index('<table class="matrix"'):html.index("</table>")]
    assert matrix.count('aria-label="default loader"') == 1
    assert "<strong>the model's default loader</strong>: fp16 0.8 ms at opt" in html
    assert "not chosen: fp16 is the default loader" in html
    assert HOSTILE not in html
    assert "⭐ default loader" in report_summary(page(chosen, other))


def test_nothing_is_loaded_from_outside_and_the_policy_allows_only_the_inline_parts(mixed):
    html = render_html(mixed)
    tree = Tree(html)
    for _, attrs in tree.tags:
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (name, value)
    assert not tree.all("link") and not tree.all("img") and not tree.all("iframe")
    assert "@import" not in html and "url(" not in html
    assert re.findall(r"https?://[^\s\"'<]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    policy = next(a["content"] for a in tree.all("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy
    for source in (CSS, SCRIPT):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert f"<style>{CSS}</style>" in html and f"<script>{SCRIPT}</script>" in html


def test_hostile_names_are_text_never_markup():
    html = render_html(hostile_page())
    tree = Tree(html)
    assert HOSTILE not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(tree.all("script")) == 1 and tree.scripts == [SCRIPT]
    assert not [attrs for _, attrs in tree.tags if any(k.startswith("on") for k in attrs)]
    assert HOSTILE in " ".join(tree.text)  # readers see the name as it is


def test_bidi_and_control_characters_show_as_escapes():
    html = render_html(hostile_page())
    assert "\u202e" not in html and "evil\\u202eexe.onnx" in html
    control = page(EngineView(outcome("m\x1b[31m", "built"), "built"))
    assert "\x1b" not in render_html(control)


def test_write_html_writes_the_page_atomically(tmp_path, mixed):
    target = write_html(mixed, tmp_path / "out" / "report.html")
    assert target.read_text(encoding="utf-8") == render_html(mixed).replace(
        mixed.generated_at, mixed.generated_at)
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_perf_view_keeps_only_well_typed_values():
    view = PerfView.from_json({"cases": [
        {"label": 5, "batch": True, "cuda_graph": "yes", "latency_ms": {"median": "fast", "p90": -1,
                                                                       "p99": float("nan")},
         "throughput": [1]}, "junk"],
        "verdict": {"state": 3, "passed": "no", "summary": ["x"], "notes": [1, "skipped"],
                    "checks": [1, {"passed": "no", "message": "x"},
                               {"case": 2, "kind": None, "passed": False, "message": "slower"}],
                    "baseline": {"key": 3, "source": {}, "cases": {"case 1": {"median_ms": "1"},
                                                                   "opt": [1], "big": {"median_ms": 0}}}},
        "gpu": {"name": {"x": 1}, "driver": "550"}})
    assert view is not None and len(view.cases) == 1
    case = view.cases[0]
    assert (case.label, case.batch, case.cuda_graph, case.latency_ms, case.throughput) == (
        "case 1", None, None, {}, None)
    assert (view.state, view.passed, view.summary, view.notes) == (None, None, None, ["skipped"])
    assert view.failures == ["slower"] and view.checks[0].case == "" and view.checks[0].kind == ""
    assert view.baseline_key is None and view.baseline_source is None and view.baseline_ms == {}
    assert view.gpu == {"driver": "550"} and view.delta_percent() is None
    assert PerfView.from_json([1, 2]) is None
    render_html(page(EngineView(outcome("m", "built"), "built", perf=view)))  # no crash


def test_the_step_summary_version_has_the_matrix_and_latency_per_engine(mixed):
    markdown = report_summary(mixed)
    assert "| engine | `lab` | `l4` |" in markdown
    assert "| `vision/resnet50/fp16` | ✅ built | ⏭️ skipped |" in markdown
    assert "| `vision/bert/int8` | ❌ accuracy failed | · |" in markdown
    assert "- ✅ `resnet50/fp16/lab`: opt 1.2 / 1.3 / 1.6 ms, 6,667/s; big 4 / 4.4 / 5 ms, 8,000/s " \
           "(+20.0% vs previous)" in markdown
    hostile = report_summary(hostile_page())
    assert "\u202e" not in hostile and "evil\\u202eexe.onnx" in hostile
