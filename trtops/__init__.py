"""trtops: declarative build/deploy orchestrator for TensorRT engines."""

__version__ = "0.1.0"
