"""The movie's own noise spectrum (the MMSE regime's weights): recover injected coloured noise,
and the same answer whatever the data's units."""

from __future__ import annotations

import math

import pytest
import torch

from _synthetic import band_limited_scene, synthetic_movie
from cryozssr.baselines.config import MmseConfig
from cryozssr.baselines.misr import TileSolver
from cryozssr.baselines.mmse import mmse
from cryozssr.dose import Exposure
from cryozssr.motion.field import MotionField
from cryozssr.ops import fourier_shift
from cryozssr.register import band_mean, frc_curve
from cryozssr.simulate.counting import COUNTING, count_electrons, noise_power_spectrum

SIZE, FRAMES = 128, 24


def _moving_scene(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(FRAMES, dtype=torch.float64)
    shifts = torch.stack([0.7 * t, -0.45 * t], dim=-1) + 0.2 * torch.randn(
        FRAMES, 2, generator=g, dtype=torch.float64
    )
    scene = band_limited_scene(SIZE, seed=seed)  # mean 1, contrast 0.3
    return fourier_shift(scene.expand(FRAMES, -1, -1), shifts), shifts


def _measured(frames: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """The noise spectrum the MMSE regime uses, on the full fft2 grid (from the rfft half)."""
    motion = MotionField(shifts.float(), (SIZE, SIZE))
    solver = TileSolver(
        frames,
        motion,
        exposure=None,
        factor=2,
        tile_size_px=None,
        tile_overlap_px=32,
        frame_chunk=8,
    )
    (tile,) = solver.tiles
    even, odd = solver.sums(tile, split=True)
    half = solver.noise(tile, even, odd)  # (h, w // 2 + 1)
    mirror = half[(-torch.arange(SIZE)) % SIZE][:, 1 : SIZE // 2].flip(-1)
    return torch.cat([half, mirror], dim=-1)


def _bands(measured: torch.Tensor, expected: torch.Tensor) -> list[float]:
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    radius = torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    ratios = []
    # up to 0.42 cycles/px: the synthetic frames are Fourier-shifted copies of a periodic scene,
    # whose Nyquist row and column a real-valued shift cannot move (signal left in the halves'
    # difference there, spread 4 bins by the smoothing); a detector's frames have no such artefact
    for lo in torch.arange(0.02, 0.42, 0.05):
        band = (radius >= lo) & (radius < lo + 0.05)
        ratios.append(float(measured[band].double().mean() / expected[band].double().mean()))
    return ratios


def test_recovers_an_injected_coloured_gaussian_noise_spectrum():
    signal, shifts = _moving_scene(0)
    g = torch.Generator().manual_seed(1)
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    radius2 = k[:, None] ** 2 + k[None, :] ** 2
    transfer = (
        1 / (1 + radius2 / 0.15**2) + 0.2 * torch.cos(2 * math.pi * k)[None, :]
    )  # anisotropic
    white = torch.randn(FRAMES, SIZE, SIZE, generator=g, dtype=torch.float64)
    noise = torch.fft.ifft2(torch.fft.fft2(white) * transfer).real
    sigma = 0.5
    frames = 100.0 * signal + sigma * noise  # arbitrary units: not counts
    measured = _measured(frames.float(), shifts)
    expected = sigma**2 * SIZE * SIZE * transfer.abs() ** 2
    for ratio in _bands(measured, expected):
        assert ratio == pytest.approx(1.0, abs=0.10)
    near_axis, across = [0, 1, 2, -2, -1], slice(SIZE // 10, 2 * SIZE // 5)
    ratio_measured = measured[near_axis][:, across].mean() / measured[across][:, near_axis].mean()
    ratio_expected = expected[near_axis][:, across].mean() / expected[across][:, near_axis].mean()
    assert float(ratio_expected) < 0.8  # the injected anisotropy is there to be seen
    assert float(ratio_measured) == pytest.approx(float(ratio_expected), rel=0.1)


@pytest.mark.parametrize("detector", ["falcon4ec", "poisson"])
def test_recovers_pixel_correlated_counting_noise_and_poisson_counts(detector):
    signal, shifts = _moving_scene(2)
    stats = COUNTING.get(detector)
    counts = count_electrons(
        (3.0 * signal).float(), stats=stats, generator=torch.Generator().manual_seed(3)
    )
    measured = _measured(counts.float(), shifts)
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    if stats is None:  # Poisson: flat, the mean count per pixel
        expected = torch.full((SIZE, SIZE), float(counts.double().mean()) * SIZE * SIZE)
    else:
        per_px = noise_power_spectrum(k[:, None], k[None, :], stats=stats, electrons_per_px=3.0)
        expected = SIZE * SIZE * per_px
    for ratio in _bands(measured, expected):
        assert ratio == pytest.approx(1.0, abs=0.10)


def test_the_mmse_regime_gives_the_same_answer_in_any_units():
    lr, shifts, truth = synthetic_movie(size_hr=256, n_frames=24, counts_per_hr_px=4.0)
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=1.0)

    def past_nyquist(frames, noise_from_data):
        config = MmseConfig(noise="measured" if noise_from_data else "poisson")
        image = mmse(frames, motion, exposure=exposure, config=config).image
        k, frc = frc_curve(image.double(), truth.double())
        return band_mean(k, frc, 0.25, 1 / 3), band_mean(k, frc, 1 / 3, 5 / 12)

    counts = past_nyquist(lr.float(), True)
    scaled = past_nyquist(100.0 * lr.float(), True)  # a scaled detector output, not counts
    assumed = past_nyquist(100.0 * lr.float(), False)  # Poisson assumed on it: mean = variance
    for a, b, c in zip(counts, scaled, assumed, strict=True):
        assert b == pytest.approx(a, abs=0.003)
        assert c < b - 0.005  # the white-Poisson assumption costs what the measured noise recovers
    assert past_nyquist(lr.float(), False)[0] == pytest.approx(counts[0], abs=0.003)  # on counts
