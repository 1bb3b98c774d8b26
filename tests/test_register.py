"""Sub-pixel registration recovers injected shifts; FRC behaves as a correlation per ring."""

import pytest
import torch

from cryozssr.ops import fourier_shift
from cryozssr.register import band_mean, estimate_shift, frc_curve


def _scene(h: int, w: int, seed: int, cutoff: float = 0.15) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft2(torch.randn(h, w, generator=g))
    ky = torch.fft.fftfreq(h)[:, None]
    kx = torch.fft.rfftfreq(w)[None, :]
    return torch.fft.irfft2(spec * torch.exp(-(ky**2 + kx**2) / cutoff**2), s=(h, w))


@pytest.mark.parametrize("shift", [(3.37, -5.81), (-0.42, 0.13), (0.0, 0.0), (10.5, 7.25)])
def test_estimate_shift_recovers_injected_shift(shift):
    a = _scene(96, 128, seed=0)
    b = fourier_shift(a, torch.tensor(shift))
    est = estimate_shift(a, b, upsample=100)
    assert torch.allclose(est, torch.tensor(shift, dtype=torch.float64), atol=0.011)


def test_estimate_shift_with_noise_and_search_window():
    a = _scene(128, 128, seed=1)
    g = torch.Generator().manual_seed(5)
    b = fourier_shift(a, torch.tensor([1.3, -2.6])) + 0.3 * a.std() * torch.randn(
        128, 128, generator=g
    )
    est = estimate_shift(a, b, lowpass_cycles_per_px=0.1, max_shift_px=4)
    assert torch.allclose(est, torch.tensor([1.3, -2.6], dtype=torch.float64), atol=0.05)


def test_frc_of_signal_plus_independent_noise_follows_the_snr():
    # two noisy copies of a white signal with SNR 1: FRC = SNR / (1 + SNR) = 0.5 in every ring
    g = torch.Generator().manual_seed(7)
    s = torch.randn(256, 256, generator=g, dtype=torch.float64)
    a = s + torch.randn(256, 256, generator=g, dtype=torch.float64)
    b = s + torch.randn(256, 256, generator=g, dtype=torch.float64)
    k, f = frc_curve(a, b)
    assert k[0] == 0 and float(k[-1]) < 0.5
    assert abs(band_mean(k, f, 0.1, 0.45) - 0.5) < 0.02
    # FRC ignores a per-ring scale: a filtered copy correlates perfectly with the original
    _, f2 = frc_curve(s, 3.0 * s)
    assert float(f2[1:].min()) > 0.999


def test_band_mean_rejects_an_empty_band():
    k = torch.linspace(0, 0.5, 10)
    with pytest.raises(ValueError, match="no shell"):
        band_mean(k, k, 0.6, 0.7)


def test_frc_pools_leading_dimensions():
    g = torch.Generator().manual_seed(9)
    s = torch.randn(6, 64, 64, generator=g, dtype=torch.float64)
    a = s + torch.randn(6, 64, 64, generator=g, dtype=torch.float64)
    b = s + torch.randn(6, 64, 64, generator=g, dtype=torch.float64)
    k, pooled = frc_curve(a, b)
    _, single = frc_curve(a[0], b[0])
    # pooling six pairs narrows the spread of the FRC of SNR-1 data around 0.5
    assert float((pooled[4:] - 0.5).abs().mean()) < float((single[4:] - 0.5).abs().mean())
    assert abs(band_mean(k, pooled, 0.1, 0.45) - 0.5) < 0.02
