r"""Frequency-domain multi-frame super-resolution (Tsai & Huang 1984), dose-weighted and regularised.

Model (global shift per frame, ``factor`` f = 2 below; see :mod:`cryozssr.baselines._fourier`).
``x`` is the HR image (counts per HR pixel per frame) at the frame-0 position, *with the signal
filter of a dose-weighted average* (``qbar(K) = sqrt(mean_t q_t(K)^2)``), so that its LR box sum
is what the dose-weighted LR average estimates. Frame ``t`` (LR, counts) is the f x f box sum of
the specimen moved by ``s_t`` (LR px; ``2 s_t`` HR px) and damaged by the exposure filter ``q_t``:

.. math::

   Y_t(k) = \sum_{a,b} \underbrace{\tfrac{1}{f^2} B(K_{ab}) e^{-2\pi i K_{ab}\cdot 2 s_t}
            \tfrac{q_t(K_{ab})}{\bar q(K_{ab})}}_{A_{t,ab}(k)} X(K_{ab}) + N_t(k)

with ``K_ab = (k_y + a h, k_x + b w)`` the f^2 HR frequencies that fold onto the LR frequency ``k``
(signed, cycles/HR px in the phase), ``B`` the f x f box sum's transfer (aperture and half-pixel
phase) and ``N_t`` Poisson noise, white with variance ``sigma^2 = mu h w`` per coefficient
(``mu`` = mean counts per LR pixel per frame: Poisson variance = mean). At every ``k`` we solve

.. math::

   \min_X \sum_t |Y_t - A_t X|^2 + \lambda \|X - X_0\|^2, \qquad
   \lambda = \rho\, \sigma^2 / P = \rho\, \mu / v,

a 4-unknown (f^2) Tikhonov problem, batched over all ``k`` with the normal equations. ``X_0`` is the
Fourier (zero-padding) upsampling of the aligned, dose-weighted average, so whatever the frames
cannot determine falls back to the ``fourier`` baseline (no motion: the system has rank 1 at
every ``k``). ``P = v h w`` is the per-frame signal power per coefficient of a white-spectrum
prior, ``v`` the signal variance per LR pixel (variance of the aligned average minus its noise
variance ``mu / t``), so ``lambda`` is the inverse per-frame SNR: ``rho = 1`` would be the Wiener
(MSE) weight for that prior. The default ``rho`` (``regularisation``) is lighter, 0.25: on
development movies (a simulated 256-px movie, a low-contrast synthetic texture) the FRC past the
LR Nyquist rose as ``rho`` fell from 3 to ~0.1 and flattened there; a per-ring (coloured) Wiener
weight, tried first, over-regularised the weak high frequencies and did worse than shift-and-add.

With a ``signal`` spectrum (:class:`RadialSpectrum`, the signal power per HR pixel on radial
shells) the weight becomes the Gaussian prior of that spectrum and the solve the MMSE (Wiener)
estimate, coefficient by coefficient and alias by alias:

.. math::

   \min_X \sum_t |Y_t - A_t X|^2 + \sum_{ab} \frac{\sigma^2}{S(K_{ab})} |X(K_{ab})|^2 .

Its per-coefficient posterior mean is what maximises the FRC within a shell, so it weighs every
alias by how well this movie's shifts and dose determine it. The result is then divided, shell by
shell, by its mean signal gain (the diagonal of the resolution matrix ``(G + \Lambda)^{-1} G``):
the within-shell weighting stays, while the radial transfer is one, as in the data, so that a
CTF-aware step downstream (3D reconstruction, CTF fitting) sees the data's own radial transfer
(CTF, detector MTF, dose envelope) and no extra filter. The output is then not the minimum-MSE
image (its noise past the Nyquist is about twice the unrescaled one's). Without the rescaling
the output carries a CTF^2-like radial filter that differs between micrographs and mis-weights their
particles in 3D. :mod:`cryozssr.baselines.mmse`
estimates ``S`` from the movie itself (even/odd half reconstructions).

Local motion and large frames: the model is solved on overlapping tiles, each with the shifts at
its centre (``MotionField.shifts_at``), frames cut at the integer part of that shift, tiles
blended with raised-cosine windows. Memory is bounded by the tile size and ``frame_chunk``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cryozssr.baselines._common import check_movie, exposure_filters, rms_exposure_filter
from cryozssr.dose import Exposure
from cryozssr.errors import OptionError
from cryozssr.fourier import (
    alias_frequencies,
    assemble_hr_spectrum,
    box_response,
    shell_index,
    zero_padding_weights,
)
from cryozssr.motion.field import MotionField
from cryozssr.tiling import blend_window, tile_starts

UNIT_TRANSFER_FLOOR = 1e-2
"""Smallest mean gain a shell is divided by (shells the movie cannot resolve are not blown up)."""


def smooth_shells(power: torch.Tensor, width: int) -> torch.Tensor:
    """Running mean of a radial table over ``width`` (odd) shells, the ends padded by replication."""
    if width <= 1:
        return power
    kernel = torch.ones(1, 1, width, dtype=power.dtype, device=power.device) / width
    padded = torch.nn.functional.pad(power[None, None], (width // 2,) * 2, mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel)[0, 0]


@dataclass(frozen=True)
class RadialSpectrum:
    """Signal power per HR pixel (``E|fft2(x)(K)|^2 / n_pixels``) on radial shells of ``|K|``.

    ``power_per_px[i]`` is the power on the shell ``|K| ~ i * shell_width_cycles`` (cycles/HR
    px); beyond the last shell the last value holds. Per pixel, so one spectrum serves every tile
    of a micrograph, once blurred to the tile's coarser frequency grid (:meth:`for_grid`; on a
    whole frame that is a 3-shell running mean, which left the benchmark FRC unchanged).
    """

    power_per_px: torch.Tensor
    shell_width_cycles: float

    def for_grid(self, n_px: int) -> RadialSpectrum:
        """The spectrum as an ``n_px``-pixel tile sees it: averaged over ~3 of its frequency steps.

        Looked up unblurred, a 64-px tile lost ~0.02 FRC past the Nyquist against the whole frame
        (a reviewer's check); averaged over 1 step it still lost 0.02, over 3 or 6 steps ~0.004.
        """
        width = round(3.0 / (n_px * self.shell_width_cycles))  # 3 tile steps: measured best
        if width <= 1:
            return self
        width += 1 - width % 2  # odd
        table = self.power_per_px
        return RadialSpectrum(
            torch.cat([table[:1], smooth_shells(table[1:], width)]), self.shell_width_cycles
        )

    def at(self, radius_cycles_per_px: torch.Tensor) -> torch.Tensor:
        """The power per pixel at ``radius_cycles_per_px`` (nearest shell)."""
        table = self.power_per_px.to(radius_cycles_per_px.device, torch.float64)
        index = shell_index(radius_cycles_per_px, 1.0 / self.shell_width_cycles)
        return table[index.clamp(0, table.numel() - 1)]


def misr(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None = None,
    factor: int = 2,
    regularisation: float = 0.25,
    tile_size_px: int | None = None,
    tile_overlap_px: int = 32,
    frame_chunk: int = 4,
    signal: RadialSpectrum | None = None,
) -> torch.Tensor:
    """Multi-frame SR of ``(t, h, w)`` LR frames -> ``(factor h, factor w)`` (counts per HR px per frame).

    ``motion`` is in LR pixels (``shifts[t]`` = specimen position in frame t relative to frame 0).
    ``exposure=None`` (or an unknown dose per frame) means no dose weighting. ``regularisation``
    scales the noise-based Tikhonov weight (module docstring). Tiles are ``tile_size_px`` LR
    pixels, overlapping by ``tile_overlap_px``; ``None``: the whole frame (periodic) when the motion
    is global and the frames are at most 1024 px, else 512 px tiles, or 128 px with local motion.
    ``signal``: solve for the MMSE estimate under that signal spectrum instead (module docstring);
    ``regularisation`` is then unused.
    """
    check_movie(frames, motion, factor=factor, min_frames=2, method="misr")
    if regularisation < 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    t, h, w = frames.shape
    if tile_size_px is None:
        tile_size_px = (
            128 if motion.local_shifts_px is not None else (1024 if max(h, w) <= 1024 else 512)
        )
    if not 0 <= 2 * tile_overlap_px < tile_size_px:
        raise OptionError(
            f"tile overlap ({tile_overlap_px} px) must be below half the tile size ({tile_size_px} px)"
        )
    out_dtype = frames.dtype if frames.is_floating_point() else torch.float32
    opts = dict(
        factor=int(factor),
        exposure=exposure,
        regularisation=regularisation,
        frame_chunk=frame_chunk,
        signal=signal,
    )
    if motion.local_shifts_px is None and h <= tile_size_px and w <= tile_size_px:
        shifts = motion.global_shifts_px.to(frames.device, torch.float64)
        return _solve_tile(frames, shifts, **opts).to(out_dtype)

    f = int(factor)
    out = torch.zeros(f * h, f * w, dtype=torch.float64, device=frames.device)
    weight = torch.zeros_like(out)
    for y0, ly in tile_starts(h, tile_size_px, tile_overlap_px):
        for x0, lx in tile_starts(w, tile_size_px, tile_overlap_px):
            centre = torch.tensor(
                [[y0 + (ly - 1) / 2, x0 + (lx - 1) / 2]], device=motion.global_shifts_px.device
            )
            s = motion.shifts_at(centre)[:, 0].to(frames.device, torch.float64)  # (t, 2)
            lo = torch.tensor([-y0, -x0], device=frames.device)
            hi = torch.tensor([h - ly - y0, w - lx - x0], device=frames.device)
            offset = torch.minimum(torch.maximum(s.round().long(), lo), hi)  # (t, 2) integer cut
            rows = y0 + offset[:, 0, None] + torch.arange(ly, device=frames.device)
            cols = x0 + offset[:, 1, None] + torch.arange(lx, device=frames.device)
            frame_index = torch.arange(t, device=frames.device)[:, None, None]
            tile = frames[frame_index, rows[:, :, None], cols[:, None, :]]
            sr = _solve_tile(tile, s - offset, **opts)
            win_y = _window(y0, ly, h, tile_overlap_px * f, f)
            win = (win_y[:, None] * _window(x0, lx, w, tile_overlap_px * f, f)).to(out.device)
            out[f * y0 : f * (y0 + ly), f * x0 : f * (x0 + lx)] += win * sr
            weight[f * y0 : f * (y0 + ly), f * x0 : f * (x0 + lx)] += win
    return (out / weight).to(out_dtype)


def _window(start: int, length: int, n: int, overlap_hr: int, f: int) -> torch.Tensor:
    """Blending weights ``(f length,)`` on HR pixels for a tile overlapping its neighbours by
    ``overlap_hr``: zero on the outer quarter of the overlap (where the periodic tile model is
    wrong), a raised cosine over the middle half (:func:`cryozssr.tiling.blend_window`)."""
    margin = overlap_hr // 4
    ramp = max(overlap_hr - 2 * margin, 1)
    rise, fall = start > 0, start + length < n
    return blend_window(f * length, margin=margin, ramp=ramp, rise=rise, fall=fall)


def _solve_tile(
    frames: torch.Tensor,
    shifts: torch.Tensor,
    *,
    factor: int,
    exposure: Exposure | None,
    regularisation: float,
    frame_chunk: int,
    signal: RadialSpectrum | None = None,
) -> torch.Tensor:
    """Solve the module's model for one ``(t, h, w)`` tile with global ``(t, 2)`` LR shifts."""
    t, h, w = frames.shape
    f, n = factor, factor * factor
    dev = frames.device
    pix = exposure.pixel_size_angstrom if exposure is not None else 1.0
    fy, fx = alias_frequencies(h, f, device=dev), alias_frequencies(w, f, device=dev)  # (h|w, f)
    base = box_response(fy, f)[:, None, :, None] * box_response(fx, f)[None, :, None, :] / f**2
    rad_hr = torch.sqrt(fy[:, None, :, None] ** 2 + fx[None, :, None, :] ** 2)  # (h, w, f, f)
    qbar_hr = rms_exposure_filter(rad_hr, t, exposure, pixel_size_angstrom=pix / f)
    ky = torch.fft.fftfreq(h, device=dev, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, device=dev, dtype=torch.float64)[None, :]
    rad_lr = torch.sqrt(ky**2 + kx**2)
    qbar_lr = rms_exposure_filter(rad_lr, t, exposure, pixel_size_angstrom=pix)

    gram = torch.zeros(h, w, n, n, dtype=torch.complex128, device=dev)
    rhs = torch.zeros(h, w, n, dtype=torch.complex128, device=dev)
    average = torch.zeros(h, w, dtype=torch.complex128, device=dev)  # aligned dose-weighted mean
    for c0 in range(0, t, frame_chunk):
        sl = slice(c0, c0 + frame_chunk)
        spectra = torch.fft.fft2(frames[sl].double())
        s = shifts[sl]
        py = torch.exp(-2j * math.pi * fy * f * s[:, 0, None, None])  # (c, h, f)
        px = torch.exp(-2j * math.pi * fx * f * s[:, 1, None, None])  # (c, w, f)
        model = base * py[:, :, None, :, None] * px[:, None, :, None, :]  # (c, h, w, f, f)
        weights_lr = torch.full_like(rad_lr, 1.0 / t)[None]
        q_hr = exposure_filters(rad_hr, t, exposure, pixel_size_angstrom=pix / f, frames=sl)
        if q_hr is not None and qbar_hr is not None and qbar_lr is not None:
            model = model * (q_hr / qbar_hr)
            q_lr = exposure_filters(rad_lr, t, exposure, pixel_size_angstrom=pix, frames=sl)
            weights_lr = q_lr / (t * qbar_lr)
        model = model.reshape(-1, h, w, n)
        for a, y in zip(model, spectra, strict=True):
            gram += a.conj()[..., :, None] * a[..., None, :]
            rhs += a.conj() * y[..., None]
        align = torch.exp(2j * math.pi * (ky * s[:, 0, None, None] + kx * s[:, 1, None, None]))
        average += (weights_lr * spectra * align).sum(0)

    if signal is not None:  # MMSE: the Gaussian prior of the spectrum, per alias
        sigma2 = max(float(frames.double().mean()), 1e-12) * h * w  # Poisson, per LR coefficient
        power = signal.for_grid(f * max(h, w)).at(rad_hr).reshape(h, w, n) * (f * h) * (f * w)
        precision = sigma2 / power.clamp(min=1e-300)
        system = gram + torch.diag_embed(precision.to(gram.dtype))
        # one factorisation: the estimate, and the resolution matrix (G + Lambda)^-1 G whose
        # diagonal is each coefficient's signal gain, flattened per shell below
        both = torch.linalg.solve(system, torch.cat([rhs[..., None], gram], dim=-1))
        x = assemble_hr_spectrum(both[..., 0].reshape(h, w, f, f))
        gain = both[..., 1:].diagonal(dim1=-2, dim2=-1).real
        gain = assemble_hr_spectrum(gain.reshape(h, w, f, f))
        shell = shell_index(assemble_hr_spectrum(rad_hr), max(f * h, f * w)).flatten()
        mean_gain = torch.zeros(int(shell.max()) + 1, dtype=torch.float64, device=dev)
        mean_gain.index_add_(0, shell, gain.flatten())
        mean_gain /= torch.bincount(shell, minlength=mean_gain.numel()).clamp(min=1)
        x = x / mean_gain.clamp(min=UNIT_TRANSFER_FLOOR)[shell].reshape(x.shape)
        return torch.fft.ifft2(x).real
    wy, wx = zero_padding_weights(h, f, device=dev), zero_padding_weights(w, f, device=dev)
    prior = average[..., None, None] * (wy[:, None, :, None] * wx[None, :, None, :])
    lam = max(regularisation * _inverse_snr(frames, average), 1e-9 * t)
    eye = torch.eye(n, dtype=gram.dtype, device=dev)
    x = torch.linalg.solve(gram + lam * eye, rhs + lam * prior.reshape(h, w, n))
    return torch.fft.ifft2(assemble_hr_spectrum(x.reshape(h, w, f, f))).real


def _inverse_snr(frames: torch.Tensor, average: torch.Tensor) -> float:
    """``sigma^2 / P``: Poisson noise power per frame over the signal power of a white-spectrum prior.

    ``sigma^2 / (h w) = mu`` (mean counts per LR pixel per frame); ``P / (h w)`` is the signal
    variance per pixel: the variance of the aligned average ``average`` (its ``fft2``) minus its
    noise variance ``mu / t``. Floored so that a signal-free movie gets a large, finite weight.
    """
    t, h, w = frames.shape
    mu = max(float(frames.double().mean()), 1e-12)
    power = average.abs().pow(2)
    variance = float(power.sum() - power[0, 0]) / (h * w) ** 2
    signal = max(variance - mu / t, 1e-6 * mu / t)
    return mu / signal
