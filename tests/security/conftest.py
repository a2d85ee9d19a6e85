"""tests/security: hostile manifests, data files, remote caches and cache entries.

tests/security (its toolchain double, security_doubles.py) and tests/remote (remote_helpers:
entries to publish, a fault-injecting proxy) are put on sys.path. The S3 fixtures (a SeaweedFS
server, once per session) come from tests/conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "remote"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

