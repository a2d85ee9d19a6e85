"""Direct GETs against the real S3 server (SeaweedFS, over http and https): a pull's reads
leave botocore's pipeline once its listing showed where they go, read the same bytes,
and fall back to botocore, once and then for good, where the server wants something else
(issue 18: botocore's CPU per request, not the server, bounded a pull's small reads)."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter

import pytest
from remote_helpers import BUCKET, add_entry, s3_client
from test_remote_pull_requests import ENTRIES, HERE, seed_remote

from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store
from trtops.cache.s3_direct import FALLBACK, DirectGets, _Target
from trtops.ops.pull import pull


class BotocoreRequests:
    """What botocore itself sends (its before-send event), by operation."""

    def __init__(self, store) -> None:
        self.store = store
        self.operations: Counter = Counter()
        self._lock = threading.Lock()

    def _seen(self, request, event_name: str, **_) -> None:
        with self._lock:
            self.operations[event_name.rsplit(".", 1)[-1]] += 1

    def __enter__(self) -> BotocoreRequests:
        self.store.client.meta.events.register("before-send.s3", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        self.store.client.meta.events.unregister("before-send.s3", self._seen)


class DirectRequests(list):
    def __init__(self, store) -> None:
        super().__init__()
        self.direct = store.direct

    def __enter__(self) -> DirectRequests:
        self.direct.listeners.append(self._seen)
        return self

    def _seen(self, method: str, path: str) -> None:
        self.append((method, path))

    def __exit__(self, *exc) -> None:
        self.direct.listeners.remove(self._seen)


def test_a_pull_sends_its_listing_through_botocore_and_every_read_directly(
        tmp_path, local, s3_store):
    keys = seed_remote(local, s3_store)
    node = LocalStore(tmp_path / "node")
    with BotocoreRequests(s3_store) as botocore_sent, DirectRequests(s3_store) as direct_sent:
        result = pull(s3_store, node, HERE, progress=False)
    assert sorted(o.key for o in result.fetched) == sorted(keys)
    assert botocore_sent.operations == Counter({"ListObjectsV2": 1})
    assert len(direct_sent) >= 3 * ENTRIES and s3_store.direct.enabled
    for key in keys:
        assert node.read_file(key, "engine.plan") == local.read_file(key, "engine.plan")


def test_without_direct_gets_every_request_goes_through_botocore(tmp_path, local, s3_url):
    remote = open_s3_store(s3_url + "&direct_gets=0")
    assert remote.direct is None
    keys = seed_remote(local, remote)
    with BotocoreRequests(remote) as botocore_sent:
        result = pull(remote, LocalStore(tmp_path / "node"), HERE, progress=False)
    assert len(result.fetched) == len(keys)
    assert botocore_sent.operations["GetObject"] >= 3 * ENTRIES


ODD_NAMES = ["a b+c=d&e.json", "ü~x/plus+.json", "percent%20.json", "semi;colon,comma.json"]


def test_odd_names_under_an_odd_prefix_read_the_same_bytes(s3_endpoint):
    store = open_s3_store(f"s3://{BUCKET}/odd pre+fix/ü~x?endpoint_url={s3_endpoint}")
    for index, name in enumerate(ODD_NAMES):
        store.put(name, f"content {index}".encode())
    list(store.list(""))  # direct GETs start after a listing
    with BotocoreRequests(store) as botocore_sent, DirectRequests(store) as direct_sent:
        for index, name in enumerate(ODD_NAMES):
            assert store.get(name) == f"content {index}".encode()
        assert store.get("absent.json") is None
    assert botocore_sent.operations == Counter()
    assert len(direct_sent) == len(ODD_NAMES) + 1


def test_a_refused_direct_get_is_made_by_botocore_and_direct_gets_stop(s3_store):
    from botocore.credentials import Credentials

    s3_store.put("one.json", b"1")
    s3_store.put("two.json", b"2")
    list(s3_store.list(""))
    s3_store.direct.credentials = Credentials("testing-key-id", "not-the-secret")  # 403
    with BotocoreRequests(s3_store) as botocore_sent:
        assert s3_store.get("one.json") == b"1"
        assert not s3_store.direct.enabled
        assert s3_store.get("two.json") == b"2"
    assert botocore_sent.operations == Counter({"GetObject": 2})


def test_a_missing_bucket_is_left_to_botocore(s3_store, s3_endpoint):
    list(s3_store.list(""))
    target = s3_store.direct.target
    elsewhere = _Target(target.scheme, target.netloc, target.host, "/no-such-bucket-here/",
                        target.region, target.service)
    direct = DirectGets(elsewhere, s3_store.direct.credentials, connect_timeout=5,
                        read_timeout=5)
    assert direct.open("anything.json") is FALLBACK  # botocore says NoSuchBucket properly


def test_a_kept_connection_the_server_dropped_is_replaced(local, s3_endpoint, proxy):
    store = open_s3_store(f"s3://{BUCKET}/kept?endpoint_url={proxy.endpoint}")
    store.put("a.json", b"a")
    store.put("b.json", b"b")
    list(store.list(""))
    assert store.get("a.json") == b"a"  # this thread's connection is kept
    proxy.drop_connections()
    with BotocoreRequests(store) as botocore_sent:
        assert store.get("b.json") == b"b"
    assert botocore_sent.operations == Counter() and store.direct.enabled


def test_a_body_cut_midway_is_resumed(tmp_path, local, s3_endpoint, proxy):
    store = open_s3_store(f"s3://{BUCKET}/cut?endpoint_url={proxy.endpoint}")
    key, _ = add_entry(local, "cut", size=3 << 20)
    from trtops.cache.transfer import push_entry

    assert push_entry(local, store, key.key).created
    list(store.list(""))
    proxy.arm(1 << 20, restart_after=None, keep_listening=True)
    dest = tmp_path / "engine.plan"
    assert store.download_file(f"engines/{key.key[:2]}/{key.key}/engine.plan", dest)
    assert proxy.cuts == 1
    assert dest.read_bytes() == local.read_file(key.key, "engine.plan")


@pytest.fixture(scope="module")
def tls_endpoint(tmp_path_factory):
    """SeaweedFS serving S3 over https with a self-signed certificate for 127.0.0.1:
    (https endpoint, CA file)."""
    import os

    from remote_helpers import set_fake_credentials
    from seaweed import SeaweedServer

    directory = tmp_path_factory.mktemp("seaweedfs-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
    if made.returncode:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-200:]!r}")
    saved = dict(os.environ)
    set_fake_credentials()
    server = SeaweedServer(directory / "server", tls=(cert, key), credentials=(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    server.start()
    s3_client(server.endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield server.https_endpoint, cert
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_over_https_direct_gets_verify_with_botocores_ca_bundle(tmp_path, local, tls_endpoint,
                                                               monkeypatch):
    endpoint, cert = tls_endpoint
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    remote = open_s3_store(f"s3://{BUCKET}/tls?endpoint_url={endpoint}")
    keys = seed_remote(local, remote)
    with BotocoreRequests(remote) as botocore_sent, DirectRequests(remote) as direct_sent:
        result = pull(remote, LocalStore(tmp_path / "node"), HERE, progress=False)
    assert len(result.fetched) == len(keys)
    assert remote.direct.target.scheme == "https" and remote.direct.enabled
    assert botocore_sent.operations == Counter({"ListObjectsV2": 1})
    assert len(direct_sent) >= 3 * ENTRIES


def test_over_https_large_bodies_stay_in_this_process(tmp_path, tls_endpoint, monkeypatch):
    import hashlib
    import os

    endpoint, cert = tls_endpoint
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    store = open_s3_store(f"s3://{BUCKET}/tlsbig?endpoint_url={endpoint}")
    data = os.urandom(6 << 20)  # a copier's size over http (trtops/cache/copier.py)
    store.put("big.bin", data)
    list(store.list(""))
    with DirectRequests(store) as direct_sent:
        assert store.download_file("big.bin", tmp_path / "big.bin",
                                   expected_sha256=hashlib.sha256(data).hexdigest())
    assert (tmp_path / "big.bin").read_bytes() == data
    assert len(direct_sent) == 1 and store.copiers.bodies == 0  # a TLS session stays here


def test_a_large_object_is_fetched_as_direct_ranged_gets(tmp_path, s3_endpoint):
    import hashlib
    import os

    store = open_s3_store(f"s3://{BUCKET}/ranged?endpoint_url={s3_endpoint}"
                          "&multipart_threshold=6291456&part_size=5242880&jobs=4")
    data = os.urandom(17 << 20)  # 4 parts
    store.put("big.bin", data)
    list(store.list(""))
    dest = tmp_path / "big.bin"
    with BotocoreRequests(store) as botocore_sent, DirectRequests(store) as direct_sent:
        assert store.download_file("big.bin", dest,
                                   expected_sha256=hashlib.sha256(data).hexdigest())
    assert dest.read_bytes() == data
    assert botocore_sent.operations == Counter()
    assert len(direct_sent) == 1 + 4  # the first GET (its headers: size, ETag), then parts
