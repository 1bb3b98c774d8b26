"""Physical plausibility of what a movie, its gain and the options imply.

Each check raises :class:`~cryozssr.errors.InputError` (a recorded per-movie failure in a batch) or
:class:`~cryozssr.errors.OptionError` (a usage error) with one line that names the value and the
range it should lie in. The ranges are deliberately wide: they catch impossible values (a missing
unit conversion, a scaled movie, a wrong header), not unusual experiments.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryozssr.errors import InputError, OptionError

#: Plausible movie pixel sizes, Angstrom: super-resolution counting pixels (~0.3 A) to binned
#: screening movies (~10 A), with margin.
PIXEL_SIZE_RANGE_ANGSTROM = (0.1, 20.0)
#: Plausible dose per frame, e/A^2: EER fractions of ~0.01 e/A^2 to a few frames of ~40 e/A^2
#: in total, with margin.
DOSE_PER_FRAME_RANGE_E_PER_A2 = (0.001, 20.0)


def check_pixel_size(pixel_size_angstrom: float, *, source: str) -> float:
    """The pixel size if finite and within :data:`PIXEL_SIZE_RANGE_ANGSTROM`, else an error."""
    lo, hi = PIXEL_SIZE_RANGE_ANGSTROM
    if not math.isfinite(pixel_size_angstrom) or not lo <= pixel_size_angstrom <= hi:
        raise (OptionError if source == "--pixel-size" else InputError)(
            f"{source}: pixel size {pixel_size_angstrom} A is not plausible "
            f"(expected {lo} to {hi} A)"
        )
    return pixel_size_angstrom


def check_dose_per_frame(dose: float, *, source: str) -> float:
    """The dose per frame if finite and within :data:`DOSE_PER_FRAME_RANGE_E_PER_A2`."""
    lo, hi = DOSE_PER_FRAME_RANGE_E_PER_A2
    if not math.isfinite(dose) or not lo <= dose <= hi:
        hint = (
            ""
            if source == "--dose-per-frame"
            else "; pass --dose-per-frame if the counts are scaled"
        )
        raise (OptionError if source == "--dose-per-frame" else InputError)(
            f"{source}: dose per frame {dose:.4g} e/A^2 is not plausible "
            f"(expected {lo} to {hi} e/A^2{hint})"
        )
    return dose


def check_raw_frames(frames: torch.Tensor, *, dtype_name: str, name: str) -> None:
    """Reject an all-zero, constant or saturated movie and negative counts in an integer movie.

    ``frames``: ``(t, h, w)`` as stored (before the gain), any device.
    """
    lo, hi = float(frames.amin()), float(frames.amax())
    if lo == hi == 0:
        raise InputError(f"{name}: every pixel of every frame is 0 (an empty or blank movie)")
    dtype = np.dtype(dtype_name)
    if np.issubdtype(dtype, np.integer):
        if lo < 0:
            n = int((frames < 0).sum())
            raise InputError(
                f"{name}: {n} negative values in an integer-count movie (minimum {lo:g}): "
                "not electron counts"
            )
        top = float(np.iinfo(dtype).max)
        saturated = 0.0
        if hi >= top:  # counted frame by frame (no boolean copy of the movie), only if needed
            hits = sum(int(torch.count_nonzero(frame == top)) for frame in frames)
            saturated = hits / frames.numel()
        if saturated > 0.001:
            raise InputError(
                f"{name}: {100 * saturated:.1f}% of pixels are at the {dtype.name} maximum {top:g} "
                "(a saturated movie)"
            )
    if lo == hi:
        raise InputError(
            f"{name}: every pixel of every frame is {lo:g} (a blank or saturated movie)"
        )


def check_gain(gain: torch.Tensor, *, name: str) -> None:
    """A gain reference must be finite, non-negative and not all zero."""
    if not bool(torch.isfinite(gain).all()):
        raise InputError(f"{name}: gain reference holds NaN/Inf values")
    if float(gain.amin()) < 0:
        raise InputError(
            f"{name}: gain reference holds negative values (minimum {float(gain.amin()):g})"
        )
    if float(gain.amax()) == 0:
        raise InputError(f"{name}: gain reference is all zero")
