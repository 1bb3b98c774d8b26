"""A movie with a large drift and a fast first-frame jump, cut from a larger scene (not periodic)."""

from __future__ import annotations

import math

import torch

from _synthetic import band_limited_scene
from cryozssr.ops import box_sum, fourier_shift


def drift_movie(
    *,
    size_lr: int = 192,
    n_frames: int = 16,
    total_lr_px: float = 150.0,
    jump_lr_px: float = 8.0,
    counts_per_hr_px: float = 4.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lr_counts (t, h, w) int32, shifts_lr_px (t, 2))``: steady drift of ``total_lr_px`` along
    ``(1, -0.4)`` plus a jump of ``jump_lr_px`` between frames 0 and 1; content enters and leaves
    at the edges as on a detector."""
    g = torch.Generator().manual_seed(seed + 1)
    margin = math.ceil(2 * (total_lr_px + jump_lr_px)) + 8  # HR px
    scene = band_limited_scene(2 * size_lr + 2 * margin, seed=seed)
    t = torch.arange(n_frames, dtype=torch.float64) / max(n_frames - 1, 1)
    path = torch.stack([total_lr_px * t, -0.4 * total_lr_px * t], dim=-1)
    path[1:] += torch.tensor([jump_lr_px, 0.5 * jump_lr_px], dtype=torch.float64)
    frames = []
    for shift in 2 * path:  # HR px
        whole = torch.floor(shift)
        iy, ix = (int(v) for v in whole)
        y0, x0 = margin - iy - 4, margin - ix - 4
        crop = scene[y0 : y0 + 2 * size_lr + 8, x0 : x0 + 2 * size_lr + 8]
        crop = fourier_shift(crop, shift - whole)[4:-4, 4:-4]
        frames.append(torch.poisson(box_sum(crop.clamp(min=0) * counts_per_hr_px), generator=g))
    return torch.stack(frames).to(torch.int32), path.float()
