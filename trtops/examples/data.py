"""Calibration data for the int8 examples, generated deterministically.

Each file is an ``.npz`` with one array per model input, first axis = samples, in the
value range the accuracy check feeds the model ([0, 1) by default), so the calibrated
ranges match what the engine is verified with. Files are byte-stable
(:func:`trtops.examples.files.npz_bytes`) and written atomically, skipped when up to date.

``DATA_REGISTRY`` maps a name to ``Example(make, filename)``, the file name under
``manifests/data/``:

``tiny_cnn_calib``: ``make_tiny_cnn_calib(path, samples=128, seed=11)``: ``input``
float32 ``[samples, 3, 32, 32]`` for :func:`trtops.examples.models.make_tiny_cnn`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trtops.examples.files import npz_bytes, write_if_changed
from trtops.examples.models import Example


def build_tiny_cnn_calib(samples: int = 128, seed: int = 11) -> dict[str, np.ndarray]:
    """Calibration samples for ``tiny_cnn``: ``{"input": float32 [samples, 3, 32, 32]}``."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    rng = np.random.default_rng(seed)
    return {"input": rng.random((samples, 3, 32, 32), dtype=np.float32)}


def make_tiny_cnn_calib(path: str | os.PathLike[str], samples: int = 128, seed: int = 11) -> Path:
    """Write :func:`build_tiny_cnn_calib` as an ``.npz`` to ``path``.

    Args:
        path: destination ``.npz`` file.
        samples: number of samples (first axis).
        seed: random seed.

    Returns:
        ``path`` as a Path.
    """
    target = Path(path)
    write_if_changed(target, npz_bytes(build_tiny_cnn_calib(samples=samples, seed=seed)))
    return target


DATA_REGISTRY: dict[str, Example] = {
    "tiny_cnn_calib": Example(make_tiny_cnn_calib, "tiny_cnn_calib.npz"),
}

DATA_DESCRIPTIONS: dict[str, str] = {
    "tiny_cnn_calib": "int8 calibration data for tiny_cnn: input [128,3,32,32] in [0, 1)",
}
