"""Engine building: the only package that imports tensorrt (always lazily, inside functions).

Public entry points:

* :func:`trtops.trt.builder.build_engine` (``BuildRequest`` → ``BuildResult``);
* :func:`trtops.trt.support.unsupported_reason` (pure; the planner's up-front check);
* :func:`trtops.trt.timing.merge_timing_caches` (for the cache store, under its lock);
* :func:`trtops.trt.onnx_info.model_has_qdq` (pure; feeds ``unsupported_reason``);
* :func:`trtops.trt.prepare.prepare_model` (fp16/bf16 casting for strongly typed builds);
* :func:`trtops.trt.runtime.engine_io` (engines run through the emitted loader's runtime).

Importing this package (or any of its modules) never imports tensorrt, onnx or CUDA
bindings; they are imported by the functions that need them.
"""
