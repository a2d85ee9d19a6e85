"""The HTML report on real TensorRT: `apply --report` after a real fp16 build stores the
|error| histogram of every output (the gate's accuracy.json) and draws it; `trtops report`
reads the same cache. (The page itself is checked in a browser by
tests/func/test_html_report_browser.py; this checks the data real engines give it.)
A tiny model: well under a minute."""

from __future__ import annotations

import json

from helpers import make_conv_model, write_manifest
from lab_cli import trtops

MANIFEST = """
version: 1
targets:
  lab: {gpu: any}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp16]
    workspace: 256MiB
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 32, 32], max: [4, 3, 64, 64]}
"""


def test_apply_report_on_a_real_fp16_engine_plots_its_error_histogram(trt, tmp_path):
    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx", seed=3)
    write_manifest(tmp_path / "manifests", MANIFEST, name="lab.yaml")
    done = trtops(tmp_path, "apply", "--no-emit", "--report", "apply.html")
    assert done.returncode == 0
    ref = json.loads((tmp_path / "cache" / "refs" / "lab" / "conv" / "fp16" / "lab.json").read_text())
    key = ref["key"]
    accuracy = json.loads((tmp_path / "cache" / "engines" / key[:2] / key / "accuracy.json").read_text())
    checks = [o for case in accuracy["cases"] for o in case["outputs"]]
    assert checks
    for check in checks:
        histogram = check["abs_histogram"]
        assert len(histogram["counts"]) == 20
        # every element is in a bin, an exact match, or a NaN/inf difference
        assert sum(histogram["counts"]) + histogram["zeros"] + check["nonfinite"] == check["elements"]
        print(check["name"], histogram)
    assert any(sum(c["abs_histogram"]["counts"]) for c in checks)  # fp16 is not bit-exact
    html = (tmp_path / "apply.html").read_text(encoding="utf-8")
    assert '<svg class="chart histogram"' in html and 'class="bar"' in html
    assert "built" in html and trt.__version__ in html
    done = trtops(tmp_path, "report", "-o", "report.html")
    assert done.returncode == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "accepted" in page and '<svg class="chart histogram"' in page
