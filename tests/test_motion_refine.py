"""Motion refined against the forward model of the super-resolved estimate (issue 13)."""

from __future__ import annotations

import json

import pytest
import torch

from _cli import run_cli
from _synthetic import synthetic_movie
from cryozssr.errors import OptionError
from cryozssr.io import write_mrc
from cryozssr.motion.field import MotionField
from cryozssr.motion.refine import RefineConfig, refine_motion

EXPOSURE = None  # the synthetic movie has no radiation damage: no exposure filter
NO_SMOOTHING = RefineConfig(smoothing_frames=0, n_rounds=3)  # its jitter is not smooth


@pytest.fixture(scope="module")
def movie():
    lr, shifts, _ = synthetic_movie(size_hr=256, n_frames=12, counts_per_hr_px=20.0)
    g = torch.Generator().manual_seed(5)
    error = 0.25 * torch.randn(shifts.shape, generator=g)
    error[0] = 0
    return lr, shifts, error


def _rms(a: torch.Tensor, b: torch.Tensor) -> float:
    d = (a - b).double()
    d = d - d.mean(dim=0)  # a common offset of every frame moves nothing in the average
    return float(d.pow(2).sum(-1).mean().sqrt())


def test_refinement_recovers_an_injected_sub_pixel_error(movie):
    lr, truth, error = movie
    start = MotionField(truth + error, tuple(lr.shape[-2:]))
    refined, info = refine_motion(lr, start, exposure=EXPOSURE, config=NO_SMOOTHING)
    before = _rms(start.global_shifts_px, truth)
    after = _rms(refined.global_shifts_px, truth)
    assert before > 0.3
    assert after < 0.3 * before, (before, after)
    assert info.accepted and not info.local_refined
    assert float(refined.global_shifts_px[0].abs().max()) == 0.0
    # the recorded change is what moved
    moved = refined.global_shifts_px - start.global_shifts_px
    assert info.rms_change_global_px == pytest.approx(float(moved.pow(2).sum(-1).mean().sqrt()))


def test_refinement_stays_at_the_true_motion(movie):
    lr, truth, _ = movie
    start = MotionField(truth, tuple(lr.shape[-2:]))
    refined, info = refine_motion(lr, start, exposure=EXPOSURE, config=NO_SMOOTHING)
    assert _rms(refined.global_shifts_px, truth) < 0.1
    assert info.accepted


def test_a_change_beyond_the_bound_keeps_the_estimate(movie, caplog):
    lr, truth, error = movie
    start = MotionField(truth + error, tuple(lr.shape[-2:]))
    config = RefineConfig(smoothing_frames=0, max_change_px=0.02)
    refined, info = refine_motion(lr, start, exposure=EXPOSURE, config=config)
    assert refined is start and not info.accepted
    assert "estimate kept" in caplog.text


def test_too_few_frames_or_pixels_leave_the_motion_alone():
    lr, truth, _ = synthetic_movie(size_hr=96, n_frames=6)
    start = MotionField(truth, tuple(lr.shape[-2:]))
    refined, info = refine_motion(lr, start, exposure=EXPOSURE)
    assert refined is start and not info.accepted  # a 48 px frame: no 64 px crop


def test_bad_options_are_one_clear_error():
    with pytest.raises(OptionError, match="crop_px"):
        RefineConfig(crop_px=16)
    with pytest.raises(OptionError, match="max_change_px"):
        RefineConfig(max_change_px=0)


def test_refinement_makes_no_tensor_off_the_inputs_device(movie):
    lr, truth, error = movie
    start = MotionField(truth + error, tuple(lr.shape[-2:]))
    with torch.device("meta"):  # tensors made without device= land on meta and clash with the CPU
        refined, _ = refine_motion(lr, start, exposure=EXPOSURE, config=NO_SMOOTHING)
    assert refined.global_shifts_px.device.type == "cpu"


def test_run_records_the_refinement(movie, tmp_path, monkeypatch, capsys):
    lr, truth, _ = movie
    path = write_mrc(tmp_path / "mov.mrc", lr.numpy(), pixel_size_angstrom=3.0, mode="uint16")
    records = {}
    for flag in ("--motion-refine", "--no-motion-refine"):
        out = tmp_path / flag
        args = ("run", str(path), "--out", str(out), "--method", "misr", "--device", "cpu", flag)
        status, _, err = run_cli(monkeypatch, capsys, *args)
        assert status == 0, err
        records[flag] = json.loads((out / "mov.json").read_text())
    on, off = records["--motion-refine"], records["--no-motion-refine"]
    assert on["config"]["motion_refine"] is True and off["config"]["motion_refine"] is False
    assert off["motion_refined"] is None
    assert on["motion_refined"]["accepted"] and on["motion_refined"]["rms_change_global_px"] > 0
    trajectory = torch.tensor(on["trajectory_angstrom"]).flip(-1) / 3.0  # (y, x) LR px
    assert _rms(trajectory, truth) < 0.2
