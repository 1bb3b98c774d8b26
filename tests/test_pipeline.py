"""``cryozssr run``: the output contract, motion recorded in Angstrom, sharding, and bad input."""

from __future__ import annotations

import json
from dataclasses import asdict

import mrcfile
import numpy as np
import pytest
import starfile
import torch

from _cli import assert_one_clean_error, run_cli
from _synthetic import synthetic_movie
from cryozssr.baselines import MmseConfig, upsample
from cryozssr.io import write_mrc
from cryozssr.ops import fourier_shift
from cryozssr.pipeline.batch import parse_shard, shard
from cryozssr.register import band_mean, estimate_shift, frc_curve

PIXEL_LR = 3.0


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("movies")
    lr, shifts, truth = synthetic_movie(size_hr=128, n_frames=12, seed=3)
    path = write_mrc(folder / "mov_a.mrc", lr.numpy(), pixel_size_angstrom=PIXEL_LR, mode="uint16")
    return path, shifts, truth


def _frc_past_nyquist(image: torch.Tensor, truth: torch.Tensor) -> float:
    aligned = fourier_shift(image, -estimate_shift(truth, image).float())
    k, f = frc_curve(aligned, truth)
    return band_mean(k, f, 0.25, 0.33)


@pytest.mark.parametrize("method", ["bilinear", "misr", "mmse"])
def test_run_writes_the_contract_and_records_the_true_trajectory(
    movie, tmp_path, monkeypatch, capsys, method
):
    path, shifts, truth = movie
    out = tmp_path / method
    status, _, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        str(path),
        "--out",
        str(out),
        "--method",
        method,
        "--device",
        "cpu",
    )
    assert status == 0, err
    with mrcfile.open(out / "mov_a_sr.mrc") as m:
        sr = torch.from_numpy(m.data.copy())
        assert m.data.dtype == np.float32 and sr.shape == (128, 128)
        assert float(m.voxel_size.x) == pytest.approx(PIXEL_LR / 2)
    with mrcfile.open(out / "mov_a_avg.mrc") as m:
        assert m.data.shape == (64, 64) and float(m.voxel_size.x) == pytest.approx(PIXEL_LR)
    record = json.loads((out / "mov_a.json").read_text())
    assert record["method"] == method and record["seed"] == 0
    assert record["input_pixel_size_angstrom"] == pytest.approx(PIXEL_LR)
    assert record["output_pixel_size_angstrom"] == pytest.approx(PIXEL_LR / 2)
    assert set(record["timings_seconds"]) >= {"read", "motion", "average", "super_resolve", "write"}
    # trajectory_angstrom is (x, y) per frame relative to frame 0; injected shifts are (y, x) LR px.
    # (The injected path has 0.15 px frame-to-frame jitter that the trajectory smoothing removes
    # by design; motion accuracy itself is tested in test_motion.py.)
    traj = torch.tensor(record["trajectory_angstrom"])
    expected = shifts.flip(-1) * PIXEL_LR
    assert traj[0].abs().max() == 0
    assert float((traj - expected).pow(2).sum(-1).mean().sqrt()) < 0.2 * PIXEL_LR
    assert (
        float((traj.flip(-1) - expected).pow(2).sum(-1).mean().sqrt()) > 1.0 * PIXEL_LR
    )  # not (y, x)
    star = starfile.read(out / "micrographs_sr.star")
    assert star["optics"]["rlnMicrographPixelSize"].iloc[0] == pytest.approx(PIXEL_LR / 2)
    assert list(star["micrographs"]["rlnMicrographName"]) == ["mov_a_sr.mrc"]
    # intensity convention: counts per HR pixel, box sum ~ the LR average
    assert float(sr.mean()) * 4 == pytest.approx(
        float(torch.from_numpy(mrcfile.read(out / "mov_a_avg.mrc")).mean()), rel=0.02
    )
    if method == "mmse":  # its options, and its ground-truth-free half-set record
        assert record["method_config"] == asdict(MmseConfig())
        assert record["config"]["method_config"] == record["method_config"]
        assert set(record["method_info"]["mmse"]["half_set_frc_past_nyquist"]) == {
            "nyquist_1.33x",
            "1.33x_1.67x",
        }
    if (
        method != "bilinear"
    ):  # multi-frame SR recovers signal past the LR Nyquist; interpolation cannot
        average = torch.from_numpy(mrcfile.read(out / "mov_a_avg.mrc").copy())
        bilinear = upsample(average, method="bilinear")
        assert _frc_past_nyquist(sr, truth) > _frc_past_nyquist(bilinear, truth) + 0.2


def test_half_sets_and_skip_existing(movie, tmp_path, monkeypatch, capsys):
    path, _, _ = movie
    out = tmp_path / "half"
    args = [
        "run",
        str(path),
        "--out",
        str(out),
        "--method",
        "fourier",
        "--half-sets",
        "--device",
        "cpu",
    ]
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 0, err
    assert (out / "mov_a_sr_even.mrc").exists() and (out / "mov_a_sr_odd.mrc").exists()
    stamp = (out / "mov_a.json").stat().st_mtime_ns
    status, _, _ = run_cli(monkeypatch, capsys, *args)  # a rerun resumes: nothing to redo
    assert status == 0 and (out / "mov_a.json").stat().st_mtime_ns == stamp


def test_shards_are_disjoint_and_cover_the_list():
    items = list(range(10))
    parts = [shard(items, i, 3) for i in (1, 2, 3)]
    assert sorted(i for part in parts for i in part) == items
    assert parse_shard("2/3") == (2, 3)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--method", "magic"], "--method"),
        (["--shard", "4/3"], "--shard"),
        (["--device", "cuda:7"], "cuda"),
        (["--pixel-size", "-1"], "--pixel-size"),
        (["--method", "bilinear", "--preset", "paper"], "--preset"),
        (["--method", "zssr", "--regime", "explicit"], "--method mmse"),
        (["--method", "mmse", "--max-iterations", "3"], "--max-iterations"),
        (["--method", "zssr", "--regime", "conference"], "regime"),
    ],
)
def test_bad_options_are_one_clean_line(movie, tmp_path, monkeypatch, capsys, extra, fragment):
    path, _, _ = movie
    out = tmp_path / "o"
    status, _, err = run_cli(monkeypatch, capsys, "run", str(path), "--out", str(out), *extra)
    assert_one_clean_error(status, err, fragment)
    assert not list(out.glob("*.mrc")) if out.exists() else True


def test_missing_pixel_size_and_unwritable_output(tmp_path, monkeypatch, capsys):
    lr, _, _ = synthetic_movie(size_hr=64, n_frames=4, seed=1)
    path = write_mrc(tmp_path / "nopix.mrc", lr.numpy(), pixel_size_angstrom=0.0, mode="uint16")
    status, _, err = run_cli(
        monkeypatch, capsys, "run", str(path), "--out", str(tmp_path / "o"), "--method", "bilinear"
    )
    assert_one_clean_error(status, err, "pixel size")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status, _, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        str(path),
        "--pixel-size",
        "3",
        "--out",
        str(blocker / "sub"),
        "--method",
        "bilinear",
    )
    assert_one_clean_error(status, err, "sub")
    assert blocker.read_text() == "not a folder"
