"""Cryo-ZSSR end to end on a small simulated movie (tiny network, CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from cryozssr.dose import Exposure
from cryozssr.errors import InputError
from cryozssr.motion.averages import reference_aligned_averages
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift
from cryozssr.register import band_mean, estimate_shift, frc_curve
from cryozssr.zssr import config_from_preset, super_resolve
from cryozssr.zssr.network import upsample2x

EXPOSURE = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=2.0)


def particle_movie(h: int, w: int, t: int, *, seed: int = 0, counts_per_lr_px: float = 2.0):
    """Sparse blob "particles" on a flat background, known sub-pixel drift, 2x2 box sum, Poisson.

    Returns LR frames ``(t, h, w)``, the exact motion (LR px) and the noiseless frame-0 scene
    ``(2h, 2w)`` in counts per HR pixel per frame.
    """
    g = torch.Generator().manual_seed(seed)
    hh, ww = 2 * h, 2 * w
    yy, xx = torch.meshgrid(
        torch.arange(hh, dtype=torch.float64), torch.arange(ww, dtype=torch.float64), indexing="ij"
    )
    scene = torch.zeros(hh, ww, dtype=torch.float64)
    for _ in range(hh * ww // 600):
        centre = torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([hh, ww])
        for _ in range(4):
            cy, cx = centre + (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * 8
            s = 1.0 + 1.5 * float(torch.rand(1, generator=g))
            scene += torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    scene = counts_per_lr_px / 4 * (1 + scene / scene.max())
    steps = torch.randn(t, 2, generator=g, dtype=torch.float64) * 0.7
    steps[0] = 0
    shifts_hr = steps.cumsum(0)
    clean = box_sum(fourier_shift(scene[None].expand(t, -1, -1), shifts_hr)).clamp(min=0)
    frames = torch.poisson(clean, generator=g).float()
    return frames, MotionField((shifts_hr / 2).float(), (h, w)), scene.float()


def _tiny(**overrides):
    base = {
        "regime": "journal",
        "channels": 16,
        "res_blocks": 1,
        "hr_crop": 64,
        "max_iterations": 120,
    }
    return config_from_preset("fast", **{**base, **overrides})


def _frc_below_nyquist(image: torch.Tensor, truth: torch.Tensor) -> float:
    image = fourier_shift(image, -estimate_shift(truth, image).float())
    k, frc = frc_curve(image, truth)
    return band_mean(k, frc, 0.02, 0.25)


def test_journal_zssr_beats_bilinear_below_the_lr_nyquist_and_sits_at_frame_0():
    frames, motion, truth = particle_movie(64, 64, 24)
    result = super_resolve(
        frames, motion, exposure=EXPOSURE, config=_tiny(backprojection_iterations=0)
    )
    average0 = reference_aligned_averages(frames, motion, [0])[0]
    bilinear = upsample2x(average0) / 4
    assert _frc_below_nyquist(result.image, truth) > _frc_below_nyquist(bilinear, truth) + 0.03
    # specimen at its frame-0 position, intensities in counts per HR pixel per frame
    shift = estimate_shift(truth, result.image)
    assert float(shift.abs().max()) < 0.5  # HR px; an under-trained net blurs a little
    assert abs(float(result.image.mean()) - float(truth.mean())) < 0.02 * float(truth.mean())
    history = result.history
    assert history.iterations == len(history.losses) <= 120
    assert history.lr_steps[0] == (0, 1e-3)


def test_same_seed_same_output_odd_k_non_square_workshop():
    frames, motion, _ = particle_movie(24, 40, 6, seed=1)
    config = _tiny(
        regime="workshop",
        n_inputs=3,
        max_iterations=4,
        hr_crop=32,
        tile_size=16,
        backprojection_iterations=10,
    )
    assert config.use_shiftnet
    a = super_resolve(frames, motion, exposure=EXPOSURE, config=config, seed=3)
    b = super_resolve(frames, motion, exposure=EXPOSURE, config=config, seed=3)
    c = super_resolve(frames, motion, exposure=EXPOSURE, config=config, seed=4)
    assert a.image.shape == (48, 80)
    torch.testing.assert_close(a.image, b.image, rtol=0, atol=0)
    assert not torch.equal(a.image, c.image)
    # back-projection: the 2x2 box sum of the output is the frame-0-aligned LR average
    average0 = reference_aligned_averages(frames, motion, [0])[0]
    torch.testing.assert_close(box_sum(a.image), average0, atol=1e-4, rtol=1e-4)


def test_user_errors_are_input_errors():
    frames, motion, _ = particle_movie(16, 16, 4, seed=2)
    with pytest.raises(InputError, match="need at least 5 frames"):
        super_resolve(frames, motion, exposure=EXPOSURE, config=_tiny(n_inputs=5))
    with pytest.raises(InputError, match="motion has 4 frames"):
        super_resolve(frames[:3], motion, exposure=EXPOSURE, config=_tiny(n_inputs=2))
    with pytest.raises(InputError, match=r"\(t, h, w\)"):
        super_resolve(frames[0], motion, exposure=EXPOSURE, config=_tiny())
