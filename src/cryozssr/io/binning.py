"""Make low-magnification movies from high-magnification ones, frame by frame (``cryozssr bin``).

Real-space box binning sums counts over ``factor x factor`` blocks, as IMOD's ``newstack -bin``
does for counting data; Fourier cropping keeps the spectrum inside the new Nyquist limit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cryozssr.errors import InputError, OptionError
from cryozssr.fourier import crop_rfft
from cryozssr.io.movie import Movie, require_pixel_size
from cryozssr.io.write import open_mrc_writer
from cryozssr.ops import box_sum

__all__ = ["BinResult", "bin_movie", "fourier_crop"]

logger = logging.getLogger(__name__)

_INTEGER_OUTPUT = {"int8": "int16", "uint8": "int16", "int16": "int16", "uint16": "uint16"}


def fourier_crop(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Fourier-crop ``(..., h, w)`` images (``h``, ``w`` divisible by ``factor``) to ``1/factor``.

    Only frequencies below the new Nyquist limit are kept. The zero frequency is kept unscaled, so
    the output mean is ``factor**2`` times the input mean: the mean of :func:`~cryozssr.ops.box_sum`
    (counts per binned pixel).
    """
    h, w = image.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"image shape {(h, w)} is not divisible by {factor}")
    hh, ww = h // factor, w // factor
    cropped = crop_rfft(torch.fft.rfft2(image.to(torch.float32)), (hh, ww))
    return torch.fft.irfft2(cropped, s=(hh, ww))


class _Overflow(Exception):
    pass


@dataclass(frozen=True)
class BinResult:
    """What :func:`bin_movie` wrote."""

    path: Path
    n_frames: int
    shape: tuple[int, int]
    pixel_size_angstrom: float
    mode: str
    dropped_rows: int
    dropped_columns: int


def _binned_frames(movie: Movie, factor: int, method: str, gain: torch.Tensor | None):
    h, w = movie.shape[0] // factor * factor, movie.shape[1] // factor * factor
    for i in range(movie.n_frames):
        raw = movie.raw_frame(i)
        if method == "box" and movie.is_integer and gain is None:
            yield box_sum(torch.from_numpy(raw.astype(np.int32)), factor)
            continue
        frame = torch.from_numpy(raw.astype(np.float32))
        if gain is not None:
            frame = frame * gain
        frame = frame[:h, :w]
        yield box_sum(frame, factor) if method == "box" else fourier_crop(frame, factor)


def bin_movie(
    movie: Movie,
    out_path: str | os.PathLike,
    *,
    factor: int = 2,
    method: str = "box",
    gain: torch.Tensor | None = None,
    overwrite_protect: Sequence[str | os.PathLike] = (),
) -> BinResult:
    """Bin ``movie`` by ``factor`` into an MRC stack at ``out_path``, one frame at a time.

    ``method="box"`` sums counts in ``factor x factor`` blocks: integer movies stay integer
    (int16, or uint16 for uint16 input; float32 if a sum would not fit, or with a ``gain``).
    ``gain`` (``(h, w)``, from :func:`~cryozssr.io.read_gain`) multiplies every frame first.
    ``method="fourier"`` Fourier-crops to float32 with the same mean as the box sum.
    Rows/columns beyond a multiple of ``factor`` are dropped (and logged). The header pixel size
    is ``factor`` times the movie's, which must be known (:func:`~cryozssr.io.require_pixel_size`).
    """
    if factor < 2:
        raise OptionError(f"--factor must be an integer >= 2, got {factor}")
    if method not in ("box", "fourier"):
        raise OptionError(f"--mode must be 'box' or 'fourier', got {method!r}")
    pixel_out = require_pixel_size(movie) * factor
    if gain is not None and tuple(gain.shape) != movie.shape:
        raise InputError(
            f"gain reference shape {tuple(gain.shape)} does not match movie {movie.path} "
            f"frames {movie.shape} (check --gain-rot)"
        )
    h0, w0 = movie.shape
    drop_h, drop_w = h0 % factor, w0 % factor
    if drop_h or drop_w:
        logger.warning(
            "%s: %d x %d is not a multiple of %d: dropping the last %d row(s) and %d column(s)",
            movie.path,
            h0,
            w0,
            factor,
            drop_h,
            drop_w,
        )
    h, w = h0 - drop_h, w0 - drop_w
    if h < factor or w < factor:
        raise OptionError(f"{movie.path}: frames of {h0} x {w0} are too small to bin by {factor}")
    shape = (movie.n_frames, h // factor, w // factor)
    modes = ["float32"]
    if method == "box" and gain is None and movie.dtype_name in _INTEGER_OUTPUT:
        modes.insert(0, _INTEGER_OUTPUT[movie.dtype_name])
    for mode in modes:
        limit = None if mode == "float32" else np.iinfo(mode).max
        try:
            with open_mrc_writer(
                out_path,
                shape,
                pixel_size_angstrom=pixel_out,
                mode=mode,
                overwrite_protect=overwrite_protect,
            ) as writer:
                for i, frame in enumerate(_binned_frames(movie, factor, method, gain)):
                    if limit is not None and int(frame.max()) > limit:
                        raise _Overflow  # abandons the temporary file
                    writer[i] = frame
        except _Overflow:
            logger.warning("%s: binned counts exceed %s; writing float32", movie.path, mode)
            continue
        return BinResult(Path(out_path), shape[0], shape[1:], pixel_out, mode, drop_h, drop_w)
    raise AssertionError("float32 output cannot overflow")
