"""The store contract (tests/unit/cache/contract.py) for the S3 backend."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "cache"))

from contract import StoreContract
from transport_contract import TransportContract

from trtops.cache.s3 import open_s3_store


class TestS3StoreContract(StoreContract):
    @pytest.fixture
    def store(self, s3_store):
        return s3_store

    @pytest.fixture
    def opener(self, s3_url):
        # store.url has no endpoint (it is never shown); reopen from the full URL.
        return functools.partial(open_s3_store, s3_url)

    def make_partial_entry(self, store, key):
        store.upload_file(f"engines/{key[:2]}/{key}/engine.plan", b"half-copied engine",
                          create_only=False)


class TestS3TransportContract(TransportContract):
    @pytest.fixture
    def transport(self, s3_store):
        return s3_store  # an S3Store is its S3Transport plus the entries
