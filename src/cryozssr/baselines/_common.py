"""Input checks and dose filters shared by the multi-frame baselines."""

from __future__ import annotations

import torch

from cryozssr.dose import Exposure, critical_exposure, movie_frame_doses
from cryozssr.errors import OptionError
from cryozssr.motion.field import MotionField


def check_movie(
    frames: torch.Tensor, motion: MotionField, *, factor: int, min_frames: int, method: str
) -> None:
    """Raise a clear error for inputs the multi-frame baselines cannot use."""
    if frames.ndim != 3:
        raise ValueError(f"{method} takes frames of shape (t, h, w), got {tuple(frames.shape)}")
    if frames.shape[0] < min_frames:
        raise OptionError(
            f"{method} needs a movie with at least {min_frames} frames, got {frames.shape[0]}"
        )
    if motion.n_frames != frames.shape[0]:
        raise ValueError(f"motion has {motion.n_frames} frames but the movie has {frames.shape[0]}")
    if tuple(motion.image_shape) != tuple(frames.shape[-2:]):
        raise ValueError(
            f"motion describes {tuple(motion.image_shape)} frames but they are {tuple(frames.shape[-2:])}"
            " (pass the motion in LR pixels of this movie)"
        )
    if int(factor) != factor or factor < 2:
        raise OptionError(f"factor must be an integer >= 2, got {factor}")


def exposure_filters(
    radius_cycles_per_px: torch.Tensor,
    n_frames: int,
    exposure: Exposure | None,
    *,
    pixel_size_angstrom: float,
    frames: slice | None = None,
) -> torch.Tensor | None:
    """Grant & Grigorieff amplitude filters ``q_t(k)``: ``(t, *radius.shape)``, or ``None`` (no dose).

    ``radius_cycles_per_px`` is ``|k|`` in cycles per pixel of size ``pixel_size_angstrom``;
    ``frames`` selects a slice of the movie's frames (default all).
    """
    if exposure is None or exposure.dose_per_frame_e_per_a2 is None:
        return None
    dose = movie_frame_doses(exposure, n_frames, device=radius_cycles_per_px.device).to(
        device=radius_cycles_per_px.device, dtype=radius_cycles_per_px.dtype
    )
    if frames is not None:
        dose = dose[frames]
    ne = critical_exposure(
        radius_cycles_per_px / pixel_size_angstrom, voltage_kv=exposure.voltage_kv
    )
    return torch.exp(-dose.reshape(-1, *([1] * ne.ndim)) / (2.0 * ne))


def rms_exposure_filter(
    radius_cycles_per_px: torch.Tensor,
    n_frames: int,
    exposure: Exposure | None,
    *,
    pixel_size_angstrom: float,
) -> torch.Tensor | None:
    """``sqrt(mean_t q_t(k)^2)``: the signal filter of a dose-weighted average, or ``None``."""
    if exposure is None or exposure.dose_per_frame_e_per_a2 is None:
        return None
    total = torch.zeros_like(radius_cycles_per_px)
    for start in range(0, n_frames, 8):  # bounded memory on large grids
        q = exposure_filters(
            radius_cycles_per_px,
            n_frames,
            exposure,
            pixel_size_angstrom=pixel_size_angstrom,
            frames=slice(start, start + 8),
        )
        assert q is not None
        total += q.pow(2).sum(0)
    return (total / n_frames).sqrt()
