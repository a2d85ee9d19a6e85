"""Loaders for built engines.

- :mod:`trtops.emit.runtime_template`: the standalone runtime every Python loader is made
  of (a real, importable module; needs only tensorrt, numpy and pycuda or cuda-python).
- :mod:`trtops.emit.python_loader`: writes ``<module>.py`` for one engine (the template plus
  an engine-specific header and metadata literal) and its engine reference.
- :mod:`trtops.emit.triton`: writes a Triton model repository entry (``config.pbtxt`` and
  ``<version>/model*.plan``).
- :mod:`trtops.emit.emitter`: emits loaders for cache entries (``trtops emit``, ``apply``,
  ``pull``): accepted engines only.

Nothing here imports TensorRT or a CUDA package.
"""
