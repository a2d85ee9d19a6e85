"""The S3 backend against a real S3-compatible server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest
from remote_helpers import (
    BUCKET,
    add_entry,
    engine_bytes,
    engine_key,
    s3_client,
    sha256,
)

from trtops.cache import open_store
from trtops.cache.s3 import S3Store, open_s3_store, parse_s3_url
from trtops.errors import CacheError, InputError, RemoteError

MiB = 1 << 20


def _meta(key: str, engine: bytes, **extra) -> dict:
    return {"key": key, "spec_id": "m/x/fp16/lab", "engine_sha256": sha256(engine),
            "engine_size": len(engine),
            "files": {"engine.plan": {"sha256": sha256(engine), "size": len(engine)}}, **extra}


# --------------------------------------------------------------------------- server & client


def test_server_honours_create_only_puts(s3_endpoint):
    """The property the backend is built on: If-None-Match: * makes a PUT create-only
    (boto3 >= 1.35 exposes IfNoneMatch on PutObject and CompleteMultipartUpload)."""
    from botocore.exceptions import ClientError

    client = s3_client(s3_endpoint)
    name = f"probe/{time.time_ns()}"
    client.put_object(Bucket=BUCKET, Key=name, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=BUCKET, Key=name, Body=b"second", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=BUCKET, Key=name)["Body"].read() == b"first"


def test_server_refuses_a_body_that_does_not_match_its_content_md5(s3_endpoint):
    """The property small-object PUTs (meta.json, refs) rely on: the body is checked against
    Content-MD5, so a PUT cut off mid-body is refused instead of stored short."""
    import base64
    import hashlib

    from botocore.exceptions import ClientError

    client = s3_client(s3_endpoint)
    name = f"probe/{time.time_ns()}"
    digest_of_other = base64.b64encode(hashlib.md5(b"the whole body").digest()).decode()
    with pytest.raises(ClientError):
        client.put_object(Bucket=BUCKET, Key=name, Body=b"the whole", ContentMD5=digest_of_other)
    with pytest.raises(ClientError):
        client.head_object(Bucket=BUCKET, Key=name)


def test_open_store_dispatches_s3_urls(s3_url):
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    assert store.url.startswith(f"s3://{BUCKET}/t-")
    assert "endpoint_url" not in store.url


def test_url_options_are_parsed_and_checked():
    location = parse_s3_url("s3://bucket/a/b/?endpoint_url=http://h:9000&max_attempts=2&jobs=3")
    assert (location.bucket, location.prefix) == ("bucket", "a/b")
    assert location.options == {"endpoint_url": "http://h:9000", "max_attempts": 2, "jobs": 3}
    with pytest.raises(InputError, match="unknown option 'secret'"):
        parse_s3_url("s3://bucket/p?secret=x")
    with pytest.raises(InputError, match="not an S3 URL"):
        parse_s3_url("http://bucket/p")
    with pytest.raises(InputError, match="credentials in the S3 URL"):
        parse_s3_url("s3://key:secret@bucket/p")


def test_endpoint_and_region_from_environment(monkeypatch):
    monkeypatch.setenv("TRTOPS_S3_ENDPOINT_URL", "http://127.0.0.1:1234/?x=1")
    store = open_s3_store("s3://bucket/p")
    assert store.endpoint_url == "http://127.0.0.1:1234/?x=1"
    assert store.endpoint == "http://127.0.0.1:1234/"  # never shows the query
    # Credentials in the endpoint are refused before any client sees (and quotes) them.
    monkeypatch.setenv("TRTOPS_S3_ENDPOINT_URL", "http://user:pw-secret@127.0.0.1:1234/")
    with pytest.raises(InputError) as refused:
        open_s3_store("s3://bucket/p")
    assert "pw-secret" not in refused.value.render()


# --------------------------------------------------------------------------- entries


def test_entry_roundtrip_with_verified_fetch(s3_store, tmp_path):
    key = engine_key("roundtrip").key
    engine = engine_bytes(3 * MiB, seed=1)
    result = s3_store.put_entry(key, {"engine.plan": engine, "build.log": b"log\n"},
                                _meta(key, engine))
    assert (result.created, result.identical) == (True, True)
    assert s3_store.has_entry(key)
    assert list(s3_store.list_keys()) == [key]
    assert s3_store.read_meta(key)["engine_sha256"] == sha256(engine)
    assert s3_store.read_file(key, "build.log") == b"log\n"
    assert s3_store.read_file(key, "accuracy.json") is None
    dest = tmp_path / "out" / "engine.plan"
    assert s3_store.fetch_file(key, "engine.plan", dest)
    assert dest.read_bytes() == engine
    assert s3_store.file_sha256(key, "engine.plan") == sha256(engine)
    assert not s3_store.fetch_file(key, "layers.json", tmp_path / "none")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["engine.plan"]


def test_layout_matches_a_local_cache(s3_store, s3_endpoint):
    """Objects sit where a local cache keeps its files (aws s3 sync works both ways)."""
    key = engine_key("layout").key
    s3_store.put_entry(key, {"engine.plan": b"plan"}, _meta(key, b"plan"))
    s3_store.write_ref("m/x/fp16/lab", {"key": key})
    s3_store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100", b"timing")
    listing = s3_client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=s3_store.prefix + "/")
    names = sorted(o["Key"][len(s3_store.prefix) + 1:] for o in listing["Contents"])
    assert names == [
        f"engines/{key[:2]}/{key}/engine.plan",
        f"engines/{key[:2]}/{key}/meta.json",
        "refs/m/x/fp16/lab.json",
        "timing/10.13.3.9/cc9.0-nvidia-h100.cache",
        "timing/10.13.3.9/cc9.0-nvidia-h100.cache.sha256",  # checked before TensorRT reads it
    ]


def test_second_put_is_refused_and_compared(s3_store):
    key = engine_key("twice").key
    assert s3_store.put_entry(key, {"engine.plan": b"A" * 10}, _meta(key, b"A" * 10)).created
    again = s3_store.put_entry(key, {"engine.plan": b"A" * 10}, _meta(key, b"A" * 10))
    assert (again.created, again.identical) == (False, True)
    other = s3_store.put_entry(key, {"engine.plan": b"B" * 10}, _meta(key, b"B" * 10))
    assert (other.created, other.identical) == (False, False)
    assert s3_store.read_file(key, "engine.plan") == b"A" * 10


def test_multipart_upload_and_parallel_ranged_download(s3_url, tmp_path, s3_endpoint):
    store = open_s3_store(s3_url + "&multipart_threshold=6291456&part_size=5242880&jobs=4")
    key = engine_key("multipart").key
    engine = engine_bytes(13 * MiB, seed=2)
    path = tmp_path / "engine.plan"
    path.write_bytes(engine)
    sent: list[int] = []
    assert store.put_entry(key, {"engine.plan": path}, _meta(key, engine), progress=sent.append).created
    assert sum(sent) == len(engine) and len(sent) == 3  # three parts
    head = s3_client(s3_endpoint).head_object(
        Bucket=BUCKET, Key=f"{store.prefix}/engines/{key[:2]}/{key}/engine.plan")
    assert head["ETag"].endswith('-3"')  # really multipart
    received: list[int] = []
    dest = tmp_path / "pulled" / "engine.plan"
    assert store.fetch_file(key, "engine.plan", dest, progress=received.append)
    assert sha256(dest.read_bytes()) == sha256(engine)
    assert sum(received) == len(engine)
    # A second multipart writer of the same key loses at CompleteMultipartUpload.
    other = tmp_path / "other.plan"
    other.write_bytes(engine_bytes(13 * MiB, seed=3))
    assert not store.upload_file(f"engines/{key[:2]}/{key}/engine.plan", other, create_only=True)
    uploads = s3_client(s3_endpoint).list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix)
    assert not uploads.get("Uploads")  # the loser aborted its upload


def test_streamed_download_reads_the_socket_directly_and_reuses_the_connection(
        s3_url, tmp_path, monkeypatch, caplog):
    """The download path reads botocore's body straight from the socket into one reused
    buffer (file_sink.BodyReader); the bytes, the digest check, and the connection going
    back to the pool after each body: sequential downloads open no new connections.
    (Without copier processes, which would take these bodies: tests/remote/test_remote_copiers.py.)"""
    import logging

    from trtops.cache import file_sink
    from trtops.cache.s3 import open_s3_store

    s3_store = open_s3_store(s3_url, copiers=0)

    monkeypatch.setattr(file_sink, "WRITEBACK_BYTES", MiB)
    direct = []
    original = file_sink.BodyReader.__init__

    def spy(self, body):
        original(self, body)
        direct.append(self.direct)

    monkeypatch.setattr(file_sink.BodyReader, "__init__", spy)
    key = engine_key("direct-read").key
    engine = engine_bytes(6 * MiB + 123, seed=5)
    assert s3_store.put_entry(key, {"engine.plan": engine}, _meta(key, engine)).created
    dest = tmp_path / "pulled" / "engine.plan"
    assert s3_store.fetch_file(key, "engine.plan", dest, expected_sha256=sha256(engine))
    assert dest.read_bytes() == engine
    assert direct == [True]  # the fast path, not the fallback through body.read
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        for index in range(3):
            again = tmp_path / f"again{index}" / "engine.plan"
            assert s3_store.fetch_file(key, "engine.plan", again, expected_sha256=sha256(engine))
            assert again.read_bytes() == engine
    assert not [r for r in caplog.records if "Starting new" in r.getMessage()]
    wrong = tmp_path / "wrong" / "engine.plan"
    with pytest.raises(CacheError, match="sha256 mismatch"):
        s3_store.fetch_file(key, "engine.plan", wrong, expected_sha256="0" * 64)
    assert not wrong.exists() and list(wrong.parent.iterdir()) == []


def test_racing_writers_of_different_engines_leave_one_consistent_entry(s3_store):
    key = engine_key("race-threads").key
    barrier = threading.Barrier(6)
    results = {}

    def writer(index: int) -> None:
        engine = bytes([index]) * (256 * 1024)
        barrier.wait()
        results[index] = s3_store.put_entry(key, {"engine.plan": engine, "build.log": b"%d" % index},
                                            _meta(key, engine))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [i for i, r in results.items() if r.created]
    assert len(created) == 1
    assert all(not r.identical for i, r in results.items() if i not in created)
    engine = s3_store.read_file(key, "engine.plan")
    assert s3_store.read_meta(key)["engine_sha256"] == sha256(engine) == sha256(bytes([created[0]]) * (256 * 1024))


def test_interrupted_write_is_replaced_and_waiting_writers_upload_nothing(s3_store):
    from trtops.cache.lease import hold_lock

    key = engine_key("orphan").key
    # A writer died after its engine and before meta.json (its lease expired since).
    s3_store.upload_file(f"engines/{key[:2]}/{key}/engine.plan", b"dead writer", create_only=True)
    s3_store.upload_file(f"engines/{key[:2]}/{key}/layers.json", b"[]", create_only=True)
    assert not s3_store.has_entry(key)
    assert s3_store.put_entry(key, {"engine.plan": b"new"}, _meta(key, b"new")).created
    assert s3_store.read_file(key, "engine.plan") == b"new"
    assert s3_store.read_file(key, "layers.json") is None  # leftovers of the dead writer

    # While a writer holds the key's lease, another one waits, then uploads nothing.
    other = engine_key("waiting").key
    sent: list[int] = []
    results: list = []
    with hold_lock(s3_store, f"entry-{other}", timeout=5):
        waiter = threading.Thread(target=lambda: results.append(
            s3_store.put_entry(other, {"engine.plan": b"mine"}, _meta(other, b"mine"),
                               progress=sent.append)))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()
        # What the holder does: files, then meta.json.
        s3_store.upload_file(f"engines/{other[:2]}/{other}/engine.plan", b"first", create_only=True)
        s3_store.create_object(f"engines/{other[:2]}/{other}/meta.json",
                               json.dumps(_meta(other, b"first")).encode())
    waiter.join(300)  # a hang guard: the waiter ends once meta.json exists
    assert [(r.created, r.identical) for r in results] == [(False, False)]
    assert sent == []
    assert s3_store.read_file(other, "engine.plan") == b"first"


def test_corrupt_remote_object_is_not_written(s3_store, s3_endpoint, tmp_path):
    key = engine_key("corrupt").key
    engine = b"good engine"
    s3_store.put_entry(key, {"engine.plan": engine}, _meta(key, engine))
    s3_client(s3_endpoint).put_object(Bucket=BUCKET, Body=b"evil engine!",
                                      Key=f"{s3_store.prefix}/engines/{key[:2]}/{key}/engine.plan")
    dest = tmp_path / "d" / "engine.plan"
    with pytest.raises(CacheError, match="sha256 mismatch"):
        s3_store.fetch_file(key, "engine.plan", dest, expected_sha256=sha256(engine))
    assert list(dest.parent.iterdir()) == []


def test_replace_accuracy_only(s3_store):
    key = engine_key("accuracy").key
    s3_store.put_entry(key, {"engine.plan": b"p", "accuracy.json": b'{"state": "unverified"}'},
                       _meta(key, b"p"))
    s3_store.replace_file(key, "accuracy.json", b'{"state": "accepted"}')
    assert json.loads(s3_store.read_file(key, "accuracy.json")) == {"state": "accepted"}
    with pytest.raises(ValueError):
        s3_store.replace_file(key, "engine.plan", b"x")
    with pytest.raises(CacheError):
        s3_store.replace_file(engine_key("none").key, "accuracy.json", b"{}")


def test_delete_entry(s3_store):
    key = engine_key("delete").key
    s3_store.put_entry(key, {"engine.plan": b"p", "build.log": b"l"}, _meta(key, b"p"))
    s3_store.delete_entry(key)
    assert not s3_store.has_entry(key)
    assert s3_store.read_file(key, "build.log") is None
    s3_store.delete_entry(key)  # missing: ignored


def test_refs_and_timing_caches(s3_store):
    assert s3_store.read_ref("m/a/fp16/lab") is None
    s3_store.write_ref("m/a/fp16/lab", {"key": "1"})
    s3_store.write_ref("m/b/fp16/lab", {"key": "2"})
    s3_store.write_ref("m/a/fp16/lab", {"key": "3"})
    assert dict(s3_store.list_refs()) == {"m/a/fp16/lab": {"key": "3"}, "m/b/fp16/lab": {"key": "2"}}
    assert s3_store.read_timing_cache("10.13.3.9", "ampere_plus") is None
    s3_store.write_timing_cache("10.13.3.9", "ampere_plus", b"\x00tc")
    assert s3_store.read_timing_cache("10.13.3.9", "ampere_plus") == b"\x00tc"


# --------------------------------------------------------------------------- errors


def test_unreachable_endpoint_is_a_clear_error_without_credentials(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = open_s3_store(f"s3://{BUCKET}/x?endpoint_url=http://127.0.0.1:{port}&max_attempts=2")
    # max_attempts=2: the client gives up after two refused connections (retrying forever
    # would hang here, which the suite's own timeout reports; no wall-clock bound)
    with pytest.raises(RemoteError) as info:
        store.has_entry(engine_key("x").key)
    text = info.value.render()
    assert f"cannot reach the remote cache s3://{BUCKET}/x (http://127.0.0.1:{port})" in text
    assert "hint:" in text and "endpoint" in text
    assert "testing-secret" not in text and "testing-key-id" not in text


def test_missing_bucket_is_a_clear_error(s3_endpoint):
    store = open_s3_store(f"s3://no-such-bucket-here/p?endpoint_url={s3_endpoint}")
    with pytest.raises(RemoteError, match="bucket 'no-such-bucket-here' does not exist") as info:
        list(store.list_keys())
    assert "aws s3 mb" in info.value.hint


def test_bad_credentials_are_reported_not_printed(s3_url, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = open_s3_store(s3_url)
    with pytest.raises(RemoteError, match="no usable AWS credentials") as info:
        store.has_entry(engine_key("x").key)
    assert "AWS_PROFILE" in info.value.hint


def test_local_entries_are_published_like_apply_does(local, s3_store):
    """publish_entry (what apply uses) works against the S3 store as well."""
    key, engine = add_entry(s3_store, "via-publish")
    assert s3_store.read_file(key.key, "engine.plan") == engine
    assert s3_store.read_ref("m/via-publish/fp16/lab")["key"] == key.key
