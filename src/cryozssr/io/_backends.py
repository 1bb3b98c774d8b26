"""Frame-level readers for MRC/MRCS, TIFF and EER files: one raw frame at a time, as numpy arrays.

Each backend turns every library exception into an :class:`~cryozssr.errors.InputError` that names
the file. Orientation follows RELION and MotionCor2: TIFF images are flipped along the slow axis
(rows) when read, so a TIFF movie and the MRC written from it by those programs agree; MRC and EER
frames are read as stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from cryozssr.errors import InputError

MRC_EXTENSIONS = (".mrc", ".mrcs", ".st", ".map")
TIFF_EXTENSIONS = (".tif", ".tiff", ".gain")
EER_EXTENSIONS = (".eer",)
#: MRC modes we read: 0 int8, 1 int16, 2 float32, 6 uint16, 12 float16.
MRC_READ_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
_EER_COMPRESSIONS = (65000, 65001, 65002)


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's own log lines: its problems reach the user as one InputError instead."""
    logger = logging.getLogger("tifffile")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def file_format(path: Path) -> str:
    """``"mrc"``, ``"tiff"`` or ``"eer"`` from the extension; anything else is an InputError."""
    suffix = path.suffix.lower()
    if suffix in MRC_EXTENSIONS:
        return "mrc"
    if suffix in TIFF_EXTENSIONS:
        return "tiff"
    if suffix in EER_EXTENSIONS:
        return "eer"
    known = ", ".join(MRC_EXTENSIONS + TIFF_EXTENSIONS + EER_EXTENSIONS)
    raise InputError(f"{path}: unknown file extension {path.suffix!r} (expected one of {known})")


def check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")


class MrcBackend:
    """Memory-mapped MRC/MRCS; a 2D file is one frame."""

    format = "MRC"

    def __init__(self, path: Path):
        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with mrcfile.open(path, header_only=True, permissive=True) as mrc:
                    header = mrc.header.copy()
        except (ValueError, OSError) as exc:
            raise InputError(f"{path}: not a readable MRC file ({exc})") from None
        if header is None:
            raise InputError(f"{path}: not a readable MRC file (header too short)")
        mode = int(header.mode)
        if mode not in MRC_READ_MODES:
            raise InputError(f"{path}: unsupported MRC mode {mode} (supported: 0, 1, 2, 6, 12)")
        nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
        if min(nx, ny, nz) < 1:
            raise InputError(f"{path}: MRC header gives an empty size {nx} x {ny} x {nz}")
        itemsize = np.dtype(MRC_READ_MODES[mode]).itemsize
        expected = 1024 + int(header.nsymbt) + nx * ny * nz * itemsize
        actual = path.stat().st_size
        if actual < expected:
            raise InputError(
                f"{path}: truncated MRC file: the header promises {nz} x {ny} x {nx} "
                f"{MRC_READ_MODES[mode]} values ({expected} bytes) but the file holds "
                f"{actual} bytes"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self._mrc = mrcfile.mmap(path, mode="r", permissive=True)
            except (ValueError, OSError) as exc:
                raise InputError(f"{path}: cannot read MRC data ({exc})") from None
        data = self._mrc.data
        self._data = data if data.ndim == 3 else data.reshape(1, *data.shape[-2:])
        self.n_frames, self.shape = self._data.shape[0], tuple(self._data.shape[-2:])
        self.dtype_name = MRC_READ_MODES[mode]
        self.mode = f"MRC mode {mode} ({self.dtype_name})"
        voxel = float(self._mrc.voxel_size.x)
        # float32 in the header: 1.1 is stored as 1.10000002; keep 6 decimals
        self.pixel_size_angstrom = round(voxel, 6) if voxel > 0 else None

    def raw(self, index: int) -> np.ndarray:
        return np.asarray(self._data[index])

    def close(self) -> None:
        self._mrc.close()


class TiffBackend:
    """Multi-page TIFF (any tifffile/imagecodecs compression); rows flipped as in RELION."""

    format = "TIFF"

    def __init__(self, path: Path):
        self.path = path
        try:
            with _quiet_tifffile():
                self._tif = tifffile.TiffFile(path)
                series = self._tif.series[0]
                shape = tuple(int(s) for s in series.shape)
                page = self._tif.pages.first
                truncated = _tiff_truncation(self._tif)
        except Exception as exc:  # tifffile raises many kinds on corrupt input
            self.close()
            raise InputError(f"{path}: not a readable TIFF file ({exc})") from None
        if truncated:
            self.close()
            raise InputError(f"{path}: truncated TIFF file ({truncated})")
        shape = tuple(s for s in shape if s != 1) if len(shape) > 3 else shape
        rgb = page.photometric == tifffile.PHOTOMETRIC.RGB or page.samplesperpixel > 1
        if len(shape) not in (2, 3) or rgb:
            self.close()
            raise InputError(f"{path}: unsupported TIFF layout {shape} (expected frames x h x w)")
        self.n_frames = 1 if len(shape) == 2 else shape[0]
        self.shape = (shape[-2], shape[-1])
        self.dtype_name = np.dtype(series.dtype).name
        compression = getattr(page.compression, "name", str(page.compression)).lower()
        self.mode = f"TIFF {self.dtype_name} ({compression})"
        self.pixel_size_angstrom = None
        self.is_eer = int(page.compression) in _EER_COMPRESSIONS

    def raw(self, index: int) -> np.ndarray:
        try:
            with _quiet_tifffile():
                frame = self._tif.asarray(key=index)
        except Exception as exc:
            raise InputError(f"{self.path}: cannot decode TIFF frame {index} ({exc})") from None
        frame = frame.reshape(frame.shape[-2:])
        return frame[::-1]

    def close(self) -> None:
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()


class EerBackend:
    """EER (Falcon 4/4i): the hardware frames are summed into ``n_fractions`` groups of equal size.

    As RELION does, the trailing ``n_pages % n_fractions`` hardware frames are dropped. Frames are
    rendered on the physical 4K grid (no super-resolution upsampling) and read as stored.
    """

    format = "EER"

    def __init__(self, path: Path, *, n_fractions: int):
        self.path = path
        try:
            with _quiet_tifffile():
                self._tif = tifffile.TiffFile(path)
                pages = self._tif.pages
                first = pages.first
                n_pages = len(pages)
        except Exception as exc:
            self.close()
            raise InputError(f"{path}: not a readable EER file ({exc})") from None
        if int(first.compression) not in _EER_COMPRESSIONS:
            self.close()
            raise InputError(f"{path}: not an EER file (TIFF compression {first.compression})")
        if n_fractions < 1:
            self.close()
            raise InputError(f"{path}: EER fractions must be >= 1, got {n_fractions}")
        if n_pages < n_fractions:
            self.close()
            raise InputError(
                f"{path}: {n_pages} EER frames cannot be grouped into {n_fractions} fractions"
            )
        self.n_pages = n_pages
        self.group = n_pages // n_fractions
        self.n_frames = n_fractions
        self.shape = (int(first.shape[-2]), int(first.shape[-1]))
        # a pixel counts at most one event per EER frame: a fraction of fewer than 255 frames fits
        # in uint8 (4x less memory than the int32 uint16 is read as; the type's maximum is never
        # reached, so no pixel looks saturated)
        self.dtype_name = "uint8" if self.group < 255 else "uint16"
        self.mode = f"EER ({n_pages} frames in {n_fractions} groups of {self.group})"
        self.pixel_size_angstrom = _eer_pixel_size(path)

    def raw(self, index: int) -> np.ndarray:
        start = index * self.group
        out = np.zeros(self.shape, dtype=self.dtype_name)
        try:
            with _quiet_tifffile():
                for page in range(start, start + self.group):
                    out += self._tif.pages[page].asarray().astype(out.dtype, copy=False)
        except Exception as exc:
            raise InputError(f"{self.path}: cannot decode EER frame {page} ({exc})") from None
        return out

    def close(self) -> None:
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()


def _tiff_truncation(tif: tifffile.TiffFile) -> str | None:
    """What shows a TIFF was cut short (image data or the next page past its end), or None."""
    import struct

    size = tif.filehandle.size
    extents = (
        o + c for p in tif.pages for o, c in zip(p.dataoffsets, p.databytecounts, strict=True)
    )
    end = max(extents, default=0)
    if end > size:
        return f"image data run to byte {end} but the file holds {size} bytes"
    last, fmt = tif.pages[-1], tif.tiff
    tif.filehandle.seek(last.offset + fmt.tagnosize + len(last.tags) * fmt.tagsize)
    raw = tif.filehandle.read(fmt.offsetsize)
    following = struct.unpack(fmt.offsetformat, raw)[0] if len(raw) == fmt.offsetsize else size
    if following >= size:
        return (
            f"frame {len(tif.pages) + 1} starts at byte {following} but the file holds {size} bytes"
        )
    return None


def _eer_pixel_size(path: Path) -> float | None:
    """Specimen pixel size from the EER metadata (sensorPixelSize, metres), if present."""
    try:
        from eerfile.data_models import EERHeader

        size = EERHeader.from_file(path).pixel_spacing_height_angstroms
    except Exception:
        return None
    return size if size > 0 else None


def open_backend(path: Path, *, eer_fractions: int = 40) -> MrcBackend | TiffBackend | EerBackend:
    """Open ``path`` with the backend its extension calls for (EER is also told by compression)."""
    path = Path(path)
    check_exists(path)
    kind = file_format(path)
    if kind == "mrc":
        return MrcBackend(path)
    if kind == "eer":
        return EerBackend(path, n_fractions=eer_fractions)
    backend = TiffBackend(path)
    if backend.is_eer:
        backend.close()
        return EerBackend(path, n_fractions=eer_fractions)
    return backend
