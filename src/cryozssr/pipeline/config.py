"""The typed configuration of ``cryozssr run``, saved with every output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cryozssr.errors import OptionError

METHODS = ("mmse", "misr", "shift-add", "zssr", "bilinear", "bicubic", "fourier")
"""``cryozssr run --method`` choices; the first (the best measured on the benchmark) is the default."""
DEMO_METHODS = ("bilinear", "bicubic", "fourier", "shift-add", "misr", "mmse", "zssr")
"""What ``cryozssr demo`` compares by default (``zssr`` is its default regime, ``journal``)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what ``cryozssr run`` writes (with the input files and the seed).

    Pixel size, dose and voltage given here override the movie headers; ``None`` means "from the
    header" (pixel size) or "unknown" (dose: no dose weighting).
    """

    method: str = METHODS[0]
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
    eer_fractions: int = 40
    motion_patches: tuple[int, int] | None = None
    half_sets: bool = False
    max_iterations: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptionError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.pixel_size_angstrom is not None and not self.pixel_size_angstrom > 0:
            raise OptionError("--pixel-size must be a positive number of Angstrom")
        d = self.dose_per_frame_e_per_a2
        if d is not None and not d > 0:
            raise OptionError("--dose-per-frame must be a positive number of e/A^2")
        if not self.voltage_kv > 0:
            raise OptionError("--voltage must be a positive number of kV")
        if self.gain_rot not in (0, 1, 2, 3):
            raise OptionError("--gain-rot must be 0, 1, 2 or 3 (RELION's convention)")
        if self.gain_flip not in (0, 1, 2):
            raise OptionError("--gain-flip must be 0, 1 or 2 (RELION's convention)")
        if self.eer_fractions < 2:
            raise OptionError("--eer-fractions must be at least 2")
        if self.motion_patches is not None and min(self.motion_patches) < 1:
            raise OptionError("--patches must be at least 1")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise OptionError("--max-iterations must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
