"""Fixtures for remote-cache tests: a real S3-compatible server (moto) on 127.0.0.1 at a
free port, started once per session and stopped at the end; one bucket; a fresh prefix per
test. Skipped cleanly when moto[server] or boto3 is not installed.
"""

from __future__ import annotations

import os
import uuid

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")
pytest.importorskip("werkzeug")

from remote_helpers import BUCKET, FlakyProxy, make_server, s3_client, set_fake_credentials


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto S3 server with the test bucket."""
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
    """A remote URL with a prefix of its own (tests do not see each other's objects)."""
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}?endpoint_url={s3_endpoint}"


@pytest.fixture
def s3_store(s3_url):
    from trtops.cache.s3 import open_s3_store

    return open_s3_store(s3_url)


@pytest.fixture
def store(s3_store):
    """The store the contract suite tests."""
    return s3_store


@pytest.fixture
def proxy(s3_endpoint):
    """A FlakyProxy in front of the server (cut connections, restart)."""
    host, port = s3_endpoint.rsplit("//", 1)[1].split(":")
    flaky = FlakyProxy((host, int(port)))
    flaky.start()
    try:
        yield flaky
    finally:
        flaky.stop()


@pytest.fixture
def local(tmp_path):
    from trtops.cache.local import LocalStore

    return LocalStore(tmp_path / "cache")
