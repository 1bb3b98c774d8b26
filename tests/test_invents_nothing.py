"""No method invents detail: on noise-only movies (no specimen, same dose and motion), two
independent realisations give outputs that share nothing past the LR Nyquist."""

from __future__ import annotations

import pytest
import torch

from _synthetic import synthetic_movie
from cryozssr.baselines import misr, shift_add
from cryozssr.baselines.mmse import mmse
from cryozssr.dose import Exposure
from cryozssr.motion.field import MotionField
from cryozssr.register import band_mean, frc_curve

PAST_NYQUIST = (0.25, 5.0 / 12.0)  # cycles/HR px: the LR Nyquist to 1.67x it


def _mmse(frames, motion, *, exposure):
    return mmse(frames, motion, exposure=exposure).image


@pytest.mark.parametrize("method", [misr, shift_add, _mmse], ids=["misr", "shift-add", "mmse"])
def test_noise_only_outputs_are_uncorrelated_past_the_nyquist(method):
    """Noise left past the LR Nyquist sits in few coefficients, so one small pair fluctuates by
    ~0.03: the FRC is pooled over 96 independent 128-px pairs (spread ~0.003)."""
    lr, shifts, _ = synthetic_movie(size_hr=128, n_frames=8, seed=3)  # the motion of a real movie
    motion = MotionField(shifts, tuple(lr.shape[-2:]))
    exposure = Exposure(pixel_size_angstrom=3.0, dose_per_frame_e_per_a2=1.5)
    gen = torch.Generator().manual_seed(7)
    flat = torch.full(lr.shape, 13.5)  # 1.5 e/A^2 on 3 A pixels, no specimen

    def output() -> torch.Tensor:
        return method(torch.poisson(flat, generator=gen), motion, exposure=exposure)

    a, b = (torch.stack([output() for _ in range(96)]) for _ in range(2))
    k, frc = frc_curve(a, b)
    assert abs(band_mean(k, frc, *PAST_NYQUIST)) <= 0.01
