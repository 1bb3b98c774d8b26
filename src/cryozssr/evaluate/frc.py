"""FRC of a micrograph against a reference after sub-pixel registration. Pure tensor code.

The FRC itself is :func:`cryozssr.register.frc_curve` (vectorised: one ``bincount`` per sum; its
speed against torch-fourier-shell-correlation's per-shell loop is measured by
``bench/bench_evaluate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cryozssr.ops import fourier_shift
from cryozssr.register import band_mean, estimate_shift, frc_curve

#: FRC bands in cycles per HR pixel: below the LR Nyquist, LR Nyquist -> 1.33x, 1.33x -> 1.67x.
FRC_BANDS: dict[str, tuple[float, float]] = {
    "below_nyquist": (0.02, 0.25),
    "nyquist_1.33x": (0.25, 1.0 / 3.0),
    "1.33x_1.67x": (1.0 / 3.0, 5.0 / 12.0),
}


@dataclass(frozen=True)
class FrcResult:
    """``frc`` per shell at ``k`` (cycles/px of the image grid), the shift applied and band means."""

    k: torch.Tensor
    frc: torch.Tensor
    shift_px: tuple[float, float]
    bands: dict[str, float]


def edge_taper(shape: tuple[int, int], *, width_px: int, device=None) -> torch.Tensor:
    """``(h, w)`` window: 1 inside, a raised-cosine fall to 0 over ``width_px`` at every edge."""
    h, w = shape

    def ramp(n: int) -> torch.Tensor:
        d = torch.minimum(torch.arange(n, device=device), torch.arange(n, device=device).flip(0))
        t = (d.double() / max(width_px, 1)).clamp(max=1.0)
        return 0.5 - 0.5 * torch.cos(torch.pi * t)

    return (ramp(h)[:, None] * ramp(w)[None, :]).float()


def tapered(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Subtract the window-weighted mean, then apply ``window`` (no edge step, no DC spike)."""
    mean = (image * window).sum() / window.sum()
    return (image - mean) * window


def register_and_frc(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    taper_px: int = 32,
    max_shift_px: float = 16.0,
    bands: dict[str, tuple[float, float]] | None = None,
) -> FrcResult:
    """FRC of ``image`` (h, w) against ``reference`` (h, w) after sub-pixel registration.

    ``image`` is moved onto ``reference`` with :func:`~cryozssr.register.estimate_shift` and a Fourier
    shift, then both get the same soft edge taper (``taper_px``), so the periodic wrap of the
    shift and the image edges add no spurious correlation. ``bands`` (default :data:`FRC_BANDS`,
    in cycles/px of this grid) that reach beyond 0.5 are skipped.
    """
    if image.shape != reference.shape or image.ndim != 2:
        raise ValueError(
            f"image {tuple(image.shape)} and reference {tuple(reference.shape)} differ"
        )
    image = image.double()
    reference = reference.double()
    shift = estimate_shift(image, reference, max_shift_px=max_shift_px)
    moved = fourier_shift(image, shift)
    window = edge_taper(tuple(image.shape), width_px=taper_px, device=image.device).double()
    k, frc = frc_curve(tapered(moved, window), tapered(reference, window))
    out = {}
    for name, (lo, hi) in (FRC_BANDS if bands is None else bands).items():
        if hi <= 0.5 + 1e-9:
            out[name] = band_mean(k, frc, lo, hi)
    return FrcResult(k=k, frc=frc, shift_px=(float(shift[0]), float(shift[1])), bands=out)
