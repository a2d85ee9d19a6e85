"""The S3 server stops in the middle of a push: trtops retries (each retry is a new
connection, counted by the proxy), then fails cleanly: exit 1, a message that says the
remote cannot be reached, no traceback, no credentials;
the remote never shows a partial entry; once the server is back, the same push completes.

(A pull whose server goes away is in tests/remote/test_remote_sync.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

from netfaults import DyingProxy
from rel_helpers import base_env, run_trtops
from remote_helpers import BUCKET, add_entry

from trtops.cache.entries import check_entry
from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store

MiB = 1 << 20


def test_push_when_the_server_stops_mid_upload_retries_then_fails_cleanly(tmp_path: Path, s3_url: str,
                                                                         s3_endpoint: str) -> None:
    local = LocalStore(tmp_path / "cache")
    small = add_entry(local, "small", size=64 << 10)[0].key
    large = add_entry(local, "large", size=12 * MiB, seed=1)[0].key
    prefix = s3_url.split("?", 1)[0].split(f"{BUCKET}/", 1)[1]
    host, port = s3_endpoint.rsplit("//", 1)[1].split(":")
    proxy = DyingProxy((host, int(port)), die_after_upload_bytes=7 * MiB).start()
    options = (f"&max_attempts=3&stream_retries=1&connect_timeout=2&read_timeout=5&lease_ttl=2"
               f"&multipart_threshold={5 * MiB}&part_size={5 * MiB}&jobs=2")
    via_proxy = f"s3://{BUCKET}/{prefix}?endpoint_url={proxy.endpoint}{options}"
    env = base_env()
    try:
        started = time.monotonic()
        result = run_trtops(["push", "--remote", via_proxy, "--cache", str(local.root), "-j", "1"],
                            tmp_path, env, timeout=180)
        seconds = time.monotonic() - started
    finally:
        proxy.stop()
    text = result.stdout + result.stderr
    assert proxy.down.is_set(), "the server never went down: the upload was too small"
    assert result.returncode == 1, text
    assert "cannot reach the remote cache" in text and "failed to push" in text, text
    assert "Traceback" not in text and "internal error" not in text
    assert "testing-secret" not in text  # the fake secret key of remote_helpers
    assert proxy.attempts_while_down >= 2, proxy.attempts_while_down  # it did retry
    assert seconds < 90, seconds

    remote = open_s3_store(s3_url)
    listed = set(remote.list_keys())
    assert large not in listed  # no meta.json: an interrupted upload is no entry
    assert all(check_entry(remote, key) is None for key in listed)

    # The server is back: the same push completes (after the dead lease expired).
    again = run_trtops(["push", "--remote", s3_url + options, "--cache", str(local.root)], tmp_path, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(remote.list_keys()) == {small, large}
    assert all(check_entry(remote, key) is None for key in (small, large))
