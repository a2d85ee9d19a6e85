"""Fixtures for remote-cache tests: a real S3 server (SeaweedFS) on 127.0.0.1 at
free ports, started once per session and stopped at the end; one bucket; a fresh prefix per
test. Skipped cleanly when boto3 is not installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("boto3")

from remote_helpers import FlakyProxy


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
