"""Every option of a simulation, with defaults close to the published apoferritin data sets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from cryozssr.errors import InputError, OptionError
from cryozssr.geometry import symmetry_matrices
from cryozssr.simulate.counting import NOISE_MODELS

DETECTORS = ("k3", "k2", "falcon4ec", "falcon3ec", "ideal")


@dataclass(frozen=True)
class SimulationConfig:
    """Options of :func:`~cryozssr.simulate.simulate_movie` (one movie) and ``cryozssr simulate``.

    Sizes are in HR pixels; the LR movie has pixels twice as large. The default exposure,
    1.5 e/A^2 per frame over 40 frames (60 e/A^2 in all), is typical of high-resolution apoferritin
    data sets: 3.4 counts per 1.5 A HR pixel per frame. ``radiation_damage=False`` and ``ice=False``
    exist for ablations and tests; ``oversample`` is the fine grid on which the image is formed
    before the HR pixel integrates it.
    """

    size_hr: int = 1024
    pixel_size_hr_angstrom: float = 1.5
    frames: int = 40
    dose_per_frame_e_per_a2: float = 1.5
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_range_um: tuple[float, float] = (0.8, 2.5)
    astigmatism_max_angstrom: float = 400.0
    model: str | None = None  # PDB/mmCIF path; None = the shipped apoferritin chain
    symmetry: str = "O"
    particles: int = 100
    detector: str = "k3"
    noise_model: str = "counting"  # the detector's counting statistics, or "poisson" (ideal)
    dose_rate_e_per_px_per_s: float | None = None  # None: the detector's typical rate
    ice: bool = True
    ice_thickness_angstrom: float = 250.0
    drift_range_angstrom: tuple[float, float] = (5.0, 30.0)
    local_motion_range_angstrom: tuple[float, float] = (1.0, 3.0)
    local_grid: tuple[int, int] = (5, 5)
    extra_bfactor_a2: float = 0.0
    radiation_damage: bool = True  # False only for ablations and tests
    oversample: int = 2
    n_movies: int = 1

    @property
    def shape_hr(self) -> tuple[int, int]:
        return (self.size_hr, self.size_hr)

    @property
    def pixel_size_lr_angstrom(self) -> float:
        return 2 * self.pixel_size_hr_angstrom

    @property
    def counts_per_hr_pixel_per_frame(self) -> float:
        """Expected counts per HR pixel per frame: dose x pixel area."""
        return self.dose_per_frame_e_per_a2 * self.pixel_size_hr_angstrom**2

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def validate(self) -> SimulationConfig:
        """Raise :class:`~cryozssr.errors.OptionError` (or InputError for a missing model) if
        anything is out of range; return ``self``."""

        def bad(msg: str) -> OptionError:
            return OptionError(msg)

        if self.size_hr < 32 or self.size_hr % 2:
            raise bad(f"--size-hr must be an even number >= 32, got {self.size_hr}")
        for name, value in (
            ("--pixel-size-hr", self.pixel_size_hr_angstrom),
            ("--dose-per-frame", self.dose_per_frame_e_per_a2),
            ("voltage", self.voltage_kv),
        ):
            if not (math.isfinite(value) and value > 0):
                raise bad(f"{name} must be > 0, got {value}")
        if self.frames < 1:
            raise bad(f"--frames must be >= 1, got {self.frames}")
        if self.n_movies < 1:
            raise bad(f"--n-movies must be >= 1, got {self.n_movies}")
        if self.particles < 0:
            raise bad(f"--particles must be >= 0, got {self.particles}")
        lo, hi = self.defocus_range_um
        if not (0 < lo <= hi):
            raise bad(f"--defocus-range needs 0 < MIN <= MAX (um), got {lo} {hi}")
        if not (0 <= self.amplitude_contrast < 1):
            raise bad(f"amplitude contrast must be in [0, 1), got {self.amplitude_contrast}")
        if self.spherical_aberration_mm < 0 or self.astigmatism_max_angstrom < 0:
            raise bad("spherical aberration and astigmatism must be >= 0")
        if self.detector not in DETECTORS:
            raise bad(f"--detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if self.noise_model not in NOISE_MODELS:
            raise bad(
                f"--noise-model must be one of {', '.join(NOISE_MODELS)}, got {self.noise_model!r}"
            )
        rate = self.dose_rate_e_per_px_per_s
        if rate is not None and not (math.isfinite(rate) and rate >= 0):
            raise bad(f"--dose-rate must be a finite number >= 0 e/px/s, got {rate}")
        for name, (a, b) in (
            ("drift range", self.drift_range_angstrom),
            ("local motion range", self.local_motion_range_angstrom),
        ):
            if not (0 <= a <= b):
                raise bad(f"{name} needs 0 <= MIN <= MAX, got {a} {b}")
        if min(self.local_grid) < 1:
            raise bad(f"local motion grid must be >= 1x1, got {self.local_grid}")
        if self.oversample not in (1, 2, 3, 4):
            raise bad(f"oversample must be 1-4, got {self.oversample}")
        if self.ice_thickness_angstrom < 0:
            raise bad("ice thickness must be >= 0")
        symmetry_matrices(self.symmetry)  # raises OptionError if unsupported
        if self.model is not None and not Path(self.model).is_file():
            raise InputError(f"model file not found: {self.model}")
        return self
