"""Spatially varying sub-pixel shifts without interpolation: Fourier-shifted tiles, overlap-added.

The image is split by smooth windows that sum to one (``sin^2``, ``2 * tile_px`` wide, on a stride
of ``tile_px``); each windowed tile is zero-padded and moved by its own shift with a Fourier phase
ramp, and the tiles are added back. A uniform shift gives exactly
:func:`cryozssr.ops.fourier_shift` of the whole image; a smoothly varying one moves the content
under each window by that window's shift (the windows go smoothly to zero, so no edge ringing).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cryozssr.fourier import phase_ramp

_PAD = 4  # zero padding beyond the largest shift (the windows are ~0 there)


def tile_centres(shape: tuple[int, int], tile_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(ny,)``, ``(nx,)`` of the tile centres used by :func:`tiled_shift`.

    Centres ``k * tile_px - 0.5`` for ``k = -1 .. ceil(n / tile_px) + 1``: the tiles overhang the
    image by one tile on every side so that content entering across the (periodic) border is covered.
    """
    return tuple(
        torch.arange(-1, math.ceil(n / tile_px) + 2, dtype=torch.float32) * tile_px - 0.5
        for n in shape
    )  # type: ignore[return-value]


def tiled_shift(image: torch.Tensor, shifts_px: torch.Tensor, *, tile_px: int = 64) -> torch.Tensor:
    """Move the content of a ``(h, w)`` image by a shift that varies smoothly over the image.

    ``shifts_px`` is ``(ny, nx, 2)`` ``(y, x)``: the shift at every tile centre of
    :func:`tile_centres`; shifts must stay below ``tile_px``. The image (periodic, as in
    :func:`cryozssr.ops.fourier_shift`) is split by ``sin^2`` windows of ``2 * tile_px`` on a stride of
    ``tile_px`` (a partition of unity); every windowed tile is zero-padded, Fourier-shifted by its own
    shift and added back. A uniform shift therefore gives exactly ``fourier_shift`` of the image;
    a varying one moves the content near each tile centre by that tile's shift, blended smoothly.
    """
    h, w = image.shape
    t = tile_px
    ny, nx = (len(c) for c in tile_centres((h, w), t))
    if shifts_px.shape != (ny, nx, 2):
        raise ValueError(
            f"shifts_px must be {(ny, nx, 2)} for {h}x{w} and tile_px={t}, got {tuple(shifts_px.shape)}"
        )
    biggest = float(shifts_px.abs().max()) if shifts_px.numel() else 0.0
    if biggest >= t:
        raise ValueError(f"tiled_shift handles shifts below tile_px={t}, got {biggest:.1f} px")
    m = (_fft_size(2 * t + 2 * (math.ceil(biggest) + _PAD)) - 2 * t) // 2
    # source tile k covers image rows [(k - 2) t, k t), periodically
    padded = _periodic_pad(image, 2 * t, (ny - 1) * t - h, 2 * t, (nx - 1) * t - w)
    tiles = F.unfold(padded[None, None], kernel_size=2 * t, stride=t)[0].T.reshape(
        ny * nx, 2 * t, 2 * t
    )
    ramp = (
        torch.sin(
            math.pi * (torch.arange(2 * t, device=image.device, dtype=image.dtype) + 0.5) / (2 * t)
        )
        ** 2
    )
    tiles = F.pad(tiles * (ramp[:, None] * ramp[None, :]), (m, m, m, m))
    size = 2 * t + 2 * m
    ky = torch.fft.fftfreq(size, device=image.device, dtype=torch.float64)
    kx = torch.fft.rfftfreq(size, device=image.device, dtype=torch.float64)
    ramp = phase_ramp(ky, kx, shifts_px.reshape(-1, 2).to(image.device))  # as ops.fourier_shift
    moved = torch.fft.irfft2(torch.fft.rfft2(tiles) * ramp, s=(size, size))
    canvas = F.fold(
        moved.reshape(ny * nx, -1).T[None],
        output_size=((ny - 1) * t + size, (nx - 1) * t + size),
        kernel_size=size,
        stride=t,
    )[0, 0]
    return canvas[2 * t + m : 2 * t + m + h, 2 * t + m : 2 * t + m + w]


def _fft_size(n: int) -> int:
    """Smallest even ``m >= n`` with no prime factor above 5 (fast FFT sizes)."""
    m = n + (n % 2)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 2


def _periodic_pad(
    image: torch.Tensor, top: int, bottom: int, left: int, right: int
) -> torch.Tensor:
    """Pad ``(h, w)`` by wrapping around (any amount, unlike ``F.pad(mode='circular')``)."""
    h, w = image.shape
    rows = torch.arange(-top, h + bottom, device=image.device) % h
    cols = torch.arange(-left, w + right, device=image.device) % w
    return image[rows][:, cols]
