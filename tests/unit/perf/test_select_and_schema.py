"""select: fastest's choice (pure), perf.json's schema (what a reader refuses), the
percentage grammar, and the manifest checks of performance shapes and select."""

from __future__ import annotations

import copy

import pytest

from trtops.cache.entry_schema import EntryInvalid, check_perf
from trtops.names import format_percent, parse_percent
from trtops.perf.document import perf_document
from trtops.perf.judge import Verdict
from trtops.perf.select import choose_fastest


def _candidate(precision: str, latency: float | None, accepted: bool = True) -> dict:
    perf = None if latency is None else {"latency_ms": latency, "throughput": 1000 / latency}
    return {"precision": precision, "key": precision * 4, "accepted": accepted, "perf": perf}


def test_the_fastest_accepted_and_measured_precision_is_chosen():
    choice = choose_fastest([_candidate("fp32", 1.0), _candidate("fp16", 0.5),
                             _candidate("int8", 0.2, accepted=False), _candidate("bf16", None)])
    assert choice["precision"] == "fp16" and choice["key"] == "fp16" * 4
    assert choice["reason"] == ("fp16 0.50 ms at opt, fp32 1.00 ms (2.00x faster than fp32); "
                                "int8 not accepted, bf16 not measured")
    assert [c["eligible"] for c in choice["candidates"]] == [True, True, False, False]


def test_ties_go_to_the_precision_listed_first_and_nothing_eligible_is_no_choice():
    assert choose_fastest([_candidate("fp16", 0.5), _candidate("fp32", 0.5)])["precision"] == "fp16"
    assert choose_fastest([_candidate("fp16", None), _candidate("fp32", 1.0, accepted=False)]) is None


def _document() -> dict:
    stats = {"median": 1.0, "p90": 1.1, "p99": 1.2, "mean": 1.0, "min": 0.9}
    body = {"gpu": {"name": "NVIDIA H100", "driver": "550.54", "sm_clock_mhz": 1980,
                    "mem_clock_mhz": 2619, "temperature_c": 40}, "tensorrt": "10.13.3.9",
            "cases": [{"label": "opt", "shapes": {"input": [1, 3, 8, 8]}, "batch": 1,
                       "cuda_graph": True, "iterations": 200, "latency_ms": stats,
                       "gpu_ms": stats, "throughput": 1000.0, "repeat_medians_ms": [1.0] * 5,
                       "cv": 0.01}]}
    return perf_document(body, {"warmup": 20, "iterations": 200, "repeats": 5,
                                "cuda_graph": "auto"}, Verdict(passed=True, gated=False))


def test_a_written_perf_json_passes_its_schema():
    assert check_perf(_document())["schema"] == 1


@pytest.mark.parametrize("path, value, field", [
    (("cases", 0, "latency_ms", "median"), "fast", "cases.0.latency_ms.median"),
    (("cases", 0, "batch"), -1, "cases.0.batch"),
    (("gpu",), "NVIDIA H100", "gpu"),
    (("verdict", "state"), "great", "verdict.state"),
    (("verdict", "baseline"), {"cases": {"opt": {"median_ms": "x"}}}, "verdict.baseline"),
    (("verdict", "baseline"), {"cases": {"opt": {"median_ms": "nan"}}}, "verdict.baseline"),
    (("cases",), [{}] * 300, "cases"),
])
def test_a_perf_json_trtops_never_writes_is_refused_naming_the_field(path, value, field):
    document = copy.deepcopy(_document())
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(EntryInvalid, match=field.replace(".", r"\.")):
        check_perf(document)


def test_percentages():
    assert parse_percent("10%") == 0.1 and parse_percent("2.5 %") == 0.025
    assert format_percent(0.205) == "20.5%" and format_percent(0.1) == "10%"
    for bad in ("10", 0.1, "10 pct", "%", "-5%"):
        with pytest.raises(ValueError, match="not a percentage"):
            parse_percent(bad)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_perf_json_with_nan_or_infinity_is_refused_as_damaged(constant):
    # Python's parser reads them and the schema's floats would take them, but no trtops
    # writer produces them (allow_nan=False): read as bench's baseline, a NaN median made
    # the new verdict unwritable (ValueError, exit 70) instead of a damaged entry.
    import json

    from trtops.cache.entries import parse_perf
    from trtops.errors import CacheError

    text = json.dumps(_document()).replace('"median": 1.0', f'"median": {constant}', 1)
    with pytest.raises(CacheError, match=f"{constant} is not a JSON number"):
        parse_perf(text.encode(), "a" * 64)


def test_a_models_performance_field_wins_over_the_defaults_field_by_field(tmp_path):
    # README: "`performance` (`defaults:` or per model; a model's own field wins field by field)".
    from helpers import make_conv_model, write_manifest

    from trtops.manifest.collect import load_paths
    from trtops.manifest.expand import expand

    make_conv_model(tmp_path / "models" / "conv.onnx")
    path = write_manifest(tmp_path, """\
version: 1
defaults:
  performance: {max_regression: 10%, repeats: 3, max_latency_ms: 5}
targets: {lab: {gpu: any}}
models:
  - name: own
    source: models/conv.onnx
    precisions: [fp32]
    performance: {repeats: 7, cuda_graph: off}
  - name: plain
    source: models/conv.onnx
    precisions: [fp32]
""")
    specs = {s.model: s.performance for s in expand(load_paths([path], check_models=False))}
    own, plain = specs["own"], specs["plain"]
    assert (own.repeats, own.cuda_graph, own.max_regression, own.max_latency_ms) == (7, "off", 0.1, 5.0)
    assert (plain.repeats, plain.cuda_graph, plain.max_regression) == (3, "auto", 0.1)
    assert own.iterations == plain.iterations == 200  # neither sets it: the default
