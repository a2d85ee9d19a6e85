"""tests/security: hostile manifests, data files, remote caches and cache entries.

tests/security (its toolchain double, security_doubles.py) and tests/remote (remote_helpers:
a moto S3 server, entries to publish) are put on sys.path. The S3 fixtures start a server of
their own, once per session, and skip cleanly without moto[server] and boto3."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "remote"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from s3_fixtures import moto_endpoint, moto_url, s3_endpoint, s3_url  # noqa: E402,F401 - fixtures
