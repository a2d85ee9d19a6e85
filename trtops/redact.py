"""The one redaction of secrets before text reaches output: user info in URLs
(``http://ak:SECRET@host``), credentials in query strings (presigned-URL signatures,
tokens), and the values of the AWS secret variables of this process wherever they appear.

Used wherever a remote URL or a client library's message can reach the user: every error
the CLI prints (``trtops.cli``), every log line (``trtops.console``), tracebacks with
``-v``, and the remote stores' own messages (:mod:`trtops.cache.s3_transport`).
"""

from __future__ import annotations

import os
import re

MASK = "***"

# scheme://user[:password]@  -> scheme://***@   (also inside longer text)
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#'\"`]*@")
# query parameters that carry credentials in presigned or tokenized URLs
_QUERY_SECRET_RE = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|"
    r"awsaccesskeyid|access_token|token|secret|password|sig)=)[^&\s'\"`]*")
# variables whose values are secrets (names only; values are read when redacting)
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_MIN_SECRET = 6  # shorter values would mask ordinary words


def redact(text: object) -> str:
    """``text`` (any object, as str) with every secret it may carry replaced by ``***``."""
    out = _USERINFO_RE.sub(lambda m: f"{m.group(1)}{MASK}@", str(text))
    out = _QUERY_SECRET_RE.sub(lambda m: f"{m.group(1)}{MASK}", out)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name) or ""
        if len(value) >= _MIN_SECRET and value in out:
            out = out.replace(value, MASK)
    return out


__all__ = ["MASK", "SECRET_VARIABLES", "redact"]
