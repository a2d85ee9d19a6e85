"""Model digests: an ONNX file plus every external-data file it references (new weights
give a new key), and digests of data files (calibration data, plugin libraries)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trtops.errors import InputError
from trtops.keys.canonical import sha256_json
from trtops.keys.memo import DigestMemo, hash_files
from trtops.onnx_facts import external_data_locations


@dataclass(frozen=True)
class ModelDigest:
    """Digest of an ONNX model: its file plus every external-data file it references."""

    digest: str  # the engine-key component
    onnx_sha256: str
    external_data: tuple[tuple[str, str], ...] = ()  # (location, sha256), sorted
    size: int | None = None  # bytes of all files, when known

    @classmethod
    def of(
        cls, onnx_sha256: str, external_data: Iterable[tuple[str, str]] = (), size: int | None = None
    ) -> ModelDigest:
        """Build a digest from file digests (the definition of ``model_digest``).

        Args:
            onnx_sha256: sha256 of the ONNX file.
            external_data: (location as written in the model, sha256) pairs.
            size: Total bytes, informational.

        Returns:
            The digest.
        """
        pairs = tuple(sorted((str(loc), str(sha)) for loc, sha in external_data))
        digest = sha256_json({"onnx": onnx_sha256, "external_data": [list(p) for p in pairs]})
        return cls(digest=digest, onnx_sha256=onnx_sha256, external_data=pairs, size=size)

    def details(self) -> dict[str, Any]:
        """JSON-ready details kept in meta.json and refs (to explain what changed)."""
        return {
            "digest": self.digest,
            "onnx_sha256": self.onnx_sha256,
            "external_data": dict(self.external_data),
            "size": self.size,
        }

    @classmethod
    def from_details(cls, data: Mapping[str, Any]) -> ModelDigest:
        external = data.get("external_data") or {}
        pairs = tuple(sorted(external.items())) if isinstance(external, Mapping) else tuple(
            tuple(p) for p in external
        )
        return cls(
            digest=str(data["digest"]),
            onnx_sha256=str(data["onnx_sha256"]),
            external_data=pairs,  # type: ignore[arg-type]
            size=data.get("size"),
        )


def _resolve_location(model_path: str, location: str) -> str:
    # ONNX resolves locations against the model's directory (onnx.external_data_helper).
    return os.path.normpath(os.path.join(os.path.dirname(model_path), location))


def digest_models(
    paths: Iterable[str], memo: DigestMemo | None = None, workers: int | None = None
) -> dict[str, ModelDigest]:
    """Model digests of ONNX files (with their external data), memoized, hashed in parallel.

    Args:
        paths: Absolute paths of ONNX files.
        memo: Digest memo (updated, not saved).
        workers: Hashing threads.

    Returns:
        {path: ModelDigest}.

    Raises:
        InputError: a model or one of its external-data files is missing or unreadable,
            or a file is not an ONNX model. All missing files are named at once.
    """
    memo = memo if memo is not None else DigestMemo(None)
    models = [os.path.abspath(p) for p in dict.fromkeys(paths)]
    missing = [p for p in models if not os.path.isfile(p)]
    if missing:
        raise InputError(
            "model file(s) not found: " + ", ".join(missing),
            hint="check `source` in the manifest (paths are relative to the manifest file)",
        )
    onnx = hash_files(models, memo, workers)
    locations: dict[str, list[str]] = {}
    for path in models:
        entry = memo.entries.get(path)
        known = entry.get("external") if entry and entry.get("sha256") == onnx[path] else None
        if isinstance(known, list):
            locations[path] = known
        else:
            locations[path] = external_data_locations(path)
            memo.set_extra(path, "external", locations[path])
    external_paths = {
        (path, loc): _resolve_location(path, loc) for path in models for loc in locations[path]
    }
    absent = [f"{resolved} (referenced by {path})" for (path, _), resolved in external_paths.items()
              if not os.path.isfile(resolved)]
    if absent:
        raise InputError(
            "external-data file(s) not found: " + "; ".join(absent),
            hint="keep the files an ONNX model references next to it, as onnx.save_model "
            "wrote them",
        )
    external = hash_files(external_paths.values(), memo, workers)
    result: dict[str, ModelDigest] = {}
    for path in models:
        pairs = [(loc, external[external_paths[(path, loc)]]) for loc in locations[path]]
        size = sum(memo.entries.get(p, {}).get("size", 0) or 0
                   for p in [path] + [external_paths[(path, loc)] for loc in locations[path]])
        result[path] = ModelDigest.of(onnx[path], pairs, size or None)
    return result


def declared_model_digest(sha256: str) -> ModelDigest:
    """The model digest of a single-file model whose sha256 is declared (``url`` sources):
    equal to the digest of the downloaded file, so a plan needs no download."""
    return ModelDigest.of(sha256.lower(), ())


def data_digest(path: str, memo: DigestMemo | None = None, workers: int | None = None) -> str:
    """Digest of a data file, or of a directory's regular files (name and sha256 of each,
    not recursive; dot files ignored). Used for calibration data and plugin libraries.

    Args:
        path: Absolute path of a file or directory.
        memo: Digest memo.
        workers: Hashing threads.

    Returns:
        sha256 hex digest.

    Raises:
        InputError: when the path does not exist.
    """
    if os.path.isdir(path):
        names = sorted(
            entry.name for entry in os.scandir(path) if entry.is_file() and not entry.name.startswith(".")
        )
        digests = hash_files([os.path.join(path, name) for name in names], memo, workers)
        return sha256_json({"files": [[name, digests[os.path.join(path, name)]] for name in names]})
    if not os.path.isfile(path):
        raise InputError(f"data file {path} not found", hint="check the path in the manifest")
    return hash_files([path], memo, workers)[path]
