"""Sub-pixel image registration by cross-correlation (Guizar-Sicairos et al. 2008, Opt. Lett. 33:156).

Pure tensor code: ``estimate_shift(reference, moving)`` returns the ``(y, x)`` shift ``s`` such that
``moving ~= fourier_shift(reference, s)`` (see :mod:`cryozssr.ops` for the sign convention).
"""

from __future__ import annotations

import math

import torch

from cryozssr.fourier import rfft_shell_sums


def _upsampled_dft_patch(
    product: torch.Tensor, centre: torch.Tensor, *, upsample: int, half_width: float
) -> torch.Tensor:
    """Inverse DFT of ``product`` (full complex spectrum ``(h, w)``) on a fine grid around ``centre``.

    Returns the real correlation on a ``(n, n)`` grid of spacing ``1/upsample`` pixels.
    """
    h, w = product.shape
    n = math.ceil(2 * half_width * upsample) + 1
    offs = (torch.arange(n, device=product.device, dtype=torch.float64) - (n - 1) / 2) / upsample
    ys = centre[0].double() + offs
    xs = centre[1].double() + offs
    ky = torch.fft.fftfreq(h, device=product.device, dtype=torch.float64)
    kx = torch.fft.fftfreq(w, device=product.device, dtype=torch.float64)
    ey = torch.exp(2j * math.pi * ys[:, None] * ky[None, :])  # (n, h)
    ex = torch.exp(2j * math.pi * kx[:, None] * xs[None, :])  # (w, n)
    return (ey @ product.to(torch.complex128) @ ex).real


def estimate_shift(
    reference: torch.Tensor,
    moving: torch.Tensor,
    *,
    upsample: int = 50,
    lowpass_cycles_per_px: float | None = None,
    max_shift_px: float | None = None,
) -> torch.Tensor:
    """Estimate the ``(y, x)`` shift taking ``reference`` to ``moving`` (both ``(h, w)``).

    Cross-correlation with an optional Gaussian low-pass (``lowpass_cycles_per_px``, the 1/e
    frequency), a coarse integer peak, then a local upsampled-DFT refinement to ``1/upsample`` px.
    ``max_shift_px`` restricts the peak search. Returns a float64 ``(2,)`` tensor.
    """
    if reference.shape != moving.shape or reference.ndim != 2:
        raise ValueError("estimate_shift takes two (h, w) images of the same shape")
    h, w = reference.shape
    a = torch.fft.fft2((reference - reference.mean()).double())
    b = torch.fft.fft2((moving - moving.mean()).double())
    product = b * a.conj()
    if lowpass_cycles_per_px is not None:
        ky = torch.fft.fftfreq(h, device=a.device, dtype=torch.float64)[:, None]
        kx = torch.fft.fftfreq(w, device=a.device, dtype=torch.float64)[None, :]
        product = product * torch.exp(-(ky**2 + kx**2) / lowpass_cycles_per_px**2)
    xc = torch.fft.ifft2(product).real
    if max_shift_px is not None:
        yy = torch.fft.fftfreq(h, d=1.0 / h, device=a.device)[:, None]
        xx = torch.fft.fftfreq(w, d=1.0 / w, device=a.device)[None, :]
        xc = torch.where((yy.abs() <= max_shift_px) & (xx.abs() <= max_shift_px), xc, -torch.inf)
    idx = int(torch.argmax(xc))
    peak = torch.tensor([idx // w, idx % w], dtype=torch.float64, device=a.device)
    peak = torch.where(
        peak > torch.tensor([h // 2, w // 2], device=a.device),
        peak - torch.tensor([h, w], device=a.device),
        peak,
    )
    if upsample <= 1:
        return peak
    fine = _upsampled_dft_patch(product, peak, upsample=upsample, half_width=1.0)
    j = int(torch.argmax(fine))
    n = fine.shape[0]
    offs = (
        torch.tensor([j // n, j % n], dtype=torch.float64, device=a.device) - (n - 1) / 2
    ) / upsample
    return peak + offs


def frc_curve(
    a: torch.Tensor, b: torch.Tensor, *, n_shells: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fourier ring correlation of two ``(..., h, w)`` images.

    Returns ``(k, frc)``: shell-centre frequencies in cycles/pixel (0 .. 0.5) and the FRC per shell.
    Shells are ``1/min(h, w)`` wide unless ``n_shells`` is given. Leading dimensions are pooled:
    the shell sums of every pair are added before the ratio (one FRC of many small pairs).
    Vectorised (one ``bincount`` per sum), unlike torch-fourier-shell-correlation's per-shell loop.
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError("frc_curve takes two (..., h, w) images of the same shape")
    h, w = a.shape[-2:]
    # spectra at the images' precision (float32: complex64, FRC within ~1e-6 of complex128; a K3
    # frame's HR images are 94 Mpx)
    fa = torch.fft.rfft2(a if a.dtype == torch.float64 else a.float())
    fb = torch.fft.rfft2(b if b.dtype == torch.float64 else b.float())
    n = n_shells or min(h, w) // 2
    sums = rfft_shell_sums(
        lambda rows: frc_terms(fa[..., rows, :], fb[..., rows, :]),
        (h, w),
        shells_per_cycle=2 * n,
        n_shells=n + 1,  # shell i centred on i / (2n); past the last (n - 1) is dropped
        full_plane=True,
        device=a.device,
    )
    k = torch.arange(n, dtype=torch.float64, device=a.device) / (2 * n)
    return k, frc_from_sums(sums)[:n]


def frc_terms(fa: torch.Tensor, fb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What an FRC sums on shells of two spectra: ``Re(fa conj(fb))``, ``|fa|^2``, ``|fb|^2``."""
    return (fa * fb.conj()).real, fa.abs().square(), fb.abs().square()


def frc_from_sums(sums: torch.Tensor) -> torch.Tensor:
    """The FRC per shell from the shell sums of :func:`frc_terms` (rows 0-2)."""
    return sums[0] / torch.sqrt(sums[1] * sums[2]).clamp(min=1e-300)


def band_mean(k: torch.Tensor, values: torch.Tensor, low: float, high: float) -> float:
    """Mean of ``values`` over the shells with ``low <= k < high`` (cycles/pixel)."""
    sel = (k >= low) & (k < high)
    if not bool(sel.any()):
        raise ValueError(f"no shell in [{low}, {high})")
    return float(values[sel].mean())
