"""The HTTP requests a real boto3 client sends, counted: botocore's ``before-send`` event
fires once per request actually sent (after signing, once per attempt, retries included),
and the transport's direct GETs (trtops.cache.s3_direct) report each of theirs, so nothing
is mocked and the server (SeaweedFS) answers every one. For tests that pin how
many requests an operation costs and for benchmarks/pull_bandwidth.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str  # GET, HEAD, PUT, ...
    name: str  # the object name under the store's prefix ('' for a bucket-level request)
    listing: bool  # a ListObjects(V2) page

    @property
    def file(self) -> str:
        """The last part of the object name (``meta.json`` of ``engines/ab/<key>/meta.json``)."""
        return self.name.rsplit("/", 1)[-1]


class RequestLog:
    """Records the requests ``store``'s client (an S3Transport's) sends while entered."""

    EVENT = "before-send.s3"

    def __init__(self, store: Any) -> None:
        self.client = store.client
        self.direct = getattr(store, "direct", None)  # its GETs bypass botocore's events
        self.bucket = store.bucket
        self.root = f"{store.prefix}/" if store.prefix else ""
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def _seen(self, request: Any, **_: Any) -> None:
        self._record(request.method, request.url)

    def _record(self, method: str, url: str) -> None:
        """One request (``url`` may be a path: direct GETs report theirs so)."""
        parts = urlsplit(url)
        path = unquote(parts.path).lstrip("/")
        # Path-style addressing (what trtops uses with an endpoint URL): /bucket/name.
        name = path[len(self.bucket) + 1:] if path.startswith(self.bucket) else path
        name = name[len(self.root):] if name.startswith(self.root) else name
        query = parse_qs(parts.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Request(method, name, "list-type" in query))

    def __enter__(self) -> RequestLog:
        self.client.meta.events.register(self.EVENT, self._seen)
        if self.direct is not None:
            self.direct.listeners.append(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister(self.EVENT, self._seen)
        if self.direct is not None:
            self.direct.listeners.remove(self._record)

    @property
    def listings(self) -> int:
        return sum(1 for r in self.requests if r.listing)

    def by_file(self, method: str = "GET") -> Counter:
        """How many ``method`` requests went to each entry file name (listings apart)."""
        return Counter(r.file for r in self.requests if r.method == method and not r.listing)

    def by_file_and_method(self) -> Counter:
        """Requests per entry file name, listings apart: ``meta.json`` for GETs, ``HEAD
        meta.json`` for other methods."""
        return Counter(r.file if r.method == "GET" else f"{r.method} {r.file}"
                       for r in self.requests if not r.listing)

    def methods(self) -> Counter:
        return Counter(r.method for r in self.requests)
