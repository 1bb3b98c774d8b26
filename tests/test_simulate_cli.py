"""``cryozssr simulate`` writes the documented layout, reproducibly; bad options give one line."""

from __future__ import annotations

import json
import sys

import mrcfile
import numpy as np
import pytest
import starfile

from cryozssr.cli.app import main
from cryozssr.simulate.output import read_motion

TINY = ["--size-hr", "96", "--pixel-size-hr", "4", "--frames", "3", "--particles", "2"]


def _run(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["cryozssr", "simulate", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_simulate_writes_the_documented_layout(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sim"
    code, _ = _run(monkeypatch, capsys, ["--out", str(out), "--n-movies", "2", *TINY])
    assert code == 0
    for stem in ("mic_0000", "mic_0001"):
        with mrcfile.open(out / "movies_lr" / f"{stem}.mrc") as lr_file:
            assert lr_file.header.mode == 6
            assert float(lr_file.voxel_size.x) == pytest.approx(8.0)
            lr = lr_file.data.astype(np.int64)
        with mrcfile.open(out / "movies_hr" / f"{stem}.mrc") as hr_file:
            assert float(hr_file.voxel_size.x) == pytest.approx(4.0)
            hr = hr_file.data.astype(np.int64)
        assert hr.shape == (3, 96, 96) and lr.shape == (3, 48, 48)
        assert np.array_equal(lr, hr.reshape(3, 48, 2, 48, 2).sum(axis=(2, 4)))
        with mrcfile.open(out / "truth" / f"{stem}_ctf.mrc") as truth:
            assert truth.data.dtype == np.float32
            # counts per HR px per frame: dose x area x the K3's mean counts per electron
            counting = json.loads((out / "simulation.json").read_text())["detector_counting"]
            per_electron = counting["counts_per_electron"]
            assert truth.data.mean() == pytest.approx(1.5 * 16 * per_electron, rel=1e-3)
        assert (out / "truth" / f"{stem}_noctf.mrc").is_file()
        motion = read_motion(out / "truth" / f"{stem}_motion.json")
        assert motion.n_frames == 3 and motion.image_shape == (96, 96)
        saved = json.loads((out / "truth" / f"{stem}_motion.json").read_text())
        assert np.allclose(np.array(saved["global_angstrom"]), np.array(saved["global_lr_px"]) * 8)
    with mrcfile.open(out / "map.mrc") as vol:
        assert vol.data.ndim == 3 and float(vol.voxel_size.x) == pytest.approx(4.0)
    star = starfile.read(out / "particles.star")
    assert star["optics"]["rlnImagePixelSize"][0] == pytest.approx(4.0)
    particles = star["particles"]
    assert len(particles) == 4
    assert set(particles["rlnMicrographName"]) == {
        "movies_lr/mic_0000.mrc",
        "movies_lr/mic_0001.mrc",
    }
    assert particles["rlnCoordinateX"].between(0, 96).all()
    info = json.loads((out / "simulation.json").read_text())
    assert info["seed"] == 0 and info["config"]["frames"] == 3 and len(info["movies"]) == 2
    assert info["movies"][0]["ctf"]["defocus_u_angstrom"] == pytest.approx(
        particles["rlnDefocusU"][0]
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--size-hr", "95"],
        ["--particles", "-3"],
        ["--defocus-range", "2.5", "0.8"],
        ["--model", "/nonexistent/model.cif"],
        ["--detector", "film"],
    ],
)
def test_bad_options_give_one_line_and_exit_2(tmp_path, monkeypatch, capsys, bad):
    code, err = _run(monkeypatch, capsys, ["--out", str(tmp_path / "x"), *TINY, *bad])
    assert code == 2
    assert err.startswith("cryozssr: error:") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
