"""The S3 remote's URLs: ``s3://bucket/prefix?options`` parsed and checked, endpoint URLs
checked before any client sees them (a client library quotes a URL it rejects, with the
credentials in it), and endpoints shown without user info or query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from trtops.errors import InputError
from trtops.names import switch

# Options of the remote URL (``?name=value``) and their types: S3Transport's arguments.
_OPTIONS = {
    "endpoint_url": str,
    "region": str,
    "profile": str,
    "max_attempts": int,
    "connect_timeout": float,
    "read_timeout": float,
    "jobs": int,
    "addressing_style": str,
    "stream_retries": int,
    "multipart_threshold": int,
    "part_size": int,
    "lock_timeout": float,
    "lease_ttl": float,
    "direct_gets": "flag",
    "copiers": int,
}

def _redact_url(url: str) -> str:
    """An endpoint URL without user info or query (either could carry secrets)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number
    except ValueError:
        return "<invalid URL>"
    netloc = parts.hostname or ""
    if port:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_endpoint_url(url: str) -> str:
    """``url`` when it is a usable endpoint (http(s)://host[:port][/path], no user info).

    Raises:
        InputError: naming what is wrong, never quoting the URL's credentials.
    """
    from trtops.redact import redact

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise InputError(f"the S3 endpoint URL {redact(url)!r} is not valid ({redact(exc)})",
                         hint="write it like http://host:9000 or https://s3.example.com") from None
    if parts.username is not None or parts.password is not None:
        raise InputError(f"credentials in the S3 endpoint URL ({_redact_url(url)}) are not "
                         "supported (they were not printed)",
                         hint="use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"the S3 endpoint URL {redact(url)!r} is not an http(s) URL",
                         hint="write it like http://host:9000 or https://s3.example.com")
    return url


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix?options`` URL."""

    bucket: str
    prefix: str  # no leading or trailing '/'
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_s3_url(url: str) -> S3Location:
    """Parse ``s3://bucket[/prefix][?endpoint_url=...&region=...]``.

    Args:
        url: The remote URL as the user wrote it.

    Returns:
        The bucket, the prefix (normalized) and typed options.

    Raises:
        InputError: when the URL is not an s3:// URL or names an unknown option.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InputError(f"{url!r} is not an S3 URL", hint="write s3://bucket/prefix")
    if "@" in parts.netloc:
        raise InputError("credentials in the S3 URL are not supported",
                         hint="use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
    bucket = parts.netloc
    prefix = parts.path.strip("/")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise InputError(f"invalid prefix {prefix!r} in {url!r}",
                         hint="use a prefix like s3://bucket/team/engines")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        kind = _OPTIONS.get(name)
        if kind is None:
            raise InputError(f"unknown option {name!r} in the S3 URL",
                             hint=f"known options: {', '.join(sorted(_OPTIONS))}")
        if kind == "flag":
            flag = switch(value)
            if flag is None:
                raise InputError(f"option {name}={value!r} in the S3 URL is not a flag",
                                 hint=f"write {name}=0 or {name}=1")
            options[name] = flag
            continue
        try:
            options[name] = kind(value)
        except ValueError:
            raise InputError(f"option {name}={value!r} in the S3 URL is not a {kind.__name__}",
                             hint=f"write e.g. {name}=4") from None
    return S3Location(bucket=bucket, prefix=prefix, options=options)
