"""A movie with a gain reference is held as its integer counts, the gain applied chunk by chunk:
every index form the consumers use gives the gain-corrected values, and a run with ``--gain``
writes what a run on the already-corrected float movie writes."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from _cli import run_cli_quiet
from _synthetic import synthetic_movie
from cryozssr.frames import GainCorrected, as_tensor
from cryozssr.io import write_mrc

GEN = torch.Generator().manual_seed(0)
COUNTS = torch.randint(0, 6, (5, 12, 10), generator=GEN, dtype=torch.uint8)
GAIN = 0.8 + 0.45 * torch.rand(12, 10, generator=GEN)
WHOLE = COUNTS.float() * GAIN

IDX = torch.tensor([0, 3])
ROWS = torch.tensor([[1, 2, 3], [4, 5, 6]])  # per-frame cuts, as the tiles take them
COLS = torch.tensor([[0, 1], [5, 6]])


@pytest.mark.parametrize(
    "key",
    [
        3,
        slice(1, 4),
        [0, 2, 4],
        torch.tensor([1, 3]),
        (2, slice(3, 9)),
        (2, slice(3, 9), slice(1, 7)),
        (slice(None), 4, slice(2, 5)),
        (Ellipsis, 1, slice(None), slice(None)),
        (IDX[:, None, None], ROWS[:, :, None], COLS[:, None, :]),
    ],
    ids=repr,
)
def test_every_index_gives_the_corrected_counts(key):
    movie = GainCorrected(COUNTS, GAIN)
    got = movie[key]
    assert got.dtype == torch.float32
    assert torch.equal(got, WHOLE[key])


def test_the_movie_behaves_as_the_float_tensor_it_stands_for():
    movie = GainCorrected(COUNTS, GAIN)
    assert (movie.shape, movie.ndim, len(movie), movie.numel()) == (WHOLE.shape, 3, 5, 600)
    assert movie.is_floating_point() and movie.dtype == torch.float32
    assert torch.equal(torch.stack(list(movie)), WHOLE)
    # what it does not provide is served from the whole float movie: right numbers, whole memory
    assert torch.equal(torch.fft.rfft2(movie), torch.fft.rfft2(WHOLE))
    assert float(movie.sum()) == pytest.approx(float(WHOLE.sum()))
    assert torch.equal(as_tensor(movie), WHOLE) and as_tensor(WHOLE) is WHOLE
    with pytest.raises(IndexError, match="unsupported index"):
        movie[:, torch.tensor([1, 2]), :]
    with pytest.raises(ValueError, match=r"\(h, w\) gain"):
        GainCorrected(COUNTS, GAIN[:5])


@pytest.mark.parametrize("method", ["mmse", "misr", "shift-add", "bicubic"])
def test_a_run_with_a_gain_writes_what_the_corrected_movie_gives(method, tmp_path):
    """The counts with ``--gain`` against the same counts multiplied by the gain beforehand and
    stored as float32: the same motion, average and super-resolved image, to float rounding."""
    lr, _, _ = synthetic_movie(size_hr=96, n_frames=8, seed=4)
    gain = 0.8 + 0.45 * torch.rand(lr.shape[-2:], generator=torch.Generator().manual_seed(1))
    write_mrc(tmp_path / "counts.mrc", lr.numpy(), pixel_size_angstrom=2.0, mode="uint16")
    write_mrc(tmp_path / "gain.mrc", gain, pixel_size_angstrom=2.0)
    corrected = (lr.float() * gain).numpy()
    write_mrc(tmp_path / "corrected.mrc", corrected, pixel_size_angstrom=2.0)
    common = ["--method", method, "--device", "cpu", "--dose-per-frame", "1.0"]
    assert run_cli_quiet(
        "run", str(tmp_path / "counts.mrc"), "--gain", str(tmp_path / "gain.mrc"),
        "--out", str(tmp_path / "a"), *common,
    ) == 0  # fmt: skip
    assert run_cli_quiet(
        "run", str(tmp_path / "corrected.mrc"), "--out", str(tmp_path / "b"), *common
    ) == 0  # fmt: skip
    for suffix in ("_sr.mrc", "_avg.mrc"):
        with (
            mrcfile.open(tmp_path / "a" / f"counts{suffix}") as a,
            mrcfile.open(tmp_path / "b" / f"corrected{suffix}") as b,
        ):
            assert np.abs(a.data - b.data).max() <= 1e-5 * float(np.abs(b.data).max())
