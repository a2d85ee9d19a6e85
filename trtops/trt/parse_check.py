"""The parse preflight's child: parse one ONNX model with TensorRT the way the builder will,
in a process of its own, and write what the parser said to a JSON file.

    python -X faulthandler -m trtops.trt.parse_check MODEL --out FILE
        [--network-flags N] [--parser-flag NAME ...]

Run by :mod:`trtops.trt.parse_preflight` before an in-process build: a crash of TensorRT's
ONNX parser kills this process (the parent sees the signal, and faulthandler's report on
stderr) instead of ``trtops apply``. It creates only what the parse needs (a builder, for
the network; no config, no build), with the builder's network creation flags and parser
flags (:func:`set_parser_flags` is the builder's own). Exit 0 whenever the parse returned,
parsed or not; the JSON says which: ``{"parsed", "errors", "tensorrt", "seconds"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT

#: Set only by tests (tests/gpu/test_build_failures.py): ``abort`` or ``segv`` ends this
#: process that way right after importing tensorrt, a parser crash that needs no TensorRT bug;
#: ``segv:NAME`` only for models whose path contains NAME.
CRASH_HOOK_ENV = "TRTOPS_TEST_PARSE_CHECK_CRASH"


def set_parser_flags(trt: TensorRT, parser: tensorrt.OnnxParser, names: Sequence[str]) -> None:
    """Set the ``OnnxParserFlag`` members named (those this TensorRT lacks are skipped: the
    builder only names flags it found, :func:`parser_flag_names`)."""
    flags = getattr(trt, "OnnxParserFlag", None)
    for name in names:
        member = getattr(flags, name, None)
        if member is not None and hasattr(parser, "set_flag"):
            parser.set_flag(member)


def parser_flag_names(trt: TensorRT, *, portable: bool) -> tuple[str, ...]:
    """The parser flags a build sets. ``portable``: a version- or hardware-compatible
    engine, where the InstanceNormalization plugin (neither in the lean runtime nor
    hardware-portable) gives way to the native layer."""
    if portable and hasattr(getattr(trt, "OnnxParserFlag", None), "NATIVE_INSTANCENORM"):
        return ("NATIVE_INSTANCENORM",)
    return ()


def _crash_hook(model: str) -> None:
    how, _, only = os.environ.get(CRASH_HOOK_ENV, "").partition(":")
    if only and only not in model:
        return
    if how == "abort":
        os.abort()
    if how == "segv":
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def _error_text(error: Any) -> str:
    from trtops.trt.failure_causes import error_code_name

    desc = getattr(error, "desc", None)
    try:
        text = desc() if callable(desc) else str(error)
    except Exception:  # noqa: BLE001 - the parent's own parse reports the errors properly
        text = str(error)
    code = getattr(error, "code", None)
    try:
        name = error_code_name(code() if callable(code) else code)
    except Exception:  # noqa: BLE001
        name = "ERROR"
    return f"{name}: {text}"


def check(model: str, network_flags: int, parser_flags: Sequence[str]) -> dict:
    """Parse ``model``; returns the JSON this module writes."""
    from trtops.trt.trt_compat import import_tensorrt, version_text

    trt = import_tensorrt()
    _crash_hook(model)
    logger = trt.Logger(trt.Logger.WARNING)  # its messages go to stderr, beside a fault report
    start = time.monotonic()
    builder = trt.Builder(logger)
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")  # the parser looks plugins up, as in the build
    network = builder.create_network(network_flags)
    parser = trt.OnnxParser(network, logger)
    set_parser_flags(trt, parser, parser_flags)
    parsed = bool(parser.parse_from_file(model))
    count = int(getattr(parser, "num_errors", 0))
    errors = [_error_text(parser.get_error(i)) for i in range(count)]
    return {"parsed": parsed and count == 0, "errors": errors, "tensorrt": version_text(trt),
            "seconds": round(time.monotonic() - start, 3)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtops.trt.parse_check", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--out", required=True)
    parser.add_argument("--network-flags", type=int, default=0)
    parser.add_argument("--parser-flag", action="append", default=[])
    args = parser.parse_args(argv)
    result = check(args.model, args.network_flags, args.parser_flag)
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
