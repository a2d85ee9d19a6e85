"""tests/security: hostile manifests, data files, remote caches and cache entries.

tests/security (its toolchain double, security_doubles.py) and tests/remote (remote_helpers:
a moto S3 server, entries to publish) are put on sys.path. The S3 fixtures start a server of
their own, once per session, and skip cleanly without moto[server] and boto3."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "remote"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto S3 server with the test bucket."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    pytest.importorskip("werkzeug")
    from remote_helpers import BUCKET, make_server, s3_client, set_fake_credentials

    saved = dict(os.environ)
    set_fake_credentials()
    server = make_server()
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def s3_url(s3_endpoint):
    """A remote URL with a prefix of its own."""
    from remote_helpers import BUCKET

    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}?endpoint_url={s3_endpoint}"
