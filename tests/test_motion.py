"""Motion estimation and reference-aligned averages recover what was injected into synthetic movies.

Synthetic movies: a band-limited random scene on the HR grid, moved by a known sub-pixel trajectory
with Fourier shifts (or warped by a known local field), box-summed to LR and Poisson-sampled at a
realistic dose (9 counts per LR pixel per frame = 1 e/A^2 at 3 A/px).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cryozssr.dose import Exposure, exposure_filter_rfft, frame_doses
from cryozssr.errors import InputError, OptionError
from cryozssr.motion._align import smoothing_matrix
from cryozssr.motion.averages import (
    align_frames,
    choose_references,
    dose_weighted_average,
    even_odd_frames,
    journal_split,
    reference_aligned_averages,
)
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.motion.warp import tile_centres, tiled_shift
from cryozssr.ops import box_sum, fourier_shift
from cryozssr.register import estimate_shift


def scene(hr_shape, *, corr_px=3.0, contrast=0.1, seed=0) -> torch.Tensor:
    """Gaussian-correlated random image (float64), relative contrast ``contrast``."""
    g = torch.Generator().manual_seed(seed)
    h, w = hr_shape
    ky = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    spec = torch.fft.rfft2(torch.randn(h, w, generator=g, dtype=torch.float64))
    img = torch.fft.irfft2(
        spec * torch.exp(-2 * (math.pi * corr_px) ** 2 * (ky**2 + kx**2)), s=(h, w)
    )
    return img / img.std() * contrast


def trajectory(n_frames: int, *, seed=0) -> torch.Tensor:
    """Beam-induced-like trajectory (LR px): fast early drift, slow late drift, small jitter."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n_frames, dtype=torch.float64)[:, None]
    a, b = torch.randn(2, 2, generator=g, dtype=torch.float64)
    s = 5 * (1 - torch.exp(-t / 6)) * a + 0.05 * t * b
    s = s + torch.cumsum(0.03 * torch.randn(n_frames, 2, generator=g, dtype=torch.float64), 0)
    return s - s[0]


def movie(lr_shape, traj, *, counts=9.0, corr_px=3.0, noise=True, seed=0) -> torch.Tensor:
    """``(t, h, w)`` LR frames of ``scene`` moved by ``traj`` (LR px), Poisson at ``counts`` per LR px."""
    h, w = lr_shape
    img = scene((2 * h, 2 * w), corr_px=corr_px, seed=seed)
    hr = fourier_shift(img[None].expand(traj.shape[0], -1, -1), 2 * traj)
    lr = box_sum(counts / 4 * (1 + hr)).float()
    return torch.poisson(lr, generator=torch.Generator().manual_seed(seed + 1)) if noise else lr


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).pow(2).sum(-1).mean().sqrt())


def test_global_trajectory_recovered_at_one_electron_per_a2():
    truth = trajectory(24, seed=3)
    frames = movie((192, 192), truth, counts=9.0, seed=3)
    motion = estimate_motion(frames)
    assert torch.all(motion.global_shifts_px[0] == 0)
    assert rms(motion.global_shifts_px, truth) < 0.08  # measured ~0.04 on this small movie


def test_averages_aligned_to_two_references_differ_by_the_trajectory_difference():
    truth = trajectory(12, seed=1)
    frames = movie((96, 96), truth, counts=9.0, seed=1)
    motion = MotionField(truth.float(), (96, 96))
    j, k = 2, 9
    avgs = reference_aligned_averages(frames, motion, [j, k])
    measured = estimate_shift(avgs[0], avgs[1])
    assert torch.allclose(measured, truth[k] - truth[j], atol=0.02)
    # the same holds for the tiled (local-motion) path with a zero local field
    zero = MotionField(truth.float(), (96, 96), torch.zeros(12, 2, 2, 2))
    tiled = reference_aligned_averages(frames, zero, [j, k])
    assert torch.allclose(tiled, avgs, atol=1e-3 * float(avgs.abs().max()))


def test_aligned_noise_free_frames_match_the_reference_frame():
    truth = trajectory(8, seed=2)
    frames = movie(
        (64, 64), truth, corr_px=6.0, noise=False, seed=2
    )  # band-limited below LR Nyquist
    motion = MotionField(truth.float(), (64, 64))
    aligned = align_frames(frames, motion, reference_frame=5)
    assert torch.allclose(aligned, frames[5].expand_as(aligned), atol=1e-3)
    target, inputs = journal_split(frames, motion, references=[1, 6])
    assert torch.allclose(target, frames[2], atol=1e-3)  # centre frame of the early half 0..3
    assert torch.allclose(inputs, frames[[1, 6]], atol=1e-3)


def test_dose_weighting_attenuates_late_frames_as_the_exposure_filter_says():
    h = w = 32
    image = torch.randn(h, w, generator=torch.Generator().manual_seed(4))  # flat spectrum
    exposure = Exposure(pixel_size_angstrom=1.5, dose_per_frame_e_per_a2=2.0)
    motion = MotionField(torch.zeros(10, 2), (h, w))
    early = torch.zeros(10, h, w)
    late = torch.zeros(10, h, w)
    early[0], late[9] = image, image
    ratio = torch.fft.rfft2(
        dose_weighted_average(late, motion, exposure=exposure)
    ) / torch.fft.rfft2(dose_weighted_average(early, motion, exposure=exposure))
    q = exposure_filter_rfft((h, w), frame_doses(10, 2.0), pixel_size_angstrom=1.5)
    assert torch.allclose(ratio.real, q[9] / q[0], atol=1e-4)
    assert float(ratio.real[0, 0]) == pytest.approx(1.0, abs=1e-5)  # DC untouched
    assert float((q[9] / q[0])[h // 2, w // 2]) < 0.1  # and it really does attenuate
    # without a dose per frame: the plain aligned average
    plain = dose_weighted_average(late, motion, exposure=Exposure(pixel_size_angstrom=1.5))
    assert torch.allclose(plain, image / 10, atol=1e-5)


def test_subset_dose_weighting_uses_each_frames_own_dose():
    h = w = 16
    image = scene((h, w), corr_px=1.0, seed=5).float()
    exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=1.0)
    frames = image.expand(6, h, w).clone()
    motion = MotionField(torch.zeros(6, 2), (h, w))
    odd = dose_weighted_average(frames, motion, exposure=exposure, frame_indices=[1, 3, 5])
    q = exposure_filter_rfft((h, w), frame_doses(6, 1.0)[[1, 3, 5]], pixel_size_angstrom=1.0)
    expected = torch.fft.rfft2(image) * q.sum(0) / torch.sqrt(3 * (q**2).sum(0))
    assert torch.allclose(torch.fft.rfft2(odd), expected, atol=1e-3)
    # the pipeline's route (a sub-movie with its own exposure) gives the same average
    sub = dose_weighted_average(
        frames[1::2], motion.select([1, 3, 5]), exposure=exposure.subset([1, 3, 5])
    )
    assert torch.allclose(sub, odd, atol=1e-5)


def warped_movie(lr_shape, motion: MotionField, *, counts, seed=0) -> torch.Tensor:
    """Frames of a scene warped by the total (global + local) field of ``motion``."""
    h, w = lr_shape
    hr = scene((2 * h, 2 * w), seed=seed).float()
    yy, xx = torch.meshgrid(torch.arange(2 * h).float(), torch.arange(2 * w).float(), indexing="ij")
    lr_pts = torch.stack(
        [(yy.flatten() - 0.5) / 2, (xx.flatten() - 0.5) / 2], dim=-1
    )  # HR centres, LR coords
    # the field is a function of the specimen (frame-0) position: look it up at x - global[t]
    g = motion.global_shifts_px
    s = torch.stack([motion.shifts_at(lr_pts - g[t])[t] for t in range(motion.n_frames)])
    s = 2 * s.reshape(motion.n_frames, 2 * h, 2 * w, 2)  # HR px
    gy = (yy - s[..., 0] + 0.5) / (2 * h) * 2 - 1  # sample the scene where the content came from
    gx = (xx - s[..., 1] + 0.5) / (2 * w) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)
    frames = F.grid_sample(
        hr[None, None].expand(motion.n_frames, 1, -1, -1), grid, mode="bicubic", align_corners=False
    )
    lr = box_sum(counts / 4 * (1 + frames[:, 0]))
    return torch.poisson(lr, generator=torch.Generator().manual_seed(seed + 1))


def test_local_motion_on_a_grid_is_recovered():
    t, h, w = 16, 192, 192
    tt = torch.linspace(0, 1, t)[:, None, None, None]
    # (gh, gw, 2) LR px at the last frame, zero mean over the grid (the mean is global motion)
    amplitude = torch.tensor([[[1.0, -0.6], [-0.8, 0.2]], [[0.4, 0.7], [-0.6, -0.3]]])
    truth = MotionField(trajectory(t, seed=6).float(), (h, w), tt * amplitude)
    frames = warped_movie((h, w), truth, counts=36.0, seed=6)
    est = estimate_motion(frames, config=MotionConfig(patches=(2, 2), patch_overlap=1.0))
    assert est.local_shifts_px is not None and est.local_shifts_px.shape == (t, 2, 2, 2)
    assert rms(est.global_shifts_px, truth.global_shifts_px) < 0.15
    assert (
        rms(est.local_shifts_px, truth.local_shifts_px) < 0.15
    )  # of a local motion of ~0.8 px RMS
    # a patch measures the mean motion under it: compare every node with the truth averaged
    # over its patch (96x96 px here), which is what the estimate can resolve
    nodes = torch.tensor([[47.5, 47.5], [47.5, 143.5], [143.5, 47.5], [143.5, 143.5]])
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    pix = torch.stack([yy.flatten(), xx.flatten()], dim=-1)
    patch_mean = torch.stack([truth.shifts_at(pix + c - 47.5).mean(1) for c in nodes], dim=1)
    assert rms(est.shifts_at(nodes), patch_mean) < 0.1


def test_tiled_shift_with_a_uniform_shift_is_a_fourier_shift():
    image = scene((80, 72), corr_px=1.5, seed=7).float()
    cy, cx = tile_centres((80, 72), 16)
    shift = torch.tensor([1.3, -2.6]).expand(len(cy), len(cx), 2)
    out = tiled_shift(image, shift, tile_px=16)
    assert torch.allclose(
        out, fourier_shift(image, torch.tensor([1.3, -2.6])), atol=2e-3 * float(image.abs().max())
    )


def test_trajectory_smoothing_keeps_quadratic_motion_and_averages_noise():
    t = torch.arange(20, dtype=torch.float64)
    quadratic = torch.stack([0.3 * t - 0.01 * t**2, -0.2 * t + 0.004 * t**2], dim=-1)
    smoother = smoothing_matrix(20, 7)
    assert torch.allclose(smoother @ quadratic, quadratic, atol=1e-9)  # no bias, ends included
    noise = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    interior = slice(3, 17)  # the window shrinks at the ends: full averaging inside
    assert float((smoother @ noise)[interior].std()) < 0.7 * float(noise[interior].std())
    # a fast onset (beam-induced motion) is followed, not extrapolated from later frames
    onset = 2.0 * torch.sqrt(t)[:, None].expand(20, 2)
    assert float((smoother @ onset - onset)[:3].abs().max()) < 0.15


def test_choose_references():
    assert choose_references(40, 4, mode="spread") == [0, 13, 26, 39]
    assert choose_references(40, 3, mode="first") == [0, 1, 2]
    picked = choose_references(40, 16, seed=1)
    assert picked == choose_references(40, 16, seed=1) and len(set(picked)) == 16
    assert all(0 <= r < 40 for r in picked)
    assert even_odd_frames(5) == ([0, 2, 4], [1, 3])


def test_bad_input_raises_clear_errors():
    motion = MotionField(torch.zeros(4, 2), (32, 32))
    with pytest.raises(InputError, match="at least 2 frames"):
        estimate_motion(torch.zeros(1, 32, 32))
    with pytest.raises(InputError, match="frames, height, width"):
        estimate_motion(torch.zeros(32, 32))
    with pytest.raises(ValueError, match="do not match the motion field"):
        align_frames(torch.zeros(5, 32, 32), motion)
    with pytest.raises(OptionError, match="out of range"):
        reference_aligned_averages(torch.zeros(4, 32, 32), motion, [0, 4])
    with pytest.raises(OptionError, match="out of range"):
        journal_split(torch.zeros(4, 32, 32), motion, references=[-1])
    with pytest.raises(OptionError, match="cannot choose"):
        choose_references(4, 5)
    with pytest.raises(OptionError, match="patches"):
        MotionConfig(patches=(0, 3))
    with pytest.raises(OptionError, match="under 16 px"):
        estimate_motion(
            torch.zeros(2, 32, 32), config=MotionConfig(patches=(4, 4), patch_overlap=1.0)
        )


def test_alignment_stops_when_frames_stop_moving_relative_to_each_other(monkeypatch):
    """The iterations end once the trajectory is converged up to a shift common to all frames (the
    free gauge: with the default smoothing it keeps drifting by more than the tolerance without
    moving any frame relative to another; the old criterion ran the whole budget on this movie);
    the shifts found equal those of the full iteration budget."""
    from _synthetic import synthetic_movie
    from cryozssr.motion import _align

    lr, _, _ = synthetic_movie(size_hr=128, n_frames=12, counts_per_hr_px=20.0, seed=3)
    full = estimate_motion(lr, config=MotionConfig(tolerance_px=0.0)).global_shifts_px
    calls = []
    smooth = _align.smooth_trajectory
    monkeypatch.setattr(
        _align, "smooth_trajectory", lambda raw, w: calls.append(1) or smooth(raw, w)
    )
    config = MotionConfig()
    early = estimate_motion(lr, config=config).global_shifts_px
    assert len(calls) <= 3 < config.n_iterations  # one iteration per smoothing
    assert float((early - full).abs().max()) < config.tolerance_px
