"""Training pairs from one movie (each paper's recipe), crops and the 8 dihedral transforms.

Downsampling is the 2x2 box sum of :mod:`cryozssr.ops` (the camera's degradation), divided by 4 so
that a pixel keeps its per-pixel scale at every level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cryozssr.motion.averages import journal_split, reference_aligned_averages
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum
from cryozssr.zssr.config import Regime


def downsample2x(images: torch.Tensor) -> torch.Tensor:
    """2x2 box *average* of ``(..., h, w)`` (box sum / 4; odd trailing rows/cols dropped)."""
    return box_sum(images) / 4


@dataclass(frozen=True)
class TrainingPair:
    """``inputs (K, h, w)`` on the coarse grid and ``target (2h, 2w)`` on the fine grid.

    ``targets`` is ``(n, 2h, 2w)``: one target per step is drawn from it (``n = 1`` for journal).
    """

    inputs: torch.Tensor
    targets: torch.Tensor


def training_pair(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    regime: Regime,
    references: Sequence[int],
) -> TrainingPair:
    """Build the self-supervised training pair of ``regime`` from ``(t, h, w)`` frames.

    * ``workshop``: targets = the ``K`` all-frame averages aligned to ``references``; inputs = their
      2x box-downsampled versions (ZSSR's cross-scale pairs).
    * ``journal``: :func:`cryozssr.motion.averages.journal_split`: inputs = averages of the late
      half (frames ``t//2..t-1``) aligned to ``references``, box-downsampled 2x; target = the
      early-half average (frames ``0..t//2-1``) aligned to the early half's centre frame, as the
      journal paper says: independent noise in inputs and target.
    """
    if regime == "workshop":
        averages = reference_aligned_averages(frames, motion, references)
        inputs = downsample2x(averages)
        targets = averages
    else:
        target, late = journal_split(frames, motion, references=references)
        inputs = downsample2x(late)
        targets = target[None]
    h, w = inputs.shape[-2:]
    return TrainingPair(inputs=inputs, targets=targets[..., : 2 * h, : 2 * w])


def dihedral(images: torch.Tensor, index: int) -> torch.Tensor:
    """Apply dihedral transform ``index`` (0..7) to ``(..., h, w)``: rotate ``index % 4`` quarter
    turns, then flip left-right if ``index >= 4``."""
    out = torch.rot90(images, index % 4, dims=(-2, -1))
    return out.flip(-1) if index >= 4 else out


def dihedral_inverse(images: torch.Tensor, index: int) -> torch.Tensor:
    """Exact inverse of :func:`dihedral` ``index``."""
    out = images.flip(-1) if index >= 4 else images
    return torch.rot90(out, -(index % 4), dims=(-2, -1))


def random_crops(
    pair: TrainingPair,
    *,
    lr_crop: int,
    batch_size: int,
    augment: bool,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of aligned crops: ``(b, K, c, c)`` inputs and ``(b, 1, 2c, 2c)`` targets.

    ``c = min(lr_crop, h, w)`` (smaller inputs are used whole). With ``augment`` each sample gets a
    random dihedral transform, the same for its inputs and its target.
    """
    h, w = pair.inputs.shape[-2:]
    ch, cw = min(lr_crop, h), min(lr_crop, w)
    c = min(ch, cw) if augment else None  # rotations need square crops
    ch, cw = (c, c) if c is not None else (ch, cw)
    xs, ys = [], []
    for _ in range(batch_size):
        i = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        j = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        n = int(torch.randint(0, pair.targets.shape[0], (1,), generator=generator))
        x = pair.inputs[:, i : i + ch, j : j + cw]
        y = pair.targets[n : n + 1, 2 * i : 2 * (i + ch), 2 * j : 2 * (j + cw)]
        if augment:
            d = int(torch.randint(0, 8, (1,), generator=generator))
            x, y = dihedral(x, d), dihedral(y, d)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)
