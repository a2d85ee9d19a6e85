"""The standalone runtime of emitted Python loaders, as source parts.

Each module here is ordinary, importable Python (tests import the parts one by one), and
:mod:`trtops.emit.assemble` concatenates them, in the order of its ``PARTS``, into the one
file an emitted loader ships: one flat namespace, so top-level names must be unique across
parts. The rules the assembler relies on:

- a part imports only the standard library, numpy and other parts (relative imports,
  dropped on assembly), and only at its top;
- ``header`` comes first: its docstring is the emitted module's documentation and it holds
  the ``METADATA`` block `trtops emit` fills in;
- ``dtypes`` holds a block generated from :mod:`trtops.dtypes` (regenerated on assembly).

Nothing here imports trtops, TensorRT or a CUDA package at import time.
"""
