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
from torch_fourier_shift import fourier_shift_image_2d


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


def rfft_frequency_grid(
    shape: tuple[int, int], *, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ky, kx)`` grids in cycles/pixel for ``torch.fft.rfft2`` of an image of ``shape``.

    Returns two ``(h, w // 2 + 1)`` tensors.
    """
    h, w = shape
    ky = torch.fft.fftfreq(h, device=device)[:, None].expand(h, w // 2 + 1)
    kx = torch.fft.rfftfreq(w, device=device)[None, :].expand(h, w // 2 + 1)
    return ky, kx


def rfft_radius(shape: tuple[int, int], *, device: torch.device | None = None) -> torch.Tensor:
    """Radial spatial frequency ``|k|`` in cycles/pixel on the ``rfft2`` grid of ``shape``."""
    ky, kx = rfft_frequency_grid(shape, device=device)
    return torch.sqrt(ky**2 + kx**2)


def box_transfer_rfft(shape: tuple[int, int], factor: int = 2, *, device=None) -> torch.Tensor:
    """Amplitude transfer of the discrete ``factor x factor`` box *average* on the fine grid (rfft layout).

    ``D(ky) * D(kx)`` with ``D(k) = sin(pi f k) / (f sin(pi k))`` (``cos(pi k)`` for ``f = 2``), k in
    cycles per fine pixel. This is what :func:`box_sum` (divided by ``f^2``) does to an image already
    sampled on the fine grid; the block-centre phase ramp (half a fine pixel per axis for ``f = 2``)
    is left out. Together with the fine pixel's own aperture ``sinc(k)`` it gives the coarse pixel's
    aperture ``sinc(f k)``.
    """
    ky, kx = rfft_frequency_grid(shape, device=device)

    def dirichlet(k: torch.Tensor) -> torch.Tensor:
        den = factor * torch.sin(torch.pi * k)
        safe = torch.where(den.abs() < 1e-12, torch.ones_like(den), den)
        return torch.where(
            den.abs() < 1e-12, torch.ones_like(k), torch.sin(torch.pi * factor * k) / safe
        )

    return dirichlet(ky) * dirichlet(kx)


def normalise(image: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """Return ``(image - mean) / std`` and the ``(mean, std)`` to undo it (std floored at 1e-12)."""
    mean = float(image.mean())
    std = max(float(image.std()), 1e-12)
    return (image - mean) / std, mean, std
