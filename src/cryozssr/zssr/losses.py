"""Training losses of the two regimes. Images are ``(b, 1, h, w)`` in per-movie normalised units."""

from __future__ import annotations

import torch

from cryozssr.ops import rfft_radius


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean ``|d/dy|`` + mean ``|d/dx|`` of ``(..., h, w)``."""
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return dy + dx


def fourier_loss(
    output: torch.Tensor, target: torch.Tensor, *, sigma_cycles_per_px: float
) -> torch.Tensor:
    """Mean ``|F(output) - F(target)| * exp(-k^2 / (2 sigma^2))`` over the ``rfft2`` grid.

    Orthonormal FFT, so the magnitudes are on the scale of the pixel values; the Gaussian
    down-weights high frequencies, where a noisy target carries little signal.
    """
    diff = torch.fft.rfft2(output - target, norm="ortho")
    k = rfft_radius(tuple(output.shape[-2:]), device=output.device).to(output.dtype)
    weight = torch.exp(-(k**2) / (2 * sigma_cycles_per_px**2))
    return (diff.abs() * weight).mean()


def workshop_loss(output: torch.Tensor, target: torch.Tensor, *, tv_weight: float) -> torch.Tensor:
    """MSE + ``tv_weight`` * total variation of the output."""
    return torch.mean((output - target) ** 2) + tv_weight * total_variation(output)


def journal_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    *,
    fourier_weight: float,
    sigma_cycles_per_px: float,
) -> torch.Tensor:
    """MAE + ``fourier_weight`` * Gaussian-weighted Fourier loss."""
    mae = torch.mean((output - target).abs())
    if fourier_weight == 0:
        return mae
    return mae + fourier_weight * fourier_loss(
        output, target, sigma_cycles_per_px=sigma_cycles_per_px
    )
