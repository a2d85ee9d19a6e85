"""A TCP proxy in front of the S3 server that 'stops the server' mid-transfer: once clients
sent a given number of bytes, it resets every open connection, and from then on resets
each new connection as soon as it is accepted, counting them: each one is a retry the
client made against a server that stays down."""

from __future__ import annotations

import socket
import threading

from remote_helpers import reset_socket as _reset


class DyingProxy:
    def __init__(self, upstream: tuple[str, int], die_after_upload_bytes: int) -> None:
        self.upstream = upstream
        self.budget = die_after_upload_bytes
        self.uploaded = 0
        self.down = threading.Event()
        self.attempts_while_down = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._running = True
        self.port = self._listener.getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DyingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._running = False
        self._kill_all()
        try:
            self._listener.close()
        except OSError:
            pass

    def _kill_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.down.is_set():
                with self._lock:
                    self.attempts_while_down += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, upload: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data or self.down.is_set():
                    break
                if upload:
                    with self._lock:
                        self.uploaded += len(data)
                        dying = self.uploaded >= self.budget
                    if dying:
                        self.down.set()
                        self._kill_all()
                        return
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(target)
            _reset(source)
            _reset(target)
