"""Loaders for built engines.

- :mod:`trtops.emit.registry`: the loader registry (names -> modules), what a loader is
  (``emit(entries, dest, options)``), loader-name checks. Light: the manifest imports it.
- :mod:`trtops.emit.entries`: cache entries validated once for every loader (accepted,
  I/O known, engine bytes matching meta.json's sha256).
- :mod:`trtops.emit.emitter`: validates the items, then dispatches to each loader
  (``trtops emit``, ``apply`` and ``pull`` call :func:`~trtops.emit.emitter.emit_entries`).
- :mod:`trtops.emit.python_loader`: the ``python`` loader: ``<module>.py`` per engine (the
  runtime plus an engine-specific header and metadata literal) and its engine reference.
- :mod:`trtops.emit.triton`: the ``triton`` loader: a Triton model repository entry
  (``config.pbtxt`` and ``<version>/model*.plan``).
- :mod:`trtops.emit.runtime`: the standalone runtime as source parts (importable one by
  one); :mod:`trtops.emit.assemble` joins them into the one file a loader ships.

Nothing here imports TensorRT or a CUDA package.
"""
