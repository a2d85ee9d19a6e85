"""The accuracy gate: engines are compared with ONNX Runtime before they are published.

- :mod:`trtops.gate.inputs`: generated (seeded, per profile min/opt/max) or user inputs.
- :mod:`trtops.gate.compare`: per-output statistics and verdicts (Polygraphy semantics).
- :mod:`trtops.gate.report`: ``accuracy.json`` and the CLI summary.
- :mod:`trtops.gate.gate`: runs the engine and the reference through Polygraphy.

Importing this package imports numpy only; Polygraphy, ONNX Runtime and TensorRT are
imported when a check runs.
"""

from trtops.gate.compare import OutputResult, compare_outputs
from trtops.gate.gate import (
    input_sets_for,
    verify_cached_engine,
    verify_engine,
    verify_with_runners,
)
from trtops.gate.inputs import (
    InputSet,
    generate_input_sets,
    load_user_inputs,
    match_inputs,
)
from trtops.gate.report import AccuracyReport, CaseResult

__all__ = [
    "AccuracyReport",
    "CaseResult",
    "InputSet",
    "OutputResult",
    "compare_outputs",
    "generate_input_sets",
    "input_sets_for",
    "load_user_inputs",
    "match_inputs",
    "verify_cached_engine",
    "verify_engine",
    "verify_with_runners",
]
