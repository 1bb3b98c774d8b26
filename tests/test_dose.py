"""Grant & Grigorieff (2015) exposure filter and dose weights."""

import torch

from cryozssr.dose import (
    Exposure,
    critical_exposure,
    dose_weights_rfft,
    exposure_filter_rfft,
    frame_doses,
    movie_frame_doses,
)


def test_critical_exposure_matches_the_published_fit():
    # N_e(k) = 0.245 k^-1.665 + 2.81 at 300 kV; at 1/4 A^-1: 0.245 * 4^1.665 + 2.81
    k = torch.tensor([0.25])
    expected = 0.245 * 4**1.665 + 2.81
    assert abs(float(critical_exposure(k)) - expected) < 1e-4
    assert abs(float(critical_exposure(k, voltage_kv=200)) - 0.8 * expected) < 1e-4


def test_exposure_filter_attenuates_high_frequencies_more_with_dose():
    q = exposure_filter_rfft((64, 64), torch.tensor([1.0, 20.0]), pixel_size_angstrom=1.0)
    assert torch.allclose(q[:, 0, 0], torch.ones(2))  # no attenuation at k = 0
    # at Nyquist (0.5 1/A): N_e = 0.245 * 2^1.665 + 2.81; q = exp(-N / (2 N_e))
    ne = 0.245 * 2**1.665 + 2.81
    torch.testing.assert_close(
        q[1, 0, 32],
        torch.tensor(float(torch.exp(torch.tensor(-20.0 / (2 * ne))))),
        atol=1e-5,
        rtol=0,
    )
    assert float(q[1, 0, 32]) < float(q[0, 0, 32])


def test_dose_weights_are_a_plain_average_at_zero_frequency_and_flat_noise_everywhere():
    w = dose_weights_rfft((32, 32), 10, dose_per_frame_e_per_a2=2.0, pixel_size_angstrom=1.0)
    torch.testing.assert_close(w[:, 0, 0], torch.full((10,), 0.1), atol=1e-4, rtol=0)
    # noise power of the weighted average = sum w^2 = 1/t at every frequency
    torch.testing.assert_close((w**2).sum(0), torch.full((32, 17), 0.1), atol=1e-5, rtol=0)
    # late frames weigh less at high frequency
    assert float(w[-1, 0, 16]) < float(w[0, 0, 16])


def test_a_half_movie_keeps_the_mid_frame_doses_of_its_frames():
    e = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=1.5, pre_exposure_e_per_a2=0.3)
    full = frame_doses(20, 1.5, pre_exposure=0.3)
    for offset in (0, 1):
        half = movie_frame_doses(e.subset(range(offset, 20, 2)), 10)
        torch.testing.assert_close(half, full[offset::2])
        # a subset of a subset: the movie's own frames, not the subset's positions
        quarter = movie_frame_doses(e.subset(range(offset, 20, 2)).subset([1, 3]), 2)
        torch.testing.assert_close(quarter, full[[offset + 2, offset + 6]])
