"""Atomic MRC/STAR writers: round trips, header fields, refusal to overwrite, unwritable folders."""

from __future__ import annotations

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
import torch

from cryozssr.errors import OutputError
from cryozssr.io import (
    open_movie,
    open_mrc_writer,
    read_image,
    write_micrographs_star,
    write_mrc,
    write_star,
)

MODES = {None: (2, np.float32), "int8": (0, np.int8), "int16": (1, np.int16),
         "uint16": (6, np.uint16), "float16": (12, np.float16)}  # fmt: skip


@pytest.mark.parametrize("mode", list(MODES))
def test_write_mrc_stack_round_trip_each_mode(tmp_path, mode):
    data = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5) - 7
    if mode == "uint16":
        data = data + 7
    path = write_mrc(tmp_path / "s.mrcs", data, pixel_size_angstrom=0.83, mode=mode)
    number, dtype = MODES[mode]
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == number
        assert mrc.data.dtype == dtype
        assert int(mrc.header.ispg) == 0  # an image stack, not a volume
        np.testing.assert_allclose(mrc.voxel_size.x, 0.83, rtol=1e-6)
    with open_movie(path) as movie:
        assert movie.pixel_size_angstrom == pytest.approx(0.83)
        assert torch.equal(movie.read(), data)


def test_write_mrc_2d_numpy_and_volume_flag(tmp_path):
    image = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    write_mrc(tmp_path / "m.mrc", image, pixel_size_angstrom=1.5)
    back, pixel = read_image(tmp_path / "m.mrc")
    assert pixel == pytest.approx(1.5)
    assert torch.equal(back, torch.from_numpy(image))
    write_mrc(tmp_path / "v.mrc", np.zeros((3, 4, 4)), pixel_size_angstrom=2.0, volume=True)
    with mrcfile.open(tmp_path / "v.mrc") as mrc:
        assert int(mrc.header.ispg) == 1
        assert mrc.voxel_size.z == pytest.approx(2.0)


@pytest.mark.parametrize("shape", [(300, 200), (3, 2000, 1500)])  # the second: several blocks
def test_header_statistics_are_those_of_the_data(tmp_path, shape, monkeypatch):
    """dmin, dmax, dmean and rms (the standard deviation, as mrcfile writes it) computed a block
    at a time equal numpy's over the whole array (float32 header fields)."""
    from cryozssr.io import write as write_module

    monkeypatch.setattr(write_module, "STATS_BLOCK_ELEMENTS", 2**20)
    data = 5.0 + 2.0 * np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    write_mrc(tmp_path / "x.mrc", data, pixel_size_angstrom=1.0)
    with mrcfile.open(tmp_path / "x.mrc") as mrc:
        h = mrc.header
        assert np.array_equal(mrc.data, data)
        assert (float(h.dmin), float(h.dmax)) == (float(data.min()), float(data.max()))
        assert float(h.dmean) == pytest.approx(float(data.astype(np.float64).mean()), rel=1e-6)
        assert float(h.rms) == pytest.approx(float(data.astype(np.float64).std()), rel=1e-5)


def test_write_mrc_refuses_values_an_integer_mode_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        write_mrc(tmp_path / "x.mrc", np.full((2, 2), 300.0), pixel_size_angstrom=1, mode="int8")
    assert list(tmp_path.iterdir()) == []


def test_write_mrc_never_overwrites_a_protected_input(tmp_path):
    source = write_mrc(tmp_path / "in.mrc", np.ones((2, 2)), pixel_size_angstrom=1)
    before = source.read_bytes()
    with pytest.raises(OutputError, match="refusing to overwrite"):
        write_mrc(
            tmp_path / "sub" / ".." / "in.mrc",
            np.zeros((2, 2)),
            pixel_size_angstrom=1,
            overwrite_protect=[source],
        )
    assert source.read_bytes() == before


def test_unwritable_folder_is_one_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write to folder"):
        write_mrc(blocker / "out.mrc", np.zeros((2, 2)), pixel_size_angstrom=1)
    with pytest.raises(OutputError, match="cannot write to folder"):
        write_star(blocker / "x.star", {"a": pd.DataFrame({"rlnX": [1]})})


def test_writer_is_atomic_on_failure_and_streams_frames(tmp_path):
    target = tmp_path / "movie.mrc"
    with (
        pytest.raises(RuntimeError),
        open_mrc_writer(target, (3, 2, 2), pixel_size_angstrom=1, mode="uint16") as writer,
    ):
        writer[0] = np.ones((2, 2))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
    with open_mrc_writer(target, (3, 2, 2), pixel_size_angstrom=1.2, mode="uint16") as writer:
        for i in range(3):
            writer[i] = torch.full((2, 2), float(i))
    with open_movie(target) as movie:
        assert [float(f.mean()) for f in movie] == [0.0, 1.0, 2.0]
        assert movie.dtype_name == "uint16"
    assert [p.name for p in tmp_path.iterdir()] == ["movie.mrc"]


def test_micrographs_star_is_relion_31_style(tmp_path):
    path = write_micrographs_star(
        tmp_path / "micrographs_sr.star",
        ["a_sr.mrc", "b_sr.mrc"],
        pixel_size_angstrom=0.415,
        voltage_kv=300,
        spherical_aberration_mm=2.7,
        amplitude_contrast=0.1,
    )
    blocks = starfile.read(path, always_dict=True)
    optics, micrographs = blocks["optics"], blocks["micrographs"]
    assert optics.loc[0, "rlnMicrographPixelSize"] == pytest.approx(0.415)
    assert optics.loc[0, "rlnVoltage"] == pytest.approx(300)
    assert optics.loc[0, "rlnSphericalAberration"] == pytest.approx(2.7)
    assert optics.loc[0, "rlnAmplitudeContrast"] == pytest.approx(0.1)
    assert int(optics.loc[0, "rlnOpticsGroup"]) == 1
    assert list(micrographs["rlnMicrographName"]) == ["a_sr.mrc", "b_sr.mrc"]
    assert list(micrographs["rlnOpticsGroup"]) == [1, 1]
