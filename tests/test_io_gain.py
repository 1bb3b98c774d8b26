"""Gain references: RELION's --gain_rot/--gain_flip on a hand-made asymmetric array."""

from __future__ import annotations

import pytest
import tifffile
import torch

from cryozssr.errors import InputError
from cryozssr.io import orient_gain, read_gain, write_mrc

# Shown by relion_display with row 0 at the top:
#   1 2 3
#   4 5 6
GAIN = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])

EXPECTED = {
    (1, 0): [[4, 1], [5, 2], [6, 3]],  # 90 degrees clockwise
    (2, 0): [[6, 5, 4], [3, 2, 1]],  # 180 degrees
    (3, 0): [[3, 6], [2, 5], [1, 4]],  # 270 clockwise = 90 counter-clockwise
    (0, 1): [[4, 5, 6], [1, 2, 3]],  # upside down
    (0, 2): [[3, 2, 1], [6, 5, 4]],  # left to right
    (1, 2): [[1, 4], [2, 5], [3, 6]],  # rotate first, then flip
    (1, 1): [[6, 3], [5, 2], [4, 1]],
}


@pytest.mark.parametrize(("rot", "flip"), list(EXPECTED))
def test_orient_gain_follows_relion(rot, flip):
    expected = torch.tensor(EXPECTED[(rot, flip)], dtype=torch.float32)
    assert torch.equal(orient_gain(GAIN, rot=rot, flip=flip), expected)


def test_read_gain_from_mrc_and_tiff(tmp_path):
    write_mrc(tmp_path / "gain.mrc", GAIN, pixel_size_angstrom=1)
    assert torch.equal(
        read_gain(tmp_path / "gain.mrc", rot=1), torch.tensor(EXPECTED[(1, 0)]).float()
    )
    # TIFF rows are flipped on read (RELION convention), so a TIFF holding the flipped array
    # is the same gain as the MRC.
    tifffile.imwrite(tmp_path / "gain.tiff", GAIN.numpy()[::-1])
    assert torch.equal(
        read_gain(tmp_path / "gain.tiff", rot=1, flip=2), orient_gain(GAIN, rot=1, flip=2)
    )


@pytest.mark.parametrize(("rot", "flip"), [(4, 0), (-1, 0), (0, 3)])
def test_invalid_orientation_is_an_input_error(rot, flip):
    with pytest.raises(InputError, match=r"gain (rotation|flip) must be"):
        orient_gain(GAIN, rot=rot, flip=flip)


def test_non_finite_gain_is_rejected(tmp_path):
    bad = GAIN.clone()
    bad[0, 0] = float("nan")
    write_mrc(tmp_path / "gain.mrc", bad, pixel_size_angstrom=1)
    with pytest.raises(InputError, match="NaN/Inf"):
        read_gain(tmp_path / "gain.mrc")
