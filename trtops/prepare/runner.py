"""Run the preparation steps on one model and keep the result content-addressed.

Steps, in order: opset conversion, inputs bound to constants, distinct dim names, shape
inference, constant folding (inlining If nodes whose condition became constant), shape
inference again. The prepared model lives at ``<cache>/prepared/<digest>/model.onnx``
with ``report.json`` beside it; the digest covers the source model's digest, the key's
``prepare`` component and the ONNX Runtime version that evaluated the folded constants, so
a prepared model is made once and never changes under its name. The directory appears by
one rename: a killed run leaves at most a temporary directory under ``<cache>/tmp``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import InputError
from trtops.prepare.graph import PreparationFailed, count_nodes, count_ops, real_inputs
from trtops.prepare.options import prepare_component, tool_version

MODEL_FILE = "model.onnx"
REPORT_FILE = "report.json"
# protobuf refuses messages of 2 GiB and more: larger prepared models keep their weights
# in model.onnx.data.
_EXTERNAL_ABOVE = 1_500_000_000


@dataclass
class PrepareReport:
    """What preparation did to one model (``trtops prepare`` prints it; report.json)."""

    source: str
    nodes_before: int = 0
    nodes_after: int = 0
    opset: str | None = None
    constants_bound: list[str] = field(default_factory=list)
    dims_renamed: list[str] = field(default_factory=list)
    nodes_folded: int = 0
    ifs_inlined: int = 0
    ifs_left: int = 0
    inputs: dict[str, list[Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The report in words, one change per line."""
        out = [f"nodes: {self.nodes_before} -> {self.nodes_after}"]
        if self.opset:
            out.append(f"opset: {self.opset}")
        out += [f"constant: {line}" for line in self.constants_bound]
        out += [f"dim renamed: {line}" for line in self.dims_renamed]
        if self.nodes_folded:
            out.append(f"folded: {self.nodes_folded} nodes")
        if self.ifs_inlined or self.ifs_left:
            out.append(f"If nodes: {self.ifs_inlined} inlined, {self.ifs_left} left (their condition "
                       "depends on run-time values)")
        out.append("inputs: " + ", ".join(f"{name} {dims}" for name, dims in self.inputs.items()))
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _dims(value: Any) -> list[Any]:
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else "?")
            for d in value.type.tensor_type.shape.dim]


def run_steps(model: Any, prepare: Any, source: str = "") -> tuple[Any, PrepareReport]:
    """Apply the steps a :class:`trtops.spec.PrepareSpec` asks for.

    Args:
        model: ``onnx.ModelProto`` with its weights loaded (modified in place, and returned
            possibly as a new object).
        prepare: the spec.
        source: the source path, for the report.

    Returns:
        ``(prepared model, report)``.

    Raises:
        PreparationFailed: a step cannot do what the manifest asks (the message says which).
        EnvironmentMissing: folding without onnx-graphsurgeon or ONNX Runtime.
    """
    from trtops.prepare.constants import bind_constants
    from trtops.prepare.dims import make_dims_distinct
    from trtops.prepare.fold import fold_constants, infer_shapes
    from trtops.prepare.opset import convert_opset

    started = time.monotonic()
    report = PrepareReport(source=source, nodes_before=count_nodes(model.graph))
    if prepare.opset:
        model, report.opset = convert_opset(model, prepare.opset)
    if prepare.constants:
        report.constants_bound = bind_constants(model, prepare.constants)
    if prepare.distinct_dims:
        report.dims_renamed = make_dims_distinct(model)
    if prepare.infer_shapes:
        model = infer_shapes(model)  # known shapes let folding resolve Shape/Size
    if prepare.fold_constants:
        model, counts = fold_constants(model)
        report.ifs_inlined = counts["ifs_inlined"]
    if prepare.infer_shapes:
        model = infer_shapes(model)
    report.nodes_after = count_nodes(model.graph)
    if prepare.fold_constants:
        report.nodes_folded = max(0, report.nodes_before - report.nodes_after)
    report.ifs_left = count_ops(model.graph, "If")
    report.inputs = {v.name: _dims(v) for v in real_inputs(model.graph)}
    report.seconds = round(time.monotonic() - started, 3)
    return model, report


def save_model(model: Any, path: Path) -> None:
    """Write ``model`` to ``path`` (weights in ``<name>.data`` beside it when very large)."""
    import onnx

    total = sum(len(t.raw_data) or t.ByteSize() for t in model.graph.initializer)
    path.with_name(f"{path.name}.data").unlink(missing_ok=True)  # onnx appends to an existing one
    if total > _EXTERNAL_ABOVE:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def prepare_file(source: str | os.PathLike[str], prepare: Any, out_dir: str | os.PathLike[str]) -> tuple[Path, PrepareReport]:
    """Prepare ``source`` into ``out_dir/model.onnx`` (with ``report.json``).

    Returns:
        ``(prepared model path, report)``.
    """
    import onnx

    source = Path(source)
    try:
        model = onnx.load(str(source), load_external_data=True)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise InputError(f"{source}: cannot read it as an ONNX model ({type(exc).__name__}: {exc})") from None
    prepared, report = run_steps(model, prepare, str(source))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    save_model(prepared, path)
    (out_dir / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    return path, report


def prepared_digest(model_digest: str, component: dict[str, Any]) -> str:
    """The prepared model's cache name: source digest, key component, ONNX Runtime version
    (when folding, since it computes the folded values)."""
    from trtops.keys.canonical import sha256_json

    tools = dict(component.get("tools") or {})
    if component.get("steps", {}).get("fold_constants"):
        tools["onnxruntime"] = tool_version("onnxruntime")
    return sha256_json({"model": model_digest, "prepare": {**component, "tools": tools}})


def prepared_dir(cache_root: str | os.PathLike[str], digest: str) -> Path:
    from trtops.cache.layout import PREPARED_DIR

    return Path(cache_root) / PREPARED_DIR / digest


def ensure_prepared(cache_root: str | os.PathLike[str], source: str | os.PathLike[str], model_digest: str,
                    prepare: Any) -> tuple[Path, PrepareReport | None]:
    """The prepared model of ``source`` from the cache, made first when missing.

    Args:
        cache_root: the local cache directory.
        source: the source ONNX file.
        model_digest: its digest (the engine key's ``model_digest``).
        prepare: the :class:`trtops.spec.PrepareSpec` (not a no-op).

    Returns:
        ``(path of model.onnx, report)``; the report is None when the model was cached.
    """
    from trtops.cache.layout import TMP_DIR

    component = prepare_component(prepare)
    if component is None:
        raise ValueError("ensure_prepared needs a preparation that does something")
    final = prepared_dir(cache_root, prepared_digest(model_digest, component))
    if (final / MODEL_FILE).is_file():
        return final / MODEL_FILE, None
    tmp_root = Path(cache_root) / TMP_DIR
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prepare-", dir=tmp_root))
    try:
        path, report = prepare_file(source, prepare, work)
        with open(path, "rb") as handle:  # durable before it appears under its digest
            os.fsync(handle.fileno())
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(work, final)
        except OSError:
            if not (final / MODEL_FILE).is_file():  # not a concurrent run that got there first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final / MODEL_FILE, report


__all__ = ["MODEL_FILE", "REPORT_FILE", "PrepareReport", "PreparationFailed", "ensure_prepared",
           "prepare_file", "prepared_digest", "prepared_dir", "run_steps"]
