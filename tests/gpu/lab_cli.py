"""Run the real ``trtops`` CLI in a subprocess for the GPU lab tests, the way a CI job does:
this worktree's code, ``CI=true``, and none of the test-double or GitHub settings of the
shell that started pytest (a ``TRTOPS_TEST_TOOLCHAIN`` left over would replace TensorRT)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def trtops(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``trtops ARGS`` in ``root``; prints the command, its exit code and the tails of its
    output (pytest shows them when a test fails). The timeout only stops a hung run: the
    lab manifest's apply takes minutes, these tiny models seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_TEST", "GITHUB_"))}
    env["CI"] = "true"
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-m", "trtops", *args], cwd=root, env=env,
                            capture_output=True, text=True, timeout=timeout)
    print(f"$ trtops {' '.join(args)} -> {result.returncode}\n"
          f"{result.stdout[-3000:]}\n{result.stderr[-4000:]}")
    return result
