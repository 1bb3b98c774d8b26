"""The typed options of the multi-frame methods (one frozen config per method, saved with every run).

Field names are the keyword arguments of the method's function, so ``method(frames, motion,
**asdict(config))`` runs it with exactly the recorded options. Invalid values raise
:class:`~cryozssr.errors.OptionError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cryozssr.errors import OptionError


def _check_tiles(tile_size_px: int | None, tile_overlap_px: int) -> None:
    if tile_size_px is not None and tile_size_px < 16:
        raise OptionError(
            f"tile_size_px must be at least 16 (or None: automatic), got {tile_size_px}"
        )
    if tile_overlap_px < 0:
        raise OptionError(f"tile_overlap_px must be >= 0, got {tile_overlap_px}")
    if tile_size_px is not None and not 2 * tile_overlap_px < tile_size_px:
        raise OptionError(
            f"tile_overlap_px ({tile_overlap_px}) must be below half tile_size_px ({tile_size_px})"
        )


@dataclass(frozen=True)
class MisrConfig:
    """Options of :func:`cryozssr.baselines.misr` (Tikhonov-regularised alias solve)."""

    regularisation: float = 0.25
    """Scale of the noise-based Tikhonov weight (0: plain least squares)."""
    tile_size_px: int | None = None
    """Solve tile side in LR pixels; ``None``: the whole frame when the motion is global and the
    frame is at most 1024 px, else 512 px tiles, or 128 px with local motion."""
    tile_overlap_px: int = 32
    """Overlap of neighbouring tiles in LR pixels (blended with raised-cosine windows)."""

    def __post_init__(self) -> None:
        if not self.regularisation >= 0:
            raise OptionError(f"regularisation must be >= 0, got {self.regularisation}")
        _check_tiles(self.tile_size_px, self.tile_overlap_px)


@dataclass(frozen=True)
class ShiftAddConfig:
    """Options of :func:`cryozssr.baselines.shift_add`."""

    wiener_snr: float = 10.0
    """Signal-to-noise ratio assumed by the Wiener deconvolution of the aperture (``inf``: plain
    inverse filter, 0: none)."""

    def __post_init__(self) -> None:
        if not (self.wiener_snr >= 0 or math.isinf(self.wiener_snr)):
            raise OptionError(f"wiener_snr must be >= 0, got {self.wiener_snr}")


@dataclass(frozen=True)
class MmseConfig:
    """Options of :func:`cryozssr.baselines.mmse` (the defaults are what the benchmark was run with)."""

    smoothing_shells: int = 3
    """Running mean over this many radial shells of the half-set cross-spectrum (odd)."""
    floor_fraction: float = 1e-2
    """Signal power floor, as a fraction of the mean power below the LR Nyquist."""
    regularisation: float = 0.25
    """Tikhonov weight of the half reconstructions (``misr``'s default)."""
    noise: str = "measured"
    """Noise spectrum of the MMSE weights: ``measured`` from the even and odd frames (any detector,
    any units), or ``poisson`` (white, variance = mean count: counts from an ideal counter)."""

    def __post_init__(self) -> None:
        if self.noise not in ("measured", "poisson"):
            raise OptionError(f"noise must be 'measured' or 'poisson', got {self.noise!r}")
        if self.smoothing_shells < 1 or self.smoothing_shells % 2 == 0:
            raise OptionError(f"smoothing_shells must be odd and >= 1, got {self.smoothing_shells}")
        if not 0 <= self.floor_fraction < 1:
            raise OptionError(f"floor_fraction must be in [0, 1), got {self.floor_fraction}")
        if not self.regularisation >= 0:
            raise OptionError(f"regularisation must be >= 0, got {self.regularisation}")
