"""The part of the ``tensorrt`` module trtops touches, as a type for the stubs check.

Never imported at run time: modules import :class:`TensorRT` under ``TYPE_CHECKING`` and
annotate the module they are handed (``trt: TensorRT``). A module object is not a type, so
this protocol stands in for it; ``scripts/typecheck_trt.py`` checks trtops/trt against the
``tensorrt-stubs`` package (the typed TensorRT 10.13 API), which then verifies two things:
every member below exists in TensorRT 10 with this type (``import_tensorrt`` returns the
real module as a :class:`TensorRT`), and every ``trt.X`` the package uses is listed here.

Only the 10.x API belongs here. What 8.6 or 11 add or drop is looked up by name
(``getattr(trt, "OnnxParserFlag", None)``, ``hasattr(trt.BuilderFlag, "FP16")``) and stays
out of this list, so the check cannot vouch for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import tensorrt

    class TensorRT(Protocol):
        """The ``tensorrt`` module (TensorRT 10 API)."""

        Builder: type[tensorrt.Builder]
        BuilderFlag: type[tensorrt.BuilderFlag]
        DataType: type[tensorrt.DataType]
        IBuilderConfig: type[tensorrt.IBuilderConfig]
        ICudaEngine: type[tensorrt.ICudaEngine]
        # Looked up by name (calibration.make_calibrator); listed so the check vouches for them.
        IInt8EntropyCalibrator2: type[tensorrt.IInt8EntropyCalibrator2]
        IInt8MinMaxCalibrator: type[tensorrt.IInt8MinMaxCalibrator]
        ILogger: type[tensorrt.ILogger]
        LayerInformationFormat: type[tensorrt.LayerInformationFormat]
        # The parse preflight's child (parse_check) logs through TensorRT's own logger.
        Logger: type[tensorrt.Logger]
        # Subclassed by measure for outputs of data-dependent shape.
        IOutputAllocator: type[tensorrt.IOutputAllocator]
        MemoryPoolType: type[tensorrt.MemoryPoolType]
        NetworkDefinitionCreationFlag: type[tensorrt.NetworkDefinitionCreationFlag]
        OnnxParser: type[tensorrt.OnnxParser]
        Runtime: type[tensorrt.Runtime]
        TacticSource: type[tensorrt.TacticSource]
        TensorIOMode: type[tensorrt.TensorIOMode]

        def init_libnvinfer_plugins(self, logger: tensorrt.ILogger, namespace: str) -> bool: ...
