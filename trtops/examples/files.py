"""Small file helpers for the example generator: atomic, skip-if-unchanged writes and a
byte-stable ``.npz`` writer.

``numpy.savez`` stamps the current time into every zip member, so two runs give two
different files; :func:`npz_bytes` fixes the timestamps so that the same arrays always
give the same bytes (and the same cache key for calibration data).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest date a zip header can hold


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks.

    Args:
        path: the file.

    Returns:
        64 lowercase hex digits.
    """
    # One streaming hasher for the whole package (trtops.keys.memo); it also gives the size.
    from trtops.keys.memo import sha256_file as _stream_sha256

    return _stream_sha256(path)[0]


def same_content(path: Path, data: bytes) -> bool:
    """True when ``path`` is a file holding exactly ``data`` (size first: cheap)."""
    try:
        if not path.is_file() or path.stat().st_size != len(data):
            return False
    except OSError:
        return False
    return sha256_file(path) == hashlib.sha256(data).hexdigest()


def write_if_changed(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless the file already holds it.

    The bytes go to a unique temporary file in the same directory, are flushed to disk and
    renamed over ``path``, so readers never see a half-written model.

    Args:
        path: destination file; parent directories are created.
        data: the full content.

    Returns:
        True when the file was (re)written, False when it was already up to date.
    """
    target = Path(path)
    if same_content(target, data):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        # "xb": a fresh file that honours the umask (mkstemp would make it 0600).
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    return True


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize arrays as an uncompressed ``.npz`` whose bytes depend only on the arrays.

    ``numpy.load`` reads the result like any ``numpy.savez`` file; pickled objects are
    refused when writing.

    Args:
        arrays: name -> array, written in this order.

    Returns:
        The ``.npz`` file content.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever the host: same bytes everywhere
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()
