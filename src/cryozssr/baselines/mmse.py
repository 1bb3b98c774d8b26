r"""``mmse``: the closed-form per-alias MMSE estimate with the movie's own signal spectrum.

A multi-frame method (with :func:`~cryozssr.baselines.misr` and
:func:`~cryozssr.baselines.shift_add`); until issue 12 it was Cryo-ZSSR's ``explicit`` regime.
Cryo-ZSSR's idea, kept: everything is learned from the movie itself, with no ground truth and no
external training data. What the papers' networks lack, added (issue 8): the per-frame sub-pixel
trajectories (global and local) are used explicitly to place every frame on the HR grid, each
frame is dose-weighted by its exposure filter, and the self-supervised target contains signal past
the LR Nyquist.

1. Even and odd frames are reconstructed separately on the HR grid by the frequency-domain alias
   solve of :func:`cryozssr.baselines.misr` (their noise is independent, their signal the same).
2. Their cross-spectrum, averaged on radial shells, estimates the signal power the movie holds at
   every HR frequency, past the LR Nyquist included (noise2noise at the output scale, in closed
   form): :func:`half_set_spectrum`. It is the power *as the halves carry it*, i.e. times the
   square of their transfer, which falls past the Nyquist (to ~0.3 at 0.42 cycles/HR px in a
   reviewer's check); step 3 is insensitive to such a per-shell scale at low SNR (4x less noise
   weight changed the benchmark FRC by < 0.001). CTF rings, envelope and detector MTF of this
   very movie are in it; where it is not above the noise it is floored.
3. All frames are solved again with that spectrum as the prior: the per-alias MMSE (Wiener)
   estimate (:func:`cryozssr.baselines.misr` with ``signal=``), which weighs each of the four
   aliases of an LR coefficient by how well this movie's shifts and dose determine it.

Steps 1 and 3 share one pass over the movie (:func:`cryozssr.baselines.misr.misr_halves_then_mmse`):
the even and odd frames' alias sums are kept apart, solved for the halves, and added for step 3.

Why no network: by measurement (``bench/results/issue8_cnn_refinement.json``), small CNNs trained
per movie on these reconstructions (noise2noise at the output scale, residual or high-pass gain,
MSE or correlation losses, or on the LR frames through the exact forward model) never beat the
closed-form estimate past the Nyquist; the best tied it by staying the identity. The faithful
papers' networks (``zssr``) recover less than ``misr`` does (README). The half-set FRC of step 1 is kept in
the run record: a ground-truth-free view of the signal past the LR Nyquist in each movie (biased
upward where both halves share systematic errors, e.g. unmodelled local motion).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from cryozssr.baselines.config import MmseConfig
from cryozssr.baselines.misr import RadialSpectrum, misr_halves_then_mmse, smooth_shells
from cryozssr.dose import Exposure
from cryozssr.errors import InputError
from cryozssr.fourier import shell_index
from cryozssr.motion.field import MotionField
from cryozssr.register import band_mean, frc_curve

SHELL_BLOCK_ELEMENTS = 2**22
"""Frequencies of a half-set spectrum summed on shells at a time."""

NYQUIST_BANDS = {"nyquist_1.33x": (0.25, 1.0 / 3.0), "1.33x_1.67x": (1.0 / 3.0, 5.0 / 12.0)}
"""Bands past the LR Nyquist (cycles/HR px) reported from the half-set FRC."""


@dataclass
class MmseResult:
    image: torch.Tensor
    """``(2h, 2w)`` counts per HR pixel per frame, specimen at its frame-0 position."""
    spectrum: RadialSpectrum
    half_set_frc: dict[str, float]
    seconds: float
    average: torch.Tensor
    """``(h, w)`` the motion-corrected, dose-weighted LR average, formed in the same pass."""

    def record(self) -> dict[str, Any]:
        return {
            "half_set_frc_past_nyquist": self.half_set_frc,
            "signal_power_per_px": [float(v) for v in self.spectrum.power_per_px],
            "shell_width_cycles_per_hr_px": self.spectrum.shell_width_cycles,
            "seconds": self.seconds,
        }


def half_set_spectrum(
    a: torch.Tensor, b: torch.Tensor, *, smoothing_shells: int = 3, floor_fraction: float = 1e-2
) -> RadialSpectrum:
    """Signal power per pixel of two reconstructions ``(H, W)`` with independent noise.

    ``Re(A conj(B))`` has the signal power as its expectation (the noise terms average out),
    averaged on radial shells one HR-frequency index wide, smoothed over ``smoothing_shells`` and
    floored at ``floor_fraction`` of its mean below the LR Nyquist (0.02-0.25 cycles/HR px).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two images of the same (H, W) shape, got {a.shape} and {b.shape}")
    if smoothing_shells < 1 or smoothing_shells % 2 == 0:
        raise ValueError(f"smoothing_shells must be odd and >= 1, got {smoothing_shells}")
    h, w = a.shape
    # complex64 spectra (a K3 frame's HR halves are 94 Mpx each); shell sums in float64, a block
    # of rows at a time (no full-size float64 or index table)
    spec_a = torch.fft.rfft2(a.float())
    spec_b = torch.fft.rfft2(b.float())
    ky = torch.fft.fftfreq(h, dtype=torch.float64, device=a.device)[:, None]
    kx = torch.fft.rfftfreq(w, dtype=torch.float64, device=a.device)[None, :]
    width = 1.0 / max(h, w)
    n = int(shell_index(torch.sqrt(ky.abs().max() ** 2 + kx.max() ** 2), max(h, w))) + 1
    total = torch.zeros(n, dtype=torch.float64, device=a.device)
    count = torch.zeros(n, dtype=torch.long, device=a.device)
    step = max(1, SHELL_BLOCK_ELEMENTS // kx.numel())
    for r0 in range(0, h, step):
        rows = slice(r0, r0 + step)
        shell = shell_index(torch.sqrt(ky[rows] ** 2 + kx**2), max(h, w)).flatten()
        cross = (spec_a[rows] * spec_b[rows].conj()).real.double() / (h * w)
        total.index_add_(0, shell, cross.flatten())
        count += torch.bincount(shell, minlength=n)
    power = total / count.to(total).clamp(min=1)
    power = torch.cat([power[:1], smooth_shells(power[1:], smoothing_shells)])  # DC kept apart
    radius = torch.arange(n, dtype=torch.float64, device=a.device) * width
    low = (radius >= 0.02) & (radius <= 0.25)
    reference = float(power[low].clamp(min=0).mean()) if bool(low.any()) else 0.0
    floor = max(floor_fraction * reference, 1e-12 * float(power[0].abs()), 1e-30)
    return RadialSpectrum(power.clamp(min=floor).cpu(), width)


def mmse(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure,
    config: MmseConfig = MmseConfig(),
) -> MmseResult:
    """Super-resolve ``(t, h, w)`` LR frames 2x with the MMSE estimate (module docstring)."""
    t = frames.shape[0]
    if t < 4:
        raise InputError(
            "the MMSE estimate reconstructs even and odd frames apart: it needs at least 4"
            f" frames, got {t}"
        )
    start = time.perf_counter()

    half_set_frc: dict[str, float] = {}

    def spectrum_of_halves(even: torch.Tensor, odd: torch.Tensor) -> RadialSpectrum:
        k, frc = frc_curve(even, odd)  # the halves are freed after this function
        half_set_frc.update({n: band_mean(k, frc, lo, hi) for n, (lo, hi) in NYQUIST_BANDS.items()})
        return half_set_spectrum(
            even,
            odd,
            smoothing_shells=config.smoothing_shells,
            floor_fraction=config.floor_fraction,
        )

    image, spectrum, average = misr_halves_then_mmse(
        frames,
        motion,
        spectrum_of_halves,
        exposure=exposure,
        regularisation=config.regularisation,
        noise_from_data=config.noise == "measured",
    )
    return MmseResult(image, spectrum, half_set_frc, time.perf_counter() - start, average)
