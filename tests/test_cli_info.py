"""``cryozssr info``: reported figures on known movies, and one clean line for each bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _cli import assert_one_clean_error, run_cli
from cryozssr.io import write_mrc

FRAMES = np.stack([np.full((6, 8), 2), np.full((6, 8), 4)]).astype(np.int16)  # 3 counts/px/frame


def test_info_json_reports_counts_and_dose(tmp_path, monkeypatch, capsys):
    movie = write_mrc(tmp_path / "m.mrcs", FRAMES, pixel_size_angstrom=0.5, mode="int16")
    status, out, _ = run_cli(monkeypatch, capsys, "info", str(movie), "--json")
    assert status == 0
    (record,) = json.loads(out)
    assert (record["n_frames"], record["height"], record["width"]) == (2, 6, 8)
    assert record["mode"] == "MRC mode 1 (int16)"
    assert record["pixel_size_angstrom"] == pytest.approx(0.5)
    assert record["mean_counts_per_pixel_per_frame"] == pytest.approx(3.0)
    assert record["dose_per_frame_e_per_a2"] == pytest.approx(12.0)  # 3 / 0.5**2


def test_info_table_and_pixel_size_override(tmp_path, monkeypatch, capsys):
    tiff = tmp_path / "t.tiff"
    tifffile.imwrite(tiff, FRAMES.astype(np.uint16), photometric="minisblack")
    status, out, _ = run_cli(monkeypatch, capsys, "info", str(tiff))
    assert status == 0 and "3.0000" in out and "-" in out  # no pixel size: no dose
    status, out, _ = run_cli(monkeypatch, capsys, "info", str(tiff), "--pixel-size", "1", "--json")
    assert json.loads(out)[0]["dose_per_frame_e_per_a2"] == pytest.approx(3.0)


def _truncated(tmp_path: Path) -> Path:
    path = write_mrc(tmp_path / "t.mrc", FRAMES, pixel_size_angstrom=1, mode="int16")
    path.write_bytes(path.read_bytes()[:-10])
    return path


def _corrupt_tiff(tmp_path: Path) -> Path:
    path = tmp_path / "c.tif"
    path.write_bytes(b"II*\x00" + b"\x13" * 100)
    return path


def _single_image(tmp_path: Path) -> Path:
    return write_mrc(tmp_path / "one.mrc", FRAMES[0], pixel_size_angstrom=1)


def _nan_movie(tmp_path: Path) -> Path:
    data = FRAMES.astype(np.float32)
    data[1, 0, 0] = np.inf
    return write_mrc(tmp_path / "inf.mrc", data, pixel_size_angstrom=1)


def _unknown(tmp_path: Path) -> Path:
    path = tmp_path / "movie.dm4"
    path.write_bytes(b"\x00" * 64)
    return path


BAD = {
    "missing file": (lambda p: p / "absent.mrc", "no such file"),
    "unknown extension": (_unknown, "unknown file extension"),
    "truncated MRC": (_truncated, "truncated MRC file"),
    "corrupt TIFF": (_corrupt_tiff, "not a readable TIFF file"),
    "single 2D image": (_single_image, "single 2D image, not a movie"),
    "Inf in frames": (_nan_movie, "frame 1 holds 1 NaN/Inf values"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_and_status_2(tmp_path, monkeypatch, capsys, case):
    make, message = BAD[case]
    path = make(tmp_path)
    status, out, err = run_cli(monkeypatch, capsys, "info", str(path))
    assert_one_clean_error(status, err, str(path), message)
    assert out == ""


def test_console_script_gives_one_line_without_traceback(tmp_path):
    script = Path(sys.executable).with_name("cryozssr")
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    result = subprocess.run(
        [str(script), "info", str(tmp_path / "absent.tiff")], capture_output=True, text=True
    )
    assert_one_clean_error(result.returncode, result.stderr, "no such file")
