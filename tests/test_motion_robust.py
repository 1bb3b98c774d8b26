"""Motion that cannot run away: large drifts, jumps, and a local model bounded by the data."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from _cli import run_cli
from _drift import drift_movie
from cryozssr.motion._align import trajectory_breaks
from cryozssr.motion._local import fit_local_model
from cryozssr.motion.estimate import MotionConfig, estimate_motion


@pytest.fixture(scope="module")
def drifting():
    return drift_movie()


def test_a_150_px_drift_with_a_first_frame_jump_is_recovered(drifting):
    frames, truth = drifting
    motion = estimate_motion(frames.float())
    error = (motion.global_shifts_px - truth).norm(dim=-1)
    assert float(error.max()) < 0.5  # LR px, on a 150 px path with an 8 px jump
    assert float(error.pow(2).mean().sqrt()) < 0.2


def test_smoothing_does_not_average_across_a_jump():
    t = torch.arange(20, dtype=torch.float64)
    path = torch.stack([0.3 * t, -0.2 * t], dim=-1)
    path[5:] += torch.tensor([6.0, 3.0], dtype=torch.float64)
    noisy = path + 0.02 * torch.randn(
        20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert trajectory_breaks(noisy) == [5]
    assert trajectory_breaks(path[:, :] * 0 + 0.3 * t[:, None]) == []


def test_local_model_recovers_an_injected_smooth_field_and_rejects_pure_noise():
    gh = gw = 5
    t = 40
    g = torch.Generator().manual_seed(1)
    tau = torch.arange(t, dtype=torch.float64) / (t - 1)
    yy = (torch.arange(gh, dtype=torch.float64) + 0.5) / gh * 2 - 1
    y, x = torch.meshgrid(yy, yy, indexing="ij")
    # a doming-like field: grows as sqrt(time), amplitude linear and quadratic in space (px)
    amp = 2 * torch.stack([0.8 * x + 0.5 * y * y, -0.6 * y + 0.4 * x * y], dim=-1)  # (gh, gw, 2)
    field = amp[:, :, None, :] * tau.sqrt()[None, None, :, None]
    noise = 0.3 * torch.randn(gh, gw, t, 2, generator=g, dtype=torch.float64)
    offset = torch.randn(gh, gw, 1, 2, generator=g, dtype=torch.float64)  # free gauge per patch
    fit = fit_local_model(field + noise + offset)
    assert fit.accepted

    def rms(a):  # gauge-free (each patch's constant offset is free), px
        return float((a - a.mean(dim=2, keepdim=True)).pow(2).sum(-1).mean().sqrt())

    rms_truth = rms(field)
    assert rms(fit.shifts_px - field) < 0.25 * rms_truth, (rms(fit.shifts_px - field), rms_truth)
    assert rms(fit.shifts_px - field) < 0.25 * rms(noise)  # far below the patches' own noise
    assert torch.equal(fit.shifts_px[:, :, 0], torch.zeros(gh, gw, 2, dtype=torch.float64))
    # one patch that ran away is rejected as an outlier, the field still recovered
    broken = field + noise + offset
    broken[2, 3] += 20 * tau[:, None]
    fit = fit_local_model(broken)
    assert fit.outliers >= 1
    assert rms(fit.shifts_px - field) < 0.3 * rms_truth
    # noise only: nothing significant, global motion kept
    pure = fit_local_model(noise + offset)
    assert not pure.accepted and pure.rank == 0
    assert pure.gain <= max(pure.null_gain, 0.0)
    assert torch.equal(pure.shifts_px, torch.zeros_like(pure.shifts_px))


def test_local_motion_on_a_drifting_movie_stays_within_its_bound(drifting):
    frames, truth = drifting
    motion = estimate_motion(frames.float(), config=MotionConfig(patches=(3, 3)))
    assert float((motion.global_shifts_px - truth).norm(dim=-1).max()) < 0.5
    if motion.local_shifts_px is not None:  # the scene has no local motion: at most noise
        assert float(motion.local_shifts_px.abs().max()) <= MotionConfig().max_local_shift_px
        total = motion.shifts_at(torch.tensor([[96.0, 96.0]]))[:, 0]
        assert float((total - truth).norm(dim=-1).max()) < 1.0  # never beyond 1 LR px of the truth


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--method", "misr"],
        ["--method", "shift-add"],
        ["--method", "bilinear"],
        ["--method", "misr", "--patches", "3"],
    ],
)
def test_every_method_runs_on_a_150_px_drift(drifting, tmp_path, monkeypatch, capsys, extra):
    frames, _ = drifting
    movie = tmp_path / "drift.mrc"
    with mrcfile.new(movie) as mrc:
        mrc.set_data(frames[:, :, :].numpy().astype(np.int16))
        mrc.voxel_size = 3.0
    status, _, err = run_cli(
        monkeypatch, capsys, "run", str(movie), "--out", str(tmp_path / "out"), *extra
    )
    assert status == 0, err
    with mrcfile.open(tmp_path / "out" / "drift_sr.mrc") as out:
        image = out.data
        assert image.shape == (2 * frames.shape[1], 2 * frames.shape[2])
        assert np.isfinite(image).all()
        # counts per HR px per frame: the interior mean matches the movie's (drift handled, no
        # all-zero or blown-up output)
        interior = image[64:-64, 64:-64].mean()
        assert interior == pytest.approx(frames.double().mean().item() / 4, rel=0.05)
