"""Example models and calibration data for the manifests in ``manifests/``.

``python -m trtops.examples`` makes every file the example manifests need (offline,
deterministic, idempotent); see :mod:`trtops.examples.models` for the model builders that
tests import, :mod:`trtops.examples.data` for calibration data and
:mod:`trtops.examples.ppocr` for the PP-OCR detector taken from an installed package.
Nothing here is imported by the ``trtops`` CLI.
"""
