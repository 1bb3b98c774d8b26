"""The typed configuration of ``cryozssr run``, saved with every output."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cryozssr.errors import OptionError

METHODS = ("zssr", "bilinear", "bicubic", "fourier", "shift-add", "misr")
DEMO_METHODS = ("bilinear", "bicubic", "fourier", "shift-add", "misr", "zssr", "zssr/journal")
"""What ``cryozssr demo`` compares by default: plain ``zssr`` is the explicit regime, next to the
papers' journal regime."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what ``cryozssr run`` writes (with the input files and the seed).

    Pixel size, dose and voltage given here override the movie headers; ``None`` means "from the
    header" (pixel size) or "unknown" (dose: no dose weighting).
    """

    method: str = "zssr"
    preset: str | None = None
    regime: str | None = None
    device: str = "auto"
    seed: int = 0
    pixel_size_angstrom: float | None = None
    dose_per_frame_e_per_a2: float | None = None
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    gain_path: str | None = None
    gain_rot: int = 0
    gain_flip: int = 0
    mtf_path: str | None = None
    eer_fractions: int = 40
    motion_patches: tuple[int, int] | None = None
    half_sets: bool = False
    max_iterations: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptionError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        from cryozssr.pipeline.sanity import check_dose_per_frame, check_pixel_size

        if self.pixel_size_angstrom is not None:
            check_pixel_size(self.pixel_size_angstrom, source="--pixel-size")
        if self.dose_per_frame_e_per_a2 is not None:
            check_dose_per_frame(self.dose_per_frame_e_per_a2, source="--dose-per-frame")
        if not 20 <= self.voltage_kv <= 1000:
            raise OptionError(f"--voltage {self.voltage_kv}: expected 20 to 1000 kV")
        if not (
            math.isfinite(self.spherical_aberration_mm) and 0 <= self.spherical_aberration_mm <= 10
        ):
            raise OptionError(f"--cs {self.spherical_aberration_mm}: expected 0 to 10 mm")
        if not 0 <= self.amplitude_contrast < 1:
            raise OptionError(f"--amp-contrast {self.amplitude_contrast}: expected 0 to 1")
        if self.gain_rot not in (0, 1, 2, 3):
            raise OptionError("--gain-rot must be 0, 1, 2 or 3 (RELION's convention)")
        if self.gain_flip not in (0, 1, 2):
            raise OptionError("--gain-flip must be 0, 1 or 2 (RELION's convention)")
        if self.eer_fractions < 2:
            raise OptionError("--eer-fractions must be at least 2")
        if self.motion_patches is not None and min(self.motion_patches) < 1:
            raise OptionError(
                f"--patches {min(self.motion_patches)}: must be at least 1 "
                "(leave it out for global motion only)"
            )
        if self.max_iterations is not None and self.max_iterations < 1:
            raise OptionError("--max-iterations must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
