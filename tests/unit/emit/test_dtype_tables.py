"""The emitted loader stands alone (no trtops import), so it carries its own copy of the
TensorRT dtype table: it must stay equal to the builder's."""

from trtops.trt.trt_compat import DTYPE_NAMES
from trtops.emit import runtime_template


def test_loader_dtype_table_matches_the_builders():
    assert runtime_template._TRT_DTYPES == DTYPE_NAMES
