"""Small tensor primitives shared by every stage. Pure functions: no I/O, no printing.

Conventions used throughout cryozssr:

* images are ``(..., h, w)`` float tensors; rows are y, columns are x;
* shifts are ``(..., 2)`` tensors ordered ``(y, x)`` in pixels; ``fourier_shift(img, s)`` moves the
  content of ``img`` by ``+s`` (a feature at ``(y, x)`` ends up at ``(y + s_y, x + s_x)``);
* spatial frequencies are in cycles per pixel unless a name says ``per_angstrom``;
* the 2x2 *box sum* is the degradation from the high-resolution (HR) to the low-resolution (LR)
  grid: what a camera with 2x larger pixels records, and what ``cryozssr bin`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_fourier_shift import fourier_shift_image_2d

from cryozssr.fourier import box_transfer_rfft, rfft_frequency_grid, rfft_radius

__all__ = [
    "box_sum",
    "box_sum_adjoint",
    "box_transfer_rfft",  # defined in cryozssr.fourier
    "fourier_shift",
    "interpolate_up",
    "normalise",
    "rfft_frequency_grid",  # defined in cryozssr.fourier
    "rfft_radius",  # defined in cryozssr.fourier
]


def fourier_shift(image: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """Translate ``(..., h, w)`` images by ``(..., 2)`` ``(y, x)`` shifts with a Fourier phase ramp.

    Periodic boundaries; exact for band-limited content, no interpolation blur.
    """
    shifts_px = torch.as_tensor(shifts_px, dtype=image.dtype, device=image.device)
    return fourier_shift_image_2d(image, shifts=shifts_px)


def box_sum(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Sum non-overlapping ``factor x factor`` blocks of ``(..., h, w)``; trailing rows/cols dropped.

    Integer dtypes stay integer (counts stay counts; torch promotes the sum to int64).
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    h, w = image.shape[-2:]
    hh, ww = h // factor, w // factor
    x = image[..., : hh * factor, : ww * factor]
    x = x.reshape(*x.shape[:-2], hh, factor, ww, factor)
    return x.sum(dim=(-3, -1))


def box_sum_adjoint(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Adjoint of :func:`box_sum`: copy every pixel into its ``factor x factor`` block."""
    return image.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def interpolate_up(
    images: torch.Tensor, factor: int = 2, *, mode: str = "bilinear"
) -> torch.Tensor:
    """``(..., h, w)`` -> ``(..., f h, f w)`` by ``torch.nn.functional.interpolate`` (``bilinear`` or
    ``bicubic``) on the project's grid: ``align_corners=False``, LR pixel ``I`` covers HR pixels
    ``f I .. f I + f - 1``. Values per pixel are kept (divide by ``f^2`` for counts per HR pixel)."""
    lead, (h, w) = images.shape[:-2], images.shape[-2:]
    up = F.interpolate(
        images.reshape(-1, 1, h, w), scale_factor=factor, mode=mode, align_corners=False
    )
    return up.reshape(*lead, *up.shape[-2:])


def normalise(image: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """Return ``(image - mean) / std`` and the ``(mean, std)`` to undo it (std floored at 1e-12)."""
    mean = float(image.mean())
    std = max(float(image.std()), 1e-12)
    return (image - mean) / std, mean, std
