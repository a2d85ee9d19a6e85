"""The engine-cache entries, refs and timing caches, written once over an object transport.

:class:`ObjectEntries` implements :class:`~trtops.cache.store.EntryStore` on any
:class:`~trtops.cache.transport.ObjectTransport` (``self.objects``) in the layout of
:mod:`trtops.cache.layout`. The backends add only what their medium needs:

- :class:`trtops.cache.local.LocalStore` (a :class:`~trtops.cache.dir_transport.DirTransport`):
  an entry appears by one directory rename, file locks, pull staging, the unsynced journal;
- :class:`trtops.cache.s3.S3Store` (it *is* an :class:`~trtops.cache.s3_transport.S3Transport`):
  parallel and multipart uploads, batch deletes, write leases as the entry lock.

The rules that hold on every backend live here:

- an entry is created once: writers of one key serialize on the entry lock, check again for
  ``meta.json``, remove files a crashed writer left without it, write the files, then
  ``meta.json`` last and create-only; of racing writers exactly one creates the entry and
  the others learn whether its engine has the same sha256;
- only ``accuracy.json`` and ``perf.json`` (:data:`layout.MUTABLE_FILES`) of an existing entry are replaced;
- a delete removes ``meta.json`` first, so a half-deleted entry is no entry;
- stored JSON (meta.json, refs) has one encoding, :func:`trtops.cache.entries.json_bytes`;
  anything that parses as JSON is read (refs written by older versions stay readable);
  damaged JSON is a :class:`~trtops.errors.CacheError` naming the file;
- fetched files are verified against a sha256 before they are renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trtops.cache.layout as layout
from trtops.cache.entries import file_digest, json_bytes, load_json
from trtops.cache.store import ACCURACY_FILE, META_FILE, PERF_FILE, PutResult
from trtops.cache.transport import ObjectTransport
from trtops.errors import CacheError, RemoteError
from trtops.names import ENGINE_FILE

log = logging.getLogger("trtops.cache")

Progress = Callable[[int], None]

_TIMING_SUFFIX = ".cache"
#: The sha256 (hex) of each timing cache is stored in ``<name>.cache.sha256`` beside it.
TIMING_DIGEST_SUFFIX = ".sha256"


class ObjectEntries:
    """Entries, refs and timing caches over ``self.objects`` (an ObjectTransport).

    Subclasses set :attr:`url` and :attr:`objects` and give :meth:`lock`; they may replace
    the hooks :meth:`_entry_lock`, :meth:`_create_entry`, :meth:`_upload_entry_files`,
    :meth:`_delete_entry_objects` and :meth:`_stored_sha256` where their medium does better.
    """

    url: str
    objects: ObjectTransport

    #: fetch_file accepts ``expected_sha256``, ``progress``, ``fsync`` and ``timings``
    #: (see :mod:`trtops.cache.transfer`).
    verified_fetch = True
    fetch_timings = True

    # ------------------------------------------------------------------ names

    @staticmethod
    def _entry_object(key: str, name: str) -> str:
        """``engines/<k[:2]>/<key>/<name>`` (key and file name validated)."""
        return f"{layout.entry_prefix(key)}/{layout.check_file_name(name)}"

    # ------------------------------------------------------------------ reading entries

    def has_entry(self, key: str) -> bool:
        """True when the entry is complete (its meta.json exists)."""
        return self.objects.size(self._entry_object(key, META_FILE)) is not None

    def read_meta(self, key: str) -> dict | None:
        """The entry's meta.json, or None when there is no complete entry.

        Raises:
            CacheError: when meta.json exists but is not a JSON object.
        """
        data = self.read_file(key, META_FILE)
        if data is None:
            return None
        meta = load_json(data, f"meta.json of entry {key}")
        if not isinstance(meta, dict):
            raise CacheError(f"meta.json of entry {key} is not an object",
                             hint="run `trtops cache verify --delete` to drop damaged entries")
        return meta

    def list_keys(self) -> Iterator[str]:
        """Keys of all complete entries, sorted (one listing of ``engines/``)."""
        for key, name in self._listed_entry_files():
            if name == META_FILE:
                yield key

    def list_entry_files(self) -> dict[str, frozenset[str]]:
        """Complete entries (sorted by key), each with the names of the files it had when
        listed: the same one listing of ``engines/`` as :meth:`list_keys`, which names
        every object anyway, so a pull need not ask for a file this shows absent."""
        found: dict[str, set[str]] = {}
        for key, name in self._listed_entry_files():
            found.setdefault(key, set()).add(name)
        return {key: frozenset(names) for key, names in sorted(found.items())
                if META_FILE in names}

    def _listed_entry_files(self) -> Iterator[tuple[str, str]]:
        """(key, file name) of every object at ``engines/<k[:2]>/<key>/<name>``."""
        for name in self.objects.list(f"{layout.ENGINES_DIR}/"):
            parts = name.split("/")
            if (len(parts) == 4 and layout.KEY_RE.match(parts[2])
                    and parts[1] == parts[2][:2]):
                yield parts[2], parts[3]

    def read_file(self, key: str, name: str) -> bytes | None:
        """One file of an entry, or None when absent. meta.json and accuracy.json are read
        up to :data:`~trtops.cache.entry_schema.MAX_METADATA_BYTES` (+1 byte, so that the
        parser refuses a larger one without it ever being held whole)."""
        if name in (META_FILE, ACCURACY_FILE, PERF_FILE):
            from trtops.cache.entry_schema import MAX_METADATA_BYTES

            return self.objects.get(self._entry_object(key, name), limit=MAX_METADATA_BYTES)
        return self.objects.get(self._entry_object(key, name))

    def fetch_file(self, key: str, name: str, dest: Path, *, expected_sha256: str | None = None,
                   progress: Progress | None = None, fsync: bool = True,
                   timings: dict[str, float] | None = None) -> bool:
        """Stream one file of an entry to ``dest`` atomically, verified; False when absent
        (``dest`` is left alone).

        Args:
            key: Engine key.
            name: File name inside the entry.
            dest: Destination path (written through a temporary file and a rename).
            expected_sha256: Digest to verify before the rename (S3 default: the object's
                recorded x-amz-meta-sha256).
            progress: Byte-count callback.
            fsync: Flush to disk before the rename.
            timings: Seconds per phase of the download are added to it.

        Returns:
            True when written, False when the entry has no such file.

        Raises:
            CacheError: a digest mismatch (nothing written) or a failed local write.
        """
        return self.objects.download_file(self._entry_object(key, name), Path(dest),
                                          expected_sha256=expected_sha256, progress=progress,
                                          fsync=fsync, timings=timings)

    # ------------------------------------------------------------------ creating entries

    def put_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                  progress: Progress | None = None, digests: Mapping[str, str] | None = None,
                  move: bool = False) -> PutResult:
        """Create an entry, create-only and atomically: meta.json is written last, and of
        concurrent writers (threads, processes, machines) exactly one creates it.

        Args:
            key: The engine key.
            files: File name -> path or bytes (``meta.json`` must not be among them).
            meta: Content of meta.json.
            progress: Byte-count callback for the files written.
            digests: Known sha256 of some files (already verified by the caller), so large
                files are not hashed twice.
            move: The caller gives up path sources (fsynced, on the store's filesystem): a
                local store renames them into the entry instead of copying them.

        Returns:
            ``created`` False when a complete entry with this key already existed (it is
            kept); ``identical`` then says whether its engine has the same sha256.

        Raises:
            ValueError: ``meta.json`` among ``files``, or a bad file name.
            CacheError: the write failed (nothing is visible).
        """
        layout.check_key(key)
        if META_FILE in files:
            raise ValueError("meta.json is written from `meta`, not passed in `files`")
        files = {layout.check_file_name(name): source for name, source in files.items()}
        known = dict(digests or {})
        existing = self._existing_meta(key)
        if existing is not None:
            return PutResult(created=False, identical=self._same_engine(key, existing, files, meta, known))
        with self._entry_lock(key) as lease:
            existing = self._existing_meta(key)
            if existing is not None:
                return PutResult(created=False,
                                 identical=self._same_engine(key, existing, files, meta, known))
            created = self._create_entry(key, files, meta, digests=known, progress=progress,
                                         move=move, lease=lease)
        if created:
            return PutResult(created=True, identical=True)
        existing = self._existing_meta(key)  # another writer's meta.json won the race
        return PutResult(created=False, identical=existing is not None
                         and self._same_engine(key, existing, files, meta, known))

    def _entry_lock(self, key: str) -> Any:
        """The lock writers of one key serialize on (a context manager; what it yields may
        say ``lost`` when the lock expired while held)."""
        return self.lock(f"entry-{key}")

    def _create_entry(self, key: str, files: Mapping[str, Path | bytes], meta: dict, *,
                      digests: dict[str, str], progress: Progress | None, move: bool,
                      lease: Any) -> bool:
        """Write a new entry while holding its lock (no complete entry exists): remove what
        a crashed writer left, write the files, then meta.json create-only.

        Returns:
            False when another writer's meta.json appeared meanwhile (ours was not written).
        """
        prefix = layout.entry_prefix(key) + "/"
        leftovers = list(self.objects.list(prefix))
        if leftovers:
            log.info("%s: removing %d file(s) of an interrupted write of %s", self.url,
                     len(leftovers), key[:12])
            self._delete_entry_objects(key, leftovers)
        self._upload_entry_files(key, files, digests, progress)
        if getattr(lease, "lost", False):
            raise RemoteError(
                f"lost the write lease of {key[:12]} on {self.url} during the upload",
                hint="the upload stalled longer than the lease lifetime; push again",
            )
        return self.objects.put_if_absent(self._entry_object(key, META_FILE), json_bytes(meta))

    def _upload_entry_files(self, key: str, files: Mapping[str, Path | bytes],
                            digests: dict[str, str], progress: Progress | None) -> None:
        """Write an entry's files (not meta.json), one object each. ``digests`` may be
        completed with the sha256 of what was written."""
        for name in sorted(files):
            source = files[name]
            data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) \
                else Path(source).read_bytes()
            self.objects.put(self._entry_object(key, name), data)
            digests.setdefault(name, hashlib.sha256(data).hexdigest())
            if progress:
                progress(len(data))

    def _existing_meta(self, key: str) -> dict | None:
        """meta.json of an existing entry; ``{}`` when it exists but cannot be parsed (an
        entry is there, and it is not a writer's job to repair it)."""
        try:
            return self.read_meta(key)
        except CacheError as exc:
            if isinstance(exc, RemoteError):
                raise
            return {}

    def _same_engine(self, key: str, existing: Mapping[str, Any],
                     files: Mapping[str, Path | bytes], meta: Mapping[str, Any],
                     digests: Mapping[str, str]) -> bool:
        """Whether the existing entry's engine has the sha256 of the one offered."""
        ours = digests.get(ENGINE_FILE) or meta.get("engine_sha256")
        if not ours and ENGINE_FILE in files:
            ours = file_digest(files[ENGINE_FILE])[0]
        if not ours:
            return False
        theirs = existing.get("engine_sha256") or self._stored_sha256(key, ENGINE_FILE)
        return theirs == ours

    def _stored_sha256(self, key: str, name: str) -> str | None:
        """sha256 of a stored entry file (read and hashed here; backends that record
        digests answer without reading)."""
        with tempfile.TemporaryDirectory(prefix="trtops-hash-") as tmp:
            target = Path(tmp) / name
            if not self.objects.download_file(self._entry_object(key, name), target, fsync=False):
                return None
            return file_digest(target)[0]

    # ------------------------------------------------------------------ changing entries

    def replace_file(self, key: str, name: str, data: bytes) -> None:
        """Atomically replace a mutable file (``accuracy.json``, ``perf.json``) of an existing entry.

        Raises:
            ValueError: for files that are immutable.
            CacheError: when the entry does not exist.
        """
        if name not in layout.MUTABLE_FILES:
            raise ValueError(f"{name} of an entry is immutable; only "
                             f"{', '.join(layout.MUTABLE_FILES)} may be replaced")
        if not self.has_entry(key):
            raise CacheError(f"no cache entry {key[:12]} in {self.url}",
                             hint="build it first (`trtops apply`) or push it")
        self.objects.put(self._entry_object(key, name), bytes(data))

    def delete_entry(self, key: str) -> None:
        """Remove an entry (meta.json first, so readers never see a half-deleted entry);
        a missing entry is ignored."""
        names = list(self.objects.list(layout.entry_prefix(key) + "/"))
        if names:
            self._delete_entry_objects(key, names)

    def _delete_entry_objects(self, key: str, names: list[str]) -> None:
        """Delete objects of one entry, its meta.json first."""
        meta = [n for n in names if n.endswith("/" + META_FILE)]
        for name in meta + [n for n in names if n not in meta]:
            self.objects.delete(name)

    # ------------------------------------------------------------------ refs

    def read_ref(self, ref: str) -> dict | None:
        """The record of a logical engine (``manifest/model/precision/target``), or None
        when there is none (or it is not a JSON object).

        Raises:
            CacheError: when the ref is not valid JSON.
        """
        data = self.objects.get(layout.ref_path(ref))
        if data is None:
            return None
        record = load_json(data, f"ref {ref} in {self.url}")
        return record if isinstance(record, dict) else None

    def write_ref(self, ref: str, data: dict) -> None:
        """Atomically write a ref record."""
        self.objects.put(layout.ref_path(ref), json_bytes(data))

    def list_ref_names(self) -> list[str]:
        """Names of all refs, sorted (stray and hidden files are not refs)."""
        prefix = f"{layout.REFS_DIR}/"
        refs = (layout.ref_from_path(name[len(prefix):]) for name in self.objects.list(prefix))
        return sorted(ref for ref in refs if ref)

    def list_refs(self) -> Iterator[tuple[str, dict]]:
        """All refs with their records, sorted by name (unreadable ones are skipped)."""
        for ref in self.list_ref_names():
            record = self._read_ref_or_none(ref)
            if record is not None:
                yield ref, record

    def _read_ref_or_none(self, ref: str) -> dict | None:
        try:
            return self.read_ref(ref)
        except CacheError as exc:
            if isinstance(exc, RemoteError):
                raise
            log.warning("%s: skipping ref %s: %s", self.url, ref, exc.message)
            return None

    # ------------------------------------------------------------------ timing caches

    def read_timing_cache(self, tensorrt: str, gpu_signature: str) -> bytes | None:
        """The serialized timing cache for a TensorRT version and GPU signature, or None.

        It is returned only when its sha256 is the one recorded beside it when it was
        written (``<name>.cache.sha256``): TensorRT deserializes these bytes, so one that
        was changed, truncated or written by something else is not handed to it (a warning;
        the build then runs without, and writes a sound one).
        """
        path = layout.timing_path(tensorrt, gpu_signature)
        data = self.objects.get(path)
        if data is None:
            return None
        recorded = self.objects.get(path + TIMING_DIGEST_SUFFIX, limit=128)
        actual = hashlib.sha256(data).hexdigest()
        if recorded is None or recorded.decode("ascii", "replace").strip() != actual:
            from trtops.redact import redact

            log.warning("%s: ignoring the timing cache %s: %s", redact(self.url), path,
                        "no sha256 was recorded for it" if recorded is None else
                        "its sha256 is not the one recorded when it was written")
            return None
        return data

    def write_timing_cache(self, tensorrt: str, gpu_signature: str, data: bytes) -> None:
        """Atomically replace a timing cache (callers merge under :meth:`lock`), then
        record its sha256 beside it (a reader between the two sees a mismatch and goes
        without, never the wrong bytes)."""
        path = layout.timing_path(tensorrt, gpu_signature)
        self.objects.put(path, bytes(data))
        self.objects.put(path + TIMING_DIGEST_SUFFIX,
                         hashlib.sha256(data).hexdigest().encode("ascii"))

    def list_timing_caches(self) -> list[tuple[str, str]]:
        """(tensorrt, gpu_signature) of every timing cache, sorted."""
        found = []
        for name in self.objects.list(f"{layout.TIMING_DIR}/"):
            parts = name.split("/")
            if len(parts) != 3 or not parts[2].endswith(_TIMING_SUFFIX):
                continue
            tensorrt, signature = parts[1], parts[2][: -len(_TIMING_SUFFIX)]
            with contextlib.suppress(Exception):  # stray files are not ours
                layout.timing_path(tensorrt, signature)
                found.append((tensorrt, signature))
        return sorted(found)

    # ------------------------------------------------------------------ locks

    def lock(self, name: str, timeout: float = 600.0) -> Any:  # pragma: no cover - abstract
        """A context manager holding an exclusive named lock across processes."""
        raise NotImplementedError


__all__ = ["ObjectEntries"]
