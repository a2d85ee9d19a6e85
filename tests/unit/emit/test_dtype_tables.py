"""One dtype table (trtops.dtypes): the builder uses it as is, and the emitted loader, which
stands alone, carries a copy generated from it."""

import ast

from trtops import dtypes
from trtops.emit.assemble import (
    DTYPES_BEGIN,
    DTYPES_END,
    dtype_block,
    part_source,
    runtime_source,
)
from trtops.emit.runtime import dtypes as runtime_dtypes
from trtops.trt.trt_compat import DTYPE_NAMES


def _assigned(source: str, name: str):
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned")


def test_the_builder_reads_engine_io_through_the_one_table():
    assert DTYPE_NAMES is dtypes.TRT_TO_NUMPY


def test_the_runtime_parts_copy_is_the_generated_one():
    # The part is importable on its own (tests use it), so it holds the block as checked
    # in; assembly regenerates it. Both must be the same text.
    text = part_source("dtypes")
    checked_in = text[text.index(DTYPES_BEGIN):text.index(DTYPES_END) + len(DTYPES_END) + 1]
    assert checked_in == dtype_block()
    assert runtime_dtypes._TRT_DTYPES == dtypes.TRT_TO_NUMPY
    assert runtime_dtypes._ML_DTYPES == dtypes.NUMPY_LACKS


def test_the_assembled_runtime_carries_the_table():
    source = runtime_source()
    assert _assigned(source, "_TRT_DTYPES") == dtypes.TRT_TO_NUMPY
    assert _assigned(source, "_ML_DTYPES") == dtypes.NUMPY_LACKS


def test_loader_type_lists_name_types_of_the_table():
    numpy_names = set(dtypes.TRT_TO_NUMPY.values())
    assert set(dtypes.PYTHON_LOADER_TYPES) <= numpy_names
    assert set(dtypes.TRITON_TYPES) <= numpy_names
    assert set(dtypes.NUMPY_LACKS) <= numpy_names
    assert not set(dtypes.SUB_BYTE) & set(dtypes.PYTHON_LOADER_TYPES)
