"""Importing trtops stays light: no heavy runtime (TensorRT, CUDA, Polygraphy, ONNX Runtime,
S3 client, Ray, torch, onnx) is imported until a command needs it.

One test, one list, one fresh interpreter: every trtops module is imported and the CLI parser
is built (which imports the command modules), then nothing of HEAVY may have appeared.
"""

import pkgutil
import subprocess
import sys

import trtops

HEAVY = ("tensorrt", "polygraphy", "onnxruntime", "pycuda", "cuda", "boto3", "botocore", "ray", "torch", "onnx")

# Allowed to import a heavy package at import time, with the reason.
EXEMPT_PREFIXES = (
    "trtops.examples.",  # makes the example ONNX models: onnx is its job (python -m trtops.examples)
    "trtops.emit.runtime.",  # source parts of the standalone emitted loader, never imported by trtops
)


def light_modules() -> list[str]:
    """Every trtops module that must import without heavy packages."""
    names = sorted(info.name for info in pkgutil.walk_packages(trtops.__path__, "trtops."))
    return [
        name for name in names
        if not name.endswith(".__main__") and not name.startswith(EXEMPT_PREFIXES)
    ]


def test_importing_trtops_and_building_the_cli_imports_nothing_heavy():
    # Modules loaded at interpreter start (a .pth file such as cuda-bindings' redirector can
    # import 'cuda') are not trtops' doing: only what each import adds is blamed on it.
    code = (
        "import importlib, sys\n"
        f"heavy = {HEAVY!r}\n"
        "def added(before):\n"
        "    return [m for m in heavy if m in sys.modules and m not in before]\n"
        "blame = []\n"
        "for name in sys.argv[1:]:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    blame += [f'{name} imports {m}' for m in added(before)]\n"
        "import trtops.cli\n"
        "before = set(sys.modules)\n"
        "trtops.cli.build_parser()\n"
        "blame += [f'trtops.cli.build_parser() imports {m}' for m in added(before)]\n"
        "print('\\n'.join(blame))\n"
    )
    modules = light_modules()
    assert "trtops.cli" in modules and "trtops.trt.builder" in modules
    result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"heavy imports:\n{result.stdout}"
