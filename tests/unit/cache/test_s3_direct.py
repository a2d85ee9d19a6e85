"""Direct GETs (trtops.cache.s3_direct) sign as botocore signs, go where botocore's listing
went, and stay off where botocore would do something they do not (a proxy, another
signature). Requests against a real server: tests/remote/test_remote_direct_gets.py."""

from __future__ import annotations

import datetime

import pytest

pytest.importorskip("botocore")

from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from trtops.cache.s3_direct import DirectGets, _proxied, _Target, _target_of_listing  # noqa: E402
from trtops.cache.s3_urls import parse_s3_url  # noqa: E402
from trtops.errors import InputError  # noqa: E402

NOW = datetime.datetime(2026, 12, 6, 13, 0, 0, tzinfo=datetime.timezone.utc)
SIGV4 = "AWS4-HMAC-SHA256 Credential=AKID/20261206/{region}/s3/aws4_request, " \
        "SignedHeaders=host;x-amz-date, Signature=abc"


def botocore_signature(target: _Target, path: str, credentials: Credentials) -> str:
    """The Authorization header botocore's S3 SigV4 signer makes for the same GET."""
    stamp = NOW.strftime("%Y%m%dT%H%M%SZ")
    direct = DirectGets(target, credentials, connect_timeout=1, read_timeout=1)
    headers = direct.headers(target, path, now=NOW)
    request = AWSRequest(method="GET", url=f"{target.scheme}://{target.netloc}{path}",
                         headers={k: v for k, v in headers.items() if k != "Authorization"})
    request.context["timestamp"] = stamp
    auth = S3SigV4Auth(credentials, target.service, target.region)
    canonical = auth.canonical_request(request)
    to_sign = auth.string_to_sign(request, canonical)
    return (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{stamp[:8]}/"
            f"{target.region}/{target.service}/aws4_request, "
            f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}, "
            f"Signature={auth.signature(to_sign, request)}")


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize("key", ["engines/ab/abcdef/meta.json",
                                 "odd pre+fix/ü~x/a b+c=d&e.json"])
def test_the_signature_is_botocores(key, token):
    target = _Target("http", "127.0.0.1:9000", "127.0.0.1:9000", "/bucket/", "eu-west-1", "s3")
    credentials = Credentials("AKID", "secret/key+", token)
    direct = DirectGets(target, credentials, connect_timeout=1, read_timeout=1)
    path = direct.path_of(target, key)
    assert path.isascii() and " " not in path
    assert direct.headers(target, path, now=NOW)["Authorization"] == \
        botocore_signature(target, path, credentials)
    if token:
        assert direct.headers(target, path, now=NOW)["x-amz-security-token"] == token


def test_the_target_is_the_listings():
    path_style = _target_of_listing(
        "http://127.0.0.1:9000/bucket?list-type=2&prefix=p%2Fengines%2F",
        SIGV4.format(region="us-east-1"))
    assert vars(path_style) == {"scheme": "http", "netloc": "127.0.0.1:9000",
                                "host": "127.0.0.1:9000", "base_path": "/bucket/",
                                "region": "us-east-1", "service": "s3"}
    virtual = _target_of_listing("https://bucket.s3.eu-west-1.amazonaws.com:443/?list-type=2",
                                 SIGV4.format(region="eu-west-1"))
    assert (virtual.host, virtual.base_path, virtual.region) == \
        ("bucket.s3.eu-west-1.amazonaws.com", "/", "eu-west-1")
    behind_a_path = _target_of_listing("https://gw.example.com/s3/bucket?list-type=2",
                                       SIGV4.format(region="r1"))
    assert behind_a_path.base_path == "/s3/bucket/"


@pytest.mark.parametrize("authorization", [
    "AWS AKID:signature",  # SigV2
    "AWS4-ECDSA-P256-SHA256 Credential=AKID/20261206/s3/aws4_request, Signature=x",  # SigV4a
    "",
])
def test_a_listing_not_signed_with_sigv4_turns_direct_gets_off(authorization):
    assert _target_of_listing("http://127.0.0.1:9000/bucket?list-type=2", authorization) is None


def test_a_proxy_in_the_environment_is_honoured(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not _proxied("https://s3.example.com/bucket?list-type=2")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    assert _proxied("https://s3.example.com/bucket?list-type=2")
    monkeypatch.setenv("NO_PROXY", "s3.example.com")
    assert not _proxied("https://s3.example.com/bucket?list-type=2")


@pytest.mark.parametrize(("value", "expected"), [("0", False), ("false", False),
                                                  ("off", False), ("1", True), ("yes", True)])
def test_direct_gets_is_a_url_option(value, expected):
    assert parse_s3_url(f"s3://b/p?direct_gets={value}").options == {"direct_gets": expected}


def test_a_direct_gets_value_that_is_no_flag_is_refused():
    with pytest.raises(InputError, match="direct_gets='maybe' in the S3 URL is not a flag"):
        parse_s3_url("s3://b/p?direct_gets=maybe")
