"""Run ``trtops`` (``trtops.cli.main``) with a SIGKILL armed inside the process.

A real ``kill -9`` at a chosen point of the command's I/O: an audit hook
(:func:`sys.addaudithook`) counts the file-system events under ``TRTOPS_KILL_SCOPE``
(a ``os.pathsep``-separated list of directories) and every HTTP request chunk sent, and
sends SIGKILL to its own process just before the ``TRTOPS_KILL_AT``-th one happens. With
``TRTOPS_KILL_AT`` unset or 0 nothing is killed, and the number of events of the whole run
is written to ``TRTOPS_KILL_COUNT`` (a file) at exit, so that a test can draw a kill point
uniformly over a real run.

Usage: ``python tests/reliability/faultrun.py <trtops arguments>``.
"""

from __future__ import annotations

import os
import signal
import sys

# Events that change or create something on disk (the path is their first argument), and
# the chunks an HTTP client sends (one or more per S3 request).
FILE_EVENTS = frozenset({
    "open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.link", "os.symlink",
    "os.truncate", "os.chmod", "shutil.rmtree", "shutil.copyfile", "tempfile.mkstemp",
    "tempfile.mkdtemp",
})
NET_EVENTS = frozenset({"http.client.send"})


def _writing(event: str, args: tuple) -> bool:
    if event != "open":
        return True
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool((flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


def install() -> None:
    scopes = tuple(os.path.abspath(p) + os.sep
                   for p in os.environ.get("TRTOPS_KILL_SCOPE", "").split(os.pathsep) if p)
    kill_at = int(os.environ.get("TRTOPS_KILL_AT", "0") or 0)
    count_file = os.environ.get("TRTOPS_KILL_COUNT")
    count = [0]
    pid = os.getpid()

    def hook(event: str, args: tuple) -> None:
        if event in NET_EVENTS:
            pass
        elif event in FILE_EVENTS and args and _writing(event, args):
            path = args[0]
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            if not isinstance(path, str) or not (os.path.abspath(path) + os.sep).startswith(scopes):
                return
        else:
            return
        count[0] += 1
        if count[0] == kill_at and os.getpid() == pid:
            os.kill(pid, signal.SIGKILL)

    sys.addaudithook(hook)
    if count_file and not kill_at:
        import atexit

        def write_count() -> None:
            with open(count_file, "w") as handle:
                handle.write(str(count[0]))

        atexit.register(write_count)


def main() -> int:
    install()
    from trtops.cli import main as trtops_main

    return trtops_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
