"""Power spectra for CTF fitting: tiled periodograms and CTFFIND4-style background subtraction.

Pure tensor code. Spectra are kept in ``torch.fft.rfft2`` layout, ``(n, n // 2 + 1)``, with
frequencies from :func:`cryozssr.ops.rfft_frequency_grid`; :func:`centred` makes a full, fftshifted
copy for display.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cryozssr.evaluate.frc import edge_taper


def tile_power_spectrum(image: torch.Tensor, *, tile_px: int = 512) -> torch.Tensor:
    """Average periodogram ``(tile, tile // 2 + 1)`` of half-overlapping tiles of ``(h, w)`` ``image``.

    Each tile has its mean removed and a soft edge taper (1/8 of the tile) so the image edges
    draw no cross through the spectrum. ``tile_px`` is clipped to the image and made even.
    """
    h, w = image.shape[-2:]
    n = min(tile_px, h, w) // 2 * 2
    if n < 32:
        raise ValueError(f"image {h}x{w} too small for a power spectrum")
    step = n // 2
    window = edge_taper((n, n), width_px=n // 8, device=image.device).double()
    total = torch.zeros(n, n // 2 + 1, dtype=torch.float64, device=image.device)
    count = 0
    for y in range(0, h - n + 1, step):  # one row of tiles at a time: bounded memory
        tiles = image[..., y : y + n, :].double().unfold(-1, n, step).movedim(-2, -3)
        tiles = tiles.reshape(-1, n, n)
        tiles = (tiles - tiles.mean(dim=(-2, -1), keepdim=True)) * window
        total += (torch.fft.rfft2(tiles).abs() ** 2).sum(dim=0)
        count += tiles.shape[0]
    return total / (count * float((window**2).sum()))


def centred(spectrum_rfft: torch.Tensor) -> torch.Tensor:
    """Full ``(n, n)`` fftshifted copy (DC at ``(n//2, n//2)``) of an ``(n, n//2+1)`` rfft-layout spectrum."""
    n = spectrum_rfft.shape[-2]
    rows = (-torch.arange(n, device=spectrum_rfft.device)) % n
    cols = torch.arange(n - (n // 2 + 1), 0, -1, device=spectrum_rfft.device)
    mirrored = spectrum_rfft[..., rows, :][..., cols]  # P(-ky, n - kx): Friedel mates
    full = torch.cat([spectrum_rfft, mirrored], dim=-1)
    return torch.fft.fftshift(full, dim=(-2, -1))


def background_subtracted(
    spectrum_rfft: torch.Tensor, *, box_px: int | None = None
) -> torch.Tensor:
    """Amplitude spectrum minus its box-filtered version (CTFFIND4's background), rfft layout.

    As CTFFIND4 (Rohou & Grigorieff 2015, section 2.1): take the amplitude (square root of the
    power), subtract a local mean over a ``box_px`` square (default ``n / 16``, at least 7 px) so
    only the Thon-ring oscillations remain, and clip the very low frequencies (radius < 4 px) to 0.
    """
    n = spectrum_rfft.shape[-2]
    box = box_px or max(7, n // 16)
    box += 1 - box % 2  # odd
    amp = centred(spectrum_rfft).sqrt()
    pad = box // 2
    smooth = F.avg_pool2d(
        F.pad(amp[None, None], (pad, pad, pad, pad), mode="reflect"), box, stride=1
    )[0, 0]
    sub = torch.fft.ifftshift(amp - smooth, dim=(-2, -1))[..., : n // 2 + 1]
    ky = torch.fft.fftfreq(n, device=sub.device, dtype=sub.dtype)[:, None] * n
    kx = torch.fft.rfftfreq(n, device=sub.device, dtype=sub.dtype)[None, :] * n
    return torch.where(ky**2 + kx**2 < 16, torch.zeros_like(sub), sub)


def radial_profile(
    values: torch.Tensor, radius: torch.Tensor, *, n_bins: int, r_max: float, weight=None
) -> torch.Tensor:
    """Mean of ``values`` in ``n_bins`` equal bins of ``radius`` over ``[0, r_max)`` (bincount)."""
    idx = (radius / r_max * n_bins).floor().long()
    ok = (idx >= 0) & (idx < n_bins)
    w = torch.ones_like(values) if weight is None else weight
    s = torch.bincount(idx[ok], (values * w)[ok], minlength=n_bins)
    c = torch.bincount(idx[ok], w[ok], minlength=n_bins)
    return s / c.clamp(min=1e-12)
