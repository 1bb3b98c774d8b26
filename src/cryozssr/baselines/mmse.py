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

Steps 1 and 3 share one pass over the movie (:func:`misr_halves_then_mmse`): the even and odd
frames' alias sums are kept apart, solved for the halves, and added for step 3. On a frame of many
tiles (past 1024 LR px) the spectrum of step 2 is measured on ``SPECTRUM_TILES`` tiles spread
over the frame, tile by tile (:class:`HalfSetShells`), and only those tiles' sums are kept until
it is known: the other tiles are solved as they are read, so memory does not grow with the
frame's area beyond the movie and the output (issue 14).

Why no network: by measurement (``bench/results/issue8_cnn_refinement.json``), small CNNs trained
per movie on these reconstructions (noise2noise at the output scale, residual or high-pass gain,
MSE or correlation losses, or on the LR frames through the exact forward model) never beat the
closed-form estimate past the Nyquist; the best tied it by staying the identity. The faithful
papers' networks (``zssr``) recover less than ``misr`` does (README). The half-set FRC of step 1 is kept in
the run record: a ground-truth-free view of the signal past the LR Nyquist in each movie (biased
upward where both halves share systematic errors, e.g. unmodelled local motion).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from cryozssr.baselines._common import check_movie
from cryozssr.baselines.config import MmseConfig
from cryozssr.baselines.misr import RadialSpectrum, TileSolver, smooth_shells
from cryozssr.dose import Exposure
from cryozssr.errors import InputError
from cryozssr.fourier import rfft_shell_sums
from cryozssr.motion.field import MotionField
from cryozssr.register import band_mean, frc_from_sums, frc_terms

NYQUIST_BANDS = {"nyquist_1.33x": (0.25, 1.0 / 3.0), "1.33x_1.67x": (1.0 / 3.0, 5.0 / 12.0)}
"""Bands past the LR Nyquist (cycles/HR px) reported from the half-set FRC."""

SPECTRUM_TILES = 16
"""Tiles, spread evenly over the frame, whose even and odd reconstructions measure the signal
spectrum (every tile when there are fewer). 16 tiles of 512 LR px (of a K3 frame's 108) pool,
past the LR Nyquist, ~13000 coefficients per shell before smoothing (~800 per tile); their alias
sums are all the default keeps in memory until the spectrum is known."""


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


class HalfSetShells:
    """Shell sums of pairs of reconstructions ``(H, W)`` with independent noise (even and odd
    frames), pair by pair (tile by tile, all tiles of one shape): their cross-spectrum per pixel
    on shells one frequency index wide (:meth:`spectrum`) and their FRC (:meth:`frc_bands`).

    Over tiles, the shell sums add: the estimate is the tiles' pooled cross-spectrum on the tile's
    frequency grid (the grid :meth:`RadialSpectrum.for_grid` blurs a whole-frame spectrum to for a
    tile anyway), each tile periodic as its solve is. One pair: the whole image's. Measured against
    the whole frame's blended halves (what ``mmse`` did before): identical on one tile; on the 2
    movies of the benchmark set (c) with their exact local motion (25 tiles of 128 LR px) the
    output's FRC past the Nyquist moved by +0.0005 / +0.0001; weighting each tile by its blending
    window, tried first, lost 0.002 in the second band there (the window blurs a small tile's
    spectrum).
    """

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.spectrum_sums: torch.Tensor | None = None  # (2, n): cross power per px, count
        self.frc_sums: torch.Tensor | None = None  # (4, m + 1): frc_terms, count

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add a pair (a tile's even and odd reconstructions, as solved: periodic)."""
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError(
                f"need two images of the same (H, W) shape, got {a.shape} and {b.shape}"
            )
        h, w = a.shape
        if self.shape is not None and self.shape != (h, w):
            raise ValueError(f"every pair must have one shape {self.shape}, got {(h, w)}")
        self.shape = (h, w)
        # complex64 spectra, shell sums in float64 (rfft_shell_sums: a block of rows at a time)
        fa, fb = torch.fft.rfft2(a.float()), torch.fft.rfft2(b.float())
        n = round(math.hypot((h // 2) / h, (w // 2) / w) * max(h, w)) + 1  # the corner's shell
        spectrum = rfft_shell_sums(
            lambda rows: ((fa[rows] * fb[rows].conj()).real / (h * w),),
            (h, w),
            shells_per_cycle=max(h, w),
            n_shells=n,
            full_plane=False,
            device=a.device,
        )
        m = min(h, w) // 2
        frc = rfft_shell_sums(
            lambda rows: frc_terms(fa[rows], fb[rows]),
            (h, w),
            shells_per_cycle=2 * m,
            n_shells=m + 1,
            full_plane=True,
            device=a.device,
        )
        self.spectrum_sums = (
            spectrum if self.spectrum_sums is None else self.spectrum_sums + spectrum
        )
        self.frc_sums = frc if self.frc_sums is None else self.frc_sums + frc

    def spectrum(
        self, *, smoothing_shells: int = 3, floor_fraction: float = 1e-2
    ) -> RadialSpectrum:
        """Signal power per pixel: ``Re(A conj(B))`` has it as its expectation (the noise terms
        average out); smoothed over ``smoothing_shells`` and floored at ``floor_fraction`` of its
        mean below the LR Nyquist (0.02-0.25 cycles/HR px)."""
        if smoothing_shells < 1 or smoothing_shells % 2 == 0:
            raise ValueError(f"smoothing_shells must be odd and >= 1, got {smoothing_shells}")
        if self.spectrum_sums is None or self.shape is None:
            raise ValueError("no reconstruction was added")
        total, count = self.spectrum_sums
        power = total / count.clamp(min=1)
        power = torch.cat([power[:1], smooth_shells(power[1:], smoothing_shells)])  # DC apart
        width = 1.0 / max(self.shape)
        radius = torch.arange(power.numel(), dtype=torch.float64, device=power.device) * width
        low = (radius >= 0.02) & (radius <= 0.25)
        reference = float(power[low].clamp(min=0).mean()) if bool(low.any()) else 0.0
        floor = max(floor_fraction * reference, 1e-12 * float(power[0].abs()), 1e-30)
        return RadialSpectrum(power.clamp(min=floor).cpu(), width)

    def frc_bands(self) -> dict[str, float]:
        """The pairs' FRC averaged over the bands past the LR Nyquist (``NYQUIST_BANDS``)."""
        if self.frc_sums is None or self.shape is None:
            raise ValueError("no reconstruction was added")
        m = min(self.shape) // 2
        k = torch.arange(m, dtype=torch.float64, device=self.frc_sums.device) / (2 * m)
        frc = frc_from_sums(self.frc_sums)[:m]
        return {n: band_mean(k, frc, lo, hi) for n, (lo, hi) in NYQUIST_BANDS.items()}


def half_set_spectrum(
    a: torch.Tensor, b: torch.Tensor, *, smoothing_shells: int = 3, floor_fraction: float = 1e-2
) -> RadialSpectrum:
    """Signal power per pixel of two reconstructions ``(H, W)`` with independent noise
    (:meth:`HalfSetShells.spectrum` of the one pair)."""
    shells = HalfSetShells()
    shells.add(a, b)
    return shells.spectrum(smoothing_shells=smoothing_shells, floor_fraction=floor_fraction)


def mmse(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure,
    config: MmseConfig = MmseConfig(),
    factor: int = 2,
    tile_size_px: int | None = None,
    frame_chunk: int = 8,
) -> MmseResult:
    """Super-resolve ``(t, h, w)`` LR frames 2x with the MMSE estimate (module docstring).

    ``tile_size_px``: as :func:`~cryozssr.baselines.misr` (``None``: its default tiling).
    """
    t = frames.shape[0]
    if t < 4:
        raise InputError(
            "the MMSE estimate reconstructs even and odd frames apart: it needs at least 4"
            f" frames, got {t}"
        )
    start = time.perf_counter()
    image, spectrum, half_set_frc, average = misr_halves_then_mmse(
        frames,
        motion,
        exposure=exposure,
        config=config,
        factor=factor,
        tile_size_px=tile_size_px,
        frame_chunk=frame_chunk,
    )
    return MmseResult(image, spectrum, half_set_frc, time.perf_counter() - start, average)


def spectrum_tiles(n_tiles: int, *, at_most: int = SPECTRUM_TILES) -> list[int]:
    """Indices of ``at_most`` of ``n_tiles`` tiles (row-major) spread evenly, or all of them."""
    if n_tiles <= at_most:
        return list(range(n_tiles))
    return sorted({round(i * (n_tiles - 1) / (at_most - 1)) for i in range(at_most)})


def misr_halves_then_mmse(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None,
    config: MmseConfig = MmseConfig(),
    factor: int = 2,
    tile_size_px: int | None = None,
    frame_chunk: int = 8,
) -> tuple[torch.Tensor, RadialSpectrum, dict[str, float], torch.Tensor]:
    """Even- and odd-frame ``misr`` of the spectrum tiles, the spectrum from them, then the MMSE
    solve of every tile's frames: ``(image, spectrum, half_set_frc, average)``.

    On the spectrum tiles (:func:`spectrum_tiles`; all tiles of a frame up to 1024 LR px, which is
    one tile) equal to ``misr`` of the even frames and of the odd frames (each with its frames'
    exposure) followed by ``misr(..., signal=spectrum)`` of all frames, but every frame of a tile
    is cut, transformed and summed once: the sums of all frames are the halves' added.
    ``config.noise == "measured"``: the noise spectrum of the MMSE weights is measured from each
    tile's even and odd sums (:func:`~cryozssr.baselines._alias_solve.noise_from_halves`);
    ``"poisson"``: white, variance = mean count, the assumption of earlier versions. ``average``
    is the LR dose-weighted average of all frames formed in the same pass (as in
    :func:`~cryozssr.baselines.misr.misr_with_average`). Memory: the movie, the two outputs, and
    the alias sums (``5 x 8`` bytes per LR pixel on the half plane) of the spectrum tiles.
    """
    check_movie(frames, motion, factor=factor, min_frames=4, method="misr")
    out_dtype = frames.dtype if frames.is_floating_point() else torch.float32
    solver = TileSolver(
        frames,
        motion,
        exposure=exposure,
        factor=factor,
        tile_size_px=tile_size_px,
        tile_overlap_px=32,
        frame_chunk=frame_chunk,
    )
    measured = config.noise == "measured"

    def read(tile):  # every frame of the tile cut and transformed once, even and odd apart
        even, odd = solver.sums(tile, split=True)
        return even, odd, even + odd, (even.average - odd.average if measured else None)

    shells = HalfSetShells()
    kept = {}
    for i in spectrum_tiles(len(solver.tiles)):
        tile = solver.tiles[i]
        even, odd, sums, difference = read(tile)
        shells.add(
            solver.tikhonov(tile, even, regularisation=config.regularisation),
            solver.tikhonov(tile, odd, regularisation=config.regularisation),
        )
        kept[i] = (sums, difference)
    spectrum = shells.spectrum(
        smoothing_shells=config.smoothing_shells, floor_fraction=config.floor_fraction
    )
    out, average = solver.blend(), solver.blend(factor=1)
    for i, tile in enumerate(solver.tiles):
        sums, difference = kept.pop(i) if i in kept else read(tile)[2:]
        out.add(tile, solver.mmse(tile, sums, spectrum, halves_difference=difference))
        average.add(tile, solver.average(tile, sums))
    return out.image().to(out_dtype), spectrum, shells.frc_bands(), average.image().to(out_dtype)
