"""Real TensorRT build failures, each diagnosed by cause (trtops/trt/failure_causes.py) with
the hint that helps for it. Tiny onnx.helper models, each fails in about a second. Written
for the lab (TensorRT 8.6.0) and valid on 10.x: the causes asserted are the ones the
recorded 8.6 messages give (tests/unit/trt/test_trt_failure_causes.py).

The parse preflight (trtops/trt/parse_preflight.py) through `trtops apply`: the real child
(``python -X faulthandler -m trtops.trt.parse_check``) parses with TensorRT and the build goes
on (its wall time is printed: what the preflight costs), and a second apply that builds again
reads the recorded verdict instead of starting a child; a child that crashes (its test hook
kills it with SIGSEGV right after importing tensorrt: no TensorRT bug needed) fails only its
model's engines, exit 3, and apply still answers in JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from trtops.errors import BuildError
from trtops.spec import make_engine_spec, profile
from trtops.trt.builder import BuildRequest, build_engine

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _needs_tensorrt_and_gpu(trt):
    """Every test here runs TensorRT's parser and builder."""


def _build(tmp_path, model, **spec_kw):
    spec = make_engine_spec(model, "fp32", timing_cache="off", builder_optimization_level=0, **spec_kw)
    return build_engine(BuildRequest(spec=spec, model_path=model, workdir=tmp_path / "work"))


def _save(model, path):
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_dynamic_dims_that_share_a_name_are_a_shapes_failure(tmp_path):
    # The paddle2onnx export of issue 17: input [N, 3, '?', '?']; H and W get different
    # sizes in the profile, TensorRT holds dims of one name equal.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("ReduceMean", ["r"], ["y"], name="pool", axes=[2, 3], keepdims=0)],
        "shared_names",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "?", "?"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "shared.onnx")
    shapes = profile(x=([1, 3, 16, 32], [1, 3, 32, 64], [2, 3, 48, 128]))
    with pytest.raises(BuildError) as info:
        _build(tmp_path, path, profiles=[shapes])
    print(info.value.render())
    assert info.value.cause == "shapes"
    assert "share the name '?'" in info.value.message and "x[2], x[3]" in info.value.message
    assert "own name" in info.value.hint and "may help" not in info.value.hint


def test_an_op_the_parser_refuses_is_an_unsupported_node_named_by_name(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="relu0"),
         helper.make_node("TotallyUnknownOp", ["a"], ["y"], name="mystery_node", domain="trtops.test")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("trtops.test", 1)])
    path = _save(model, tmp_path / "custom.onnx")
    with pytest.raises(BuildError) as info:
        _build(tmp_path, path)
    print(info.value.render())
    message = info.value.message
    assert info.value.cause == "unsupported_node"
    assert "mystery_node" in message and "TotallyUnknownOp" in message and "opset 1" in message
    # the error code's name, not "<bound method PyCapsule.name of ...>"
    assert "bound method" not in message and "UNSUPPORTED_NODE" in message
    assert "plugin" in info.value.hint


# --------------------------------------------------------------------------- the parse preflight


def _relu_model(path: Path, width: int) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _project(root: Path, models: dict[str, str]) -> Path:
    """A project whose models (name -> precisions, flow style) are tiny Relus, each of its
    own width (one content, one engine key: the second would reuse the first's engine)."""
    (root / "manifests" / "models").mkdir(parents=True)
    entries = []
    for width, (name, precisions) in enumerate(models.items(), start=8):
        _relu_model(root / "manifests" / "models" / f"{name}.onnx", width)
        entries.append(f"  - name: {name}\n    source: models/{name}.onnx\n    precisions: {precisions}\n")
    (root / "manifests" / "preflight.yaml").write_text(
        "version: 1\ndefaults:\n  workspace: 256MiB\n  builder_optimization_level: 0\n"
        "targets:\n  lab: {gpu: any}\nmodels:\n" + "".join(entries))
    return root


def _apply(root: Path, **env_extra: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRTOPS_TEST", "TRTOPS_PARSE_PREFLIGHT", "GITHUB_"))}
    env.update(CI="true", PYTHONPATH=str(REPO), **env_extra)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "trtops", "apply", "--json", "--keep-going"], cwd=root,
                            env=env, capture_output=True, text=True, timeout=300)
    print(f"trtops apply: exit {result.returncode} in {time.monotonic() - started:.1f}s")
    print(result.stderr[-3000:])
    # whatever happened to the builds, apply answered (no segfault of the process)
    document = json.loads(result.stdout)
    return result, {e["id"]: e for e in document["engines"]}


def _build_log(root: Path, engine: dict) -> str:
    key = engine["key"]
    return (root / "cache" / "engines" / key[:2] / key / "build.log").read_text()


def _preflight_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "parse preflight" in line]


def _one_file(trt_version) -> bool:
    """Whether fp32 and fp16 of one model parse one file: not on TensorRT 11, whose fp16
    builds parse the model the preparation stage cast (another file, another child)."""
    return trt_version < (11,)


def test_apply_parses_in_a_child_first_and_still_builds(tmp_path, trt_version):
    root = _project(tmp_path / "proj", {"relu": "[fp32, fp16]"})
    result, engines = _apply(root)
    assert result.returncode == 0, result.stdout[-3000:]
    assert {e["status"] for e in engines.values()} == {"built"}
    lines = {engine_id: _preflight_lines(_build_log(root, e)) for engine_id, e in engines.items()}
    for engine_id, found in lines.items():
        print(engine_id, found)
    children = [line for found in lines.values() for line in found if "parsed in a child process in" in line]
    shared = _one_file(trt_version)
    assert len(children) == (1 if shared else 2), lines  # fp32 and fp16 of one model: one child
    for child in children:
        seconds = float(re.search(r"in a child process in ([0-9.]+) s", child).group(1))
        print(f"PARSE PREFLIGHT WALL TIME: {seconds:.2f} s (one child: python start, import tensorrt, "
              "builder, parse of a 1-node model)")
    reused = sum("an earlier child's verdict" in line for found in lines.values() for line in found)
    assert reused == (1 if shared else 0)
    recorded = sorted((root / "cache" / "preflight").rglob("*.json"))
    assert len(recorded) == len(children), recorded

    # a second apply that builds again (engines gone, the cache's preflight/ kept): the
    # verdicts recorded on disk answer, no child runs (trtops.trt.preflight_verdicts)
    import shutil

    for name in ("engines", "refs"):
        shutil.rmtree(root / "cache" / name)
    started = time.monotonic()
    again, engines = _apply(root)
    print(f"SECOND APPLY: {time.monotonic() - started:.1f}s")
    assert again.returncode == 0, again.stdout[-3000:]
    assert {e["status"] for e in engines.values()} == {"built"}
    second = {engine_id: _preflight_lines(_build_log(root, e)) for engine_id, e in engines.items()}
    for engine_id, found in second.items():
        print("second apply:", engine_id, found)
    flat = [line for found in second.values() for line in found]
    assert not any("in a child process in" in line for line in flat), second
    assert sum("recorded by an earlier apply" in line for line in flat) == len(children), second
    print(f"PARSE PREFLIGHT, SECOND APPLY: no child; verdicts read from {recorded[0].parent}")


def test_a_parser_crash_fails_its_model_with_the_cause_and_apply_goes_on(tmp_path, trt_version):
    precisions = ("fp32", "fp16") if _one_file(trt_version) else ("fp32",)
    root = _project(tmp_path / "proj", {"relu": "[fp32]", "crashing": f"[{', '.join(precisions)}]"})
    result, engines = _apply(root, TRTOPS_TEST_PARSE_CHECK_CRASH="segv:crashing.onnx")
    assert result.returncode == 3, result.stdout[-3000:]
    assert engines["preflight/relu/fp32/lab"]["status"] == "built"
    for precision in precisions:
        failed = engines[f"preflight/crashing/{precision}/lab"]
        print(failed["message"])
        assert failed["status"] == "build_failed"
        assert failed["message"].startswith("TensorRT's ONNX parser crashed (SIGSEGV) on ")
        assert "crashing.onnx" in failed["message"]
        assert "cause: TensorRT's ONNX parser crashed: " in failed["message"]
        assert "(hint: " in failed["message"] and "NVIDIA" in failed["message"]
        # faulthandler's report of the child, in the details (the build log's tail)
        assert "Segmentation fault" in failed["details"], failed["details"]
    details = "\n".join(engines[f"preflight/crashing/{p}/lab"]["details"] for p in precisions)
    # the second precision crashed nothing: the first one's verdict failed it
    assert details.count("an earlier child's verdict") == len(precisions) - 1


def test_the_preflight_can_be_turned_off(tmp_path):
    # The crash hook lives in the child: with the preflight off no child runs, nothing crashes.
    root = _project(tmp_path / "proj", {"relu": "[fp32]"})
    result, engines = _apply(root, TRTOPS_PARSE_PREFLIGHT="0", TRTOPS_TEST_PARSE_CHECK_CRASH="segv")
    assert result.returncode == 0, result.stdout[-3000:]
    (engine,) = engines.values()
    assert engine["status"] == "built" and not _preflight_lines(_build_log(root, engine))
