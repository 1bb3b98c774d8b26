"""Fourier bookkeeping shared by the baselines: aliases of the LR spectrum on the HR grid.

Notation (one axis; the 2D quantities are outer products). The LR image has ``n`` pixels, the HR
grid ``N = f n`` (``f`` = ``factor``). LR pixel ``I`` covers HR pixels ``f I .. f I + f - 1``; its
centre is at HR coordinate ``f I + (f - 1) / 2``. Unnormalised DFTs (``torch.fft`` default).

* LR frequency index ``k`` (``0 .. n-1``) receives the HR frequencies ``K_a = k + a n`` (``a = 0 ..
  f-1``, HR indices): decimating ``z[N] -> z[f I]`` gives ``Y(k) = (1/f) sum_a Z(K_a)``.
* The ``f``-pixel sum ``z[m] = sum_d x[m + d]`` has transfer ``B(K) = sum_d exp(2 pi i d K / N)``:
  the aperture ``sin(pi f K/N) / sin(pi K/N)`` times the half-LR-pixel phase of the block centre.
* Zero-padding ("sinc") interpolation, phase-consistent with the grid: the HR pixel ``m`` is at LR
  coordinate ``(m - (f-1)/2) / f``, so the LR coefficient goes, unchanged in the counts-per-HR-pixel
  convention, to its *minimal* alias (signed ``K == k``) with the phase ``exp(-i pi (f-1) K / N)``;
  the LR Nyquist coefficient (even ``n``) is split evenly between ``+n/2`` and ``-n/2``.
"""

from __future__ import annotations

import math

import torch


def alias_frequencies(n_lr: int, factor: int, *, device=None) -> torch.Tensor:
    """Signed HR frequencies (cycles/HR px) of the aliases ``K_a = k + a n``: ``(n_lr, factor)``."""
    n_hr = n_lr * factor
    idx = torch.arange(n_lr, device=device)[:, None] + n_lr * torch.arange(factor, device=device)
    return torch.fft.fftfreq(n_hr, device=device, dtype=torch.float64)[idx]


def box_response(freq_hr: torch.Tensor, factor: int) -> torch.Tensor:
    """Transfer of the ``factor``-pixel sum at HR frequencies ``freq_hr`` (cycles/HR px), complex128."""
    d = torch.arange(factor, device=freq_hr.device, dtype=torch.float64)
    return torch.exp(2j * math.pi * freq_hr[..., None] * d).sum(-1)


def zero_padding_weights(n_lr: int, factor: int, *, device=None) -> torch.Tensor:
    """``(n_lr, factor)`` complex weights taking an LR coefficient to its aliases (one axis).

    ``1 * phase`` on the minimal alias, ``1/2 * phase`` on both ``+-n/2`` for the LR Nyquist
    coefficient, 0 elsewhere; phase ``exp(-i pi (f-1) K)`` with ``K`` in cycles/HR px.
    """
    freq = alias_frequencies(n_lr, factor, device=device)
    k_lr = torch.fft.fftfreq(n_lr, device=device, dtype=torch.float64)[:, None] / factor
    minimal = torch.isclose(freq, k_lr, atol=1e-12).double()
    if n_lr % 2 == 0:
        half = torch.tensor(0.5 / factor, dtype=torch.float64, device=device)
        nyq = torch.isclose(freq.abs(), half, atol=1e-12)
        minimal[n_lr // 2] = 0.5 * nyq[n_lr // 2].double()
    return minimal * torch.exp(-1j * math.pi * (factor - 1) * freq)


def assemble_hr_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``(..., h, w, f, f)`` alias values -> full HR spectrum ``(..., f h, f w)``.

    ``x[..., ky, kx, a, b]`` is the HR coefficient at index ``(ky + a h, kx + b w)``.
    """
    *lead, h, w, f, _ = x.shape
    n = len(lead)
    z = x.permute(*range(n), n + 2, n, n + 3, n + 1)  # (..., f_a, h, f_b, w)
    return z.reshape(*lead, f * h, f * w)


def fourier_upsample_spectrum(spectrum_lr: torch.Tensor, factor: int) -> torch.Tensor:
    """Zero-padding interpolation in Fourier space: LR ``fft2`` ``(..., h, w)`` -> HR ``(..., fh, fw)``.

    The result is the HR spectrum of an image in counts per HR pixel (see the module notes).
    """
    h, w = spectrum_lr.shape[-2:]
    wy = zero_padding_weights(h, factor, device=spectrum_lr.device)
    wx = zero_padding_weights(w, factor, device=spectrum_lr.device)
    weights = wy[:, None, :, None] * wx[None, :, None, :]  # (h, w, f, f)
    x = spectrum_lr.to(torch.complex128)[..., None, None] * weights
    return assemble_hr_spectrum(x)
