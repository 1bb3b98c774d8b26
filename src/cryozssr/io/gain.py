"""Gain references with RELION's (and MotionCor2's) rotation and flip conventions."""

from __future__ import annotations

import os

import torch

from cryozssr.errors import InputError
from cryozssr.io.movie import read_image

__all__ = ["orient_gain", "read_gain"]


def orient_gain(gain: torch.Tensor, *, rot: int = 0, flip: int = 0) -> torch.Tensor:
    """Rotate, then flip, a ``(h, w)`` gain reference as RELION's ``--gain_rot``/``--gain_flip``.

    ``rot``: 0 none; 1, 2, 3 = that many 90 degree turns *clockwise as shown by relion_display*
    (row 0 at the top), i.e. ``torch.rot90(gain, -rot)``. Same as MotionCor2 ``-RotGain``.
    ``flip`` (applied after the rotation): 0 none; 1 upside down (reverse the rows, "flip Y");
    2 left to right (reverse the columns, "flip X"). Same as MotionCor2 ``-FlipGain``.
    """
    if rot not in (0, 1, 2, 3):
        raise InputError(f"gain rotation must be 0, 1, 2 or 3, got {rot}")
    if flip not in (0, 1, 2):
        raise InputError(f"gain flip must be 0, 1 or 2, got {flip}")
    out = torch.rot90(gain, -rot, dims=(-2, -1)) if rot else gain
    if flip == 1:
        out = torch.flip(out, dims=(-2,))
    elif flip == 2:
        out = torch.flip(out, dims=(-1,))
    return out.contiguous()


def read_gain(path: str | os.PathLike, *, rot: int = 0, flip: int = 0) -> torch.Tensor:
    """Read a gain reference (MRC or TIFF, 2D) and orient it with :func:`orient_gain`.

    Returns ``(h, w)`` float32: the factor each movie frame is *multiplied* by. Non-finite values
    raise :class:`~cryozssr.errors.InputError`. Compare the shape with the movie's (`Movie.read`
    does, raising InputError on a mismatch).
    """
    gain, _ = read_image(path)
    return orient_gain(gain, rot=rot, flip=flip)
