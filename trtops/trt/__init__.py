"""Engine building: the only package that imports tensorrt (always lazily, inside functions).

Public entry points:

* :func:`trtops.trt.builder.build_engine` (``BuildRequest`` → ``BuildResult``);
  in process it first parses the model in a child (:mod:`trtops.trt.parse_preflight`,
  the child is :mod:`trtops.trt.parse_check`), so a parser crash fails one build;
* :func:`trtops.trt.timing.merge_timing_caches` (for the cache store, under its lock);
* the fp16/bf16 cast of strongly typed builds happens before: the preparation stage
  (:mod:`trtops.prepare.cast`, pure ONNX work) casts, the builder gets the cast model;
* :func:`trtops.trt.runtime.engine_io` (engines run through the emitted loader's runtime).

What can be built where is not decided here: :mod:`trtops.capabilities` holds the table
and the verdict the planner and :mod:`trtops.trt.builder` share;
:func:`trtops.trt.trt_compat.detect_features` tells it what the installed TensorRT offers.

Importing this package (or any of its modules) never imports tensorrt, onnx or CUDA
bindings; they are imported by the functions that need them.
"""
