"""``bin_movie`` and ``fourier_crop``: counts summed exactly, pixel size scaled, memory per frame."""

from __future__ import annotations

import logging

import mrcfile
import numpy as np
import pytest
import torch

from cryozssr.errors import InputError, OutputError
from cryozssr.io import bin_movie, fourier_crop, open_movie, write_mrc
from cryozssr.ops import box_sum

COUNTS = np.random.default_rng(11).poisson(0.8, size=(3, 8, 12))


@pytest.mark.parametrize(
    ("stored", "written"), [("int8", "int16"), ("int16", "int16"), ("uint16", "uint16")]
)
def test_box_binning_sums_counts_exactly_and_stays_integer(tmp_path, stored, written):
    source = write_mrc(tmp_path / "in.mrcs", COUNTS, pixel_size_angstrom=0.415, mode=stored)
    with open_movie(source) as movie:
        result = bin_movie(movie, tmp_path / "out" / "in.mrc", factor=2)
    assert result.mode == written and result.shape == (4, 6)
    with mrcfile.open(result.path) as mrc:
        assert mrc.data.dtype == np.dtype(written)
        assert mrc.voxel_size.x == pytest.approx(0.83)
        expected = COUNTS.reshape(3, 4, 2, 6, 2).sum(axis=(2, 4))
        assert np.array_equal(mrc.data, expected)
        assert mrc.data.sum() == COUNTS.sum()  # no electron lost or invented


def test_odd_sizes_drop_the_last_row_and_column_and_say_so(tmp_path, caplog):
    odd = COUNTS[:, :7, :11]
    source = write_mrc(tmp_path / "odd.mrcs", odd, pixel_size_angstrom=1, mode="int16")
    with caplog.at_level(logging.WARNING, logger="cryozssr"), open_movie(source) as movie:
        result = bin_movie(movie, tmp_path / "b.mrc", factor=2)
    assert (result.dropped_rows, result.dropped_columns, result.shape) == (1, 1, (3, 5))
    assert "dropping the last 1 row(s) and 1 column(s)" in caplog.text
    with mrcfile.open(result.path) as mrc:
        assert np.array_equal(mrc.data, box_sum(torch.from_numpy(odd), 2).numpy())


def test_counts_too_large_for_uint16_fall_back_to_exact_float32(tmp_path, caplog):
    big = np.full((2, 4, 4), 60000, dtype=np.uint16)
    source = write_mrc(tmp_path / "big.mrcs", big, pixel_size_angstrom=1, mode="uint16")
    with open_movie(source) as movie:
        result = bin_movie(movie, tmp_path / "b.mrc", factor=2)
    assert result.mode == "float32" and "exceed uint16" in caplog.text
    with mrcfile.open(result.path) as mrc:
        assert np.all(mrc.data == 240000.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mrc", "big.mrcs"]  # no temp left


def test_gain_is_applied_before_binning(tmp_path):
    source = write_mrc(tmp_path / "in.mrcs", COUNTS, pixel_size_angstrom=1, mode="int16")
    gain = torch.linspace(0.9, 1.1, 96).reshape(8, 12)
    with open_movie(source) as movie:
        result = bin_movie(movie, tmp_path / "g.mrc", factor=2, gain=gain)
        with pytest.raises(InputError, match="gain reference shape"):
            bin_movie(movie, tmp_path / "x.mrc", factor=2, gain=gain[:, :10])
    with mrcfile.open(result.path) as mrc:
        expected = box_sum(torch.from_numpy(COUNTS).float() * gain, 2)
        np.testing.assert_allclose(mrc.data, expected.numpy(), rtol=1e-6)
    assert not (tmp_path / "x.mrc").exists()


def test_fourier_crop_keeps_band_limited_content_and_box_mean(tmp_path):
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(24.0), indexing="ij")
    k_y, k_x = 2 / 16, 3 / 24  # cycles per pixel, inside the binned Nyquist limit of 0.25
    image = 5 + torch.cos(2 * torch.pi * (k_y * y + k_x * x))
    cropped = fourier_crop(image, 2)
    # same content sampled every 2 pixels (from the same origin), in counts per binned pixel
    expected = 4 * image[::2, ::2]
    assert torch.allclose(cropped, expected, atol=1e-4)
    assert float(cropped.mean()) == pytest.approx(float(box_sum(image, 2).mean()), rel=1e-6)
    source = write_mrc(tmp_path / "c.mrcs", torch.stack([image, image]), pixel_size_angstrom=1)
    with open_movie(source) as movie:
        result = bin_movie(movie, tmp_path / "f.mrc", factor=2, method="fourier")
    with mrcfile.open(result.path) as mrc:
        assert mrc.data.dtype == np.float32 and mrc.voxel_size.x == pytest.approx(2.0)
        np.testing.assert_allclose(mrc.data[1], expected.numpy(), atol=1e-4)


def test_binning_never_overwrites_its_input(tmp_path):
    source = write_mrc(tmp_path / "in.mrc", COUNTS, pixel_size_angstrom=1, mode="int16")
    before = source.read_bytes()
    with open_movie(source) as movie, pytest.raises(OutputError, match="refusing to overwrite"):
        bin_movie(movie, source, factor=2, overwrite_protect=[source])
    assert source.read_bytes() == before
