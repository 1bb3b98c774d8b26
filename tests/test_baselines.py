"""Classical baselines recover what multi-frame sub-pixel motion makes recoverable, and no more."""

from __future__ import annotations

import math

import pytest
import torch

from cryozssr.baselines import misr, shift_add, upsample
from cryozssr.dose import Exposure, exposure_filter_rfft, frame_doses
from cryozssr.errors import OptionError
from cryozssr.motion.averages import align_frames
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift, rfft_radius
from cryozssr.register import band_mean, estimate_shift, frc_curve

HR = 96  # HR side; LR frames are 48 x 48


def _scene(seed: int = 0, mean: float = 100.0) -> torch.Tensor:
    """Band-limited HR scene (content up to 0.47 cycles/HR px, i.e. well past the LR Nyquist 0.25)."""
    gen = torch.Generator().manual_seed(seed)
    spec = torch.fft.rfft2(torch.randn(HR, HR, generator=gen, dtype=torch.float64))
    r = rfft_radius((HR, HR)).double()
    image = torch.fft.irfft2(spec * (r < 0.47) / torch.sqrt(1 + (r / 0.1) ** 2), s=(HR, HR))
    return mean + 0.3 * mean * image / image.std()


def _movie(scene: torch.Tensor, n_frames: int, seed: int = 1) -> tuple[torch.Tensor, MotionField]:
    """LR frames = box_sum(fourier_shift(scene, s_t)) with random sub-pixel HR shifts, s_0 = 0."""
    gen = torch.Generator().manual_seed(seed)
    shifts_hr = torch.rand(n_frames, 2, generator=gen, dtype=torch.float64) * 6 - 3
    shifts_hr[0] = 0
    frames = box_sum(fourier_shift(scene.expand(n_frames, -1, -1), shifts_hr))
    return frames, MotionField(shifts_hr / 2, (HR // 2, HR // 2))


def _band_frc(
    image: torch.Tensor, truth: torch.Tensor, low: float = 0.25, high: float = 0.45
) -> float:
    k, frc = frc_curve(image.double(), truth.double())
    return band_mean(k, frc, low, high)


def _lowpass(image: torch.Tensor, cutoff: float = 0.15) -> torch.Tensor:
    mask = rfft_radius(tuple(image.shape)) < cutoff
    return torch.fft.irfft2(torch.fft.rfft2(image.double()) * mask, s=tuple(image.shape))


@pytest.fixture(scope="module")
def movie():
    scene = _scene()
    frames, motion = _movie(scene, 24)
    return scene, frames, motion


def test_fourier_upsampling_puts_lr_samples_at_their_hr_position():
    """A band-limited cosine sampled at LR pixel centres comes back exactly at the HR pixel centres."""
    n, freq = 32, 5 / 32  # cycles per LR pixel
    lr = 4 * torch.cos(2 * math.pi * freq * torch.arange(n, dtype=torch.float64))[:, None].expand(
        n, n
    )
    # HR pixel m sits at LR coordinate (m - 1/2) / 2
    hr_centre_in_lr = (torch.arange(2 * n, dtype=torch.float64) - 0.5) / 2
    expected = torch.cos(2 * math.pi * freq * hr_centre_in_lr)  # counts per HR pixel: 4 / 4
    up = upsample(lr, method="fourier")
    torch.testing.assert_close(up, expected[:, None].expand(2 * n, 2 * n), atol=1e-9, rtol=0)


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "fourier"])
def test_upsampling_is_registered_and_in_counts_per_hr_pixel(method):
    scene = _scene(seed=3)
    smooth = _lowpass(scene, 0.2)  # content the LR grid can represent
    lr = box_sum(smooth)
    up = upsample(lr, method=method)
    assert up.shape == (HR, HR)
    assert estimate_shift(smooth, up).abs().max() < 0.02
    torch.testing.assert_close(box_sum(up).mean(), lr.mean(), rtol=1e-3, atol=0)
    low_up, low_lr = _lowpass(box_sum(up), 0.1), _lowpass(lr, 0.1)
    assert (low_up - low_lr).norm() / (low_lr - low_lr.mean()).norm() < 0.05


def test_upsampling_a_stack_equals_upsampling_each_image():
    stack = torch.stack([box_sum(_scene(seed=s)) for s in range(3)]).float()
    for method in ("bilinear", "fourier"):
        batched = upsample(stack, method=method)
        torch.testing.assert_close(
            batched, torch.stack([upsample(x, method=method) for x in stack])
        )


def test_multi_frame_methods_recover_past_the_lr_nyquist_and_interpolation_does_not(movie):
    scene, frames, motion = movie
    average = align_frames(frames, motion).mean(0)  # what the pipeline upsamples
    assert _band_frc(upsample(average, method="bilinear"), scene) < 0.3
    assert _band_frc(upsample(average, method="fourier"), scene) < 0.3
    assert _band_frc(shift_add(frames, motion), scene) > 0.8
    assert _band_frc(misr(frames, motion), scene) > 0.95


def test_outputs_show_the_specimen_at_its_frame_0_position(movie):
    scene, frames, motion = movie
    assert estimate_shift(scene, misr(frames, motion)).abs().max() < 0.05
    assert estimate_shift(scene, shift_add(frames, motion)).abs().max() < 0.05


def test_outputs_are_in_counts_per_hr_pixel(movie):
    """box_sum(output) matches the aligned LR average (= frame 0 here) at the frequencies both carry."""
    scene, frames, motion = movie
    for sr in (misr(frames, motion), shift_add(frames, motion)):
        torch.testing.assert_close(sr.double().mean(), scene.mean(), rtol=2e-3, atol=0)
        low_sr, low_lr = _lowpass(box_sum(sr)), _lowpass(frames[0])
        assert (low_sr - low_lr).norm() / (low_lr - low_lr.mean()).norm() < 0.05


def test_misr_degrades_gracefully_with_poisson_noise(movie):
    scene, frames, motion = movie
    gen = torch.Generator().manual_seed(7)
    scale = 4.0 / float(frames.mean())  # ~4 counts per LR pixel per frame
    noisy = torch.poisson(frames * scale, generator=gen)
    truth = scene * scale
    bilinear = upsample(align_frames(noisy, motion).mean(0), method="bilinear")
    sr = misr(noisy, motion)
    assert bool(torch.isfinite(sr).all())
    assert sr.abs().max() < 20 * truth.abs().max()
    assert _band_frc(sr, truth) > _band_frc(bilinear, truth) + 0.1
    assert _band_frc(sr, truth, 0.02, 0.2) > 0.8


def test_misr_without_motion_falls_back_to_the_fourier_baseline():
    scene = _scene(seed=5)
    frames = box_sum(scene).expand(6, -1, -1)
    still = MotionField(torch.zeros(6, 2, dtype=torch.float64), (HR // 2, HR // 2))
    sr, fourier = misr(frames, still), upsample(frames[0], method="fourier")
    assert bool(torch.isfinite(sr).all())
    # equal up to the LR-aperture correction that makes misr consistent with the data
    assert (sr - fourier).norm() / (fourier - fourier.mean()).norm() < 0.2
    k, frc = frc_curve(sr.double(), fourier.double())
    assert float(frc[k < 0.22].min()) > 0.99


def test_misr_models_dose_weighting():
    """Frames damaged by the exposure filter give the scene through the dose-weighted average's filter."""
    scene, n = _scene(seed=11), 12
    exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=3.0)
    q = exposure_filter_rfft((HR, HR), frame_doses(n, 3.0), pixel_size_angstrom=0.5).double()
    damaged = torch.fft.irfft2(torch.fft.rfft2(scene) * q, s=(HR, HR))  # (n, HR, HR)
    gen = torch.Generator().manual_seed(2)
    shifts_hr = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 6 - 3
    shifts_hr[0] = 0
    frames = box_sum(fourier_shift(damaged, shifts_hr))
    motion = MotionField(shifts_hr / 2, (HR // 2, HR // 2))
    target = torch.fft.irfft2(torch.fft.rfft2(scene) * q.pow(2).mean(0).sqrt(), s=(HR, HR))
    # noiseless data: regularisation off to test the model itself
    sr = misr(frames, motion, exposure=exposure, regularisation=1e-6)
    assert (sr - target).norm() / (target - target.mean()).norm() < 0.01
    unweighted = misr(frames, motion, regularisation=1e-6)
    assert (unweighted - target).norm() > 2 * (sr - target).norm()


def test_chunked_and_tiled_calls_agree(movie):
    scene, frames, motion = movie
    for method in (misr, shift_add):
        torch.testing.assert_close(
            method(frames, motion, frame_chunk=1), method(frames, motion, frame_chunk=24)
        )
    tiled = misr(frames, motion, tile_size_px=32, tile_overlap_px=8)
    inner = (slice(12, -12), slice(12, -12))  # away from the (periodic) movie border
    whole = misr(frames, motion)
    # equal where the scene has content (the unregularised HR-Nyquist corner differs)
    k, frc = frc_curve(tiled[inner].double(), whole[inner].double())
    assert float(frc[k < 0.45].min()) > 0.99
    assert _band_frc(tiled[inner], scene[inner]) > 0.99


def test_local_motion_moves_each_pixel(movie):
    """A uniform local field is the same motion as the equivalent global trajectory."""
    scene, frames, motion = movie
    offset = torch.tensor([0.3, -0.2], dtype=torch.float64)
    local = offset.expand(motion.n_frames, 3, 3, 2).clone()
    local[0] = 0
    split = MotionField(motion.global_shifts_px - local[:, 0, 0], motion.image_shape, local)
    torch.testing.assert_close(shift_add(frames, split), shift_add(frames, motion))
    tiled = misr(frames, split, tile_size_px=32, tile_overlap_px=8)
    inner = (slice(12, -12), slice(12, -12))
    assert _band_frc(tiled[inner], scene[inner]) > 0.9


def test_user_errors_are_clear(movie):
    _, frames, motion = movie
    with pytest.raises(OptionError, match="at least 2 frames"):
        misr(frames[:1], MotionField(torch.zeros(1, 2), (HR // 2, HR // 2)))
    with pytest.raises(ValueError, match="motion has 24 frames but the movie has 10"):
        shift_add(frames[:10], motion)
    with pytest.raises(ValueError, match="motion describes"):
        misr(frames, motion.scaled(2))
    with pytest.raises(OptionError, match="unknown upsampling method"):
        upsample(frames[0], method="lanczos")  # type: ignore[arg-type]


def test_shift_add_does_not_amplify_the_drifted_out_border():
    """A 13-px drift leaves the bottom rows to a few frames: their noise must not be amplified.

    Noise = the difference of two Poisson realisations; with one global Wiener filter the 8
    outermost rows had 2.9x the interior's noise (and the 4 outermost columns), with the
    coverage-scaled one 2.0x (what the few frames reaching them give, not amplified).
    """
    from _synthetic import band_limited_scene

    n, m, t = 256, 32, 20
    scene = band_limited_scene(n + 2 * m, seed=0).double()
    time = torch.arange(t, dtype=torch.float64)
    shifts = torch.stack([3.0 * time.sqrt(), -1.5 * time.sqrt()], -1)  # LR px
    hr = torch.stack([fourier_shift(scene, 2 * s)[m:-m, m:-m] for s in shifts]) * 4
    g = torch.Generator().manual_seed(0)
    motion = MotionField(shifts.float(), (n // 2, n // 2))
    a, b = (
        shift_add(torch.poisson(box_sum(hr.clamp(min=0)), generator=g).float(), motion).double()
        for _ in range(2)
    )
    noise = (a - b).std(1)  # per row
    assert noise[-8:].mean() / noise[64:-64].mean() < 2.4
    columns = (a - b).std(0)
    assert columns[:4].mean() / columns[64:-64].mean() < 2.4
    assert noise[:8].mean() / noise[64:-64].mean() < 1.3  # the border every frame covers: as inside
