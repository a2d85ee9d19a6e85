"""INT8 calibration (TensorRT 8.6 / 10.x): data from the manifest, batching, calibrators.

Data is an ``.npz`` file with one array per input, or a directory of ``<input>.npy`` files;
the first axis of every array is the sample axis. Files are read with
``allow_pickle=False``: a pickled array is refused, never executed.

The calibrator classes subclass TensorRT's ``IInt8EntropyCalibrator2`` /
``IInt8MinMaxCalibrator``; they are defined inside :func:`make_calibrator` so that importing
this module never imports tensorrt.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from trtops.trt.api import TensorRT

ALGORITHMS = ("entropy", "minmax")


class CalibrationDataError(ValueError):
    """Calibration data that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class NetworkInput:
    """A network input as the calibrator needs it: name, shape (-1 dynamic), numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def _file_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise CalibrationDataError(f"calibration data {path} does not exist")
    arrays: dict[str, np.ndarray] = {}
    try:
        if path.is_dir():
            files = sorted(path.glob("*.npy"))
            if not files:
                raise CalibrationDataError(f"calibration data directory {path} has no .npy files")
            for file in files:
                arrays[file.stem] = np.load(file, mmap_mode="r", allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    arrays[key] = npz[key]
        elif path.suffix == ".npy":
            raise CalibrationDataError(
                f"calibration data {path} is a single .npy file; use an .npz file with one array per "
                "input, or a directory of <input>.npy files"
            )
        else:
            raise CalibrationDataError(f"calibration data {path} is neither an .npz file nor a directory of .npy files")
    except CalibrationDataError:
        raise
    except ValueError as exc:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False" for pickles.
        raise CalibrationDataError(f"cannot read calibration data {path}: {exc} (pickled arrays are refused)") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise CalibrationDataError(f"cannot read calibration data {path}: {exc}") from exc
    return arrays


@dataclass
class CalibrationBatches:
    """Calibration data cut into batches of one fixed shape per input."""

    arrays: dict[str, np.ndarray]
    batch_size: int
    num_batches: int
    dtypes: dict[str, str]

    @property
    def names(self) -> list[str]:
        return list(self.arrays)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of ``name`` in every batch (batch_size first)."""
        return (self.batch_size,) + tuple(self.arrays[name].shape[1:])

    def batch(self, index: int) -> dict[str, np.ndarray]:
        """Batch ``index`` as contiguous arrays of the network's dtypes."""
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        lo, hi = index * self.batch_size, (index + 1) * self.batch_size
        return {
            name: np.ascontiguousarray(array[lo:hi], dtype=self.dtypes[name])
            for name, array in self.arrays.items()
        }

    def nbytes(self, name: str) -> int:
        return int(np.prod(self.shape(name))) * np.dtype(self.dtypes[name]).itemsize


def load_calibration_data(
    path: str | Path,
    inputs: Sequence[NetworkInput],
    batch_size: int,
    max_batches: int | None = None,
) -> CalibrationBatches:
    """Read calibration data for ``inputs`` and cut it into batches.

    A fixed batch dimension in the network wins over ``batch_size``; with a dynamic one,
    ``batch_size`` is used (or the sample count, when there are fewer samples).

    Args:
        path: ``.npz`` file or directory of ``.npy`` files.
        inputs: the network's inputs.
        batch_size: samples per batch (manifest ``calibration.batch_size``).
        max_batches: use at most this many batches.

    Returns:
        :class:`CalibrationBatches`.

    Raises:
        CalibrationDataError: missing inputs, wrong ranks or shapes, too few samples,
            inconsistent sample counts, unreadable or pickled files.
    """
    path = Path(path)
    raw = _read_arrays(path)
    by_key = {_file_key(k): v for k, v in raw.items()}
    arrays: dict[str, np.ndarray] = {}
    for spec in inputs:
        array = raw.get(spec.name)
        if array is None:
            array = by_key.get(_file_key(spec.name))
        if array is None:
            raise CalibrationDataError(
                f"calibration data {path} has no array for input {spec.name!r} "
                f"(found: {', '.join(sorted(raw)) or 'nothing'})"
            )
        if array.dtype.kind not in "biuf":
            raise CalibrationDataError(f"calibration array {spec.name!r} has unsupported dtype {array.dtype}")
        if array.ndim != len(spec.shape):
            raise CalibrationDataError(
                f"calibration array {spec.name!r} has shape {tuple(array.shape)} (rank {array.ndim}); the input "
                f"has rank {len(spec.shape)} {spec.shape}: the first axis must be the sample axis"
            )
        for axis in range(1, len(spec.shape)):
            want = spec.shape[axis]
            if want >= 0 and array.shape[axis] != want:
                raise CalibrationDataError(
                    f"calibration array {spec.name!r} has shape {tuple(array.shape)}; input {spec.name!r} "
                    f"needs {want} on axis {axis} (input shape {spec.shape})"
                )
        arrays[spec.name] = array

    counts = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise CalibrationDataError(
            "calibration arrays have different sample counts: "
            + ", ".join(f"{n}={c}" for n, c in sorted(counts.items()))
        )
    samples = next(iter(counts.values()), 0)
    if samples == 0:
        raise CalibrationDataError(f"calibration data {path} has no samples")

    fixed = {spec.shape[0] for spec in inputs if spec.shape and spec.shape[0] >= 0}
    if len(fixed) > 1:
        raise CalibrationDataError(f"inputs have different fixed batch sizes {sorted(fixed)}")
    if fixed:
        batch = fixed.pop()
        if samples < batch:
            raise CalibrationDataError(
                f"calibration data has {samples} samples; the network's fixed batch size is {batch}"
            )
    else:
        batch = min(int(batch_size), samples)
    if batch < 1:
        raise CalibrationDataError("calibration batch size must be at least 1")
    num = samples // batch
    if max_batches is not None:
        num = min(num, int(max_batches))
    return CalibrationBatches(
        arrays=arrays, batch_size=batch, num_batches=num, dtypes={s.name: s.dtype for s in inputs}
    )


def make_calibrator(
    trt: TensorRT,
    algorithm: str,
    batches: CalibrationBatches | None,
    cache: bytes | None,
    memory: Any,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Create a TensorRT calibrator over ``batches``.

    Args:
        trt: the imported tensorrt module.
        algorithm: ``"entropy"`` (IInt8EntropyCalibrator2) or ``"minmax"`` (IInt8MinMaxCalibrator).
        batches: the data; may be ``None`` only when ``cache`` is given.
        cache: a calibration cache from an earlier build (TensorRT then skips calibration).
        memory: a :class:`trtops.trt.cuda_mem.DeviceMemory` for the device buffers.
        log: progress callback.

    Returns:
        The calibrator. After the build, ``.cache`` holds the cache TensorRT wrote (or the
        one given), ``.error`` the exception raised while feeding data (or ``None``), and
        ``.close()`` frees device buffers.

    Raises:
        ValueError: unknown algorithm.
    """
    bases = {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}
    if algorithm not in bases:
        raise ValueError(f"unknown calibration algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    base = getattr(trt, bases[algorithm])

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.cache = cache
            self.error: BaseException | None = None
            self.batches_fed = 0
            self._buffers: dict[str, int] = {}

        def get_batch_size(self) -> int:
            return batches.batch_size if batches is not None else 1

        def get_batch(self, names, *args):
            # Exceptions cannot cross TensorRT's C++ frames: remember, end calibration.
            try:
                if batches is None or self.batches_fed >= batches.num_batches:
                    return None
                data = batches.batch(self.batches_fed)
                pointers = []
                for name in names:
                    if name not in data:
                        raise KeyError(f"TensorRT asked for calibration input {name!r}, which the data lacks")
                    if name not in self._buffers:
                        self._buffers[name] = memory.alloc(batches.nbytes(name))
                    memory.htod(self._buffers[name], data[name])
                    pointers.append(int(self._buffers[name]))
                self.batches_fed += 1
                if log is not None and (self.batches_fed == 1 or self.batches_fed % 10 == 0):
                    log(f"calibration batch {self.batches_fed}/{batches.num_batches}")
                return pointers
            except Exception as exc:
                self.error = exc
                return None

        def read_calibration_cache(self):
            return bytes(self.cache) if self.cache else None

        def write_calibration_cache(self, data) -> None:
            try:
                self.cache = bytes(memoryview(data))
            except Exception as exc:
                self.error = exc

        def close(self) -> None:
            for ptr in self._buffers.values():
                try:
                    memory.free(ptr)
                except Exception:
                    pass
            self._buffers.clear()

    return _Calibrator()
