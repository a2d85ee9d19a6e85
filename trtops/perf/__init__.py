"""The performance gate: which cases an engine is measured at (:mod:`.cases`), the verdict
on a measurement (:mod:`.judge`, pure), the stored ``perf.json`` and its summaries
(:mod:`.document`), the previous engine a measurement is compared with (:mod:`.baseline`)
and ``select: fastest`` (:mod:`.select`). The measurement itself needs TensorRT and a GPU:
:func:`trtops.trt.measure.measure_engine`, behind the toolchain's ``measure`` step."""
