"""Atomic writers: MRC images/stacks and STAR files.

Every writer goes through a temporary file in the destination folder followed by ``os.replace``,
so a reader never sees a half-written file and an interrupted run leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
import torch

from cryozssr.errors import OutputError

__all__ = [
    "MRC_MODES",
    "MrcStackWriter",
    "atomic_path",
    "open_mrc_writer",
    "write_micrographs_star",
    "write_mrc",
    "write_star",
]

#: Output data types by name, with their MRC mode number.
MRC_MODES: dict[str, tuple[int, np.dtype]] = {
    "int8": (0, np.dtype(np.int8)),
    "int16": (1, np.dtype(np.int16)),
    "float32": (2, np.dtype(np.float32)),
    "uint16": (6, np.dtype(np.uint16)),
    "float16": (12, np.dtype(np.float16)),
}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_not_protected(path: Path, overwrite_protect: Sequence[str | os.PathLike]) -> None:
    target = path.resolve()
    for p in overwrite_protect:
        q = Path(p)
        same = q.resolve() == target
        if not same and q.exists() and target.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(q, target)
        if same:
            raise OutputError(f"refusing to overwrite input file {q}: choose another output folder")


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, overwrite_protect: Sequence[str | os.PathLike] = ()
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, else delete it.

    Creates the destination folder if needed. An unwritable or uncreatable folder raises
    :class:`~cryozssr.errors.OutputError`, as does a ``path`` listed in ``overwrite_protect``.
    """
    path = Path(path)
    _check_not_protected(path, overwrite_protect)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _to_numpy(data: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    return np.asarray(data)


def _resolve_mode(mode: str | None) -> tuple[int, np.dtype]:
    name = "float32" if mode is None else mode
    if name not in MRC_MODES:
        raise ValueError(f"unknown MRC output mode {mode!r}; choose one of {sorted(MRC_MODES)}")
    return MRC_MODES[name]


def _cast(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast to ``dtype``; integer outputs must hold values within range (no silent wrap)."""
    if data.dtype == dtype:
        return data
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if data.size and (data.min() < info.min or data.max() > info.max):
            raise ValueError(
                f"values [{data.min()}, {data.max()}] do not fit MRC {dtype.name} output"
            )
        if np.issubdtype(data.dtype, np.floating):
            data = np.rint(data)
    return data.astype(dtype)


def _label(mrc) -> None:
    """Replace mrcfile's timestamped label with a fixed one, so that equal data give equal bytes."""
    from cryozssr import __version__

    mrc.header.label[0] = f"cryozssr {__version__}".encode()[:80].ljust(80)
    mrc.header.nlabl = 1


class MrcStackWriter:
    """Write a ``(t, h, w)`` MRC stack frame by frame into a memory-mapped, preallocated file.

    Use through :func:`open_mrc_writer`; ``writer[i] = frame`` stores frame ``i``.
    """

    def __init__(self, mrc: mrcfile.mrcmemmap.MrcMemmap, dtype: np.dtype):
        self._mrc = mrc
        self.dtype = dtype
        self.shape: tuple[int, ...] = tuple(mrc.data.shape)

    def __setitem__(self, index: int, frame: np.ndarray | torch.Tensor) -> None:
        self._mrc.data[index] = _cast(_to_numpy(frame), self.dtype)


@contextlib.contextmanager
def open_mrc_writer(
    path: str | os.PathLike,
    shape: tuple[int, int, int],
    *,
    pixel_size_angstrom: float,
    mode: str | None = None,
    overwrite_protect: Sequence[str | os.PathLike] = (),
) -> Iterator[MrcStackWriter]:
    """Open an atomic, frame-by-frame writer of a ``(t, h, w)`` MRC image stack.

    Memory stays bounded by one frame; the file appears at ``path`` only when the block exits
    without an exception. ``mode`` as in :func:`write_mrc`.
    """
    mode_number, dtype = _resolve_mode(mode)
    with atomic_path(path, overwrite_protect=overwrite_protect) as tmp:
        mrc = mrcfile.new_mmap(tmp, shape=tuple(shape), mrc_mode=mode_number, overwrite=True)
        try:
            mrc.set_image_stack()
            mrc.voxel_size = float(pixel_size_angstrom)
            _label(mrc)
            yield MrcStackWriter(mrc, dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mrc.update_header_stats()
        finally:
            mrc.close()


def write_mrc(
    path: str | os.PathLike,
    data: np.ndarray | torch.Tensor,
    *,
    pixel_size_angstrom: float,
    mode: str | None = None,
    overwrite_protect: Sequence[str | os.PathLike] = (),
    volume: bool = False,
) -> Path:
    """Write a 2D image ``(h, w)`` or 3D stack ``(t, h, w)`` to an MRC file, atomically.

    Parameters
    ----------
    data:
        numpy array or torch tensor (any device).
    pixel_size_angstrom:
        Stored as the voxel size (x, y and z).
    mode:
        ``None`` or ``"float32"`` (MRC mode 2, the default), ``"int8"`` (0), ``"int16"`` (1),
        ``"uint16"`` (6) or ``"float16"`` (12). Integer modes round and refuse out-of-range values.
    overwrite_protect:
        Paths (typically the inputs) that must never be replaced: writing onto one raises
        :class:`~cryozssr.errors.OutputError`.
    volume:
        3D data are written as an image stack (movie frames, ``ispg = 0``) unless ``volume=True``
        (a 3D map, ``ispg = 1``).

    Returns the written path. An unwritable folder raises :class:`~cryozssr.errors.OutputError`.
    """
    array = _to_numpy(data)
    if array.ndim not in (2, 3):
        raise ValueError(f"write_mrc expects a 2D or 3D array, got shape {array.shape}")
    _, dtype = _resolve_mode(mode)
    array = np.ascontiguousarray(_cast(array, dtype))
    path = Path(path)
    with (
        atomic_path(path, overwrite_protect=overwrite_protect) as tmp,
        mrcfile.new(tmp, overwrite=True) as mrc,
    ):
        # mrcfile's header statistics take a whole-image temporary (its std): a block at a time
        mrc.update_header_stats = lambda: None
        mrc.set_data(array)
        _header_stats(mrc.header, array)
        if array.ndim == 3 and not volume:
            mrc.set_image_stack()
        mrc.voxel_size = float(pixel_size_angstrom)
        _label(mrc)
    return path


STATS_BLOCK_ELEMENTS = 2**22
"""Values of an array summed at a time for the MRC header statistics."""


def _header_stats(header, array: np.ndarray) -> None:
    """``dmin``, ``dmax``, ``dmean`` and ``rms`` (the standard deviation, as mrcfile writes it) of
    ``array``, in float64 a block at a time (no temporary of the array's size)."""
    flat = array.reshape(-1)
    if flat.size == 0:
        return
    lo, hi, total, squares = math.inf, -math.inf, 0.0, 0.0
    with warnings.catch_warnings():  # statistics of NaN/Inf data: not our concern
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in range(0, flat.size, STATS_BLOCK_ELEMENTS):
            block = flat[start : start + STATS_BLOCK_ELEMENTS].astype(np.float64)
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            total += float(block.sum())
            squares += float(np.square(block).sum())
        mean = total / flat.size
        header.dmin, header.dmax, header.dmean = np.float32(lo), np.float32(hi), np.float32(mean)
        header.rms = np.float32(math.sqrt(max(squares / flat.size - mean * mean, 0.0)))


def write_star(
    path: str | os.PathLike,
    blocks: dict[str, pd.DataFrame],
    *,
    overwrite_protect: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write STAR data blocks (``{"optics": df, "micrographs": df}``) atomically with starfile.

    starfile's timestamped comment line is dropped, so that equal tables give equal bytes.
    """
    path = Path(path)
    with atomic_path(path, overwrite_protect=overwrite_protect) as tmp:
        starfile.write(blocks, tmp, overwrite=True)
        text = Path(tmp).read_text()
        Path(tmp).write_text(
            "".join(
                ln for ln in text.splitlines(keepends=True) if not ln.startswith("# Created by")
            )
        )
    return path


def write_micrographs_star(
    path: str | os.PathLike,
    micrograph_names: Sequence[str | os.PathLike],
    *,
    pixel_size_angstrom: float,
    voltage_kv: float,
    spherical_aberration_mm: float,
    amplitude_contrast: float,
    optics_group_name: str = "opticsGroup1",
) -> Path:
    """Write a RELION 3.1+ micrographs STAR file: one optics group and one row per micrograph.

    ``micrograph_names`` are written as given (make them relative to the STAR file's folder,
    as RELION expects).
    """
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": [optics_group_name],
            "rlnMicrographPixelSize": [float(pixel_size_angstrom)],
            "rlnVoltage": [float(voltage_kv)],
            "rlnSphericalAberration": [float(spherical_aberration_mm)],
            "rlnAmplitudeContrast": [float(amplitude_contrast)],
        }
    )
    micrographs = pd.DataFrame(
        {
            "rlnMicrographName": [str(n) for n in micrograph_names],
            "rlnOpticsGroup": [1] * len(micrograph_names),
        }
    )
    return write_star(path, {"optics": optics, "micrographs": micrographs})
