"""Lazy movie and micrograph readers returning float32 torch tensors.

>>> from cryozssr.io import open_movie, read_gain
>>> with open_movie("movie.tiff", pixel_size_angstrom=0.83) as movie:
...     frames = movie.read(gain=read_gain("gain.mrc", rot=1))   # (t, h, w) float32
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from cryozssr.errors import InputError, OptionError
from cryozssr.io._backends import EerBackend, MrcBackend, TiffBackend, open_backend

_INTEGER_TORCH = {
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "uint16": torch.int32,  # torch's uint16 lacks arithmetic; int32 still halves float32+copy
    "int32": torch.int32,
}
"""Stored integer types kept as such by ``Movie.read(keep_integers=True)``."""

__all__ = ["Movie", "open_movie", "read_image", "require_pixel_size"]


class Movie:
    """A movie on disk, read one frame at a time.

    Attributes
    ----------
    path, n_frames, shape:
        File, number of frames ``t`` and frame shape ``(h, w)``.
    format, mode, dtype_name:
        ``"MRC"``/``"TIFF"``/``"EER"``, a human description of the storage (e.g.
        ``"MRC mode 1 (int16)"``) and the stored numpy dtype name.
    pixel_size_angstrom:
        From the header, unless overridden in :func:`open_movie`; ``None`` when unknown.
        ``header_pixel_size_angstrom`` keeps the header's value.

    Use as a context manager (or call :meth:`close`) to release the file.
    """

    def __init__(
        self, backend: MrcBackend | TiffBackend | EerBackend, pixel_size_angstrom: float | None
    ):
        self._backend = backend
        self.path: Path = backend.path
        self.format: str = backend.format
        self.mode: str = backend.mode
        self.dtype_name: str = backend.dtype_name
        self.n_frames: int = int(backend.n_frames)
        self.shape: tuple[int, int] = (int(backend.shape[0]), int(backend.shape[1]))
        self.header_pixel_size_angstrom: float | None = backend.pixel_size_angstrom
        self.pixel_size_angstrom: float | None = (
            float(pixel_size_angstrom)
            if pixel_size_angstrom is not None
            else backend.pixel_size_angstrom
        )

    @property
    def is_integer(self) -> bool:
        """True when the stored values are integers (electron counts)."""
        return np.issubdtype(np.dtype(self.dtype_name), np.integer)

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        h, w = self.shape
        return f"Movie({str(self.path)!r}, {self.n_frames} x {h} x {w}, {self.mode})"

    def raw_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored (numpy ``(h, w)``, original dtype), checked finite."""
        if not -self.n_frames <= index < self.n_frames:
            raise IndexError(f"frame {index} out of range for {self.n_frames} frames")
        frame = self._backend.raw(index % self.n_frames)
        if frame.dtype.kind == "f" and not np.isfinite(frame).all():
            bad = int((~np.isfinite(frame)).sum())
            raise InputError(
                f"{self.path}: frame {index % self.n_frames} holds {bad} NaN/Inf values"
            )
        return frame

    def frame(self, index: int) -> torch.Tensor:
        """Frame ``index`` as a ``(h, w)`` float32 CPU tensor."""
        return torch.from_numpy(np.array(self.raw_frame(index), dtype=np.float32))

    def __iter__(self) -> Iterator[torch.Tensor]:
        for i in range(self.n_frames):
            yield self.frame(i)

    def read(
        self,
        *,
        gain: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        keep_integers: bool = False,
    ) -> torch.Tensor:
        """All frames as one ``(t, h, w)`` float32 tensor on ``device``, filled frame by frame.

        ``gain`` (``(h, w)``, e.g. from :func:`~cryozssr.io.read_gain`) multiplies every frame.
        ``keep_integers``: integer counts without a gain stay in their stored integer type (a K3
        uint8 movie is 4x smaller than in float32); consumers convert chunk by chunk.
        Peak memory is the output tensor plus one frame.
        """
        if gain is not None and tuple(gain.shape) != self.shape:
            raise InputError(
                f"gain reference shape {tuple(gain.shape)} does not match movie {self.path} "
                f"frames {self.shape}",
                option="gain_rot",
            )
        dtype = torch.float32
        if keep_integers and gain is None and self.dtype_name in _INTEGER_TORCH:
            dtype = _INTEGER_TORCH[self.dtype_name]
        out = torch.empty((self.n_frames, *self.shape), dtype=dtype, device=device)
        if gain is not None:
            gain = gain.to(device=out.device, dtype=torch.float32)
        for i in range(self.n_frames):
            if dtype == torch.float32:
                out[i] = self.frame(i).to(out.device)
            else:
                out[i] = torch.from_numpy(np.array(self.raw_frame(i))).to(out.device)
            if gain is not None:
                out[i] *= gain
        return out

    def close(self) -> None:
        self._backend.close()

    def __del__(self) -> None:  # a Movie left open still releases its file
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> Movie:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_movie(
    path: str | os.PathLike,
    *,
    pixel_size_angstrom: float | None = None,
    eer_fractions: int = 40,
) -> Movie:
    """Open an MRC/MRCS, TIFF or EER movie lazily (nothing but the header is read yet).

    ``pixel_size_angstrom`` overrides the header. EER hardware frames are summed into
    ``eer_fractions`` frames. A file holding a single 2D image raises
    :class:`~cryozssr.errors.InputError`, as do missing, truncated, corrupt or unknown files.
    """
    if pixel_size_angstrom is not None and not pixel_size_angstrom > 0:
        raise OptionError(
            f"the pixel size must be positive, got {pixel_size_angstrom}",
            option="pixel_size_angstrom",
        )
    backend = open_backend(Path(path), eer_fractions=eer_fractions)
    if backend.n_frames < 2:
        backend.close()
        raise InputError(f"{path}: holds a single 2D image, not a movie (need at least 2 frames)")
    return Movie(backend, pixel_size_angstrom)


def require_pixel_size(movie: Movie) -> float:
    """The movie's pixel size in Å, or an InputError asking for ``pixel_size_angstrom``."""
    if movie.pixel_size_angstrom is None:
        raise InputError(f"{movie.path}: no pixel size in the header", option="pixel_size_angstrom")
    return movie.pixel_size_angstrom


def read_image(path: str | os.PathLike) -> tuple[torch.Tensor, float | None]:
    """Read a 2D micrograph (MRC or TIFF) as ``((h, w) float32 tensor, pixel size in Å or None)``.

    A stack of several images raises :class:`~cryozssr.errors.InputError`; so do NaN/Inf values.
    """
    backend = open_backend(Path(path))
    try:
        if backend.n_frames != 1:
            raise InputError(f"{path}: holds {backend.n_frames} images; expected one 2D image")
        movie = Movie(backend, None)
        return movie.frame(0), movie.pixel_size_angstrom
    finally:
        backend.close()
