"""Frame averages aligned to chosen reference frames: what Cryo-ZSSR's network sees.

Pure tensor code, at the sampling of the frames (LR). Frames are resampled with Fourier shifts (no
interpolation blur): exactly for global motion, and by Fourier-shifted overlapping tiles
(:mod:`cryozssr.motion.warp`) for the local part of a :class:`MotionField`.

"Aligned to reference frame ``j``" means the specimen appears where it was in frame ``j``: frame
``t`` is moved by ``shifts[j] - shifts[t]``. With global motion only, averages aligned to different
references are exact shifted copies of one another (Fourier shifts compose); local motion makes
them differ by a smooth field instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from cryozssr.dose import DoseWeights, Exposure, movie_frame_doses
from cryozssr.errors import OptionError
from cryozssr.fourier import cropped_frequencies, phase_ramp
from cryozssr.motion.field import MotionField
from cryozssr.motion.warp import tile_centres, tiled_shift
from cryozssr.ops import fourier_shift

TILE_PX = 64


def align_frames(
    frames: torch.Tensor, motion: MotionField, *, reference_frame: int = 0, tile_px: int = TILE_PX
) -> torch.Tensor:
    """Move every frame of ``(t, h, w)`` onto the specimen position of ``reference_frame``.

    Frame ``t`` is shifted by ``shifts[reference_frame] - shifts[t]``; the local part, if any, is
    applied per tile of ``tile_px`` (see :mod:`cryozssr.motion.warp`).
    """
    _check(frames, motion, [reference_frame])
    return torch.stack(
        [_aligned(frames[t], motion, t, reference_frame, tile_px) for t in range(frames.shape[0])]
    )


def dose_weighted_average(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure,
    frame_indices: Sequence[int] | None = None,
    reference_frame: int | None = None,
) -> torch.Tensor:
    """Motion-corrected, dose-weighted ``(h, w)`` average of ``(t, h, w)`` frames (Grant & Grigorieff 2015).

    Aligned to the specimen position of frame 0 of ``motion`` (``reference_frame=None``) or of
    ``reference_frame``. Frame ``i`` is weighted as the ``i``-th frame of the exposure (its
    mid-frame dose ``pre + (i + 0.5) * dose``), so ``frame_indices`` selects a subset (e.g. the even
    frames) with correct weights. A plain aligned average when ``exposure.dose_per_frame_e_per_a2``
    is ``None``. Accumulated in Fourier space one frame at a time.
    """
    idx = _indices(frames, frame_indices)
    _check(frames, motion, [] if reference_frame is None else [reference_frame])
    h, w = frames.shape[-2:]
    weights = None
    if exposure.dose_per_frame_e_per_a2 is not None:
        doses = movie_frame_doses(exposure, frames.shape[0], device=frames.device)
        weights = DoseWeights(
            (h, w),
            doses[idx],
            pixel_size_angstrom=exposure.pixel_size_angstrom,
            voltage_kv=exposure.voltage_kv,
            device=frames.device,
        )
    g = motion.global_shifts_px.to(frames.device, torch.float32)
    if motion.local_shifts_px is None:
        ky, kx = _frequencies(frames)
        acc = _global_spectrum_sum(frames, g, idx, weights)
        if weights is None:
            acc = acc / len(idx)
        if reference_frame is not None:
            acc = acc * phase_ramp(ky, kx, g[reference_frame])
        return torch.fft.irfft2(acc, s=(h, w))
    acc = torch.zeros(h, w // 2 + 1, dtype=torch.complex64, device=frames.device)
    for n, t in enumerate(idx):
        spec = torch.fft.rfft2(_aligned(frames[t], motion, t, reference_frame, TILE_PX))
        acc += spec * (weights[n] if weights is not None else 1.0 / len(idx))
    return torch.fft.irfft2(acc, s=(h, w))


def _frequencies(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = tuple(frames.shape[-2:])
    return cropped_frequencies(shape, shape, device=frames.device)


def _global_spectrum_sum(
    frames: torch.Tensor, g: torch.Tensor, idx: list[int], weights: DoseWeights | None
) -> torch.Tensor:
    """``sum_n w_n * rfft2(frames[idx[n]])`` moved by ``-g[idx[n]]`` (onto position 0), ``(h, w//2+1)``.

    ``weights`` is ``(n, h, w//2+1)`` or ``None`` (all ones). One frame at a time (streaming).
    """
    ky, kx = _frequencies(frames)
    acc = torch.zeros(
        *frames.shape[-2:-1], frames.shape[-1] // 2 + 1, dtype=torch.complex64, device=frames.device
    )
    for n, t in enumerate(idx):
        spec = torch.fft.rfft2(frames[t].float()) * phase_ramp(ky, kx, -g[t])
        acc += spec if weights is None else spec * weights[n]
    return acc


def reference_aligned_averages(
    frames: torch.Tensor,
    motion: MotionField,
    references: Sequence[int],
    *,
    frame_indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """``(K, h, w)`` averages of the selected frames, average ``k`` aligned to frame ``references[k]``.

    ``frame_indices`` selects which frames are averaged (default: all); the reference frames need
    not be among them (their position comes from ``motion``). Plain (not dose-weighted) averages.
    """
    idx = _indices(frames, frame_indices)
    references = list(references)
    if not references:
        raise OptionError("at least one reference frame is needed")
    _check(frames, motion, references)
    if motion.local_shifts_px is None:
        # one sum in Fourier space, then one phase ramp per reference: identical to shifting every
        # frame by shifts[ref] - shifts[t] (composing two real-space Fourier shifts would not be,
        # at the Nyquist row/column of even sizes)
        g = motion.global_shifts_px.to(frames.device, torch.float32)
        ky, kx = _frequencies(frames)
        base = _global_spectrum_sum(frames, g, idx, None) / len(idx)
        return torch.fft.irfft2(
            base * phase_ramp(ky, kx, g[references]), s=tuple(frames.shape[-2:])
        )
    out = torch.zeros(len(references), *frames.shape[-2:], device=frames.device)
    for k, r in enumerate(references):
        for t in idx:
            out[k] += _aligned(frames[t], motion, t, r, TILE_PX)
    return out / len(idx)


def choose_references(n_frames: int, k: int, *, mode: str = "random", seed: int = 0) -> list[int]:
    """``k`` distinct reference frames out of ``n_frames``, sorted.

    ``mode='random'``: a seeded random draw (the workshop paper: K=16 random references);
    ``'spread'``: evenly spaced over the movie, first and last frame included when ``k > 1``;
    ``'first'``: the first ``k`` frames.
    """
    if n_frames < 1 or not 1 <= k <= n_frames:
        raise OptionError(f"cannot choose {k} reference frames out of {n_frames}")
    if mode == "random":
        return sorted(random.Random(seed).sample(range(n_frames), k))
    if mode == "first":
        return list(range(k))
    if mode == "spread":
        if k == 1:
            return [n_frames // 2]
        return [round(i * (n_frames - 1) / (k - 1)) for i in range(k)]
    raise OptionError(f"reference mode must be 'random', 'spread' or 'first', got {mode!r}")


def journal_split(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    references: Sequence[int],
    frame_indices: Sequence[int] | None = None,
    target_reference: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The journal regime's training pair: ``(target (h, w), inputs (K, h, w))``.

    The early half of the (selected) frames, aligned to ``target_reference`` (default: the early
    half's centre frame, as in the journal paper's list of training steps) and averaged, is the
    pseudo-HR target; the late half aligned to each of ``references`` gives the K inputs. Their
    noise is independent. (The inference inputs are all frames aligned to the same references:
    :func:`reference_aligned_averages`.)
    """
    idx = _indices(frames, frame_indices)
    if len(idx) < 2:
        raise OptionError(f"the journal split needs at least 2 frames, got {len(idx)}")
    early, late = idx[: len(idx) // 2], idx[len(idx) // 2 :]
    centre = early[len(early) // 2] if target_reference is None else target_reference
    target = reference_aligned_averages(frames, motion, [centre], frame_indices=early)[0]
    inputs = reference_aligned_averages(frames, motion, references, frame_indices=late)
    return target, inputs


def even_odd_frames(n_frames: int) -> tuple[list[int], list[int]]:
    """Indices of the even and of the odd frames: two half sets with independent noise."""
    if n_frames < 2:
        raise OptionError(f"an even/odd split needs at least 2 frames, got {n_frames}")
    return list(range(0, n_frames, 2)), list(range(1, n_frames, 2))


def _aligned(
    frame: torch.Tensor, motion: MotionField, t: int, reference: int | None, tile_px: int
) -> torch.Tensor:
    """Frame ``t`` (``(h, w)``) moved onto the specimen position of ``reference`` (``None``: position 0)."""
    g = motion.global_shifts_px.to(frame.device, torch.float32)
    g_ref = torch.zeros(2, device=frame.device) if reference is None else g[reference]
    out = fourier_shift(frame.float(), g_ref - g[t])
    if motion.local_shifts_px is None:
        return out
    # local part at each tile centre q (reference coordinates): l_ref(p) - l_t(p), p = q - g_ref
    cy, cx = tile_centres(frame.shape[-2:], tile_px)
    dev = motion.global_shifts_px.device
    q = torch.stack(torch.meshgrid(cy, cx, indexing="ij"), dim=-1).reshape(-1, 2).to(dev)
    local = motion.shifts_at(q - g_ref.to(dev)) - motion.global_shifts_px[:, None, :].float()
    rel = -local[t] if reference is None else local[reference] - local[t]
    return tiled_shift(out, rel.reshape(len(cy), len(cx), 2).to(frame.device), tile_px=tile_px)


def _indices(frames: torch.Tensor, frame_indices: Sequence[int] | None) -> list[int]:
    n = frames.shape[0]
    idx = list(range(n)) if frame_indices is None else [int(i) for i in frame_indices]
    if not idx:
        raise OptionError("no frames selected")
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise OptionError(f"frame indices {bad} are out of range for a movie of {n} frames")
    return idx


def _check(frames: torch.Tensor, motion: MotionField, references: Sequence[int]) -> None:
    if frames.ndim != 3:
        raise ValueError(f"frames must be (t, h, w), got shape {tuple(frames.shape)}")
    if frames.shape[0] != motion.n_frames or tuple(frames.shape[-2:]) != tuple(motion.image_shape):
        raise ValueError(
            f"frames {tuple(frames.shape)} do not match the motion field "
            f"({motion.n_frames} frames of {tuple(motion.image_shape)})"
        )
    bad = [r for r in references if not 0 <= int(r) < motion.n_frames]
    if bad:
        raise OptionError(
            f"reference frames {bad} are out of range for a movie of {motion.n_frames} frames"
        )
