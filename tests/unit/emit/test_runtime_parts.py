"""The standalone runtime as source parts: each part is ordinary Python (tested here one by
one), and the assembler joins them into one deterministic, standalone module."""

from __future__ import annotations

import ast
import hashlib
import importlib
import sys

import numpy as np
import pytest

from trtops.emit import assemble
from trtops.emit.assemble import PARTS, RUNTIME_DIR, part_source, runtime_source
from trtops.errors import InternalError


def test_every_part_is_assembled_and_importable_alone():
    on_disk = {p.stem for p in RUNTIME_DIR.glob("*.py")} - {"__init__"}
    assert set(PARTS) == on_disk
    for name in PARTS:
        importlib.import_module(f"trtops.emit.runtime.{name}")


def test_assembly_is_deterministic_and_standalone():
    first = runtime_source()
    runtime_source.cache_clear()
    try:
        again = runtime_source()
    finally:
        runtime_source.cache_clear()
    assert first == again
    tree = ast.parse(first)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import survived assembly"
            imported.add((node.module or "").split(".")[0])
    assert "trtops" not in imported
    allowed = {"numpy", "tensorrt", "ml_dtypes", "pycuda", "cuda"}  # the loader's documented needs
    assert allowed >= imported - set(sys.stdlib_module_names)


def test_every_part_body_appears_in_the_assembled_runtime():
    source = runtime_source()
    for name in PARTS:
        tree = ast.parse(part_source(name))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert ast.get_source_segment(part_source(name), node) in source, node.name


def test_top_level_names_collide_nowhere(monkeypatch):
    original = assemble.part_source

    def clashing(name: str) -> str:
        text = original(name)
        return text + "\n\ndef _fmt_shape(shape):\n    return ''\n" if name == "engine" else text

    monkeypatch.setattr(assemble, "part_source", clashing)
    runtime_source.cache_clear()
    try:
        with pytest.raises(InternalError, match="both define '_fmt_shape'"):
            runtime_source()
    finally:
        runtime_source.cache_clear()


def test_a_part_importing_trtops_is_refused(monkeypatch):
    original = assemble.part_source
    monkeypatch.setattr(assemble, "part_source", lambda name: original(name).replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport trtops.names\n", 1)
        if name == "errors" else original(name))
    runtime_source.cache_clear()
    try:
        with pytest.raises(InternalError, match="must stand alone"):
            runtime_source()
    finally:
        runtime_source.cache_clear()


# --------------------------------------------------------------------------- parts alone


def test_shapes_part_checks_profiles_without_tensorrt():
    from trtops.emit.runtime.errors import InputShapeError, NoProfileError
    from trtops.emit.runtime.shapes import IOSpec, TensorSpec

    io = IOSpec([TensorSpec("x", "input", "float32", (-1, 4)),
                 TensorSpec("y", "output", "float32", (-1, 4))],
                [{"x": ((1, 4), (2, 4), (8, 4))}, {"x": ((8, 4), (16, 4), (32, 4))}])
    assert io.check({"x": ("float32", (3, 4))}) == 0
    assert io.check({"x": ("float32", (20, 4))}) == 1
    assert io.check({"x": ("float32", (8, 4))}) == 1  # both fit: 16 is closer than 2
    with pytest.raises(NoProfileError):
        io.check({"x": ("float32", (64, 4))})
    with pytest.raises(InputShapeError, match="axis 1 must be 4"):
        io.check({"x": ("float32", (2, 5))})


def test_inputs_part_normalizes_host_values():
    from trtops.emit.runtime.inputs import _merge_inputs, _normalize
    from trtops.emit.runtime.shapes import TensorSpec

    spec = TensorSpec("x", "input", "float32", (-1, 2))
    arg = _normalize(spec, [[1, 2], [3, 4]])
    assert arg.dtype == "float32" and arg.shape == (2, 2) and arg.host.flags.c_contiguous
    strided = _normalize(spec, np.arange(8, dtype=np.float32).reshape(4, 2)[::2])
    assert strided.host.flags.c_contiguous and strided.nbytes == 16
    assert _merge_inputs({"x": 1}, {"z": 2}) == {"x": 1, "z": 2}


def test_integrity_part_refuses_altered_bytes(tmp_path):
    from trtops.emit.runtime.errors import EngineLoadError
    from trtops.emit.runtime.integrity import _read_engine

    path = tmp_path / "engine.plan"
    path.write_bytes(b"engine bytes")
    digest = hashlib.sha256(b"engine bytes").hexdigest()
    assert _read_engine(str(path), digest) == b"engine bytes"
    path.write_bytes(b"other bytes")
    with pytest.raises(EngineLoadError, match="sha256"):
        _read_engine(str(path), digest)
    assert _read_engine(str(path), None) == b"other bytes"


def test_trt_io_part_names_dtypes_from_the_one_table():
    from trtops.dtypes import TRT_TO_NUMPY
    from trtops.emit.runtime.trt_io import _dtype_name

    class DataType:
        def __init__(self, name: str) -> None:
            self.name = name

    for trt_name, numpy_name in TRT_TO_NUMPY.items():
        assert _dtype_name(DataType(trt_name)) == numpy_name
