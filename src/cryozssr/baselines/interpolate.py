"""Single-image upsampling baselines: bilinear, bicubic and Fourier (zero-padding, "sinc").

They take the motion-corrected, dose-weighted LR average, so they can only interpolate: nothing
past the LR Nyquist frequency is recovered. Outputs follow the cryozssr 2x conventions: LR pixel
``(I, J)`` covers HR pixels ``(2I..2I+1, 2J..2J+1)`` and intensities are counts per HR pixel, i.e.
the interpolated LR value divided by ``factor**2``.
"""

from __future__ import annotations

from typing import Literal

import torch

from cryozssr.errors import OptionError
from cryozssr.fourier import fourier_upsample_spectrum
from cryozssr.ops import interpolate_up

UpsampleMethod = Literal["bilinear", "bicubic", "fourier"]
UPSAMPLE_METHODS: tuple[str, ...] = ("bilinear", "bicubic", "fourier")


def upsample(
    image: torch.Tensor, *, method: UpsampleMethod = "fourier", factor: int = 2
) -> torch.Tensor:
    """Upsample ``(..., h, w)`` LR images to ``(..., factor h, factor w)`` in counts per HR pixel.

    ``bilinear`` / ``bicubic``: :func:`torch.nn.functional.interpolate` with ``align_corners=False``
    (LR pixel centres at HR coordinate ``factor I + (factor - 1) / 2``, the grid convention).
    ``fourier``: zero-padding of the DFT with the matching half-pixel phase, i.e. the periodic
    band-limited (trigonometric) interpolant sampled at the HR pixel centres.
    """
    if method not in UPSAMPLE_METHODS:
        raise OptionError(
            f"unknown upsampling method {method!r}; choose one of {', '.join(UPSAMPLE_METHODS)}"
        )
    if int(factor) != factor or factor < 1:
        raise OptionError(f"factor must be a positive integer, got {factor}")
    if image.ndim < 2:
        raise ValueError(f"upsample takes (..., h, w) images, got shape {tuple(image.shape)}")
    factor = int(factor)
    dtype = image.dtype if image.is_floating_point() else torch.float32
    x = image.to(dtype)
    if method == "fourier":
        spectrum = fourier_upsample_spectrum(torch.fft.fft2(x.double()), factor)
        return torch.fft.ifft2(spectrum).real.to(dtype)
    return interpolate_up(x, factor, mode=method) / factor**2
