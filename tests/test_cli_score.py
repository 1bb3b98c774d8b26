"""``cryozssr run --score-folds``: recorded with the run, bad values one clean line, nothing written."""

from __future__ import annotations

import json

import pytest

from _cli import assert_one_clean_error, run_cli
from _synthetic import synthetic_movie
from cryozssr.io import write_mrc


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    lr, _, _ = synthetic_movie(size_hr=160, n_frames=12, counts_per_hr_px=8.0, seed=3)
    path = tmp_path_factory.mktemp("movies") / "mov.mrc"
    return write_mrc(path, lr.numpy(), pixel_size_angstrom=3.0, mode="uint16")


def _run(monkeypatch, capsys, movie, out, *extra):
    args = ("run", str(movie), "--out", str(out), "--method", "bilinear", "--device", "cpu")
    return run_cli(monkeypatch, capsys, *args, *extra)


def test_the_folds_are_recorded_with_the_run(movie, tmp_path, monkeypatch, capsys):
    status, _, err = _run(monkeypatch, capsys, movie, tmp_path, "--half-sets", "--score-folds", "2")
    assert status == 0, err
    record = json.loads((tmp_path / "mov.json").read_text())
    assert record["config"]["score_folds"] == 2
    score = record["alias_score"]
    assert score["n_folds"] == 2 and score["n_fit_frames"] == 6  # the half sets, 12 frames
    # bilinear is the baseline: nothing beyond it (its own raw z, if below 0, is the minimum)
    assert score["z_beyond_interpolation"] == min(score["z"], 0.0)
    assert score["recovered"] is False and "no" in score["verdict"]


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--half-sets", "--score-folds", "1"], ["--score-folds 1", "at least 2"]),
        (["--half-sets", "--score-folds", "3"], ["--score-folds", "3 folds need at least 15"]),
        (["--score-folds", "2"], ["--score-folds", "--half-sets"]),
    ],
)
def test_bad_score_folds_are_one_line_and_write_nothing(
    movie, tmp_path, monkeypatch, capsys, extra, fragments
):
    out = tmp_path / "out"
    status, _, err = _run(monkeypatch, capsys, movie, out, *extra)
    if status == 3:  # a batch records a movie's own failure; the single movie's line is below
        pytest.fail(err)
    assert_one_clean_error(status, err, *fragments)
    assert not list(out.glob("mov*")) if out.exists() else True


@pytest.mark.parametrize(
    ("folds", "fragment"), [("1", "at least 2 folds"), ("9", "9 folds need at least 45 frames")]
)
def test_the_demos_bad_score_folds_are_one_line(tmp_path, monkeypatch, capsys, folds, fragment):
    out = tmp_path / "demo"
    status, _, err = run_cli(
        monkeypatch, capsys, "demo", "--out", str(out), "--frames", "40", "--score-folds", folds
    )
    assert_one_clean_error(status, err, "--score-folds", fragment)
    assert not out.exists()
