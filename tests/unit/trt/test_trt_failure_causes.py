"""Build failures classified by cause, from messages recorded from TensorRT 8.6 and 10 (the
texts of TensorRT's logger and ONNX parser as users and the lab reported them); the real
ones are provoked in tests/gpu/test_build_failures.py."""

from __future__ import annotations

import enum

import pytest

from trtops.spec import InputRange
from trtops.trt.failure_causes import (
    CAUSES,
    FailureContext,
    diagnose,
    error_code_name,
    parser_crash,
)
from trtops.trt.network_checks import ParserProblem

# --------------------------------------------------------------------------- recorded messages

# TensorRT 8.6.0, the paddle2onnx classifier whose input is [-1, 3, '?', '?'] (issue 17).
NAMED_DIMS_86 = ("4: [shapeContext.cpp::getBounds::3442] Error Code 4: Internal Error "
                 "(?: Input dimensions with this name are inconsistent.)")
NAMED_DIMS_86_OTHER = ("4: [shapeContext.cpp::getBounds::3442] Error Code 4: Internal Error "
                       "(2B: Input dimensions with this name are inconsistent.)")
# The same case as TensorRT 8.6.0 on an H100 reported it in the GPU lab (2026-12-06,
# tests/gpu/test_build_failures.py): the profile check at build time, a different text.
NAMED_DIMS_86_LAB = ("4: [memoryComputation.cpp::computeEngineAuxMemorySizes::209] Error Code 4: Internal "
                     "Error (Profile kOPT values are not self-consistent. Dimensions with name ? must be "
                     "equal. Condition '==' violated: 32 != 64. Instruction: CHECK_EQUAL 32 64.)")
BUILD_FAILED_86 = ("2: [builder.cpp::buildSerializedNetwork::751] Error Code 2: Internal Error "
                   "(Assertion engine != nullptr failed. )")
IF_SHAPES_86 = ("4: [graphShapeAnalyzer.cpp::analyzeShapes::1872] Error Code 4: Miscellaneous "
                "(/If_OutputLayer: IIfConditionalOutputLayer inputs must have the same shape. "
                "Shapes are [-1] and [-1,1].)")
BROADCAST_86 = ("4: [graphShapeAnalyzer.cpp::analyzeShapes::1872] Error Code 4: Miscellaneous "
                "(/Add: broadcast dimensions must be conformable)")
PLUGIN_NOT_FOUND_86 = 'Assertion failed: creator && "Plugin not found, are the plugin name, version, and namespace correct?"'
DYNAMIC_AXES_86 = 'Assertion failed: (axesInput.is_weights()) && "This version of TensorRT does not support dynamic axes."'
OOM_86 = [
    "2: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)",
    "10: [optimizer.cpp::computeCosts::3728] Error Code 10: Internal Error (Could not find any implementation "
    "for node /backbone/conv1/Conv.)",
    BUILD_FAILED_86,
]
OOM_WARNINGS_86 = [
    "Requested amount of GPU memory (17179869184 bytes) could not be allocated. There may not be enough free "
    "memory for allocation to succeed.",
    "Skipping tactic 8 due to insufficient memory on requested size of 17179869184 detected for tactic "
    "0x000000000000003c.",
]
WORKSPACE_WARNINGS_86 = [
    "Tactic Device request: 1170MB Available: 64MB. Device memory is insufficient to use tactic.",
    "Skipping tactic 0 due to insufficient memory on requested size of 1227096064 detected for tactic 0x0.",
]
NO_IMPL_86 = ("10: [optimizer.cpp::computeCosts::3728] Error Code 10: Internal Error (Could not find any "
              "implementation for node {ForeignNode[/attn/MatMul.../attn/Softmax]}.)")
NO_IMPL_10 = ("[optimizer.cpp::computeCosts::4180] Error Code 10: Internal Error (Could not find any "
              "implementation for node /head/ArgMax.)")
TIMING_86 = [
    "1: [stdArchiveReader.cpp::StdArchiveReader::42] Error Code 1: Serialization (Serialization assertion "
    "magicTagRead == kMAGIC_TAG failed.Magic tag does not match)",
    "4: The timing cache will not be used!",
    BUILD_FAILED_86,
]
INTERNAL_86 = ("2: [caskBuilderUtils.cpp::getCaskHandle::408] Error Code 2: Internal Error "
               "(Assertion !isGroupConv || (findConvShaderByHandle(klib, caskHandle) failed. )")

PADDLE_INPUTS = {"x": (None, 3, "?", "?")}
PADDLE_PROFILE = ((InputRange("x", (1, 3, 32, 16), (1, 3, 48, 160), (8, 3, 48, 320)),),)


def test_every_cause_has_a_title():
    assert set(CAUSES) == {"shapes", "unsupported_node", "out_of_memory", "no_implementation", "timing_cache",
                           "internal", "parser_crash", "parser_hang"}


def test_a_parser_that_killed_its_process_is_a_parser_crash_with_its_own_hint():
    # TensorRT 8.6.0 on silero-vad's opset-18 export (issue 17): SIGSEGV in OnnxParser.parse,
    # told by the parse preflight's child process, not by any message.
    found = parser_crash("SIGSEGV")
    assert found.cause == "parser_crash" and found.title == "TensorRT's ONNX parser crashed"
    assert "killed by SIGSEGV" in found.detail
    for advice in ("prepare: {}", "opset", "another TensorRT version", "report it to NVIDIA", "faulthandler"):
        assert advice in found.hint
    assert "workspace" not in found.hint  # nothing about the build helps
    hung = parser_crash("no answer", timeout=600)
    assert hung.cause == "parser_hang" and hung.title == "TensorRT's ONNX parser hung"
    assert "within 600 s" in hung.detail and "where it was stuck" in hung.hint


@pytest.mark.parametrize("message", [NAMED_DIMS_86, NAMED_DIMS_86_OTHER, NAMED_DIMS_86_LAB])
def test_dims_that_share_a_name_are_a_shapes_problem_with_the_right_hint(message):
    found = diagnose([message, BUILD_FAILED_86],
                     context=FailureContext(inputs=PADDLE_INPUTS, profiles=PADDLE_PROFILE, workspace=1 << 30))
    assert found.cause == "shapes" and found.title == "inconsistent or invalid shapes"
    assert "x[2], x[3] share the name '?'" in found.detail
    assert "profile 0 (x[2] 32/48/48, x[3] 16/160/320)" in found.detail
    assert "own name" in found.hint and "does not help" in found.hint
    assert "may help" not in found.hint


def test_shared_names_without_the_model_still_name_the_dim():
    found = diagnose([NAMED_DIMS_86])
    assert found.cause == "shapes" and "'?'" in found.detail


def test_if_with_branches_of_different_shapes():
    found = diagnose([IF_SHAPES_86, BUILD_FAILED_86])
    assert found.cause == "shapes" and "/If_OutputLayer" in found.detail
    assert "constant" in found.hint and "If" in found.hint


def test_other_shape_errors_list_the_dynamic_inputs():
    found = diagnose([BROADCAST_86, BUILD_FAILED_86], context=FailureContext(inputs={"a": (None, 8), "b": (4, 8)}))
    assert found.cause == "shapes" and "/Add: broadcast" in found.detail and "a [?, 8]" in found.detail
    assert "profiles" in found.hint


def test_unsupported_node_names_node_op_and_opset():
    problem = ParserProblem("UNSUPPORTED_NODE", PLUGIN_NOT_FOUND_86, 1, "mystery_node", "TotallyUnknownOp",
                            "trtops.test")
    found = diagnose([], parser_problems=[problem],
                     context=FailureContext(opsets={"": 13, "trtops.test": 1}))
    assert found.cause == "unsupported_node"
    assert "node 'mystery_node' (op TotallyUnknownOp, opset 1)" in found.detail
    assert "plugin" in found.hint and "opset" in found.hint and "fold" in found.hint


def test_dynamic_axes_suggest_folding_constants():
    # TensorRT 8.6: Slice axes computed by Unsqueeze(Constant) in a torch export (issue 17).
    problem = ParserProblem("UNSUPPORTED_NODE", DYNAMIC_AXES_86, 12, "/Slice", "Slice")
    found = diagnose([], parser_problems=[problem], context=FailureContext(opsets={"": 17}))
    assert found.cause == "unsupported_node" and "node '/Slice' (op Slice, opset 17)" in found.detail
    assert "fold-constants" in found.hint


def test_parser_errors_that_are_shape_errors_are_shapes():
    problem = ParserProblem("INVALID_NODE", IF_SHAPES_86, 30, "/If", "If")
    assert diagnose([], parser_problems=[problem]).cause == "shapes"
    broadcast = ParserProblem("INVALID_NODE", BROADCAST_86, 3, "/Add", "Add")
    assert diagnose([], parser_problems=[broadcast]).cause == "shapes"


def test_any_other_parser_error_is_a_node_it_cannot_import():
    # e.g. TensorRT 8.6 on an attribute it does not handle: never "internal" (whose hint is
    # about the builder), always the node with its op.
    problem = ParserProblem("INVALID_NODE", "Assertion failed: mode == \"constant\" && value == 0.f", 7,
                            "/pad", "Pad")
    found = diagnose([], parser_problems=[problem], context=FailureContext(opsets={"": 11}))
    assert found.cause == "unsupported_node" and "node '/pad' (op Pad, opset 11)" in found.detail


def test_out_of_gpu_memory_says_lower_the_workspace():
    found = diagnose(OOM_86, warnings=OOM_WARNINGS_86, context=FailureContext(workspace=16 << 30))
    assert found.cause == "out_of_memory"
    assert "16GiB" in found.detail.replace(" ", "") and "/backbone/conv1/Conv" in found.detail
    assert "lower 'workspace'" in found.hint


def test_no_implementation_with_skipped_tactics_is_a_workspace_problem():
    found = diagnose([NO_IMPL_86, BUILD_FAILED_86], warnings=WORKSPACE_WARNINGS_86,
                     context=FailureContext(workspace=64 << 20))
    assert found.cause == "out_of_memory" and "raise 'workspace'" in found.hint and "64" in found.hint


@pytest.mark.parametrize("message, layer", [(NO_IMPL_86, "{ForeignNode[/attn/MatMul.../attn/Softmax]}"),
                                            (NO_IMPL_10, "/head/ArgMax")])
def test_no_implementation_names_the_layer_and_the_precision(message, layer):
    found = diagnose([message, BUILD_FAILED_86], context=FailureContext(precision="fp16"))
    assert found.cause == "no_implementation"
    assert found.detail == f"no fp16 implementation for layer {layer!r}"
    assert "another precision" in found.hint


def test_timing_cache_problems():
    found = diagnose(TIMING_86)
    assert found.cause == "timing_cache" and "timing_cache: off" in found.hint


def test_anything_else_is_internal():
    found = diagnose([INTERNAL_86, BUILD_FAILED_86])
    assert found.cause == "internal" and "builder_optimization_level" in found.hint
    assert diagnose([]).cause == "internal"


class _PropertyEnum(enum.Enum):  # TensorRT 10 style: ``name`` is a property
    UNSUPPORTED_NODE = 8


class _MethodCode:  # TensorRT 8.6 style: ``name`` is a method of the pybind11 enum value
    def name(self):
        return "UNSUPPORTED_NODE"

    def __str__(self):
        return "ErrorCode.UNSUPPORTED_NODE"


class _BrokenCode:
    def name(self):
        raise RuntimeError("binding quirk")

    def __repr__(self):
        return "<ErrorCode.INVALID_NODE: 6>"

    __str__ = __repr__


def test_error_code_name_whether_name_is_a_method_or_a_property():
    assert error_code_name(_PropertyEnum.UNSUPPORTED_NODE) == "UNSUPPORTED_NODE"
    assert error_code_name(_MethodCode()) == "UNSUPPORTED_NODE"
    assert error_code_name(_BrokenCode()) == "INVALID_NODE"
    assert error_code_name(None) == "ERROR"
    assert "bound method" not in error_code_name(_MethodCode())
