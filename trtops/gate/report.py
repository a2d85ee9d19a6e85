"""The accuracy report: what ``accuracy.json`` holds and what the CLI prints.

``accuracy.json`` (schema 1)::

    {
      "schema": 1,
      "state": "rejected",          # accepted | rejected | unverified (skipped), for the cache
      "summary": "accuracy: FAILED (fp16 vs ...): 1 of 6 checks failed",  # one line
      "checked_at": "2025-01-31T12:00:00Z",
      "passed": false,              # every output of every case passed
      "skipped": false,             # accuracy.enabled was false: nothing was compared
      "precision": "fp16",
      "reference": "onnxruntime 1.17.1 (CPUExecutionProvider)",
      "candidate": "tensorrt 8.6.0",
      "inputs": {"kind": "generated", "seed": 1, "ranges": {"ids": [0, 30522]}, "iterations": 1}
                | {"kind": "data", "path": "/abs/calib.npz"},
      "tolerances": {"atol": 0.01, "rtol": 0.01, "stat": "median", "outputs": {"logits": {...}}},
      "counts": {"cases": 3, "checks": 6, "failed": 1},
      "cases": [
        {"label": "profile0/min", "profile": 0, "shapes": {"x": [1, 3, 224, 224]},
         "passed": true, "error": null,
         "outputs": [{"name", "passed", "stat", "atol", "rtol",
                      "max_abs", "mean_abs", "median_abs", "max_rel", "mean_rel", "median_rel",
                      "cosine", "elements", "mismatches", "nonfinite", "excess", "shape",
                      ["quantile", "quantile_abs", "quantile_rel"], ["reason"],
                      ["abs_histogram"]}]}   # |error| in log bins (trtops.gate.histogram)
      ],
      "worst": [{"label", "profile", <output fields>}]   # highest excess first, at most 5
    }

Statistics that are not finite (NaN, inf) are written as ``null``. ``excess`` is how many
times larger the tolerance would need to be for the output to pass (<= 1 passes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from trtops.errors import AccuracyError
from trtops.gate.compare import OutputResult
from trtops.spec import ToleranceSpec

SCHEMA = 1
WORST_IN_JSON = 5


@dataclass
class CaseResult:
    """One input set: its shapes and how every output compared (or why it could not run)."""

    label: str
    profile: int
    shapes: dict[str, tuple[int, ...]]
    outputs: list[OutputResult] = field(default_factory=list)
    error: str | None = None  # the engine failed to run on this input set

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "profile": self.profile,
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "passed": self.passed,
            "error": self.error,
            "outputs": [o.to_json() for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        return cls(
            label=data["label"],
            profile=int(data["profile"]),
            shapes={name: tuple(int(d) for d in shape) for name, shape in data.get("shapes", {}).items()},
            outputs=[OutputResult.from_json(o) for o in data.get("outputs", [])],
            error=data.get("error"),
        )


@dataclass
class AccuracyReport:
    """The result of verifying one engine against its reference."""

    precision: str
    reference: str
    tolerance: ToleranceSpec
    cases: list[CaseResult]
    inputs: dict[str, Any] = field(default_factory=dict)
    candidate: str = "tensorrt"
    skipped: bool = False
    checked_at: str = field(default_factory=lambda: _utc_now())

    @property
    def passed(self) -> bool:
        return self.skipped or (bool(self.cases) and all(c.passed for c in self.cases))

    @property
    def state(self) -> str:
        """The cache entry state this report gives: accepted, rejected or unverified."""
        if self.skipped:
            return "unverified"
        return "accepted" if self.passed else "rejected"

    @property
    def checks(self) -> int:
        return sum(len(c.outputs) for c in self.cases)

    def failures(self) -> list[tuple[CaseResult, OutputResult | None]]:
        """Failing (case, output) pairs; output is None for a case whose engine run failed."""
        found: list[tuple[CaseResult, OutputResult | None]] = []
        for case in self.cases:
            if case.error is not None:
                found.append((case, None))
            found.extend((case, o) for o in case.outputs if not o.passed)
        return found

    def worst(self, n: int = 3) -> list[tuple[CaseResult, OutputResult]]:
        """The n (case, output) pairs closest to or furthest beyond their tolerance.

        Args:
            n: How many to return.

        Returns:
            Pairs sorted by ``excess``, highest first (failures first, ties broken by order).
        """
        pairs = [(c, o) for c in self.cases for o in c.outputs]
        pairs.sort(key=lambda pair: (pair[1].passed, -_sortable(pair[1].excess)))
        return pairs[:n]

    def to_json(self) -> dict[str, Any]:
        """The ``accuracy.json`` document (see the module docstring)."""
        failed = len(self.failures())
        return {
            "schema": SCHEMA,
            "state": self.state,
            "summary": self.summary_lines(0)[0],
            "checked_at": self.checked_at,
            "passed": self.passed,
            "skipped": self.skipped,
            "precision": self.precision,
            "reference": self.reference,
            "candidate": self.candidate,
            "inputs": self.inputs,
            "tolerances": tolerance_to_json(self.tolerance),
            "counts": {"cases": len(self.cases), "checks": self.checks, "failed": failed},
            "cases": [c.to_json() for c in self.cases],
            "worst": [
                {"label": case.label, "profile": case.profile, **output.to_json()}
                for case, output in self.worst(WORST_IN_JSON)
            ],
        }

    def to_bytes(self) -> bytes:
        """``accuracy.json`` as stored in the cache (UTF-8, indented, trailing newline),
        checked against the schema every reader applies (:mod:`trtops.cache.entry_schema`)."""
        from trtops.cache.entry_schema import check_accuracy, written

        document = self.to_json()
        check_accuracy(written(document))
        return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccuracyReport:
        """Read back an ``accuracy.json`` document written by :meth:`to_json`."""
        return cls(
            precision=data.get("precision", ""),
            reference=data.get("reference", ""),
            tolerance=tolerance_from_json(data.get("tolerances") or {}),
            cases=[CaseResult.from_json(c) for c in data.get("cases", [])],
            inputs=dict(data.get("inputs") or {}),
            candidate=data.get("candidate", "tensorrt"),
            skipped=bool(data.get("skipped", False)),
            checked_at=data.get("checked_at") or "",
        )

    def summary_lines(self, n: int = 3) -> list[str]:
        """A short human summary: the verdict, then the n worst outputs.

        Args:
            n: How many outputs (or failed engine runs) to list.

        Returns:
            Lines without trailing newlines; the first line carries the verdict.
        """
        what = f"{self.precision} vs {self.reference}" if self.precision else f"vs {self.reference}"
        if self.skipped:
            return [f"accuracy: skipped ({self.precision}: accuracy.enabled is false)"]
        if not self.cases:
            return [f"accuracy: FAILED ({what}): no input sets were compared"]
        failures = self.failures()
        if not failures:
            lines = [f"accuracy: passed ({what}): {self.checks} output checks over "
                     f"{len(self.cases)} input sets"]
            for case, output in self.worst(min(n, 1)):
                lines.append(f"  closest to tolerance: {case.label} '{output.name}': {output.describe()}")
            return lines
        lines = [f"accuracy: FAILED ({what}): {len(failures)} of "
                 f"{self.checks + sum(1 for c, o in failures if o is None)} checks failed"]
        errors = [(c, o) for c, o in failures if o is None]
        ranked = errors + [pair for pair in self.worst(len(failures)) if not pair[1].passed]
        for case, output in ranked[:n]:
            if output is None:
                lines.append(f"  {case.label}: engine failed to run: {case.error}")
            else:
                lines.append(f"  {case.label} '{output.name}': {output.describe()}")
        if len(ranked) > n:
            lines.append(f"  ... and {len(ranked) - n} more (see accuracy.json)")
        return lines


    def to_error(self, engine: str | None = None, n: int = 3) -> AccuracyError:
        """An :class:`AccuracyError` (exit code 4) whose message lists the worst outputs.

        Args:
            engine: The engine's id (``manifest/model/precision/target``) for the message.
            n: How many outputs to list.

        Returns:
            The error, for the caller to raise (or collect) when ``not self.passed``.
        """
        lines = self.summary_lines(n)
        head = lines[0].removeprefix("accuracy: ")
        message = f"{engine}: accuracy {head}" if engine else f"accuracy {head}"
        message = "\n".join([message, *lines[1:]])
        precision = self.precision or "<precision>"
        return AccuracyError(
            message,
            hint=f"the engine is kept as rejected (never published); if this error is acceptable, "
            f"loosen accuracy.tolerances.{precision} in the manifest and run `trtops verify`",
        )


def tolerance_to_json(tolerance: ToleranceSpec) -> dict[str, Any]:
    """A ToleranceSpec as JSON (per-output overrides keyed by output name)."""
    data: dict[str, Any] = {"atol": tolerance.atol, "rtol": tolerance.rtol, "stat": tolerance.stat}
    if tolerance.quantile is not None:
        data["quantile"] = tolerance.quantile
    if tolerance.outputs:
        data["outputs"] = {name: tolerance_to_json(t) for name, t in tolerance.outputs}
    return data


def tolerance_from_json(data: dict[str, Any]) -> ToleranceSpec:
    """Inverse of :func:`tolerance_to_json`."""
    return ToleranceSpec(
        atol=float(data.get("atol", 0.0)),
        rtol=float(data.get("rtol", 0.0)),
        stat=str(data.get("stat", "elemwise")),
        quantile=data.get("quantile"),
        outputs=tuple((name, tolerance_from_json(t)) for name, t in (data.get("outputs") or {}).items()),
    )


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sortable(value: float) -> float:
    return math.inf if value is None or math.isnan(value) else value
