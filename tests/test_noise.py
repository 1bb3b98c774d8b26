"""The movie's own noise spectrum: recover coloured noise injected under a moving specimen."""

from __future__ import annotations

import math

import pytest
import torch

from _synthetic import band_limited_scene
from cryozssr.noise import frame_noise_spectrum, white_noise_equivalent
from cryozssr.ops import fourier_shift
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


def _bands(measured: torch.Tensor, expected: torch.Tensor) -> list[float]:
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    radius = torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    ratios = []
    # up to 0.47 cycles/px: the synthetic frames are Fourier-shifted copies of a periodic scene,
    # whose Nyquist row and column a real-valued shift cannot move (signal left in the pair
    # difference there); a detector's frames have no such artefact
    for lo in torch.arange(0.02, 0.47, 0.05):
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
    measured = frame_noise_spectrum(frames.float(), shifts)
    expected = sigma**2 * SIZE * SIZE * transfer.abs() ** 2
    for ratio in _bands(measured, expected):
        assert ratio == pytest.approx(1.0, abs=0.10)
    # the anisotropy is kept: along x the transfer has an extra cos term that y has not
    near_axis, across = [0, 1, 2, -2, -1], slice(SIZE // 10, 2 * SIZE // 5)
    ratio_measured = measured[near_axis][:, across].mean() / measured[across][:, near_axis].mean()
    ratio_expected = expected[near_axis][:, across].mean() / expected[across][:, near_axis].mean()
    assert float(ratio_expected) < 0.8  # the injected anisotropy is there to be seen
    assert float(ratio_measured) == pytest.approx(float(ratio_expected), rel=0.1)


def test_recovers_pixel_correlated_counting_noise_and_poisson_counts():
    signal, shifts = _moving_scene(2)
    electrons = 3.0 * signal
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    for detector in ("falcon4ec", None):
        stats = COUNTING.get(detector) if detector else None
        counts = count_electrons(
            electrons.float(), stats=stats, generator=torch.Generator().manual_seed(3)
        )
        measured = frame_noise_spectrum(counts.float(), shifts)
        if stats is None:  # Poisson: flat, the mean count per pixel
            expected = torch.full((SIZE, SIZE), float(counts.double().mean()) * SIZE * SIZE)
            assert white_noise_equivalent(measured) == pytest.approx(
                float(counts.double().mean()), rel=0.05
            )
        else:
            expected = (
                SIZE
                * SIZE
                * noise_power_spectrum(k[:, None], k[None, :], stats=stats, electrons_per_px=3.0)
            )
        for ratio in _bands(measured, expected):
            assert ratio == pytest.approx(1.0, abs=0.10)


def test_needs_two_frames():
    with pytest.raises(ValueError, match="2 frames"):
        frame_noise_spectrum(torch.zeros(1, 16, 16), torch.zeros(1, 2))
