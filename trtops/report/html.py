"""The HTML report (``apply --report FILE.html``, ``trtops report``): one self-contained
static page, made for CI artifacts.

No external URL, no JavaScript library: inline CSS, inline SVG charts (:mod:`.svg`) and a
few lines of inline script that only add a "failures only" filter; the page reads the same
without it. A Content-Security-Policy allows exactly that style and that script (by their
sha256) and nothing else, so even a string that escaped :func:`~.markup.esc` could not run.

Sections: the header (when, where, trtops version, counts per state), the engines x targets
matrix (state as colour, icon and text), then one article per engine: facts (build time,
size, key), what changed since the previous engine, accuracy per output (an |error|
histogram with the tolerance marked) and performance (latency and throughput charts, the
verdict and the change against the previous engine).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trtops.gate.histogram import ErrorHistogram
from trtops.names import format_bytes
from trtops.report.common import format_seconds, status_label, tail_lines
from trtops.report.markup import esc, fmt_error, fmt_ms, fmt_number
from trtops.report.page import EngineView, PerfView, ReportPage, state_class
from trtops.report.svg import error_histogram, latency_chart, throughput_chart

MAX_PLOTTED_OUTPUTS = 12  # histograms per engine; the table lists every output
MAX_ACCURACY_ROWS = 60
LOG_LINES = 60

ICONS = {"ok": "✓", "fail": "✗", "error": "‼", "warn": "!", "pending": "…", "skip": "–",
         "other": "•"}

CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--fail:#b3261e;--fail-bg:#ffebe9;--warn:#8a5a00;
--warn-bg:#fff3c4;--pending:#0550ae;--pending-bg:#ddf4ff;--skip:#57606a;--skip-bg:#eef1f4;
--error:#6e1a8a;--error-bg:#fbe9ff;--other:#3d444d;--other-bg:#e8eaed;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
margin:0 auto;max-width:1100px;padding:16px 20px 40px;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line)}
h3{font-size:1.1em;margin:0 0 .4em}h4{font-size:1em;margin:1em 0 .3em}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:.4em 0}
dl.facts dt{color:#57606a}dl.facts dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.4em 0;max-width:100%}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;border-radius:4px;padding:1px 7px;font-weight:600;white-space:nowrap}
td.state{display:table-cell;border-radius:0}
.ok{color:var(--ok);background:var(--ok-bg)}.fail{color:var(--fail);background:var(--fail-bg)}
.warn{color:var(--warn);background:var(--warn-bg)}.pending{color:var(--pending);background:var(--pending-bg)}
.skip{color:var(--skip);background:var(--skip-bg)}.error{color:var(--error);background:var(--error-bg)}
.other{color:var(--other);background:var(--other-bg)}
td.state a{color:inherit;text-decoration:none}td.state a:hover{text-decoration:underline}
td.none{color:#8c959f;text-align:center}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px}
article.engine{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:14px 0}
article.engine>h3 .state{font-size:.85em;margin-left:6px}
.message{margin:.2em 0 .6em;overflow-wrap:anywhere}
.muted{color:#57606a}.delta-up{color:var(--fail);font-weight:600}.delta-down{color:var(--ok);font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:10px 24px}
figure{margin:.3em 0}figcaption{font-size:.88em;color:#57606a;max-width:420px;overflow-wrap:anywhere}
svg.chart{max-width:100%;height:auto;background:#fff}
svg .axis,svg .grid{stroke:#8c959f;stroke-width:1}svg .grid{stroke:#e6e8eb}
svg .tick,svg .value,svg .label,svg .empty{font:11px system-ui,sans-serif;fill:#57606a}
svg .label{fill:#1f2328}svg .bar{fill:#4a7bd0}svg .tolerance{stroke:var(--fail);stroke-width:2;stroke-dasharray:5 3}
svg .tolerance-label{font:bold 11px system-ui,sans-serif;fill:var(--fail)}
svg .bar-median{fill:#2f6fd0}svg .bar-p90{fill:#7aa5e6}svg .bar-p99{fill:#b9cff2}
svg .bar-throughput{fill:#2d9b5a}svg .baseline{stroke:#8a5a00;stroke-width:2;stroke-dasharray:4 3}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:-1px}
.legend .bar-median{background:#2f6fd0}.legend .bar-p90{background:#7aa5e6}.legend .bar-p99{background:#b9cff2}
ul.checks{list-style:none;padding-left:0}ul.checks li{background:none}
span.chosen{font-weight:600;margin-left:4px}
pre.log{background:#f6f8fa;padding:8px;overflow:auto;max-height:24em;white-space:pre-wrap}
#filter{margin:.3em 0}.hidden{display:none}
footer{margin-top:2em;color:#57606a;font-size:.88em}
@media print{article.engine{break-inside:avoid}}
""".strip()

# Progressive enhancement only: a "failures only" checkbox. Without script every row shows.
SCRIPT = """
(function(){
  var bar=document.getElementById('filter');
  if(!bar){return;}
  var box=document.createElement('input');box.type='checkbox';box.id='failures-only';
  var label=document.createElement('label');label.htmlFor='failures-only';
  label.appendChild(box);label.appendChild(document.createTextNode(' failures only'));
  bar.appendChild(label);
  box.addEventListener('change',function(){
    var items=document.querySelectorAll('[data-failing]');
    for(var i=0;i<items.length;i++){
      items[i].classList.toggle('hidden',box.checked&&items[i].getAttribute('data-failing')==='no');
    }
  });
})();
""".strip()

_FAILING = {"fail", "error", "warn"}


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; style-src {_sha256_source(CSS)}; "
       f"script-src {_sha256_source(SCRIPT)}; img-src data:; base-uri 'none'; form-action 'none'")


def render_html(page: ReportPage) -> str:
    """The report page as one HTML document (UTF-8 text)."""
    anchors = {id(engine): f"engine-{index}" for index, engine in enumerate(page.engines, 1)}
    title = page.title
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        _header(page, title),
        "<main>",
        _matrix(page, anchors),
        '<section id="engines"><h2>Engines</h2>',
    ]
    if not page.engines:
        parts.append('<p class="muted">No engines.</p>')
    parts += [_engine(engine, anchors[id(engine)]) for engine in page.engines]
    parts += [
        "</section></main>",
        f'<footer>Written by trtops {esc(page.version)}. Self-contained: no external resources; '
        "charts are inline SVG.</footer>",
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(page: ReportPage, path: str | Path) -> Path:
    """Write the page to ``path`` (its folder created) through a temporary file, so that a
    reader (a CI artifact upload) never sees half a page."""
    from trtops.fsutil import atomic_write

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, render_html(page).encode("utf-8"))
    return target


# --------------------------------------------------------------------------- header


def _state_badge(state: str, tag: str = "span") -> str:
    cls = state_class(state)
    return (f'<{tag} class="state {cls}"><span aria-hidden="true">{ICONS[cls]}</span> '
            f"{esc(status_label(state))}</{tag}>")


def _header(page: ReportPage, title: str) -> str:
    facts = [("when", esc(page.generated_at)), ("machine", esc(page.machine))]
    if page.platform:
        facts.append(("platform", esc(page.platform)))
    facts += [("trtops", esc(page.version)), ("cache", f"<code>{esc(page.cache)}</code>")]
    if page.exit_code is not None:
        facts.append(("exit code", str(int(page.exit_code))))
    if page.seconds is not None:
        facts.append(("took", esc(format_seconds(page.seconds))))
    counts = "".join(f'<li>{_state_badge(state)} × {count}</li>' for state, count in page.counts())
    return (f"<header><h1>{esc(title)}</h1>"
            f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'
            f'<ul class="counts" aria-label="engines per state">{counts}</ul></header>')


# --------------------------------------------------------------------------- matrix


def _matrix(page: ReportPage, anchors: Mapping[int, str]) -> str:
    targets = page.targets()
    rows = page.matrix()
    head = "".join(f'<th scope="col">{esc(t)}</th>' for t in targets)
    body = []
    for name, cells in rows:
        failing = any(state_class(e.state) in _FAILING for e in cells.values())
        tds = []
        for target in targets:
            engine = cells.get(target)
            if engine is None:
                tds.append('<td class="none"><span aria-label="not in the manifest">·</span></td>')
                continue
            cls = state_class(engine.state)
            tds.append(f'<td class="state {cls}"><a href="#{anchors[id(engine)]}">'
                       f'<span aria-hidden="true">{ICONS[cls]}</span> '
                       f"{esc(status_label(engine.state))}</a>{_chosen_mark(engine)}</td>")
        body.append(f'<tr data-failing="{"yes" if failing else "no"}"><th scope="row">'
                    f'<bdi>{esc(name)}</bdi></th>{"".join(tds)}</tr>')
    return ('<section id="matrix"><h2>Engines × targets</h2><div id="filter"></div>'
            '<table class="matrix"><caption class="muted">Each cell: the state of one engine '
            "(model/precision) on one target; click for its details.</caption>"
            f'<thead><tr><th scope="col">engine</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></section>')


def _chosen_mark(engine: EngineView) -> str:
    if (engine.selection or {}).get("chosen") is not True:
        return ""
    return ('<span class="chosen" role="img" aria-label="default loader" '
            'title="default loader (select: fastest)">★</span>')


# --------------------------------------------------------------------------- one engine


def _engine(engine: EngineView, anchor: str) -> str:
    outcome = engine.outcome
    cls = state_class(engine.state)
    failing = "yes" if cls in _FAILING else "no"
    name = f"{outcome.model}/{outcome.precision}/{outcome.target}"
    parts = [f'<article class="engine" id="{anchor}" data-failing="{failing}">',
             f"<h3><bdi>{esc(name)}</bdi> {_state_badge(engine.state)}</h3>"]
    if outcome.message:
        parts.append(f'<p class="message">{esc(outcome.message, limit=2000)}</p>')
    parts.append(_facts(engine))
    for note in engine.notes:
        parts.append(f'<p class="message warn">{esc(note, limit=1000)}</p>')
    parts.append(_changes(engine))
    parts.append(_accuracy(engine, anchor))
    parts.append(_performance(engine.perf, anchor))
    if outcome.details and cls in _FAILING:
        parts.append(f'<details><summary>details (last {LOG_LINES} lines)</summary>'
                     f'<pre class="log">{esc(tail_lines(outcome.details, LOG_LINES), limit=None)}'
                     "</pre></details>")
    parts.append("</article>")
    return "".join(parts)


def _facts(engine: EngineView) -> str:
    outcome = engine.outcome
    meta = engine.meta or {}
    facts: list[tuple[str, str]] = [("engine", f"<code><bdi>{esc(outcome.id)}</bdi></code>")]
    if outcome.manifest:
        where = outcome.manifest + (f":{outcome.line}" if outcome.line is not None else "")
        facts.append(("manifest", f"<code>{esc(where)}</code>"))
    if outcome.key:
        facts.append(("key", f'<code title="{esc(outcome.key)}">{esc(outcome.key[:16])}</code>'))
    if outcome.action:
        facts.append(("plan", esc(outcome.action)))
    if engine.build_seconds is not None:
        facts.append(("build time", esc(format_seconds(engine.build_seconds))))
    elif outcome.seconds is not None:
        facts.append(("time in this run", esc(format_seconds(outcome.seconds))))
    if engine.engine_bytes is not None:
        facts.append(("engine size", esc(format_bytes(engine.engine_bytes))))
    memory = meta.get("device_memory")
    if isinstance(memory, int) and not isinstance(memory, bool):
        facts.append(("device memory", esc(format_bytes(memory))))
    if isinstance(meta.get("tensorrt_version"), str):
        facts.append(("TensorRT", esc(meta["tensorrt_version"])))
    gpu = meta.get("gpu")
    if isinstance(gpu, Mapping) and gpu.get("name"):
        facts.append(("built on", esc(f"{gpu.get('name')} (cc {gpu.get('compute_capability', '?')})")))
    if isinstance(meta.get("created_at"), str):
        facts.append(("built at", esc(meta["created_at"])))
    selection = _selection(engine)
    if selection:
        facts.append(("select: fastest", selection))
    return f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'


def _selection(engine: EngineView) -> str:
    """What ``select: fastest`` chose among the model's precisions on this target."""
    record = engine.selection or {}
    reason, precision = record.get("reason"), record.get("precision")
    if not isinstance(reason, str) or not isinstance(precision, str):
        return ""
    if record.get("chosen") is True:
        return f"<strong>the model's default loader</strong>: {esc(reason, limit=1000)}"
    return f"not chosen: {esc(precision)} is the default loader ({esc(reason, limit=1000)})"


def _changes(engine: EngineView) -> str:
    items = [f"<li>{esc(change, limit=1000)}</li>" for change in engine.changes]
    perf = engine.perf
    case = perf.headline if perf else None
    delta = perf.delta_percent(case) if perf and case else None
    if perf is not None and case is not None and delta is not None:
        css = "delta-up" if delta > 0 else "delta-down"
        key = f" (<code>{esc(perf.baseline_key[:12])}</code>)" if perf.baseline_key else ""
        items.append(f'<li>latency: median {esc(fmt_ms(case.latency_ms.get("median")))} at '
                     f"{esc(case.label)} vs {esc(fmt_ms(perf.baseline_ms[case.label]))} for the "
                     f'previous engine{key}: <span class="{css}">{delta:+.1f}%</span></li>')
    if not items:
        items.append('<li class="muted">nothing recorded (no previous engine of this '
                     "model/precision/target, or it is unchanged)</li>")
    return f'<h4>What changed since the previous engine</h4><ul class="changes">{"".join(items)}</ul>'


# --------------------------------------------------------------------------- accuracy


def _describe(check: Mapping[str, Any]) -> str:
    """The gate's own line for an output check (what was compared, against what)."""
    from trtops.gate.compare import OutputResult

    try:
        return OutputResult.from_json(dict(check)).describe()
    except (KeyError, TypeError, ValueError, AttributeError):  # an odd (older, foreign) entry
        return str(check.get("reason") or "")  # must not break a report; a bug in ours must


def _accuracy(engine: EngineView, anchor: str) -> str:
    accuracy = engine.accuracy
    if not accuracy:
        return '<h4>Accuracy</h4><p class="muted">not checked</p>'
    if accuracy.get("skipped"):
        return '<h4>Accuracy</h4><p class="muted">accuracy check disabled (accuracy.enabled: false)</p>'
    parts = ["<h4>Accuracy</h4>"]
    if accuracy.get("summary"):
        parts.append(f'<p class="message">{esc(accuracy["summary"], limit=1000)}</p>')
    pairs = [(case, output) for case in accuracy.get("cases") or []
             for output in case.get("outputs") or []]
    errors = [case for case in accuracy.get("cases") or [] if case.get("error")]
    for case in errors[:10]:
        parts.append(f'<p class="message fail">{esc(case.get("label"))}: the engine failed to run: '
                     f'{esc(case.get("error"), limit=1000)}</p>')
    if not pairs:
        return "".join(parts)
    rows = []
    for case, output in pairs[:MAX_ACCURACY_ROWS]:
        verdict = "ok" if output.get("passed") else "fail"
        rows.append(f'<tr><td><bdi>{esc(output.get("name"))}</bdi></td><td>{esc(case.get("label"))}</td>'
                    f'<td>{esc(_describe(output), limit=1000)}</td>'
                    f'<td class="state {verdict}">{"✓ passed" if verdict == "ok" else "✗ failed"}</td></tr>')
    more = len(pairs) - MAX_ACCURACY_ROWS
    parts.append('<table class="accuracy"><thead><tr><th scope="col">output</th>'
                 '<th scope="col">input set</th><th scope="col">check</th>'
                 f'<th scope="col">verdict</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    if more > 0:
        parts.append(f'<p class="muted">{more} more output checks in accuracy.json</p>')
    parts.append(_histograms(pairs, anchor))
    return "".join(parts)


def _excess(output: Mapping[str, Any]) -> float:
    value = output.get("excess")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("inf")


def _histograms(pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]], anchor: str) -> str:
    """One |error| histogram per output: of its input set closest to (or furthest beyond)
    the tolerance."""
    worst: dict[str, tuple[Mapping[str, Any], Mapping[str, Any], ErrorHistogram]] = {}
    for case, output in pairs:
        try:
            histogram = ErrorHistogram.from_json(output.get("abs_histogram"))
        except (TypeError, ValueError, KeyError):
            histogram = None
        if histogram is None:
            continue
        name = str(output.get("name"))
        if name not in worst or _excess(output) > _excess(worst[name][1]):
            worst[name] = (case, output, histogram)
    if not worst:
        return ""
    figures = []
    for index, (name, (case, output, histogram)) in enumerate(list(worst.items())[:MAX_PLOTTED_OUTPUTS]):
        atol = output.get("atol") if isinstance(output.get("atol"), (int, float)) else None
        label = case.get("label")
        title = f"|error| of output {name} at {label}"
        chart = error_histogram(histogram, atol, f"{anchor}-h{index}", title)
        exact = f"; {histogram.zeros:,} exact" if histogram.zeros else ""
        nonfinite = output.get("nonfinite")
        bad = f"; {nonfinite:,} NaN/inf" if isinstance(nonfinite, int) and nonfinite else ""
        figures.append(f"<figure>{chart}<figcaption>output <bdi>{esc(name)}</bdi> at "
                       f"{esc(label)}: elements per |error| bin{exact}{bad}; dashed: atol "
                       f"{esc(fmt_error(atol))} (elements right of it pass only within rtol)"
                       "</figcaption></figure>")
    more = len(worst) - MAX_PLOTTED_OUTPUTS
    note = f'<p class="muted">{more} more outputs not plotted</p>' if more > 0 else ""
    return f'<div class="charts">{"".join(figures)}</div>{note}'


# --------------------------------------------------------------------------- performance

# The verdict's states (trtops.perf.judge.Verdict.state): colour class and words.
_VERDICTS = {"passed": ("ok", "passed"), "failed": ("fail", "failed"),
             "measured": ("skip", "measured (no budget or regression limit set)")}


def _verdict(perf: PerfView) -> str:
    """The gate's verdict: its state, every check (failed first, with the gate's message),
    the comparisons it skipped, and the previous engine it compared with."""
    state = perf.state or (None if perf.passed is None else "passed" if perf.passed else "failed")
    if state is None:
        return ""
    cls, words = _VERDICTS.get(state, ("other", state))
    parts = [f'<p class="message">performance gate: <span class="state {cls}">'
             f"{ICONS[cls]} {esc(words)}</span></p>"]
    checks = sorted(perf.checks, key=lambda c: c.passed)  # stable: failed first, in order
    if checks:
        items = "".join(f'<li class="{"ok" if c.passed else "fail"}"><span aria-hidden="true">'
                        f'{ICONS["ok" if c.passed else "fail"]}</span> {esc(c.message, limit=1000)}</li>'
                        for c in checks)
        parts.append(f'<ul class="checks">{items}</ul>')
    elif perf.summary and perf.passed is False:
        parts.append(f'<p class="message">{esc(perf.summary, limit=1000)}</p>')
    for note in perf.notes:
        parts.append(f'<p class="muted">{esc(note, limit=1000)}</p>')
    if perf.baseline_key:
        source = f" (from the {perf.baseline_source})" if perf.baseline_source in ("cache", "lock") \
            else f" ({perf.baseline_source})" if perf.baseline_source else ""
        parts.append(f'<p class="muted">compared with the previous engine <code title="'
                     f'{esc(perf.baseline_key)}">{esc(perf.baseline_key[:12])}</code>{esc(source)}</p>')
    return "".join(parts)



def _performance(perf: PerfView | None, anchor: str) -> str:
    if perf is None:
        return '<h4>Performance</h4><p class="muted">not measured</p>'
    parts = ["<h4>Performance</h4>", _verdict(perf)]
    where = [f"{k} {v}" for k, v in perf.gpu.items()]
    if perf.tensorrt:
        where.append(f"TensorRT {perf.tensorrt}")
    if perf.measured_at:
        where.append(f"measured {perf.measured_at}")
    if where:
        parts.append(f'<p class="muted">{esc(", ".join(where), limit=1000)}</p>')
    if not perf.cases:
        parts.append('<p class="muted">no measured cases</p>')
        return "".join(parts)
    rows = []
    for case in perf.cases:
        shapes = "; ".join(f"{n} {dims}" for n, dims in case.shapes.items())
        graph = {True: "yes", False: "no", None: "—"}[case.cuda_graph]
        cells = [f"<td>{esc(case.label)}</td>", f"<td>{esc(shapes, limit=300)}</td>",
                 f'<td class="num">{case.batch if case.batch is not None else "—"}</td>',
                 f"<td>{graph}</td>"]
        cells += [f'<td class="num">{esc(fmt_ms(case.latency_ms.get(s)))}</td>'
                  for s in ("median", "p90", "p99")]
        cells.append(f'<td class="num">{esc(fmt_ms(case.gpu_ms.get("median")))}</td>')
        cells.append(f'<td class="num">{esc(fmt_number(case.throughput))}</td>')
        cv = f"{case.cv * 100:.1f}%" if case.cv is not None else "—"
        cells.append(f'<td class="num">{cv}</td>')
        cells.append(f'<td class="num">{esc(fmt_ms(perf.baseline_ms.get(case.label)))}</td>')
        delta = perf.delta_percent(case)
        cells.append("<td class=\"num\">—</td>" if delta is None else
                     f'<td class="num {"delta-up" if delta > 0 else "delta-down"}">{delta:+.1f}%</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    parts.append('<table class="perf"><thead><tr><th scope="col">case</th><th scope="col">shapes</th>'
                 '<th scope="col">batch</th><th scope="col">CUDA graph</th>'
                 '<th scope="col">median</th><th scope="col">p90</th><th scope="col">p99</th>'
                 '<th scope="col">GPU median</th><th scope="col">throughput /s</th>'
                 '<th scope="col">cv</th><th scope="col">previous median</th>'
                 f'<th scope="col">change</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    charts = []
    latency = latency_chart(perf.cases, f"{anchor}-lat", "latency per case: median, p90, p99 (ms)",
                            perf.baseline_ms)
    if latency:
        legend = ('<span class="legend"><span class="bar-median"></span>median'
                  '<span class="bar-p90"></span>p90<span class="bar-p99"></span>p99</span>')
        baseline = "; dashed: the previous engine's median" if perf.baseline_ms else ""
        charts.append(f"<figure>{latency}<figcaption>latency (wall time per call) {legend}"
                      f"{baseline}</figcaption></figure>")
    throughput = throughput_chart(perf.cases, f"{anchor}-thr", "throughput per case (inferences/s)")
    if throughput:
        charts.append(f"<figure>{throughput}<figcaption>throughput (batch / median latency)"
                      "</figcaption></figure>")
    if charts:
        parts.append(f'<div class="charts">{"".join(charts)}</div>')
    return "".join(parts)
