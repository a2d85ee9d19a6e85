"""Run the preparation steps on one model and keep the result content-addressed.

Steps, in order: opset conversion, inputs bound to constants, distinct dim names, shape
inference, constant folding (inlining If nodes whose condition became constant), shape
inference again, and last the fp16/bf16 cast of strongly typed builds
(:mod:`trtops.prepare.cast`, where :func:`trtops.capabilities.model_cast` says so). The
prepared model lives at ``<cache>/prepared/<digest>/model.onnx`` with ``report.json``
beside it; the digest covers the source model's digest, the key's ``prepare`` component
(the cast and the nodes it keeps in fp32 included) and the ONNX Runtime version that evaluated the folded constants, so a
prepared model is made once and never changes under its name. A cast model is made from
the prepared model without the cast, which stays beside it: the accuracy gate compares the
engine with that one (the fp32 model TensorRT would have seen), never with the cast one.
The directory appears by one rename: a killed run leaves at most a temporary directory
under ``<cache>/tmp``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import InputError
from trtops.prepare.graph import PreparationFailed, count_nodes, count_ops, real_inputs
from trtops.prepare.options import (
    KeepLists,
    cast_of,
    prepare_component,
    tool_version,
    without_cast,
)

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
    cast: str | None = None  # fp16 / bf16: the cast of strongly typed builds
    cast_initializers: int = 0
    cast_nodes_inserted: int = 0
    cast_nodes_converted: int = 0
    cast_nodes_kept: int = 0
    cast_kept_fp32: list[str] = field(default_factory=list)  # keep_fp32's nodes left in float32
    cast_keep_unmatched: list[str] = field(default_factory=list)
    cast_weights_fp32: int = 0

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
        if self.cast:
            out.append(self.cast_line())
            keeping = self._cast_report().keep_summary(str(self.cast))
            if keeping:
                out.append(keeping)
        out.append("inputs: " + ", ".join(f"{name} {dims}" for name, dims in self.inputs.items()))
        return out

    def cast_line(self) -> str:
        """``cast to fp16: N initializers, M Cast nodes inserted (...)``."""
        return self._cast_report().summary(str(self.cast))

    def _cast_report(self) -> Any:
        from trtops.prepare.cast import CastReport

        return CastReport(self.cast_nodes_converted, self.cast_nodes_kept, self.cast_initializers,
                          self.cast_nodes_inserted, list(self.cast_kept_fp32), list(self.cast_keep_unmatched),
                          self.cast_weights_fp32)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _dims(value: Any) -> list[Any]:
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else "?")
            for d in value.type.tensor_type.shape.dim]


def run_steps(model: Any, prepare: Any, source: str = "", *, cast: str | None = None,
              keep: KeepLists = KeepLists()) -> tuple[Any, PrepareReport]:
    """Apply the steps a :class:`trtops.spec.PrepareSpec` asks for, then the cast.

    Args:
        model: ``onnx.ModelProto`` with its weights loaded (modified in place, and returned
            possibly as a new object).
        prepare: the spec (None: no steps but the cast).
        source: the source path, for the report.
        cast: ``"fp16"`` / ``"bf16"``: cast the model last (:func:`trtops.prepare.cast.cast_model`),
            or None.
        keep: the build's keep_fp32 lists: the nodes the cast leaves in float32.

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
    if prepare is None:
        from trtops.prepare.options import _NOTHING as prepare
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
    if prepare.fold_constants:
        report.nodes_folded = max(0, report.nodes_before - count_nodes(model.graph))
    if cast:
        from trtops.prepare.cast import cast_model

        model, casting = cast_model(model, cast, keep=keep)
        report.cast = cast
        report.cast_initializers = casting.converted_initializers
        report.cast_nodes_inserted = casting.casts_inserted
        report.cast_nodes_converted = casting.converted_nodes
        report.cast_nodes_kept = casting.kept_nodes
        report.cast_kept_fp32 = casting.kept_fp32
        report.cast_keep_unmatched = casting.keep_unmatched
        report.cast_weights_fp32 = casting.weights_fp32
    report.nodes_after = count_nodes(model.graph)
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


def prepare_file(source: str | os.PathLike[str], prepare: Any, out_dir: str | os.PathLike[str], *,
                 cast: str | None = None, keep: KeepLists = KeepLists(),
                 base_report: PrepareReport | None = None) -> tuple[Path, PrepareReport]:
    """Prepare ``source`` into ``out_dir/model.onnx`` (with ``report.json``).

    Args:
        source: the ONNX file (external data beside it is read).
        prepare: the :class:`trtops.spec.PrepareSpec`, or None (the cast alone).
        out_dir: created if missing.
        cast: see :func:`run_steps`.
        keep: see :func:`run_steps`.
        base_report: the report of the preparation that made ``source`` (a cast of an
            already prepared model reports both).

    Returns:
        ``(prepared model path, report)``.
    """
    import onnx

    source = Path(source)
    try:
        model = onnx.load(str(source), load_external_data=True)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise InputError(f"{source}: cannot read it as an ONNX model ({type(exc).__name__}: {exc})") from None
    prepared, report = run_steps(model, prepare, str(source), cast=cast, keep=keep)
    if base_report is not None:
        report = PrepareReport(**{**base_report.to_json(), "nodes_after": report.nodes_after,
                                  "seconds": round(base_report.seconds + report.seconds, 3),
                                  **{k: v for k, v in report.to_json().items() if k.startswith("cast")}})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    save_model(prepared, path)
    (out_dir / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    return path, report


def read_report(model_path: Path) -> PrepareReport | None:
    """The ``report.json`` beside a prepared model, or None when missing or unreadable."""
    try:
        data = json.loads((model_path.parent / REPORT_FILE).read_text(encoding="utf-8"))
        return PrepareReport(**data)
    except (OSError, ValueError, TypeError):
        return None


# Bumped whenever trtops' own steps write a different model from the same inputs, so a
# fixed step re-prepares instead of reusing a model the old code wrote. It names the cached
# prepared model, not the engine key: engines built and accepted from an older preparation
# stay valid and are reused. 2: If branches folded with the model's IR version (2026-12-06).
PREPARE_REVISION = 2


def prepared_digest(model_digest: str, component: dict[str, Any]) -> str:
    """The prepared model's cache name: source digest, key component, ONNX Runtime version
    (when folding, since it computes the folded values), trtops' preparation revision."""
    from trtops.keys.canonical import sha256_json

    tools = dict(component.get("tools") or {})
    if component.get("steps", {}).get("fold_constants"):
        tools["onnxruntime"] = tool_version("onnxruntime")
    return sha256_json({"model": model_digest, "prepare": {**component, "tools": tools},
                        "revision": PREPARE_REVISION})


def prepared_dir(cache_root: str | os.PathLike[str], digest: str) -> Path:
    from trtops.cache.layout import PREPARED_DIR

    return Path(cache_root) / PREPARED_DIR / digest


def prepared_chain(model_digest: str, component: dict[str, Any] | None) -> list[str]:
    """The digests of the prepared models a build with this key ``prepare`` component uses,
    in the order they are made: the steps' model (also the gate's reference), then the cast
    one. Empty without a component. gc keeps exactly these for the entries it keeps."""
    if component is None:
        return []
    chain = []
    base = without_cast(component) if cast_of(component) else component
    if base is not None:
        chain.append(prepared_digest(model_digest, base))
    if cast_of(component):
        chain.append(prepared_digest(model_digest, component))
    return chain


@dataclass
class Prepared:
    """The models a build uses (:func:`ensure_prepared`).

    Attributes:
        model: what TensorRT parses (the cast model where a cast applies).
        reference: what the accuracy gate runs in ONNX Runtime: the prepared model without
            the cast, or the source itself when the cast is all the preparation does.
        report: what was done, or None when everything came from the cache.
        digests: the ``prepared/`` digests involved (to pin them while in use).
    """

    model: Path
    reference: Path
    report: PrepareReport | None
    digests: list[str]


def ensure_prepared(cache_root: str | os.PathLike[str], source: str | os.PathLike[str], model_digest: str,
                    prepare: Any, cast: str | None = None, keep: KeepLists = KeepLists()) -> Prepared:
    """The prepared model of ``source`` from the cache, made first when missing.

    Pin the digests (:func:`trtops.cache.pins.pinned` on :func:`prepared_chain`) before
    calling this and for as long as the files are used, so gc keeps them.

    Args:
        cache_root: the local cache directory.
        source: the source ONNX file.
        model_digest: its digest (the engine key's ``model_digest``).
        prepare: the :class:`trtops.spec.PrepareSpec`, or None.
        cast: the target's cast (:func:`trtops.capabilities.model_cast`), or None.
        keep: the build's keep_fp32 lists (:func:`trtops.prepare.options.keep_lists`, or
            :func:`~trtops.prepare.options.keep_of` the key's component): the cast leaves
            those nodes in float32. They count only with a cast, as in the key.

    Returns:
        A :class:`Prepared`.

    Raises:
        ValueError: nothing to prepare (no step and no cast).
    """
    component = prepare_component(prepare, cast, keep)
    if component is None:
        raise ValueError("ensure_prepared needs a preparation that does something")
    reference, report = _steps_model(cache_root, source, model_digest, prepare, component)
    model = reference
    if cast:
        steps_report = _steps_report(reference, report, component)

        def cast_it(work: Path) -> tuple[Path, PrepareReport]:
            return prepare_file(reference, None, work, cast=cast, keep=keep, base_report=steps_report)

        model, report = _ensure(cache_root, prepared_digest(model_digest, component), cast_it)
    return Prepared(model, reference, report, prepared_chain(model_digest, component))


def prepare_variant(cache_root: str | os.PathLike[str], source: str | os.PathLike[str], model_digest: str,
                    prepare: Any, cast: str | None, keep: KeepLists, edit: Callable[[Path, Path], Any],
                    out_dir: str | os.PathLike[str]) -> Prepared:
    """The models of :func:`ensure_prepared` with ``edit(model, out)`` applied to the steps'
    model before the cast: a one-off variant of one build's input, made in ``out_dir`` (not
    cached). The repair probe uses it to mark intermediate tensors as outputs: the steps'
    model comes from the cache and the cast is the same step with the same keep lists, so
    the variant is built as the engine is, differing only by the edit.

    Returns:
        A :class:`Prepared`: ``model`` is what TensorRT parses (the edited model cast, where
        ``cast`` says so), ``reference`` the edited model before the cast (the gate's).
    """
    out_dir = Path(out_dir)
    component = prepare_component(prepare, cast, keep)
    reference, report = Path(source), None
    if component is not None:
        reference, report = _steps_model(cache_root, source, model_digest, prepare, component)
    edited = out_dir / "reference" / MODEL_FILE
    edited.parent.mkdir(parents=True, exist_ok=True)
    edit(reference, edited)
    model = edited
    if cast:
        steps_report = _steps_report(reference, report, component)
        model, report = prepare_file(edited, None, out_dir / "cast", cast=cast, keep=keep, base_report=steps_report)
    return Prepared(model, edited, report, prepared_chain(model_digest, component)[:1] if component else [])


def _steps_model(cache_root: str | os.PathLike[str], source: str | os.PathLike[str], model_digest: str,
                 prepare: Any, component: dict[str, Any]) -> tuple[Path, PrepareReport | None]:
    """The model of the steps before the cast (from the cache, made when missing), or the
    source itself when the cast is all the preparation does."""
    base = without_cast(component) if cast_of(component) else component
    if base is None:
        return Path(source), None
    return _ensure(cache_root, prepared_digest(model_digest, base), lambda work: prepare_file(source, prepare, work))


def _steps_report(reference: Path, report: PrepareReport | None, component: dict[str, Any]) -> PrepareReport | None:
    """What the steps did, for the cast model's report (the whole preparation: the steps',
    then the cast), or None when no step ran."""
    base = without_cast(component)
    return (report or read_report(reference)) if base is not None else None


def _ensure(cache_root: str | os.PathLike[str], digest: str,
            make: Any) -> tuple[Path, PrepareReport | None]:
    """``prepared/<digest>/model.onnx``, made by ``make(work_dir)`` when missing (one rename)."""
    from trtops.cache.layout import TMP_DIR

    final = prepared_dir(cache_root, digest)
    if (final / MODEL_FILE).is_file():
        return final / MODEL_FILE, None
    tmp_root = Path(cache_root) / TMP_DIR
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prepare-", dir=tmp_root))
    try:
        path, report = make(work)
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


__all__ = ["MODEL_FILE", "REPORT_FILE", "PrepareReport", "Prepared", "PreparationFailed", "ensure_prepared",
           "prepare_file", "prepare_variant", "prepared_chain", "prepared_digest", "prepared_dir", "read_report", "run_steps"]
