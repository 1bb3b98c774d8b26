"""Frame averages that keep sub-pixel diversity: frames grouped by the fractional part of their shift.

With global motion, Fourier-shifted reference-aligned averages are shifted copies of one average:
the network gets one image ``K`` times. Here every frame is moved by a *whole* number of ``pixel``
pixels (no resampling: its aliased content stays coherent) onto a common centre; what is left of
its shift, the residual in ``[-pixel/2, pixel/2)``, sorts it into one of ``K`` groups (a k-d split
of the residuals, alternately along y and x, equal group sizes). Each group's average shows the
specimen at its own sub-pixel position, as the frames of a multi-image SR problem do. Pure tensor
code; global motion only (the papers' regimes ignore local motion).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cryozssr.errors import OptionError
from cryozssr.motion.averages import reference_aligned_averages
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift


def _kd_groups(residuals: torch.Tensor, members: list[int], n_groups: int, axis: int) -> list:
    if n_groups == 1:
        return [members]
    order = sorted(members, key=lambda i: float(residuals[i, axis]))
    n_first = n_groups // 2
    cut = round(len(order) * n_first / n_groups)
    return _kd_groups(residuals, order[:cut], n_first, 1 - axis) + _kd_groups(
        residuals, order[cut:], n_groups - n_first, 1 - axis
    )


def fraction_grouped_averages(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    n_groups: int,
    pixel: int = 1,
    frame_indices: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, h, w)`` group averages of ``(t, h, w)`` frames and the ``(K, 2)`` specimen positions.

    Frame ``t`` (specimen at ``g_t``, LR px, relative to frame 0) is rolled by ``d_t``, a multiple
    of ``pixel``, the nearest to ``c - g_t`` (``c``: the mean position of the selected frames);
    frames are grouped by their residual ``g_t + d_t - c``. Returned positions are
    ``c + mean residual`` per group (where the specimen sits in each average, relative to frame 0;
    periodic boundaries, as the Fourier shifts of :mod:`cryozssr.motion.averages`). ``pixel=2``
    makes averages that stay coherent after a 2x box downsampling (the training inputs).
    """
    t = frames.shape[0]
    idx = list(range(t)) if frame_indices is None else [int(i) for i in frame_indices]
    if not 1 <= n_groups <= len(idx):
        raise OptionError(f"cannot make {n_groups} groups out of {len(idx)} frames")
    if pixel < 1:
        raise OptionError(f"pixel must be >= 1, got {pixel}")
    g = motion.global_shifts_px.double()[idx]
    centre = g.mean(0)
    rolls = pixel * torch.round((centre - g) / pixel)
    residuals = g + rolls - centre
    groups = _kd_groups(residuals, list(range(len(idx))), n_groups, axis=0)
    averages = torch.zeros(n_groups, *frames.shape[-2:], device=frames.device)
    positions = torch.zeros(n_groups, 2, dtype=torch.float64)
    for k, members in enumerate(groups):
        for m in members:
            dy, dx = (int(v) for v in rolls[m])
            averages[k] += torch.roll(frames[idx[m]].float(), shifts=(dy, dx), dims=(-2, -1))
        averages[k] /= len(members)
        positions[k] = centre + residuals[members].mean(0)
    return averages, positions


def grouped_training_pair(
    frames: torch.Tensor, motion: MotionField, *, regime: str, n_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training pair of ``regime`` with grouped inputs: ``(inputs (K, h, w), targets (n, 2h, 2w))``.

    Groups are made with whole *even* pixels (``pixel=2``) so that they stay coherent after the 2x
    box downsampling that makes the inputs. ``journal``: inputs from the late half; target = the
    early-half average (Fourier-aligned) at the inputs' mean position. ``workshop``: the ``K`` group
    averages of all frames are the targets, their downsampled versions the inputs.
    """
    t = frames.shape[0]
    if regime == "workshop":
        averages, _ = fraction_grouped_averages(frames, motion, n_groups=n_groups, pixel=2)
        inputs, targets = box_sum(averages) / 4, averages
    else:
        late, early = list(range(t // 2, t)), list(range(t // 2))
        averages, positions = fraction_grouped_averages(
            frames, motion, n_groups=n_groups, pixel=2, frame_indices=late
        )
        inputs = box_sum(averages) / 4
        early_avg = reference_aligned_averages(frames, motion, [0], frame_indices=early)
        targets = fourier_shift(early_avg, positions.mean(0).to(frames.device, torch.float32))
    h, w = inputs.shape[-2:]
    return inputs, targets[..., : 2 * h, : 2 * w]
