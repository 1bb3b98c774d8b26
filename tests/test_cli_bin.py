"""``cryozssr bin``: writes binned movies with the right counts and header; bad input writes nothing."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from _cli import assert_one_clean_error, run_cli
from cryozssr.io import write_mrc

COUNTS = np.random.default_rng(5).poisson(1.0, size=(3, 6, 8)).astype(np.uint16)


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_bin_tiff_movie_sums_counts_and_doubles_pixel_size(tmp_path, monkeypatch, capsys):
    tiff = tmp_path / "movie_001.tiff"
    tifffile.imwrite(tiff, COUNTS, compression="lzw", photometric="minisblack")
    out = tmp_path / "binned"
    status, _, _ = run_cli(
        monkeypatch, capsys, "bin", str(tiff), "--factor", "2", "--out", str(out),
        "--pixel-size", "0.415",
    )  # fmt: skip
    assert status == 0
    assert files_under(out) == ["movie_001.mrc"]
    with mrcfile.open(out / "movie_001.mrc") as mrc:
        assert mrc.data.dtype == np.uint16
        assert mrc.voxel_size.x == pytest.approx(0.83)
        flipped = COUNTS[:, ::-1]  # TIFF rows are flipped on read, as in RELION
        assert np.array_equal(mrc.data, flipped.reshape(3, 3, 2, 4, 2).sum(axis=(2, 4)))


def test_bin_fourier_mode_writes_float32_with_box_mean(tmp_path, monkeypatch, capsys):
    movie = write_mrc(tmp_path / "m.mrcs", COUNTS, pixel_size_angstrom=1, mode="uint16")
    out = tmp_path / "f"
    status, _, _ = run_cli(
        monkeypatch, capsys, "bin", str(movie), "--out", str(out), "--mode", "fourier"
    )
    assert status == 0
    with mrcfile.open(out / "m.mrc") as mrc:
        assert mrc.data.dtype == np.float32 and mrc.voxel_size.x == pytest.approx(2.0)
        np.testing.assert_allclose(
            mrc.data.mean(axis=(1, 2)), 4 * COUNTS.mean(axis=(1, 2)), rtol=1e-5
        )


def _gain_mismatch(tmp_path: Path) -> list[str]:
    movie = write_mrc(tmp_path / "m.mrcs", COUNTS, pixel_size_angstrom=1, mode="uint16")
    gain = write_mrc(tmp_path / "gain.mrc", np.ones((6, 8)), pixel_size_angstrom=1)
    return [str(movie), "--gain", str(gain), "--gain-rot", "1"]


def _no_pixel_size(tmp_path: Path) -> list[str]:
    tifffile.imwrite(tmp_path / "m.tif", COUNTS, photometric="minisblack")
    return [str(tmp_path / "m.tif")]


def _nan_frames(tmp_path: Path) -> list[str]:
    data = COUNTS.astype(np.float32)
    data[2, 5, 7] = np.nan
    return [str(write_mrc(tmp_path / "n.mrcs", data, pixel_size_angstrom=1))]


def _truncated(tmp_path: Path) -> list[str]:
    path = write_mrc(tmp_path / "t.mrcs", COUNTS, pixel_size_angstrom=1, mode="uint16")
    path.write_bytes(path.read_bytes()[:-2])
    return [str(path)]


def _single_image(tmp_path: Path) -> list[str]:
    return [str(write_mrc(tmp_path / "one.mrc", COUNTS[0], pixel_size_angstrom=1))]


BAD = {
    "missing file": (lambda p: [str(p / "absent.tiff")], "no such file"),
    "truncated MRC": (_truncated, "truncated MRC file"),
    "single 2D image": (_single_image, "single 2D image"),
    "NaN in frames": (_nan_frames, "frame 2 holds 1 NaN/Inf values"),
    "gain shape mismatch": (_gain_mismatch, "gain reference shape (8, 6) does not match"),
    "missing pixel size": (
        _no_pixel_size,
        "no pixel size in the header (set it with --pixel-size)",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_writes_nothing(tmp_path, monkeypatch, capsys, case):
    make, message = BAD[case]
    out = tmp_path / "out"
    status, _, err = run_cli(monkeypatch, capsys, "bin", *make(tmp_path), "--out", str(out))
    assert_one_clean_error(status, err, message)
    assert files_under(out) == []  # not even a temporary file


def test_unwritable_output_folder(tmp_path, monkeypatch, capsys):
    movie = write_mrc(tmp_path / "m.mrcs", COUNTS, pixel_size_angstrom=1, mode="uint16")
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output folder should be")
    status, _, err = run_cli(monkeypatch, capsys, "bin", str(movie), "--out", str(blocker / "sub"))
    assert_one_clean_error(status, err, "cannot write to folder")


def test_output_onto_the_input_is_refused(tmp_path, monkeypatch, capsys):
    movie = write_mrc(tmp_path / "m.mrc", COUNTS, pixel_size_angstrom=1, mode="uint16")
    before = movie.read_bytes()
    status, _, err = run_cli(monkeypatch, capsys, "bin", str(movie), "--out", str(tmp_path))
    assert_one_clean_error(status, err, "refusing to overwrite input file")
    assert movie.read_bytes() == before


@pytest.mark.parametrize(("option", "value"), [("--factor", "1"), ("--mode", "bicubic")])
def test_bad_options(tmp_path, monkeypatch, capsys, option, value):
    movie = write_mrc(tmp_path / "m.mrcs", COUNTS, pixel_size_angstrom=1, mode="uint16")
    status, _, err = run_cli(
        monkeypatch, capsys, "bin", str(movie), "--out", str(tmp_path / "o"), option, value
    )
    assert_one_clean_error(status, err, option)
