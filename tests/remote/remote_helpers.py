"""Helpers for remote-cache tests: a moto S3 server that keeps S3's atomicity, a TCP proxy
that can cut connections mid-transfer and come back (a server restart, seen from the
client), and local entries to push.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUCKET = "trtops-test"
TRT = "10.13.3.9"
H100 = ("NVIDIA H100 80GB HBM3", "9.0")
L4 = ("NVIDIA L4", "8.9")


# --------------------------------------------------------------------------- S3 server


def make_server(host: str = "127.0.0.1", port: int = 0) -> Any:
    """A ThreadedMotoServer whose mutating requests are serialized.

    S3 evaluates a conditional write (If-None-Match / If-Match) and stores the object
    atomically; moto checks the condition, then stores, with other request threads
    running in between. Serializing PUT/POST/DELETE restores S3's guarantee (reads stay
    parallel), so race tests test trtops, not moto.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server as werkzeug_server

    write_lock = threading.Lock()

    class AtomicWrites:
        def __init__(self, app: Any) -> None:
            self.app = app

        def __call__(self, environ: dict, start_response: Any) -> Any:
            if environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
                with write_lock:
                    return list(self.app(environ, start_response))
            return self.app(environ, start_response)

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = AtomicWrites(DomainDispatcherApplication(create_backend_app))
            self._server = werkzeug_server(self._ip_address, self._port, app, True,
                                           request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address=host, port=port, verbose=False)


def set_fake_credentials(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Credentials and region for moto; real AWS config files are hidden."""
    env = os.environ if environ is None else environ
    values = {
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-do-not-print",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "TRTOPS_S3_ENDPOINT_URL", "TRTOPS_REMOTE"):
        env.pop(name, None)
    env.update(values)
    return values


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


# --------------------------------------------------------------------------- flaky proxy


def reset_socket(sock: socket.socket) -> None:
    """Close a connection the way a crashed server does: RST instead of FIN where possible."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        # shutdown wakes a pump thread blocked in recv() on this socket (close alone would
        # not, and the connection would stay open until a read timeout).
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FlakyProxy:
    """A TCP proxy in front of the S3 server that can 'restart' the server: after a given
    number of bytes sent to clients it resets every connection and stops listening, and
    optionally listens again (same port) after a delay, as a restarted server would."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._sent = 0
        self._cut_after: int | None = None
        self._restart_after: float | None = None
        self.cuts = 0
        self.cut_done = threading.Event()
        self._keep_listening = False
        self._hold_after: int | None = None
        self._release = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def arm(self, cut_after_bytes: int, restart_after: float | None, *,
            keep_listening: bool = False) -> None:
        """Cut once ``cut_after_bytes`` more bytes went to clients; come back after
        ``restart_after`` seconds (None: stay down). With ``keep_listening`` only the open
        connections are reset (counted in ``cuts``) and new ones are taken at once: no
        timing in the test."""
        with self._lock:
            self._sent = 0
            self._cut_after = cut_after_bytes
            self._restart_after = restart_after
            self._keep_listening = keep_listening
            self.cut_done.clear()

    def hold(self, after_bytes: int) -> threading.Event:
        """Stop sending to clients once ``after_bytes`` more bytes went to them, until the
        returned event is set: a server stalled mid-body, so a test can act while a body
        is surely unfinished (no timing in the test)."""
        release = threading.Event()
        with self._lock:
            self._sent = 0
            self._hold_after, self._release = after_bytes, release
        return release

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if downstream:
                    with self._lock:
                        self._sent += len(data)
                        trigger = self._cut_after is not None and self._sent >= self._cut_after
                        if trigger:
                            self._cut_after = None
                        held = self._hold_after is not None and self._sent >= self._hold_after
                        if held:
                            self._hold_after = None
                    if held:
                        self._release.wait()
                    if trigger:
                        if self._keep_listening:
                            self.drop_connections()
                            self.cuts += 1
                            self.cut_done.set()
                        else:
                            self.cut()
                        return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                self._close(s)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        reset_socket(sock)

    def cut(self) -> None:
        """Stop listening and reset every connection; restart later if armed so."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets = list(self._sockets)
            restart = self._restart_after
        for sock in sockets:
            self._close(sock)
        self.cuts += 1
        self.cut_done.set()
        if restart is not None:
            timer = threading.Timer(restart, self.start)
            timer.daemon = True
            timer.start()

    def drop_connections(self) -> None:
        """Reset every open connection and keep listening: what a server does to kept
        connections it closes while idle."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def stop(self) -> None:
        self._restart_after = None
        self.cut()


# --------------------------------------------------------------------------- entries


@dataclass
class FakeKey:
    """What publish_entry needs of a trtops.keys.engine_key.EngineKey."""

    key: str
    components: dict
    model: dict


def engine_key(seed: str, gpu: tuple[str, str] = H100, tensorrt: str = TRT,
               hardware_compatibility: str = "none", version_compatible: bool = False) -> FakeKey:
    from trtops.keys.engine_key import (
        gpu_signature,
        key_components,
        key_of,
        tensorrt_component,
    )

    build: dict[str, Any] = {"precision": "fp16"}
    if hardware_compatibility != "none":
        build["hardware_compatibility"] = hardware_compatibility
    if version_compatible:
        build["version_compatible"] = True
    components = key_components(
        model_digest=hashlib.sha256(seed.encode()).hexdigest(),
        build=build,
        tensorrt=tensorrt_component(tensorrt, version_compatible),
        gpu=gpu_signature(gpu[0], gpu[1], hardware_compatibility),
    )
    return FakeKey(key_of(components), components, {"onnx_sha256": "0" * 64})


def engine_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes (fast: repeats a random block)."""
    import random

    block = random.Random(seed).randbytes(1 << 16)
    return (block * (size // len(block) + 1))[:size]


def add_entry(local: Any, name: str, *, size: int = 1 << 16, state: str = "accepted",
              seed: int = 0, gpu: tuple[str, str] = H100, tensorrt: str = TRT,
              hardware_compatibility: str = "none", version_compatible: bool = False,
              spec_id: str | None = None, created_at: str | None = None,
              io: dict | None = None) -> tuple[FakeKey, bytes]:
    """Publish an entry into ``local`` the way apply does (returns its key and engine)."""
    from trtops.cache.entries import publish_entry

    key = engine_key(name, gpu, tensorrt, hardware_compatibility, version_compatible)
    engine = engine_bytes(size, seed)
    accuracy = None if state == "unverified" else {"state": state, "summary": f"{state} in test"}
    extra = {"io": io} if io else None
    gpu_info = {"name": gpu[0], "compute_capability": gpu[1]}
    publish_entry(local, key, spec_id or f"m/{name}/fp16/lab",
                  {"engine.plan": engine, "build.log": f"built {name}\n".encode()},
                  accuracy=accuracy, tensorrt_version=tensorrt, gpu=gpu_info, extra=extra,
                  **({"created_at": created_at} if created_at else {}))
    return key, engine


def files_under(path: Path) -> list[str]:
    """Every file below ``path`` (relative, sorted), including hidden temp files."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


__all__ = [
    "BUCKET",
    "H100",
    "L4",
    "TRT",
    "FakeKey",
    "FlakyProxy",
    "add_entry",
    "engine_bytes",
    "engine_key",
    "files_under",
    "json",
    "make_server",
    "s3_client",
    "set_fake_credentials",
    "sha256",
    "wait_until",
]


# --------------------------------------------------------------------------- process workers


def push_worker(local_root: str, remote_url: str, key: str, ready: Any, go: Any, results: Any) -> None:
    """Push one entry from another process (started with 'spawn'), after a common start."""
    try:
        from trtops.cache.local import LocalStore
        from trtops.cache.s3 import open_s3_store
        from trtops.cache.transfer import push_entry

        local, remote = LocalStore(local_root), open_s3_store(remote_url)
        _ = remote.client  # connect before the start signal: the race is about the writes
        ready.put(os.getpid())
        go.wait(60)
        result = push_entry(local, remote, key)
        results.put(("ok", result.created, result.identical))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        ready.put(-1)
        results.put(("error", repr(exc), None))
