"""The bad-input corpus: every case gives one ``cryozssr: error:`` line and exit status 2, leaves no
output that looks complete, and leaves the inputs byte for byte as they were.

Each case builds its (small) input in ``tmp_path``; the issue's failing cases are among them
(saturated movie, float movie scaled by 1e20, ``--dose-per-frame 5000``, ``--pixel-size inf``,
all-zero gain and movie, computed dose -9.6 / 750 e/A^2, truncated LZW TIFF, ``--patches 0``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
import tifffile

from _cli import assert_one_clean_error, run_cli
from _synthetic import synthetic_movie
from cryozssr.io import write_mrc
from cryozssr.pipeline import manifest as mf
from test_io_eer import write_eer

PIXEL = 3.0


def _frames(n_frames: int = 6, size_hr: int = 96, seed: int = 0) -> np.ndarray:
    return synthetic_movie(size_hr=size_hr, n_frames=n_frames, seed=seed)[0].numpy()


def _mrc(d: Path, name: str, data: np.ndarray, *, mode: str | None = "uint16", pixel=PIXEL) -> Path:
    return write_mrc(d / name, data, pixel_size_angstrom=pixel, mode=mode)


def _good(d: Path) -> Path:
    return _mrc(d, "good.mrc", _frames())


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _lzw_tiff(d: Path) -> Path:
    path = d / "movie.tif"
    tifffile.imwrite(path, _frames().astype(np.uint8), compression="lzw")
    return path


def _gain(d: Path, data: np.ndarray) -> str:
    return str(_mrc(d, "gain.mrc", data.astype(np.float32), mode=None))


Case = Callable[[Path], tuple[list[str], str]]  # input folder -> (arguments, expected fragment)

CASES: dict[str, Case] = {
    "zero-byte file": lambda d: ([str(_truncate(_good(d), 0))], "not a readable MRC file"),
    "truncated MRC": lambda d: ([str(_truncate(_good(d), 0.6))], "truncated MRC file"),
    "corrupt MRC header": lambda d: (
        [str(d / "junk.mrc")] if (d / "junk.mrc").write_bytes(os.urandom(4096)) else [],
        "junk.mrc",
    ),
    "header claims more frames than stored": lambda d: (
        [str(_more_frames_claimed(d))],
        "the header promises 9 x 48 x 48",
    ),
    "unsupported MRC mode": lambda d: ([str(_complex_mode(d))], "unsupported MRC mode 4"),
    "truncated LZW TIFF": lambda d: ([str(_truncate(_lzw_tiff(d), 0.6))], "truncated TIFF file"),
    "corrupt TIFF": lambda d: (
        [str(d / "bad.tif")] if (d / "bad.tif").write_bytes(b"II*\x00" + os.urandom(500)) else [],
        "bad.tif",
    ),
    "truncated EER": lambda d: (
        [str(_truncate(_eer(d), 0.5)), "--eer-fractions", "4"],
        "movie.eer",
    ),
    "NaN frame": lambda d: ([str(_non_finite(d, np.nan)), "--dose-per-frame", "1"], "NaN/Inf"),
    "Inf frame": lambda d: ([str(_non_finite(d, np.inf)), "--dose-per-frame", "1"], "NaN/Inf"),
    "single-frame movie": lambda d: ([str(_mrc(d, "one.mrc", _frames()[:1]))], "single 2D image"),
    "two-frame movie, default method": lambda d: (
        [str(_mrc(d, "two.mrc", _frames()[:2])), "--dose-per-frame", "1.5"],
        "needs at least 4 frames",
    ),
    "frames smaller than a tile": lambda d: (
        [str(_mrc(d, "tiny.mrc", _frames()[:, :8, :8])), "--dose-per-frame", "1.5"],
        "too small to align",
    ),
    "gain of the wrong shape": lambda d: (
        [str(_good(d)), "--gain", _gain(d, np.ones((40, 48)))],
        "gain reference is (40, 48) but frames are (48, 48)",
    ),
    "gain in the wrong orientation": lambda d: (
        [
            str(_mrc(d, "rect.mrc", _frames()[:, :40, :])),
            "--gain",
            _gain(d, np.ones((40, 48))),
            "--gain-rot",
            "1",
        ],
        "check --gain-rot",
    ),
    "all-zero gain": lambda d: (
        [str(_good(d)), "--gain", _gain(d, np.zeros((48, 48)))],
        "all zero",
    ),
    "NaN in the gain": lambda d: (
        [str(_good(d)), "--gain", _gain(d, np.full((48, 48), np.nan))],
        "NaN/Inf",
    ),
    "missing pixel size": lambda d: (
        [str(_mrc(d, "nopix.mrc", _frames(), pixel=0.0))],
        "no pixel size in the header",
    ),
    "zero pixel size": lambda d: ([str(_good(d)), "--pixel-size", "0"], "--pixel-size"),
    "negative pixel size": lambda d: ([str(_good(d)), "--pixel-size", "-1.5"], "--pixel-size"),
    "infinite pixel size": lambda d: ([str(_good(d)), "--pixel-size", "inf"], "not plausible"),
    "implausible header pixel size": lambda d: (
        [str(_mrc(d, "huge.mrc", _frames(), pixel=500.0))],
        "header: pixel size 500.0 A is not plausible",
    ),
    "zero dose": lambda d: ([str(_good(d)), "--dose-per-frame", "0"], "--dose-per-frame"),
    "negative dose": lambda d: ([str(_good(d)), "--dose-per-frame", "-2"], "--dose-per-frame"),
    "dose per frame 5000": lambda d: ([str(_good(d)), "--dose-per-frame", "5000"], "not plausible"),
    "computed dose 750 (scaled integrating movie)": lambda d: (
        [str(_scaled(d))],
        "mean counts / pixel area: dose per frame 750",
    ),
    "negative counts in an int16 movie": lambda d: (
        [str(_mrc(d, "neg.mrc", _frames().astype(np.int16) - 20, mode="int16"))],
        "negative values in an integer-count movie",
    ),
    "saturated movie": lambda d: (
        [str(_mrc(d, "sat.mrc", np.full((6, 48, 48), 65535)))],
        "saturated movie",
    ),
    "all-zero movie": lambda d: ([str(_mrc(d, "zero.mrc", np.zeros((6, 48, 48))))], "is 0"),
    "float movie scaled by 1e20": lambda d: (
        [
            str(_mrc(d, "big.mrc", _frames().astype(np.float32) * 1e20, mode=None)),
            "--dose-per-frame",
            "1",
        ],
        "not finite",
    ),
    "--patches 0": lambda d: ([str(_good(d)), "--patches", "0"], "--patches 0: must be at least 1"),
    "folder with no movies": lambda d: (
        [str(d / "empty")] if (d / "empty").mkdir() is None else [],
        "folder holds no movies",
    ),
    "dangling symlink": lambda d: (
        [str(d / "link.mrc")] if (d / "link.mrc").symlink_to(d / "gone.mrc") is None else [],
        "no such file",
    ),
    "STAR file without movie names": lambda d: (
        [str(_star_missing_column(d))],
        "rlnMicrographMovieName",
    ),
    "unknown extension": lambda d: (
        [str(d / "movie.dm4")] if (d / "movie.dm4").write_bytes(b"x" * 100) else [],
        "unknown file extension",
    ),
}


def _more_frames_claimed(d: Path) -> Path:
    path = _mrc(d, "claims.mrc", _frames())
    with mrcfile.open(path, "r+", permissive=True) as m:
        m.header.nz = 9
    return path


def _complex_mode(d: Path) -> Path:
    path = d / "complex.mrc"
    with mrcfile.new(path) as m:
        m.set_data(np.zeros((6, 48, 48), np.complex64))
        m.voxel_size = PIXEL
    return path


def _eer(d: Path) -> Path:
    path = d / "movie.eer"
    write_eer(path, (np.random.default_rng(3).random((16, 48, 48)) < 0.1).astype(np.uint8))
    return path


def _non_finite(d: Path, value: float) -> Path:
    data = _frames().astype(np.float32)
    data[3, 5, 7] = value
    return _mrc(d, "nonfinite.mrc", data, mode=None)


def _scaled(d: Path) -> Path:
    # 750 e/A^2 per frame at 3 A: 6750 counts per pixel per frame
    data = np.full((6, 48, 48), 6750, np.int16) + (_frames() % 7).astype(np.int16)
    return _mrc(d, "scaled.mrc", data, mode="int16")


def _star_missing_column(d: Path) -> Path:
    import pandas as pd

    path = d / "movies.star"
    starfile.write({"movies": pd.DataFrame({"rlnOpticsGroup": [1, 1]})}, path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_leaves_nothing_that_looks_complete(
    case, tmp_path, monkeypatch, capsys
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    args, fragment = CASES[case](inputs)
    before = _digest(inputs)
    out = tmp_path / "out"
    status, _, err = run_cli(
        monkeypatch, capsys, "run", *args, "--out", str(out), "--device", "cpu"
    )
    assert_one_clean_error(status, err, fragment)
    assert _digest(inputs) == before  # inputs untouched
    if out.exists():  # nothing partial that looks complete
        assert not list(out.glob("*.mrc")) and not list(out.glob("*_sr.star"))
        assert [p.name for p in out.glob("*.json")] in ([], [mf.MANIFEST_NAME])
        assert not (out / "micrographs_sr.star").exists()
        done = [e for e in mf.read_manifest(out)["movies"].values() if e["state"] == "done"]
        assert not done


def test_the_corpus_covers_the_issue(tmp_path):
    assert len(CASES) >= 25


def test_a_read_only_output_folder(tmp_path, monkeypatch, capsys):
    movie = _good(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        status, _, err = run_cli(monkeypatch, capsys, "run", str(movie), "--out", str(out))
        assert_one_clean_error(status, err, "not writable")
    finally:
        out.chmod(0o755)


def test_a_full_disk_is_a_recorded_failure_with_no_output_left(tmp_path, monkeypatch, capsys):
    import errno

    from cryozssr.io import write as write_module

    movie = _good(tmp_path)
    real_new = mrcfile.new
    calls = []

    def full_after_first(path, *a, **k):  # the SR is written, then the disk is full
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_new(path, *a, **k)

    monkeypatch.setattr(write_module.mrcfile, "new", full_after_first)
    out = tmp_path / "out"
    status, _, err = run_cli(
        monkeypatch, capsys, "run", str(movie), "--out", str(out), "--method", "bilinear",
        "--device", "cpu", "--dose-per-frame", "1.5",
    )  # fmt: skip
    assert_one_clean_error(status, err, "No space left on device")
    assert not list(out.glob("good*")) and not list(out.glob(".*.tmp"))
    assert mf.read_manifest(out)["movies"]["good"]["state"] == "failed"


def test_a_symlinked_movie_is_read_and_its_target_untouched(tmp_path, monkeypatch, capsys):
    target = _good(tmp_path)
    link = tmp_path / "linked.mrc"
    link.symlink_to(target)
    before = target.read_bytes()
    out = tmp_path / "out"
    args = ["run", str(link), "--out", str(out), "--method", "bilinear", "--device", "cpu"]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    assert (out / "linked_sr.mrc").exists() and target.read_bytes() == before
    # an output folder that is the movies' folder: outputs never replace an input
    status, _, err = run_cli(
        monkeypatch, capsys, "run", str(target), "--out", str(tmp_path), "--method", "bilinear",
        "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    assert target.read_bytes() == before


def test_odd_frame_sizes_are_processed_at_twice_the_size(tmp_path, monkeypatch, capsys):
    movie = _mrc(tmp_path, "odd.mrc", _frames()[:, :47, :45])
    out = tmp_path / "out"
    args = ["run", str(movie), "--out", str(out), "--method", "misr", "--device", "cpu",
            "--dose-per-frame", "1.5"]  # fmt: skip
    status, _, err = run_cli(monkeypatch, capsys, *args)
    assert status == 0, err
    assert mrcfile.read(out / "odd_sr.mrc").shape == (94, 90)
