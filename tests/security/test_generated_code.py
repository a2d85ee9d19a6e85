"""Strings from untrusted inputs end up in generated files: tensor names come from the ONNX
model (anyone's model), model/precision/target names from the manifest. Names that are
not identifiers are refused by the manifest schema (tests/security/
test_adversarial_manifests.py); tensor names cannot be, so the emitters must embed them as
data. Here a model whose tensor names are code is built and emitted (Python loader and
Triton config): the generated files have exactly the structure of a model with plain names,
and importing the loader runs nothing from the names.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from apply_helpers import trtops

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

HOSTILE_INPUT = 'x"]; __import__("os").mkdir("PWNED"); #'
HOSTILE_OUTPUT = "y\n\"\"\"\nimport os; os.mkdir('PWNED')\n'''\n} ]\noutput [ { name: \"z\" } ]"

MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}
models:
  - name: net
    source: models/net.onnx
    precisions: [fp32]
    loaders: [python, triton]
"""


def make_project(root: Path, input_name: str, output_name: str) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", [input_name], [output_name])], "net",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, 3, 4, 4])])
    # IR 8 / opset 17: what every supported ONNX Runtime reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    (root / "manifests" / "models").mkdir(parents=True)
    onnx.save(model, str(root / "manifests" / "models" / "net.onnx"))
    (root / "manifests" / "net.yaml").write_text(MANIFEST)
    return root


def emitted(root: Path, input_name: str, output_name: str) -> tuple[str, str]:
    make_project(root, input_name, output_name)
    result = trtops(root, "apply")
    assert result.returncode == 0, result.stdout + result.stderr
    python = (root / "out" / "python" / "net_fp32_lab.py").read_text()
    triton = (root / "out" / "triton" / "net_fp32" / "config.pbtxt").read_text()
    return python, triton


def shape_of(source: str) -> str:
    """The module's syntax tree with every constant blanked: equal shapes mean the names
    changed data only, never code."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = None
    return ast.dump(tree, include_attributes=False)


PB_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def test_tensor_names_are_data_in_generated_loaders(tmp_path: Path) -> None:
    plain_py, plain_pb = emitted(tmp_path / "plain", "x", "y")
    evil_py, evil_pb = emitted(tmp_path / "evil", HOSTILE_INPUT, HOSTILE_OUTPUT)

    assert shape_of(evil_py) == shape_of(plain_py)
    # The Triton config: the same fields, the names only inside escaped strings.
    assert PB_STRING.sub('""', evil_pb) == PB_STRING.sub('""', plain_pb)
    assert "\n}" not in "".join(PB_STRING.findall(evil_pb))

    # Importing the loader (and asking it about its inputs) runs nothing from the names.
    module = tmp_path / "evil" / "out" / "python" / "net_fp32_lab.py"
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('net_fp32_lab', {str(module)!r}); "
            "m = importlib.util.module_from_spec(spec); sys.modules['net_fp32_lab'] = m; "
            "spec.loader.exec_module(m); import json; "
            "print(json.dumps([t['name'] for t in m.METADATA['io']['tensors']]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRTOPS_")}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [HOSTILE_INPUT, HOSTILE_OUTPUT]  # kept exactly, as data
    assert not list(tmp_path.rglob("PWNED"))
