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


#: Outer radius (cycles/HR px) of the region past the LR Nyquist that ``past_nyquist`` covers.
PAST_NYQUIST_LIMIT = 5.0 / 12.0


@dataclass(frozen=True)
class FrcResult:
    """``frc`` per shell at ``k`` (cycles/px of the image grid), the shift applied and band means.

    ``past_nyquist``: the correlation over frequencies outside the LR square (``max(|ky|, |kx|)``
    above 0.25 cycles/px) up to :data:`PAST_NYQUIST_LIMIT`, i.e. only what no LR pixel could
    record; the radial bands also hold the square's in-band corners. ``None`` on an LR grid.
    """

    k: torch.Tensor
    frc: torch.Tensor
    shift_px: tuple[float, float]
    bands: dict[str, float]
    past_nyquist: float | None = None


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
    hr_grid: bool = True,
) -> FrcResult:
    """FRC of ``image`` (h, w) against ``reference`` (h, w) after sub-pixel registration.

    ``image`` is moved onto ``reference`` with :func:`~cryozssr.register.estimate_shift` and a Fourier
    shift, then both get the same soft edge taper (``taper_px``), so the periodic wrap of the
    shift and the image edges add no spurious correlation. ``hr_grid``: the images are on the 2x
    grid, so :attr:`FrcResult.past_nyquist` is measured. ``bands`` (default :data:`FRC_BANDS`,
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
    a, b = tapered(moved, window), tapered(reference, window)
    k, frc = frc_curve(a, b)
    past = past_nyquist_correlation(a, b) if hr_grid else None
    out = {}
    for name, (lo, hi) in (FRC_BANDS if bands is None else bands).items():
        if hi <= 0.5 + 1e-9:
            out[name] = band_mean(k, frc, lo, hi)
    return FrcResult(
        k=k, frc=frc, shift_px=(float(shift[0]), float(shift[1])), bands=out, past_nyquist=past
    )


def past_nyquist_correlation(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Correlation of two ``(h, w)`` 2x-grid images over frequencies past the LR Nyquist only.

    The region is outside the LR square (``max(|ky|, |kx|) > 0.25`` cycles/px) and inside the
    radius :data:`PAST_NYQUIST_LIMIT` (1.67x the LR Nyquist): the content no LR pixel records.
    """
    num, power_a, power_b = past_nyquist_sums(image, reference)
    den = (power_a * power_b) ** 0.5
    return num / den if den > 0 else 0.0


def past_nyquist_sums(image: torch.Tensor, reference: torch.Tensor) -> tuple[float, float, float]:
    """``(sum Re a b*, sum |a|^2, sum |b|^2)`` over :func:`past_nyquist_correlation`'s region (to
    pool the correlation over several image pairs)."""
    a, b = torch.fft.fft2(image.double()), torch.fft.fft2(reference.double())
    ky = torch.fft.fftfreq(image.shape[-2], dtype=torch.float64, device=image.device)[:, None]
    kx = torch.fft.fftfreq(image.shape[-1], dtype=torch.float64, device=image.device)[None, :]
    sel = (torch.maximum(ky.abs(), kx.abs()) > 0.25) & (ky**2 + kx**2 < PAST_NYQUIST_LIMIT**2)
    a, b = a[sel], b[sel]
    return (
        float((a * b.conj()).real.sum()),
        float(a.abs().pow(2).sum()),
        float(b.abs().pow(2).sum()),
    )
