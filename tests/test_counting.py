"""Detector counting statistics: recover the efficiency, coincidence loss, noise spectrum and
neighbour correlation that :mod:`cryozssr.simulate.counting` injects."""

from __future__ import annotations

import math

import pytest
import torch

from cryozssr.errors import OptionError
from cryozssr.simulate import SimulationConfig
from cryozssr.simulate.counting import (
    COUNTING,
    CountingStatistics,
    count_electrons,
    counting_statistics,
    expected_counts,
    noise_power_spectrum,
)

SIZE = 128


def _flat_counts(stats, electrons_per_px=3.0, frames=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lam = torch.full((frames, SIZE, SIZE), electrons_per_px)
    return count_electrons(lam, stats=stats, generator=gen).double()


@pytest.mark.parametrize("detector", ["k3", "falcon4ec"])
def test_flat_field_mean_and_noise_spectrum_match_the_model(detector):
    stats = COUNTING[detector]
    counts = _flat_counts(stats)
    assert counts.mean().item() == pytest.approx(3.0 * stats.recorded_fraction, rel=0.01)
    spectra = torch.fft.fft2(counts - counts.mean(dim=(-2, -1), keepdim=True))
    nps = (spectra.abs() ** 2).mean(0) / SIZE**2
    k = torch.fft.fftfreq(SIZE, dtype=torch.float64)
    expected = noise_power_spectrum(k[:, None], k[None, :], stats=stats, electrons_per_px=3.0)
    radius = torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    # per band of radius, 0.05 cycles/px wide, past DC: within 5 %
    for lo in torch.arange(0.05, 0.7, 0.05):
        band = (radius >= lo) & (radius < lo + 0.05)
        ratio = nps[band].mean() / expected[band].mean()
        assert ratio.item() == pytest.approx(1.0, abs=0.05), (float(lo), float(ratio))


def test_neighbour_correlation_recovers_the_multiple_count_probability():
    p = 0.2
    stats = CountingStatistics(1.0, 0.0, p, 0.0)
    counts = _flat_counts(stats, electrons_per_px=2.0, frames=64)
    d = counts - counts.mean(dim=(-2, -1), keepdim=True)
    corr = ((d * torch.roll(d, 1, -1)).mean() / d.var()).item()
    # autocovariance at lag 1 is p/2 per detected electron, the variance 1 + p
    p_hat = 2 * corr / (1 - 2 * corr)
    assert p_hat == pytest.approx(p, abs=0.02)
    diagonal = ((d * torch.roll(d, (1, 1), (-2, -1))).mean() / d.var()).item()
    assert abs(diagonal) < 0.01  # neighbours across a corner are not shared


def test_ideal_counting_is_uncorrelated_poisson():
    counts = _flat_counts(None, electrons_per_px=2.0)
    assert counts.var().item() == pytest.approx(counts.mean().item(), rel=0.02)
    d = counts - counts.mean()
    assert abs(((d * torch.roll(d, 1, -1)).mean() / d.var()).item()) < 0.01


def test_coincidence_loss_follows_the_dose_rate_and_the_local_intensity():
    base = CountingStatistics(1.0, 0.01, 0.0, 10.0)  # r tau = 0.1 on a flat field
    counts = _flat_counts(base, electrons_per_px=4.0, frames=16)
    assert counts.mean().item() == pytest.approx(4.0 * math.exp(-0.1), rel=0.01)
    faster = CountingStatistics(1.0, 0.01, 0.0, 40.0)
    assert _flat_counts(faster, electrons_per_px=4.0, frames=16).mean().item() == pytest.approx(
        4.0 * math.exp(-0.4), rel=0.01
    )
    # a brighter half loses a larger fraction: contrast is compressed
    gen = torch.Generator().manual_seed(3)
    lam = torch.full((16, SIZE, SIZE), 2.0)
    lam[..., : SIZE // 2] = 6.0  # relative intensities 0.5 and 1.5
    counts = count_electrons(lam, stats=base, generator=gen).double()
    dim, bright = counts[..., SIZE // 2 :].mean().item(), counts[..., : SIZE // 2].mean().item()
    assert dim == pytest.approx(2.0 * math.exp(-0.05), rel=0.02)
    assert bright == pytest.approx(6.0 * math.exp(-0.15), rel=0.02)


def test_options_are_checked():
    with pytest.raises(OptionError, match="noise model"):
        counting_statistics("k3", "gaussian")
    with pytest.raises(OptionError, match="efficiency"):
        CountingStatistics(0.0, 0.0, 0.0, 1.0)
    with pytest.raises(OptionError, match="dose-rate"):
        SimulationConfig(dose_rate_e_per_px_per_s=-1.0).validate()
    with pytest.raises(OptionError, match="noise-model"):
        SimulationConfig(noise_model="white").validate()
    assert counting_statistics("ideal", "counting") is None
    assert counting_statistics("k3", "poisson") is None
    assert (
        counting_statistics(
            "k3", "counting", dose_rate_e_per_px_per_s=30.0
        ).dose_rate_e_per_px_per_s
        == 30.0
    )


def test_multiple_counting_transfer_is_what_the_simulator_divides_out():
    from cryozssr.simulate.counting import multiple_count_transfer_rfft

    p = 0.2
    stats = CountingStatistics(1.0, 0.0, p, 0.0)
    cycles = 40  # 40 / 128 = 0.31 cycles/px along x
    x = torch.arange(SIZE, dtype=torch.float64)
    lam = (4.0 * (1 + 0.5 * torch.cos(2 * math.pi * cycles * x / SIZE))).expand(64, SIZE, SIZE)
    counts = count_electrons(lam.float(), stats=stats, generator=torch.Generator().manual_seed(5))
    spectrum = torch.fft.rfft2(counts.double()).mean(0)
    modulation = 2 * spectrum[0, cycles].abs() / spectrum[0, 0].abs()
    transfer = multiple_count_transfer_rfft((SIZE, SIZE), oversample=1, p=p)[0, cycles]
    assert modulation.item() == pytest.approx(0.5 * transfer.item(), rel=0.03)
    assert transfer.item() < 0.95  # the effect is there to be measured


@pytest.mark.parametrize("detector", ["falcon4ec", None])
def test_expected_counts_are_the_mean_of_the_counts(detector):
    # an image with structure (the coincidence loss and the neighbours' repeats depend on it):
    # the mean of many counted frames is the expectation, pixel by pixel, within its noise
    stats = None if detector is None else COUNTING[detector]
    gen = torch.Generator().manual_seed(4)
    lam = (3.0 + torch.randn(32, 32, generator=gen)).clamp(min=0.1)
    n = 2000
    counts = count_electrons(lam.expand(n, 32, 32), stats=stats, generator=gen).double()
    expected = expected_counts(lam.double(), stats=stats)
    z = (counts.mean(0) - expected) / (counts.var(0) / n).sqrt()
    # (without the neighbours' repeats, the Falcon 4 pixels' z would average +8)
    assert abs(z.mean().item()) < 0.1 and z.std().item() == pytest.approx(1.0, abs=0.1)
