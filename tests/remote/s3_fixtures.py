"""The S3 fixtures shared by tests/remote, tests/reliability and tests/security: a real
S3-compatible server (moto) on 127.0.0.1 at a free port, started once per session and
stopped at the end, with one bucket; a fresh prefix per test. Each conftest imports them
(`from s3_fixtures import s3_endpoint, s3_url`); they skip cleanly without moto[server]
and boto3."""

from __future__ import annotations

import os
import uuid

import pytest


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
    """A remote URL with a prefix of its own (tests do not see each other's objects)."""
    from remote_helpers import BUCKET

    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}?endpoint_url={s3_endpoint}"
