"""The performance gate end to end on the CLI (in process), with the toolchain test double
(tests/doubles.py) standing in for TensorRT and steering the latencies it reports
(``TRTOPS_FAKE_LATENCY``). Everything else is real: manifests, ONNX models, the cache, the
lock, the reports. The same flows on real TensorRT: tests/gpu/test_perf_gate.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import make_conv_model, use_toolchain_double

from trtops.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

MANIFEST = """\
version: 1
defaults:
  performance: {{max_regression: 10%, repeats: 3, iterations: 20, warmup: 2}}
targets:
  lab: {{gpu: any}}
models:
  - name: conv
    source: models/conv.onnx
    precisions: {precisions}
    loaders: [python]
    profiles:
      - input: {{min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}}
{extra}"""


def _write(project: Path, precisions: str = "[fp32]", extra: str = "") -> None:
    (project / "m.yaml").write_text(MANIFEST.format(precisions=precisions, extra=extra))


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_conv_model(tmp_path / "models" / "conv.onnx")
    _write(tmp_path)
    monkeypatch.chdir(tmp_path)
    use_toolchain_double(monkeypatch)
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _engines(doc: dict) -> dict[str, dict]:
    return {e["id"]: e for e in doc["engines"]}


def _perf_json(project: Path, key: str) -> dict:
    return json.loads((project / "cache" / "engines" / key[:2] / key / "perf.json").read_text())


def test_apply_measures_every_accepted_engine_and_stores_perf_json(project, capsys):
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 0
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "built"
    assert engine["perf"]["state"] == "measured" and engine["perf"]["latency_ms"] == 2.0
    assert "performance: opt 2.00 ms, 1,000/s" in engine["message"]
    perf = _perf_json(project, engine["key"])
    assert perf["schema"] == 1 and perf["settings"] == {"warmup": 2, "iterations": 20,
                                                        "repeats": 3, "cuda_graph": "auto",
                                                        "max_seconds": 2.0}
    assert [c["label"] for c in perf["cases"]] == ["opt"]
    assert perf["cases"][0]["shapes"] == {"input": [2, 3, 16, 16]}
    assert perf["verdict"]["notes"] == ["no previous engine measured on this GPU to compare with"]


def test_a_latency_budget_fails_with_exit_6_and_a_junit_failure(project, capsys):
    _write(project, extra="    performance: {max_latency_ms: 1.5}\n")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit", "--junit", "junit.xml")
    assert code == 6
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "perf_failed"
    assert "opt: median 2.00 ms over the budget of 1.50 ms" in engine["message"]
    junit = (project / "junit.xml").read_text()
    assert 'type="perf_failed"' in junit and "over the budget" in junit
    # published all the same (it is accurate), and judged again on the next apply
    assert _perf_json(project, engine["key"])["verdict"]["state"] == "failed"
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 6 and _engines(doc)["m/conv/fp32/lab"]["status"] == "perf_failed"
    # budgets are not in the key: loosening one needs no rebuild, nor a measurement
    _write(project, extra="    performance: {max_latency_ms: 2.5}\n")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 0 and _engines(doc)["m/conv/fp32/lab"]["status"] == "reused"


def test_a_regression_against_the_previous_engine_is_caught(project, capsys, monkeypatch):
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 0
    # new weights: a rebuild, whose engine runs 30% slower than the previous one
    make_conv_model(project / "models" / "conv.onnx", seed=5)
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv=1.3")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 6
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "perf_failed"
    assert "opt: median 2.60 ms vs 2.00 ms before (+30%, limit 10%, spread +/-0.5%)" in engine["message"]
    # the slow engine is published (it is accurate) but is no baseline: the next build is
    # still compared with the 2.00 ms one, so slowdowns cannot pile up 10% at a time
    make_conv_model(project / "models" / "conv.onnx", seed=6)
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv=1.35")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 6, doc
    assert "median 2.70 ms vs 2.00 ms before (+35%" in _engines(doc)["m/conv/fp32/lab"]["message"]
    # within the limit: passes, and says against what
    make_conv_model(project / "models" / "conv.onnx", seed=7)
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv=1.04")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 0, doc
    assert "+4% vs" in _engines(doc)["m/conv/fp32/lab"]["message"]


def test_noise_larger_than_the_slowdown_is_no_regression(project, capsys, monkeypatch):
    monkeypatch.setenv("TRTOPS_FAKE_PERF_CV", "0.08")
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 0
    make_conv_model(project / "models" / "conv.onnx", seed=5)
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv=1.15")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 0
    assert _perf_json(project, _engines(doc)["m/conv/fp32/lab"]["key"])["verdict"]["checks"][0][
        "message"].endswith("within the measured noise")


def test_performance_disabled_measures_nothing(project, capsys):
    _write(project, extra="    performance: {enabled: false, max_latency_ms: 0.1}\n")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 0 and _engines(doc)["m/conv/fp32/lab"]["perf"] is None
    key = _engines(doc)["m/conv/fp32/lab"]["key"]
    assert not (project / "cache" / "engines" / key[:2] / key / "perf.json").exists()


def test_a_failed_measurement_fails_only_a_gated_engine(project, capsys, monkeypatch):
    monkeypatch.setenv("TRTOPS_FAKE_MEASURE_FAIL", "conv")
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code == 6  # max_regression is set in defaults: the gate could not be checked
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "perf_failed"
    assert "performance not measured: fake measurement failure" in engine["message"]


def test_bench_measures_again_and_compares_with_the_measurement_it_replaces(
        project, capsys, monkeypatch):
    log = project / "measure.log"
    monkeypatch.setenv("TRTOPS_FAKE_MEASURE_LOG", str(log))
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 0
    code, doc = _run(capsys, "bench", "m.yaml")
    assert code == 0
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "benched" and "(+0% vs" in engine["message"]
    assert len(log.read_text().splitlines()) == 2  # measured again, not rebuilt
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv=1.5")  # a driver upgrade made it slower
    code, doc = _run(capsys, "bench", "m.yaml", "--engine", "m/conv/fp32/lab")
    assert code == 6
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["status"] == "perf_failed" and "(+50%, limit 10%" in engine["message"]
    assert _perf_json(project, engine["key"])["cases"][0]["latency_ms"]["median"] == 3.0


def test_bench_without_a_gpu_is_one_environment_error(project, capsys, monkeypatch):
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 0
    monkeypatch.setenv("TRTOPS_FAKE_GPUS", "0")
    capsys.readouterr()
    assert main(["bench", "m.yaml"]) == 5
    assert "cannot measure the 1 engine" in capsys.readouterr().err


def test_bench_unknown_engine_is_a_user_error(project, capsys):
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 0
    capsys.readouterr()
    assert main(["bench", "m.yaml", "--engine", "m/conv/int8/lab"]) == 1
    assert "names no engine" in capsys.readouterr().err


def test_select_fastest_makes_the_fastest_accepted_precision_the_default_loader(
        project, capsys, monkeypatch):
    (project / "trtops.lock").mkdir()
    _write(project, precisions="[fp32, fp16]", extra="    select: fastest\n")
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv/fp32=0.8,conv/fp16=0.4")
    code, doc = _run(capsys, "apply", "m.yaml", "--emit-dir", "out")
    assert code == 0
    choice = doc["selections"]["m/conv/lab"]
    assert choice["precision"] == "fp16" and choice["latency_ms"] == 0.8
    assert choice["reason"] == "fp16 0.80 ms at opt, fp32 1.60 ms (2.00x faster than fp32)"
    engines = _engines(doc)
    assert "selected as conv's default loader" in engines["m/conv/fp16/lab"]["message"]
    assert "selected" not in engines["m/conv/fp32/lab"]["message"]
    # the default loader re-exports the chosen engine's module; the others stay
    alias = (project / "out" / "python" / "conv_lab.py").read_text()
    assert "from conv_fp16_lab import *" in alias
    assert (project / "out" / "python" / "conv_fp32_lab.py").is_file()
    # the lock says which was chosen and why
    section = json.loads(next((project / "trtops.lock").glob("*.json")).read_text())
    fp16 = section["engines"]["m/conv/fp16/lab"]["performance"]
    assert fp16["selected"]["chosen"] is True and fp16["latency_ms"] == 0.8
    assert section["engines"]["m/conv/fp32/lab"]["performance"]["selected"]["chosen"] is False
    # `trtops emit` chooses the same engine from the cache
    capsys.readouterr()
    assert main(["emit", "m.yaml", "--dest", "again"]) == 0
    assert "from conv_fp16_lab import *" in (project / "again" / "python" / "conv_lab.py").read_text()
    # when fp32 becomes the faster one (a re-measurement), the choice follows
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv/fp32=0.1,conv/fp16=0.4")
    _write(project, precisions="[fp32, fp16]", extra="    select: fastest\n")
    code, doc = _run(capsys, "bench", "m.yaml")
    assert doc["selections"]["m/conv/lab"]["precision"] == "fp32"


def test_plan_and_status_show_the_last_measurement(project, capsys):
    _write(project, extra="    performance: {max_latency_ms: 1.5}\n")
    assert _run(capsys, "apply", "m.yaml", "--no-emit")[0] == 6
    capsys.readouterr()
    assert main(["status", "m.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ENGINE", "KEY", "STATE", "SIZE", "AGE", "PERF", "ACCURACY"]
    assert "2.00ms 1,000/s !" in out
    code, doc = _run(capsys, "status", "m.yaml")
    assert doc["engines"][0]["perf"]["state"] == "failed"
    assert main(["plan", "m.yaml", "--all", "--tensorrt", "8.6.0", "--gpu", "NVIDIA H200",
                 "--compute-capability", "9.0"]) == 0
    assert "up to date, 2.00ms 1,000/s" in capsys.readouterr().out


def test_validate_names_every_performance_problem_with_its_line(project, capsys):
    (project / "m.yaml").write_text("""\
version: 1
defaults:
  performance: {max_regression: 10}
targets:
  lab: {gpu: any}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    select: fastest
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
    performance:
      cuda_graph: off
      shapes:
        big: {input: [1, 3, 8, 64]}
        opt: {input: [1, 3, 8, 8]}
""")
    capsys.readouterr()
    assert main(["validate", "m.yaml"]) == 1
    err = capsys.readouterr().err
    assert "m.yaml:3:33: defaults.performance.max_regression: got 10, which is not a percentage" in err
    (project / "m.yaml").write_text((project / "m.yaml").read_text().replace("max_regression: 10}", "max_regression: 10%}"))
    assert main(["validate", "m.yaml"]) == 1
    err = capsys.readouterr().err
    assert "m.yaml:10:13: models[0].select: select: fastest needs several precisions" in err
    assert ("m.yaml:16:32: models[0].performance.shapes.big.input[3]: shape case 'big': 'input' "
            "axis 3 is 64, outside the profile's min/max 8..32") in err
    assert "m.yaml:17:9: models[0].performance.shapes.opt: shape case name 'opt' is taken" in err


DOUBLE = ["--tensorrt", "8.6.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0"]


def test_push_and_pull_carry_perf_json_and_a_damaged_one_skips_the_entry(project, capsys):
    (project / "remote").mkdir()
    code, doc = _run(capsys, "apply", "m.yaml", "--no-emit", "--remote", "remote")
    assert code == 0
    key = _engines(doc)["m/conv/fp32/lab"]["key"]
    remote_perf = project / "remote" / "engines" / key[:2] / key / "perf.json"
    assert json.loads(remote_perf.read_text()) == _perf_json(project, key)
    capsys.readouterr()
    assert main(["pull", "m.yaml", "--remote", "remote", "--cache", "node", *DOUBLE]) == 0
    pulled = project / "node" / "engines" / key[:2] / key / "perf.json"
    assert json.loads(pulled.read_text()) == _perf_json(project, key)
    damaged = json.loads(remote_perf.read_text())
    damaged["cases"][0]["latency_ms"]["median"] = "fast"
    remote_perf.write_text(json.dumps(damaged))
    capsys.readouterr()
    assert main(["pull", "m.yaml", "--remote", "remote", "--cache", "node2", *DOUBLE]) == 1
    err = capsys.readouterr().err
    assert "1 damaged (skipped)" in err and "perf.json field 'cases.0.latency_ms.median" in err


def test_the_html_reports_show_the_verdict_the_baseline_and_the_choice(project, capsys, monkeypatch):
    _write(project, precisions="[fp32, fp16]",
           extra="    select: fastest\n    performance: {max_latency_ms: 1.0}\n")
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv/fp32=0.8,conv/fp16=0.4")
    assert main(["apply", "m.yaml", "--no-emit", "--keep-going", "--report", "apply.html"]) == 6
    html = (project / "apply.html").read_text(encoding="utf-8")
    fp32 = html[html.index("conv/fp32/lab</bdi>"):html.index("conv/fp16/lab</bdi>")]
    assert "performance failed" in fp32 and '<span class="state fail">✗ failed</span>' in fp32
    assert "opt: median 1.60 ms over the budget of 1.00 ms" in fp32
    assert "not chosen: fp16 is the default loader (fp16 0.80 ms at opt" in fp32
    matrix = html[html.index('<table class="matrix"'):html.index("</table>")]
    assert matrix.count('aria-label="default loader"') == 1
    assert re.search(r"✓</span> built</a><span class=\"chosen\"", matrix)  # fp16, the default loader
    # bench measures fp16 again, slower: the gate compares it with the last measurement
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", "conv/fp32=0.8,conv/fp16=0.6")
    assert main(["bench", "m.yaml"]) == 6
    capsys.readouterr()
    assert main(["report", "m.yaml", "-o", "report.html"]) == 0
    html = (project / "report.html").read_text(encoding="utf-8")
    fp16 = html[html.index("conv/fp16/lab</bdi>"):]
    assert "performance failed" in fp16
    assert "opt: median 1.20 ms vs 0.80 ms before (+50" in fp16  # the gate's own message
    assert "(the last measurement)" in fp16 and '<td class="num delta-up">+50.0%</td>' in fp16
    assert "<strong>the model's default loader</strong>: fp16 1.20 ms at opt" in fp16



def _fresh_ci_job(project: Path, committed: dict[str, str]) -> None:
    """What a CI job starts from: no cache (no engines, no refs) and the committed lock."""
    import shutil

    shutil.rmtree(project / "cache")
    for name, text in committed.items():
        (project / "trtops.lock" / name).write_text(text)


@pytest.mark.parametrize("factor, code", [(1.3, 6), (1.0, 0), (0.8, 0)])
def test_with_an_empty_cache_the_lock_medians_are_the_baseline(project, capsys, monkeypatch,
                                                               factor, code):
    # the release: built, measured (2.00 ms) and locked
    code_, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert code_ == 0
    released = _engines(doc)["m/conv/fp32/lab"]["key"]
    capsys.readouterr()
    assert main(["lock", "m.yaml"]) == 0
    committed = {p.name: p.read_text() for p in (project / "trtops.lock").glob("*.json")}
    [section] = [json.loads(text) for text in committed.values()]
    assert section["engines"]["m/conv/fp32/lab"]["performance"]["cases"] == {
        "opt": {"median_ms": 2.0, "cv": 0.005}}
    # the next change (new weights), built by a CI job with an empty cache
    make_conv_model(project / "models" / "conv.onnx", seed=5)
    _fresh_ci_job(project, committed)
    monkeypatch.setenv("TRTOPS_FAKE_LATENCY", f"conv={factor}")
    got, doc = _run(capsys, "apply", "m.yaml", "--no-emit")
    assert got == code, doc
    engine = _engines(doc)["m/conv/fp32/lab"]
    assert engine["key"] != released
    baseline = _perf_json(project, engine["key"])["verdict"]["baseline"]
    assert baseline["source"] == "lock" and baseline["key"] == released
    new_ms = f"{2.0 * factor:.2f}"
    if code == 6:
        assert engine["status"] == "perf_failed"
        assert (f"opt: median {new_ms} ms vs 2.00 ms before (+30%, limit 10%, spread +/-0.5%) "
                f"(before: {released[:12]} in the lock)") in engine["message"]
    else:
        change = "+0%" if factor == 1.0 else "-20%"
        assert engine["status"] == "built"
        assert f"performance: opt {new_ms} ms" in engine["message"]
        assert f"({change} vs {released[:12]} in the lock)" in engine["message"]
