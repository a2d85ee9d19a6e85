"""Why a TensorRT build failed, from what TensorRT said: a pure function over the recorded
log and parser messages (no tensorrt import), so every class is tested on the CPU with
messages recorded from TensorRT 8.6 and 10 and the lab provokes the real ones.

A failure gets one cause, each with the hint that helps for it (a larger workspace helps
an out-of-memory tactic, never two dynamic dims that share a name):

=================  =========================================================================
cause              what TensorRT says (8.6 / 10)
=================  =========================================================================
shapes             "Input dimensions with this name are inconsistent" (two dynamic dims that
                   share a name get different sizes), "IIfConditionalOutputLayer inputs must
                   have the same shape", broadcast / concat / reshape / profile mismatches
unsupported_node   parser codes UNSUPPORTED_NODE*, "No importer registered for op", "Plugin
                   not found", "does not support dynamic axes"
out_of_memory      "OutOfMemory", "Requested amount of GPU memory ... could not be
                   allocated", tactics skipped for "insufficient memory" / workspace
no_implementation  "Could not find any implementation for node X" with no memory shortage
timing_cache       errors that name the timing cache
internal           anything else (assertions inside TensorRT)
parser_crash       nothing: the ONNX parser killed its process (a signal such as SIGSEGV in
                   ``OnnxParser.parse``; seen on silero-vad's opset-18 export with 8.6.0),
                   told by the parse preflight's child process (:mod:`.parse_preflight`)
parser_hang        nothing: the parser did not finish within the preflight's time limit
=================  =========================================================================

The last two are known from how the preflight's child process ended, not from a message:
:func:`parser_crash` gives their diagnosis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trtops.onnx_facts import Dim
from trtops.spec import InputRange

CAUSES = {
    "shapes": "inconsistent or invalid shapes",
    "unsupported_node": "a node TensorRT cannot import",
    "out_of_memory": "out of GPU memory",
    "no_implementation": "no implementation for a layer",
    "timing_cache": "timing cache problem",
    "internal": "TensorRT internal error",
    "parser_crash": "TensorRT's ONNX parser crashed",
    "parser_hang": "TensorRT's ONNX parser hung",
}

_PARSER_CRASH_HINT = (
    "this is a bug in TensorRT's ONNX parser on this model, nothing in the manifest causes it: give the "
    "parser another graph through the model preparation (prepare: {} folds constants; prepare: {opset: 17} "
    "converts the opset), try another TensorRT version, or report it to NVIDIA with the model; "
    "faulthandler's report of the crash is in the failure's details (the build log). TRTOPS_PARSE_PREFLIGHT=0 skips this check (and a crash "
    "then takes trtops down)")


@dataclass(frozen=True)
class FailureContext:
    """What trtops knows about the build, to name inputs, dims, opsets and sizes.

    Attributes:
        inputs: the ONNX graph's inputs with their dims (names of dynamic dims kept).
        opsets: the model's opset imports (domain -> version; "" is ONNX).
        profiles: the optimization profiles asked for.
        workspace: the workspace limit in bytes, if one was set.
        precision: the precision built.
    """

    inputs: Mapping[str, tuple[Dim, ...] | None] = field(default_factory=dict)
    opsets: Mapping[str, int] = field(default_factory=dict)
    profiles: Sequence[Sequence[InputRange]] = ()
    workspace: int | None = None
    precision: str = "fp32"


@dataclass(frozen=True)
class Diagnosis:
    """One failure's cause (a key of :data:`CAUSES`), what it is about, and what helps."""

    cause: str
    detail: str
    hint: str

    @property
    def title(self) -> str:
        return CAUSES[self.cause]


def error_code_name(code: Any) -> str:
    """The name of a parser ``ErrorCode`` (``UNSUPPORTED_NODE``). TensorRT's bindings
    expose ``name`` as a method on some versions (8.6) and as a property on others."""
    if code is None:
        return "ERROR"
    name = getattr(code, "name", None)
    if callable(name):
        try:
            name = name()
        except Exception:  # noqa: BLE001 - a binding quirk must not hide the error itself
            name = None
    if isinstance(name, str) and name:
        return name
    match = re.search(r"([A-Z][A-Z0-9_]*[A-Z0-9])(?::\s*\d+)?>?\s*$", str(code))
    return match.group(1) if match else str(code) or "ERROR"


# --------------------------------------------------------------------------- patterns

_NAMED_DIMS = re.compile(
    r"(?:\((?P<name>[^()]*?):\s*)?Input dimensions with this name are inconsistent"
    # TensorRT 8.6.0 on an H100 (recorded in the GPU lab): the profile check at build time.
    r"|Dimensions with name (?P<dim_name>\S+?) must be equal"
    r"|named dimensions .*same name", re.I)
_IF_SHAPES = re.compile(r"IIfConditionalOutputLayer inputs must have the same shape", re.I)
_SHAPES = re.compile(
    r"broadcast dimensions must be conformable|must have the same dimensions|dimensions mismatched"
    r"|does not match network definition|dynamic input is missing dimensions|Shape Error"
    r"|mismatched (?:input )?shapes|incompatible dimensions|reshape dimensions|volume mismatch"
    r"|IShuffleLayer.*(?:dimensions|reshape)|shape tensor must|out of bounds.*dim|invalid (?:shape|dimensions)",
    re.I)
_UNSUPPORTED = re.compile(
    r"No importer registered for op|Plugin not found|does not support dynamic axes|UNSUPPORTED_NODE"
    r"|is not supported|unsupported (?:ONNX )?(?:op|operator|data ?type|datatype|attribute)", re.I)
_NO_IMPL = re.compile(r"Could not find any implementation for node (?P<layer>.+?)(?:\.\)|\)|\.?$)", re.I)
_OOM_HARD = re.compile(
    r"OutOfMemory|out of memory|cudaErrorMemoryAllocation|CUDA_ERROR_OUT_OF_MEMORY"
    r"|Requested amount of GPU memory|insufficient workspace|insufficient memory", re.I)
_GPU_REQUEST = re.compile(r"Requested amount of GPU memory \((?P<bytes>\d+) bytes\)", re.I)
_TIMING = re.compile(r"timing ?cache", re.I)


def diagnose(errors: Sequence[str], *, warnings: Sequence[str] = (), parser_problems: Sequence[Any] = (),
             context: FailureContext | None = None) -> Diagnosis:
    """The cause of a failed parse or build.

    Args:
        errors: TensorRT's error messages (and trtops' own, e.g. an exception's text).
        warnings: TensorRT's warnings (where it says a tactic was skipped for memory).
        parser_problems: :class:`~trtops.trt.network_checks.ParserProblem` s of a failed
            parse (code name, description, node).
        context: what trtops knows about the model and the build.

    Returns:
        A :class:`Diagnosis`.
    """
    ctx = context or FailureContext()
    texts = [p.description for p in parser_problems] + [str(e) for e in errors]
    joined = "\n".join(texts)
    if _NAMED_DIMS.search(joined):
        return _named_dims(joined, ctx)
    if _IF_SHAPES.search(joined):
        return Diagnosis(
            "shapes", _first_line(texts, _IF_SHAPES),
            "an If node's branches give outputs of different shapes, which TensorRT cannot build; if its "
            "condition depends only on an input that is constant where you deploy (a sample rate, a flag), "
            "bind that input to a constant in the model preparation (prepare: constants:) so the If is "
            "inlined; otherwise re-export the model without the data-dependent branch")
    if parser_problems:
        # The parser stopped: a node it cannot import, unless what it says is about shapes.
        unsupported = [p for p in parser_problems
                       if p.code.startswith("UNSUPPORTED") or _UNSUPPORTED.search(p.description)]
        if not unsupported and _SHAPES.search(joined):
            return _shapes(texts, ctx)
        return _unsupported(unsupported or list(parser_problems), joined, ctx)
    all_text = joined + "\n" + "\n".join(warnings)
    impl = _NO_IMPL.search(joined)
    if _OOM_HARD.search(joined) or (impl and _OOM_HARD.search(all_text)):
        return _out_of_memory(all_text, impl.group("layer") if impl else None, ctx)
    if impl:
        layer = impl.group("layer").strip()
        return Diagnosis(
            "no_implementation", f"no {ctx.precision} implementation for layer {layer!r}",
            f"TensorRT has no kernel for this layer in {ctx.precision} on this GPU: try another precision for "
            f"this model (fp32 is the most widely implemented), "
            + (f"a larger workspace (now {_size(ctx.workspace)}), " if ctx.workspace else "")
            + "or another TensorRT version; `TRTOPS_TRT_LOG=verbose trtops apply` shows the tactics tried")
    if _SHAPES.search(joined):
        return _shapes(texts, ctx)
    if _TIMING.search(joined):
        return Diagnosis(
            "timing_cache", _first_line(texts, _TIMING),
            "the shared timing cache for this TensorRT and GPU may be damaged or from another build: set "
            "timing_cache: off for this model to confirm, then delete the file under <cache>/timing/")
    return Diagnosis(
        "internal", (texts[-1].strip() if texts else "TensorRT gave no error message"),
        "TensorRT failed inside its builder: try builder_optimization_level: 0, another precision, or another "
        "TensorRT version; if it persists, report it to NVIDIA with the build log (build.log)")


def parser_crash(how: str, *, timeout: float | None = None) -> Diagnosis:
    """The diagnosis of a parse that ended its process: ``how`` it ended (``SIGSEGV``,
    ``signal 77``), or ``timeout`` seconds without an answer (a hang)."""
    if timeout is not None:
        return Diagnosis(
            "parser_hang", f"parsing did not finish within {timeout:.0f} s and was stopped",
            _PARSER_CRASH_HINT.replace("faulthandler's report of the crash", "where it was stuck (faulthandler)"))
    return Diagnosis("parser_crash", f"the parse preflight's process was killed by {how} while parsing; the "
                     "engine was not built",
                     _PARSER_CRASH_HINT)


# --------------------------------------------------------------------------- causes


def _named_dims(text: str, ctx: FailureContext) -> Diagnosis:
    match = _NAMED_DIMS.search(text)
    named = ((match.group("name") or match.group("dim_name") or "").strip()) if match else ""
    shared = _shared_dim_names(ctx.inputs)
    if named in shared:
        shared = {named: shared[named]}
    if shared:
        parts = []
        for name, axes in shared.items():
            where = ", ".join(f"{inp}[{axis}]" for inp, axis in axes)
            sizes = _profile_sizes(axes, ctx.profiles)
            parts.append(f"dims {where} share the name {name!r}" + (f" but the profiles give {sizes}" if sizes else ""))
        detail = "; ".join(parts)
    else:
        detail = "dynamic dims " + (f"named {named!r} " if named else "") + "share a name but get different sizes"
    return Diagnosis(
        "shapes", detail,
        "TensorRT treats dims with one name as one dimension: give each dynamic dim its own name in the "
        "model (e.g. 'H' and 'W' instead of '?'; the model preparation stage renames colliding names), "
        "or give those axes the same min/opt/max in every profile. A larger workspace or another precision "
        "does not help")


def _shapes(texts: Sequence[str], ctx: FailureContext) -> Diagnosis:
    return Diagnosis(
        "shapes", _first_line(texts, _SHAPES) + _inputs_note(ctx),
        "the model's shape arithmetic does not hold for some shape in the profiles: check min/opt/max "
        "in 'profiles:' against what the model accepts (fixed axes, multiples of 32, equal H and W...); "
        "`trtops validate` checks what it can before a build")


def _shared_dim_names(inputs: Mapping[str, tuple[Dim, ...] | None]) -> dict[str, list[tuple[str, int]]]:
    seen: dict[str, list[tuple[str, int]]] = {}
    for name, dims in inputs.items():
        for axis, dim in enumerate(dims or ()):
            if isinstance(dim, str):
                seen.setdefault(dim, []).append((name, axis))
    return {dim: axes for dim, axes in seen.items() if len(axes) > 1}


def _profile_sizes(axes: Sequence[tuple[str, int]], profiles: Sequence[Sequence[InputRange]]) -> str:
    for index, profile in enumerate(profiles):
        ranges = {r.name: r for r in profile}
        sizes = []
        for inp, axis in axes:
            r = ranges.get(inp)
            if r is None or axis >= len(r.min):
                return ""
            sizes.append((inp, axis, r.min[axis], r.opt[axis], r.max[axis]))
        if len({s[2:] for s in sizes}) > 1:
            return f"different sizes in profile {index} (" + ", ".join(
                f"{inp}[{axis}] {lo}/{mid}/{hi}" for inp, axis, lo, mid, hi in sizes) + ")"
    return ""


def _unsupported(problems: Sequence[Any], text: str, ctx: FailureContext) -> Diagnosis:
    lines = []
    for p in problems:
        name = p.node_name or (f"#{p.node_index}" if p.node_index >= 0 else None)
        op = p.op_type or "?"
        domain = getattr(p, "domain", "") or ""
        opset = ctx.opsets.get(domain)
        where = f"node {name!r} " if name else ""
        lines.append(f"{where}(op {op}" + (f", opset {opset}" if opset is not None else "") + f"): {p.description}")
    detail = "; ".join(lines) if lines else _first_line([text], _UNSUPPORTED)
    if re.search(r"dynamic axes", text, re.I):
        hint = ("the op's axes (or other attribute-like inputs) are computed in the graph, not constants: fold "
                "constants first (the model preparation stage, or `polygraphy surgeon sanitize --fold-constants`), "
                "or re-export with static axes")
    else:
        hint = ("check the op against TensorRT's ONNX operator support for this version: fold constants (the model "
                "preparation stage, or `polygraphy surgeon sanitize --fold-constants`), re-export with another "
                "opset, or provide a TensorRT plugin for a custom op")
    return Diagnosis("unsupported_node", detail, hint)


def _out_of_memory(text: str, layer: str | None, ctx: FailureContext) -> Diagnosis:
    request = _GPU_REQUEST.search(text)
    where = f" while timing layer {layer.strip()!r}" if layer else ""
    if request:
        wanted = int(request.group("bytes"))
        detail = f"TensorRT asked for {_size(wanted)} of GPU memory and could not get it{where}"
        hint = ("the GPU has less free memory than the build asked for: lower 'workspace' "
                + (f"(now {_size(ctx.workspace)}) " if ctx.workspace else "(unset: TensorRT may take all free memory) ")
                + "or free the GPU (other processes, parallel builds with --gpus)")
    else:
        detail = f"TensorRT ran out of memory{where}"
        hint = ("tactics were skipped for lack of workspace: raise 'workspace' "
                + (f"(now {_size(ctx.workspace)}) " if ctx.workspace else "")
                + "if the GPU has room, or build on a GPU with more free memory")
    return Diagnosis("out_of_memory", detail, hint)


def _first_line(texts: Sequence[str], pattern: re.Pattern[str]) -> str:
    for text in texts:
        for line in str(text).splitlines():
            if pattern.search(line):
                return line.strip()
    return (texts[0].strip() if texts else "")


def _inputs_note(ctx: FailureContext) -> str:
    dynamic = {n: d for n, d in ctx.inputs.items() if d is None or any(not isinstance(x, int) for x in d)}
    if not dynamic:
        return ""
    shown = ", ".join(f"{n} [{', '.join('?' if x is None else str(x) for x in (d or ()))}]" for n, d in dynamic.items())
    return f" (dynamic inputs: {shown})"


def _size(size: int | None) -> str:
    from trtops.names import format_bytes

    return format_bytes(size)
