"""Frame averages aligned to chosen reference frames: what Cryo-ZSSR's network sees.

Pure tensor code. Frames are resampled with Fourier shifts (no interpolation blur).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cryozssr.motion.field import MotionField
from cryozssr.ops import fourier_shift


def align_frames(
    frames: torch.Tensor, motion: MotionField, *, reference_frame: int = 0
) -> torch.Tensor:
    """Move every frame of ``(t, h, w)`` onto the specimen position of ``reference_frame``.

    Frame ``t`` is shifted by ``shifts[reference_frame] - shifts[t]`` (global motion only).
    """
    g = motion.global_shifts_px.to(frames.device, frames.dtype)
    return fourier_shift(frames, g[reference_frame][None, :] - g)


def reference_aligned_averages(
    frames: torch.Tensor,
    motion: MotionField,
    references: Sequence[int],
    *,
    frame_indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """``(K, h, w)`` averages of the selected frames, average ``k`` aligned to frame ``references[k]``.

    ``frame_indices`` selects which frames are averaged (default: all); the reference frames need
    not be among them (their position comes from ``motion``).
    """
    idx = list(range(frames.shape[0])) if frame_indices is None else list(frame_indices)
    sel = frames[idx]
    g = motion.global_shifts_px.to(frames.device, frames.dtype)[idx]
    # average aligned to frame 0, then one shift per reference: the averages differ only by shifts
    base = fourier_shift(sel, -g).mean(dim=0)
    ref_shifts = motion.global_shifts_px.to(frames.device, frames.dtype)[list(references)]
    return fourier_shift(base[None].expand(len(references), -1, -1), ref_shifts)
