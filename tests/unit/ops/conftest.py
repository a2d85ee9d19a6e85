"""Fixtures of the `trtops pull` pipeline tests (test_pull_pipeline.py, test_pull_downloads.py)."""

from __future__ import annotations

import pytest
from pull_helpers import Recording

from trtops.cache.local import LocalStore


@pytest.fixture
def remote(tmp_path) -> Recording:
    """A directory store as the remote, recording its requests (pull_helpers.Recording)."""
    return Recording(LocalStore(tmp_path / "remote"))
