"""The CLI must stay light: no TensorRT (or other heavy runtime) at import time."""

import subprocess
import sys

HEAVY = ("tensorrt", "polygraphy", "onnxruntime", "pycuda", "cuda", "boto3", "torch", "onnx")


def test_import_cli_imports_no_heavy_runtime():
    # Modules already loaded at interpreter start (a .pth file such as cuda-bindings'
    # redirector can import 'cuda') are not trtops' doing.
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import trtops.cli\n"
        "trtops.cli.build_parser()\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules and m not in before]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"heavy modules imported by the CLI: {result.stdout.strip()}"
