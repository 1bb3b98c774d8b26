"""Movie and micrograph readers: every MRC mode and TIFF flavour, pixel sizes, and each bad file."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
import torch

from cryozssr.errors import InputError
from cryozssr.io import open_movie, read_image, require_pixel_size, write_mrc

RNG = np.random.default_rng(7)
COUNTS = RNG.poisson(1.5, size=(4, 6, 10))  # (t, h, w) electron counts


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [(0, np.int8), (1, np.int16), (2, np.float32), (6, np.uint16), (12, np.float16)],
)
def test_mrc_modes_read_back_exactly(tmp_path, mode, dtype):
    path = tmp_path / "movie.mrcs"
    with mrcfile.new(path) as mrc:  # written by mrcfile itself, independently of write_mrc
        mrc.set_data(COUNTS.astype(dtype))
        mrc.voxel_size = 1.06
    with open_movie(path) as movie:
        assert (movie.n_frames, movie.shape) == (4, (6, 10))
        assert movie.format == "MRC" and f"mode {mode}" in movie.mode
        assert movie.pixel_size_angstrom == pytest.approx(1.06)
        assert movie.is_integer == (dtype not in (np.float32, np.float16))
        frames = movie.read()
        assert frames.dtype == torch.float32
        assert torch.equal(frames, torch.from_numpy(COUNTS.astype(np.float32)))
        assert torch.equal(movie.frame(2), frames[2])
        assert torch.equal(torch.stack(list(movie)), frames)


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_movies_read_flipped_along_rows_like_relion(tmp_path, compression, dtype):
    data = (COUNTS > 1).astype(dtype) if dtype == np.uint8 else COUNTS.astype(dtype)  # 0/1 counts
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, compression=compression, photometric="minisblack")
    with open_movie(path) as movie:
        assert (movie.n_frames, movie.shape, movie.format) == (4, (6, 10), "TIFF")
        assert movie.dtype_name == np.dtype(dtype).name
        assert movie.pixel_size_angstrom is None
        expected = torch.from_numpy(data[:, ::-1].astype(np.float32).copy())
        assert torch.equal(movie.read(), expected)


def test_pixel_size_override_and_requirement(tmp_path):
    path = tmp_path / "movie.tiff"
    tifffile.imwrite(path, COUNTS.astype(np.uint16), photometric="minisblack")
    with open_movie(path) as movie, pytest.raises(InputError, match="no pixel size") as err:
        require_pixel_size(movie)
    assert err.value.option == "pixel_size_angstrom" and "--" not in str(err.value)
    with open_movie(path, pixel_size_angstrom=0.5) as movie:
        assert require_pixel_size(movie) == 0.5
    mrc = write_mrc(tmp_path / "m.mrc", COUNTS, pixel_size_angstrom=1.2)
    with open_movie(mrc, pixel_size_angstrom=0.6) as movie:
        assert movie.pixel_size_angstrom == 0.6
        assert movie.header_pixel_size_angstrom == pytest.approx(1.2)


def test_read_multiplies_gain_and_checks_its_shape(tmp_path):
    path = write_mrc(tmp_path / "m.mrcs", COUNTS, pixel_size_angstrom=1, mode="int16")
    gain = torch.linspace(0.5, 1.5, 60).reshape(6, 10)
    with open_movie(path) as movie:
        frames = movie.read(gain=gain, device="cpu")
        assert torch.allclose(frames, torch.from_numpy(COUNTS).float() * gain)
        with pytest.raises(InputError, match=r"gain reference shape \(10, 6\) does not match"):
            movie.read(gain=gain.T)


def test_read_image_returns_2d_micrograph_and_pixel_size(tmp_path):
    image = RNG.normal(size=(5, 7)).astype(np.float32)
    write_mrc(tmp_path / "a.mrc", image, pixel_size_angstrom=0.9)
    back, pixel = read_image(tmp_path / "a.mrc")
    assert torch.equal(back, torch.from_numpy(image)) and pixel == pytest.approx(0.9)
    tifffile.imwrite(tmp_path / "a.tif", image)
    back, pixel = read_image(tmp_path / "a.tif")
    assert torch.equal(back, torch.from_numpy(image[::-1].copy())) and pixel is None
    with pytest.raises(InputError, match="holds 4 images; expected one 2D image"):
        read_image(write_mrc(tmp_path / "s.mrcs", COUNTS, pixel_size_angstrom=1))


# ---- bad input: one InputError naming the file ------------------------------------------------


def _truncated_mrc(tmp_path):
    path = write_mrc(tmp_path / "t.mrc", COUNTS, pixel_size_angstrom=1)
    path.write_bytes(path.read_bytes()[:-50])
    return path


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_movie(tmp_path / "nope.mrc")


def test_unknown_extension(tmp_path):
    (tmp_path / "movie.dm4").write_bytes(b"x" * 2000)
    with pytest.raises(InputError, match=r"unknown file extension '\.dm4'"):
        open_movie(tmp_path / "movie.dm4")


def test_truncated_mrc(tmp_path):
    with pytest.raises(InputError, match="truncated MRC file: the header promises 4 x 6 x 10"):
        open_movie(_truncated_mrc(tmp_path))


def test_garbage_mrc_and_unsupported_mode(tmp_path):
    (tmp_path / "g.mrc").write_bytes(b"not an mrc")
    with pytest.raises(InputError, match=r"g\.mrc: not a readable MRC file"):
        open_movie(tmp_path / "g.mrc")
    path = write_mrc(tmp_path / "m.mrc", COUNTS, pixel_size_angstrom=1)
    with mrcfile.open(path, "r+") as mrc:
        mrc.header.mode = 4  # complex: not a movie mode
    with pytest.raises(InputError, match="unsupported MRC mode 4"):
        open_movie(path)


def test_corrupt_tiff(tmp_path, caplog):
    (tmp_path / "c.tif").write_bytes(b"II*\x00" + b"\xff" * 200)
    with pytest.raises(InputError, match=r"c\.tif: not a readable TIFF file"):
        open_movie(tmp_path / "c.tif")
    assert not caplog.records  # tifffile's own complaint is silenced: one message only


def test_truncated_tiff_names_the_frame(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, COUNTS.astype(np.uint16), compression="lzw", photometric="minisblack")
    data = path.read_bytes()
    last = tifffile.TiffFile(path)
    offset = last.pages[3].dataoffsets[0]
    last.close()
    path.write_bytes(data[:offset] + b"\x00" * (len(data) - offset))
    with open_movie(path) as movie, pytest.raises(InputError, match="cannot decode TIFF frame 3"):
        movie.read()


@pytest.mark.parametrize("suffix", [".mrc", ".tif"])
def test_single_2d_image_is_not_a_movie(tmp_path, suffix):
    path = tmp_path / f"one{suffix}"
    if suffix == ".mrc":
        write_mrc(path, COUNTS[0], pixel_size_angstrom=1)
    else:
        tifffile.imwrite(path, COUNTS[0].astype(np.uint16))
    with pytest.raises(InputError, match="single 2D image, not a movie"):
        open_movie(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_frame_is_named(tmp_path, bad):
    data = COUNTS.astype(np.float32)
    data[2, 3, 4] = bad
    path = write_mrc(tmp_path / "nan.mrc", data, pixel_size_angstrom=1)
    with open_movie(path) as movie:
        assert torch.equal(movie.frame(1), torch.from_numpy(data[1]))
        with pytest.raises(InputError, match="frame 2 holds 1 NaN/Inf values"):
            movie.read()


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "epu2.9_example.mrc"


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not available")
def test_real_falcon_micrograph_with_extended_header():
    image, pixel = read_image(REAL)
    assert image.shape == (4096, 4096)
    assert pixel == pytest.approx(0.6666, abs=1e-3)
    with mrcfile.open(REAL, header_only=True) as mrc:
        extended = int(mrc.header.nsymbt)
    assert extended > 0  # the FEI2 extended header is skipped: the first pixels match the bytes
    corner = np.fromfile(REAL, dtype="<u2", count=4, offset=1024 + extended)
    assert torch.equal(image[0, :4], torch.from_numpy(corner.astype(np.float32)))
