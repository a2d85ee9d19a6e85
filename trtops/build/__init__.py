"""Engine building: the only package that imports tensorrt (always lazily, inside functions).

Public entry points:

* :func:`trtops.build.builder.build_engine` (``BuildRequest`` → ``BuildResult``);
* :func:`trtops.build.support.unsupported_reason` (pure; the planner's up-front check);
* :func:`trtops.build.timing.merge_timing_caches` (for the cache store, under its lock);
* :func:`trtops.build.onnx_info.model_has_qdq` (pure; feeds ``unsupported_reason``);
* :func:`trtops.build.prepare.prepare_model` (fp16/bf16 casting for strongly typed builds);
* :func:`trtops.build.runtime.run_engine` / :func:`~trtops.build.runtime.engine_io`.

Importing this package (or any of its modules) never imports tensorrt, onnx or CUDA
bindings; they are imported by the functions that need them.
"""
