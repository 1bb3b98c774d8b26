"""RELION 5 conventions: the micrographs and motion STAR files, and the External-job contract.

Column names and conventions checked here are RELION's (src/metadata_label.h,
src/micrograph_model.cpp, src/motioncorr_runner.cpp, src/pipeline_control.cpp).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
import starfile
import torch

from _cli import run_cli
from _synthetic import synthetic_movie
from cryozssr.io import write_mrc
from cryozssr.motion.field import MotionField
from cryozssr.pipeline import runner
from cryozssr.pipeline.star import _polynomial_terms, fit_local_model

PIXEL = 3.0
OPTICS_COLUMNS = {
    "rlnOpticsGroupName",
    "rlnOpticsGroup",
    "rlnMicrographOriginalPixelSize",
    "rlnMicrographPixelSize",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
}
MICROGRAPH_COLUMNS = [
    "rlnMicrographName",
    "rlnMicrographMetadata",
    "rlnOpticsGroup",
    "rlnAccumMotionTotal",
    "rlnAccumMotionEarly",
    "rlnAccumMotionLate",
]
GENERAL_KEYS = {
    "rlnImageSizeX",
    "rlnImageSizeY",
    "rlnImageSizeZ",
    "rlnMicrographMovieName",
    "rlnMicrographBinning",
    "rlnMicrographOriginalPixelSize",
    "rlnMicrographDoseRate",
    "rlnMicrographPreExposure",
    "rlnVoltage",
    "rlnMicrographStartFrame",
    "rlnMotionModelVersion",
}


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("relion_movie")
    lr, shifts, _ = synthetic_movie(size_hr=128, n_frames=8, seed=5)
    path = write_mrc(folder / "mov.mrc", lr.numpy(), pixel_size_angstrom=PIXEL, mode="uint16")
    return path, shifts


def test_star_files_follow_relion_conventions(movie, tmp_path, monkeypatch, capsys):
    path, shifts = movie
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--method", "bilinear", "--device", "cpu",
            "--dose-per-frame", "1.5", "--mtf", "mtf_k3.star"]  # fmt: skip
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    star = starfile.read(out / "micrographs_sr.star")
    optics, mics = star["optics"], star["micrographs"]
    assert set(optics.columns) == OPTICS_COLUMNS | {"rlnMtfFileName"}
    assert optics["rlnMicrographOriginalPixelSize"][0] == pytest.approx(PIXEL)
    assert optics["rlnMicrographPixelSize"][0] == pytest.approx(PIXEL / 2)
    assert optics["rlnMtfFileName"][0] == "mtf_k3.star"
    assert list(mics.columns) == MICROGRAPH_COLUMNS
    assert mics["rlnMicrographName"][0] == "mov_sr.mrc"
    meta = starfile.read(out / mics["rlnMicrographMetadata"][0], always_dict=True)
    general = meta["general"]
    assert set(general) == GENERAL_KEYS
    assert general["rlnMicrographBinning"] == 0.5  # 2x micrograph: half a movie pixel
    assert general["rlnMicrographStartFrame"] == 1 and general["rlnMotionModelVersion"] == 0
    assert general["rlnImageSizeZ"] == 8 and general["rlnImageSizeX"] == 64
    glob = meta["global_shift"]
    assert list(glob["rlnMicrographFrameNumber"]) == list(range(1, 9))
    # RELION's shift aligns the frame: minus the injected specimen motion (y, x), in movie px
    relion_xy = torch.tensor(glob[["rlnMicrographShiftX", "rlnMicrographShiftY"]].to_numpy())
    injected_xy = shifts.double().flip(-1)
    assert float((relion_xy + injected_xy).norm(dim=-1).max()) < 0.5
    assert float((relion_xy - injected_xy).norm(dim=-1).max()) > 3  # not the other sign
    # accumulated motion as RELION sums it: frame-to-frame steps, early = dose <= 4 e/A^2
    steps = relion_xy.diff(dim=0).norm(dim=-1)
    assert mics["rlnAccumMotionTotal"][0] == pytest.approx(float(steps.sum()), abs=1e-4)
    assert mics["rlnAccumMotionEarly"][0] == pytest.approx(float(steps[:1].sum()), abs=1e-4)
    assert "local_motion_model" not in meta


def test_local_motion_model_recovers_relions_polynomial():
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(18, 2, generator=g, dtype=torch.float64) * 0.2
    t, gh, gw, h, w = 7, 3, 4, 60, 80
    zz, ii, jj = torch.meshgrid(
        torch.arange(t, dtype=torch.float64),
        torch.arange(gh, dtype=torch.float64),
        torch.arange(gw, dtype=torch.float64),
        indexing="ij",
    )
    y = ((ii + 0.5) * h / gh - 0.5).flatten() / h - 0.5
    x = ((jj + 0.5) * w / gw - 0.5).flatten() / w - 0.5
    relion_xy = _polynomial_terms(zz.flatten(), x, y) @ truth  # RELION's aligning shifts
    local = -relion_xy.flip(-1).reshape(t, gh, gw, 2)  # our specimen (y, x)
    field = MotionField(torch.zeros(t, 2), (h, w), local.float())
    cx, cy = fit_local_model(field)
    assert torch.allclose(cx, truth[:, 0], atol=1e-3) and torch.allclose(cy, truth[:, 1], atol=1e-3)
    assert fit_local_model(MotionField(torch.zeros(t, 2), (h, w))) is None


def _project(tmp_path, n=3):
    """A RELION project: Movies/ and Import/job001/movies.star (names relative to the project)."""
    (tmp_path / "Movies").mkdir()
    (tmp_path / "Import" / "job001").mkdir(parents=True)
    names = []
    for i in range(n):
        lr, _, _ = synthetic_movie(size_hr=96, n_frames=6, seed=30 + i)
        write_mrc(tmp_path / "Movies" / f"m{i}.mrc", lr.numpy(), pixel_size_angstrom=0.0,
                  mode="uint16")  # fmt: skip
        names.append(f"Movies/m{i}.mrc")
    optics = pd.DataFrame(
        {
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnOpticsGroup": [1],
            "rlnMicrographOriginalPixelSize": [PIXEL],
            "rlnVoltage": [200.0],
            "rlnSphericalAberration": [2.7],
            "rlnAmplitudeContrast": [0.1],
        }
    )
    movies = pd.DataFrame({"rlnMicrographMovieName": names, "rlnOpticsGroup": [1] * n})
    starfile.write({"optics": optics, "movies": movies}, tmp_path / "Import/job001/movies.star")


def _tree(root):
    return {p.relative_to(root) for p in root.rglob("*")}


def test_external_job_writes_relion_files_aborts_and_continues(tmp_path, monkeypatch, capsys):
    _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    job = tmp_path / "External" / "job005"
    args = ["relion-external", "--o", "External/job005/", "--in_movies",
            "Import/job001/movies.star", "--method", "bilinear", "--device", "cpu",
            "--dose_per_frame", "1.5", "--j", "1"]  # fmt: skip
    real = runner.run_movie_job

    def abort_after_first(job_, on_progress=None):
        outcome = real(job_, on_progress)
        (job / "RELION_JOB_ABORT_NOW").touch()  # the user presses Abort in RELION
        return outcome

    monkeypatch.setattr(runner, "run_movie_job", abort_after_first)
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert (job / "RELION_JOB_EXIT_ABORTED").exists()
    assert not (job / "RELION_JOB_EXIT_SUCCESS").exists()
    first = (job / "m0_sr.mrc").stat().st_mtime_ns
    monkeypatch.setattr(runner, "run_movie_job", real)
    status, _, err = run_cli(monkeypatch, capsys, *args)  # RELION's "Continue"
    assert status == 0, err
    assert "3 done (1 already)" in err
    assert (job / "m0_sr.mrc").stat().st_mtime_ns == first
    assert (job / "RELION_JOB_EXIT_SUCCESS").exists()
    assert not (job / "RELION_JOB_EXIT_ABORTED").exists()
    nodes = starfile.read(job / "RELION_OUTPUT_NODES.star")
    assert list(nodes["rlnPipeLineNodeName"]) == ["External/job005/micrographs_sr.star"]
    assert list(nodes["rlnPipeLineNodeTypeLabel"]) == [
        "MicrographGroupMetadata.star.relion.motioncorr"
    ]
    star = starfile.read(job / "micrographs_sr.star")
    assert star["optics"]["rlnMicrographOriginalPixelSize"][0] == PIXEL  # from movies.star
    assert star["optics"]["rlnVoltage"][0] == 200.0
    for name in star["micrographs"]["rlnMicrographName"]:
        assert (tmp_path / name).is_file()  # project-relative, as RELION reads it
    meta = starfile.read(tmp_path / star["micrographs"]["rlnMicrographMetadata"][0])
    assert meta["general"]["rlnMicrographMovieName"] == "Movies/m0.mrc"
    outside = {p for p in _tree(tmp_path) - before if p.parts[0] != "External"}
    assert outside == set() and {p.parts[:2] for p in _tree(tmp_path) - before} <= {
        ("External",),
        ("External", "job005"),
    }


def test_external_job_failure_leaves_the_failure_marker(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.star").write_text("data_movies\nloop_\n_rlnOpticsGroup\n1\n")
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(
        monkeypatch, capsys, "relion-external", "--o", "External/job006/", "--in_movies",
        "bad.star", "--j", "1",
    )  # fmt: skip
    assert status == 2 and "rlnMicrographMovieName" in err
    assert (tmp_path / "External/job006/RELION_JOB_EXIT_FAILURE").exists()
    status, _, err = run_cli(
        monkeypatch, capsys, "relion-external", "--o", "External/job007/", "--in_movies",
        "bad.star", "--bogus", "3",
    )  # fmt: skip
    assert status == 2
    assert (tmp_path / "External/job007/RELION_JOB_EXIT_FAILURE").exists()


def test_external_job_motion_defaults_and_options_follow_cryozssr_run(
    tmp_path, monkeypatch, capsys
):
    """``--patches`` takes what ``cryozssr run --patches`` takes, with the same default (auto)."""
    _project(tmp_path, n=1)
    monkeypatch.chdir(tmp_path)
    common = ["relion-external", "--in_movies", "Import/job001/movies.star", "--method",
              "bilinear", "--device", "cpu", "--dose_per_frame", "1.5", "--j", "1"]  # fmt: skip
    status, _, err = run_cli(monkeypatch, capsys, *common, "--o", "External/job008/")
    assert status == 0, err
    record = json.loads((tmp_path / "External/job008/m0.json").read_text())
    assert record["config"]["motion_patches"] == "auto"
    status, _, err = run_cli(
        monkeypatch, capsys, *common, "--o", "External/job009/", "--patches", "bogus"
    )
    assert status == 2 and "--patches bogus" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "External/job009/RELION_JOB_EXIT_FAILURE").exists()


@pytest.mark.skipif(
    shutil.which("relion_star_handler") is None, reason="RELION is not installed here"
)
def test_relions_own_reader_takes_our_micrographs_star(movie, tmp_path, monkeypatch, capsys):
    path, _ = movie
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--method", "bilinear", "--device", "cpu",
            "--dose-per-frame", "1.5"]  # fmt: skip
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    done = subprocess.run(
        ["relion_star_handler", "--i", "micrographs_sr.star", "--o", "checked.star"],
        cwd=out, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert starfile.read(out / "checked.star")["micrographs"].shape[0] == 1
