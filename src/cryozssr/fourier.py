"""Fourier bookkeeping, one home for every stage: frequency grids, radial shells (one rounding
rule), phase ramps, Fourier crops, and the aliases of an LR spectrum on the HR grid.

Conventions: frequencies in cycles per pixel, in ``torch.fft`` order (non-negative, then negative);
``rfft`` grids are ``(h, w // 2 + 1)``. A radius ``|k|`` belongs to the *nearest* shell:
``round(|k| * shells_per_cycle)`` (shell ``i`` is centred on ``i / shells_per_cycle``), the one
rule of :func:`shell_index`. A phase ramp ``exp(-2 pi i k.s)`` moves content by ``+s`` pixels, as
:func:`cryozssr.ops.fourier_shift` does.

Aliases. Notation (one axis; the 2D quantities are outer products). The LR image has ``n`` pixels, the HR
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
from collections.abc import Callable, Sequence

import torch


def rfft_frequency_grid(
    shape: tuple[int, int], *, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ky, kx)`` grids in cycles/pixel for ``torch.fft.rfft2`` of an image of ``shape``.

    Returns two ``(h, w // 2 + 1)`` float32 tensors.
    """
    h, w = shape
    ky = torch.fft.fftfreq(h, device=device)[:, None].expand(h, w // 2 + 1)
    kx = torch.fft.rfftfreq(w, device=device)[None, :].expand(h, w // 2 + 1)
    return ky, kx


def rfft_radius(shape: tuple[int, int], *, device: torch.device | None = None) -> torch.Tensor:
    """Radial spatial frequency ``|k|`` in cycles/pixel on the ``rfft2`` grid of ``shape``."""
    ky, kx = rfft_frequency_grid(shape, device=device)
    return torch.sqrt(ky**2 + kx**2)


def shell_index(
    radius_cycles_per_px: torch.Tensor, shells_per_cycle: float, *, max_shell: int | None = None
) -> torch.Tensor:
    """The radial shell of every ``|k|``: ``round(|k| * shells_per_cycle)`` (long), at most
    ``max_shell`` if given. The one shell rule of cryozssr (FRC, FSC, spectra, per-shell gains)."""
    shell = (radius_cycles_per_px * shells_per_cycle).round().long()
    return shell if max_shell is None else torch.clamp(shell, max=max_shell)


SHELL_BLOCK_ELEMENTS = 2**22
"""Frequencies of an ``rfft2`` half plane put on shells at a time by :func:`rfft_shell_sums`."""


def rfft_shell_sums(
    terms: Callable[[slice], Sequence[torch.Tensor]],
    shape: tuple[int, int],
    *,
    shells_per_cycle: float,
    n_shells: int,
    full_plane: bool,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Sums on radial shells of values on the ``rfft2`` half plane of an ``(h, w)`` image.

    ``terms(rows)`` gives the values on a block of ``rows``: a sequence of ``(..., rows, w // 2 +
    1)`` real tensors (leading dimensions pooled). Shell ``round(|k| shells_per_cycle)`` (the
    :func:`shell_index` rule), the shells past ``n_shells - 1`` counted in the last.
    ``full_plane``: the columns the half plane mirrors count twice (sums over the whole plane);
    else every half-plane coefficient once. Returns ``(len(terms) + 1, n_shells)`` float64, the
    last row the number of coefficients (as counted). A block of rows at a time: no full-size
    index or float64 table.
    """
    h, w = shape
    weight = torch.ones(w // 2 + 1, dtype=torch.float64, device=device)
    if full_plane:
        weight[1 : (w - 1) // 2 + 1] = 2.0
    ky = torch.fft.fftfreq(h, dtype=torch.float64, device=device)[:, None]
    kx = torch.fft.rfftfreq(w, dtype=torch.float64, device=device)[None, :]
    sums: torch.Tensor | None = None
    step = max(1, SHELL_BLOCK_ELEMENTS // weight.numel())
    for r0 in range(0, h, step):
        rows = slice(r0, r0 + step)
        radius = torch.sqrt(ky[rows] ** 2 + kx**2)
        shell = shell_index(radius, shells_per_cycle, max_shell=n_shells - 1).flatten()
        values = list(terms(rows))
        if sums is None:
            sums = torch.zeros(len(values) + 1, n_shells, dtype=torch.float64, device=device)
        for i, v in enumerate(values):
            pooled = (weight * v.double()).reshape(-1, *v.shape[-2:]).sum(0)
            sums[i] += torch.bincount(shell, pooled.flatten(), minlength=n_shells)
        ones = weight.expand(shell.numel() // weight.numel(), -1)
        sums[-1] += torch.bincount(shell, ones.flatten(), minlength=n_shells)
    assert sums is not None
    return sums


def box_transfer_rfft(shape: tuple[int, int], factor: int = 2, *, device=None) -> torch.Tensor:
    """Amplitude transfer of the discrete ``factor x factor`` box *average* on the fine grid (rfft layout).

    ``D(ky) * D(kx)`` with ``D(k) = sin(pi f k) / (f sin(pi k))`` (``cos(pi k)`` for ``f = 2``), k in
    cycles per fine pixel. This is what :func:`~cryozssr.ops.box_sum` (divided by ``f^2``) does to
    an image already sampled on the fine grid; the block-centre phase ramp (half a fine pixel per
    axis for ``f = 2``) is left out. Together with the fine pixel's own aperture ``sinc(k)`` it gives
    the coarse pixel's aperture ``sinc(f k)``.
    """
    ky, kx = rfft_frequency_grid(shape, device=device)

    def dirichlet(k: torch.Tensor) -> torch.Tensor:
        den = factor * torch.sin(torch.pi * k)
        safe = torch.where(den.abs() < 1e-12, torch.ones_like(den), den)
        return torch.where(
            den.abs() < 1e-12, torch.ones_like(k), torch.sin(torch.pi * factor * k) / safe
        )

    return dirichlet(ky) * dirichlet(kx)


def phase_ramp(ky: torch.Tensor, kx: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """``exp(-2 pi i k.s)``: the spectrum factor moving content by ``(..., 2)`` shifts, ``(..., hc, wr)``.

    ``ky`` ``(hc,)`` and ``kx`` ``(wr,)`` in cycles per pixel; separable (two small exponentials,
    one outer product), complex64. Precision follows the grids: float64 grids give float64 phases
    (motion correction, where shifts are many pixels), float32 grids float32 phases (simulation).
    """
    if ky.dtype == torch.float64:
        s = shifts_px.to(torch.float64)
        ey = torch.exp(-2j * math.pi * ky * s[..., 0, None]).to(torch.complex64)  # (..., hc)
        ex = torch.exp(-2j * math.pi * kx * s[..., 1, None]).to(torch.complex64)  # (..., wr)
    else:
        s = shifts_px.to(ky.dtype)
        ey = torch.polar(torch.ones_like(ky), -2 * math.pi * ky * s[..., 0, None])
        ex = torch.polar(torch.ones_like(kx), -2 * math.pi * kx * s[..., 1, None])
    return ey[..., :, None] * ex[..., None, :]


def crop_rfft(spectrum: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Keep the lowest ``shape = (hc, wc)`` frequencies of an ``rfft2`` spectrum ``(..., h, w//2+1)``.

    Rows stay in FFT order: ``(hc + 1) // 2`` non-negative, then ``hc // 2`` negative; ``wc // 2 + 1``
    columns. (A Fourier crop: resampling to ``(hc, wc)`` pixels, or a band limit for speed.)
    """
    h = spectrum.shape[-2]
    hc, wc = shape
    if hc < h:
        spectrum = torch.cat(
            [spectrum[..., : (hc + 1) // 2, :], spectrum[..., h - hc // 2 :, :]], -2
        )
    return spectrum[..., : wc // 2 + 1]


def cropped_rfft(images: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    """``rfft2`` of ``(..., h, w)`` images keeping the ``crop = (hc, wc)`` lowest frequencies
    (:func:`crop_rfft`): ``(..., hc, wc // 2 + 1)`` complex."""
    return crop_rfft(torch.fft.rfft2(images), crop)


def cropped_frequencies(
    shape: tuple[int, int], crop: tuple[int, int], *, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies ``(hc,)`` and ``(wc//2+1,)`` (float64, cycles per original pixel) of
    :func:`cropped_rfft`."""
    h, w = shape
    hc, wc = crop
    ky = torch.fft.fftfreq(h, device=device, dtype=torch.float64)
    if hc < h:
        ky = torch.cat([ky[: (hc + 1) // 2], ky[h - hc // 2 :]])
    kx = torch.fft.rfftfreq(w, device=device, dtype=torch.float64)[: wc // 2 + 1]
    return ky, kx


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
