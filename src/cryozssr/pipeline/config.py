"""The typed configuration of ``cryozssr run``, saved whole with every output and read back by
``cryozssr run --config``."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from cryozssr.baselines.config import MisrConfig, MmseConfig, ShiftAddConfig
from cryozssr.errors import OptionError
from cryozssr.zssr.config import ZssrConfig, config_from_preset

METHODS = ("mmse", "misr", "shift-add", "zssr", "bilinear", "bicubic", "fourier")
"""``cryozssr run --method`` choices; the first (the best measured on the benchmark) is the default."""
DEMO_METHODS = ("bilinear", "bicubic", "fourier", "shift-add", "misr", "mmse", "zssr")
"""What ``cryozssr demo`` compares by default (``zssr`` is its default regime, ``journal``)."""

MethodConfig = MisrConfig | MmseConfig | ShiftAddConfig | ZssrConfig
METHOD_CONFIGS: dict[str, type] = {
    "misr": MisrConfig,
    "mmse": MmseConfig,
    "shift-add": ShiftAddConfig,
    "zssr": ZssrConfig,
}
"""The typed options of each method that has any (the interpolations have none)."""


def default_method_config(method: str) -> MethodConfig | None:
    """The options ``method`` runs with by default (zssr: the ``fast`` preset), or ``None``."""
    if method == "zssr":
        return config_from_preset("fast")
    kind = METHOD_CONFIGS.get(method)
    return None if kind is None else kind()


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what ``cryozssr run`` writes (with the input files).

    ``method_config`` holds the options of ``method`` and only those (its type is
    ``METHOD_CONFIGS[method]``; ``None`` is replaced by the method's defaults). Pixel size, dose and
    voltage given here override the movie headers; ``None`` means "from the header" (pixel size)
    or "unknown" (dose: no dose weighting).
    """

    method: str = METHODS[0]
    method_config: MethodConfig | None = None
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
    motion_patches: tuple[int, int] | str | None = "auto"
    """Local-motion patch grid: ``"auto"`` (the default: 5 x 5 on frames large enough, kept only
    where the movie shows local motion, :mod:`cryozssr.motion.estimate`), ``(n, n)``, or ``None``
    (global motion only)."""
    motion_refine: bool = False
    """Refine the estimated motion against the forward model of the super-resolved estimate
    (:mod:`cryozssr.motion.refine`)."""
    half_sets: bool = False
    score_folds: int | None = None
    """Folds of the no-truth alias score (``half_sets`` only; :mod:`cryozssr.evaluate.score`): the
    method is run once more per fold on all frames but a 1/K of them. ``None``: 4 (fewer on movies
    under 20 frames, at least 5 held-out frames per fold; 2 = the half sets, no extra runs)."""
    zssr_checkpoint: str | None = None
    """Dataset-level zssr network: fine-tuned from this file if it exists, else trained on the
    first movie and saved there (``--method zssr`` only)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptionError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.method_config is None:
            object.__setattr__(self, "method_config", default_method_config(self.method))
        if self.zssr_checkpoint is not None and self.method != "zssr":
            raise OptionError("--zssr-checkpoint applies to --method zssr only")
        expected = METHOD_CONFIGS.get(self.method)
        if expected is None and self.method_config is not None:
            raise OptionError(f"method {self.method} takes no options")
        if expected is not None and type(self.method_config) is not expected:
            raise OptionError(
                f"method {self.method} takes a {expected.__name__},"
                f" got {type(self.method_config).__name__}"
            )
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
        if self.score_folds is not None:
            if not self.half_sets:
                raise OptionError("--score-folds applies with --half-sets only")
            if isinstance(self.score_folds, bool) or not isinstance(self.score_folds, int):
                raise OptionError(f"--score-folds {self.score_folds!r}: expected an integer")
            if self.score_folds < 2:
                raise OptionError(f"--score-folds {self.score_folds}: must be at least 2")
        if self.eer_fractions < 2:
            raise OptionError("--eer-fractions must be at least 2")
        if isinstance(self.motion_patches, str):
            if self.motion_patches != "auto":
                raise OptionError(
                    f"--patches {self.motion_patches}: expected auto, off or a grid size N >= 1"
                )
        elif self.motion_patches is not None and min(self.motion_patches) < 1:
            raise OptionError(
                f"--patches {min(self.motion_patches)}: must be at least 1 "
                "(--patches off for global motion only)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The inverse of :meth:`to_dict` (e.g. the ``config`` of a run's JSON record)."""
        if not isinstance(data, dict):
            raise OptionError("a run config must be a JSON object")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise OptionError(f"unknown run config key(s): {', '.join(unknown)}")
        values = dict(data)
        method = values.get("method", METHODS[0])
        options = values.get("method_config")
        kind = METHOD_CONFIGS.get(method)
        if options is not None and kind is not None:
            values["method_config"] = _from_dict(kind, options)
        if isinstance(values.get("motion_patches"), list):
            values["motion_patches"] = tuple(values["motion_patches"])
        return cls(**values)


def _from_dict(kind: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise OptionError(f"the {kind.__name__} must be a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(kind)})
    if unknown:
        raise OptionError(f"unknown {kind.__name__} option(s): {', '.join(unknown)}")
    return kind(**data)


def with_options(config: Any, options: dict[str, str]) -> Any:
    """``config`` (a method's frozen config) with text ``options`` ``{field: value}`` converted to
    each field's type (``none`` for an optional field's ``None``)."""
    hints = typing.get_type_hints(type(config))
    known = {f.name for f in dataclasses.fields(config)}
    values: dict[str, Any] = {}
    for name, text in options.items():
        if name not in known:
            raise OptionError(
                f"{type(config).__name__} has no option {name!r}; it has {', '.join(sorted(known))}"
            )
        values[name] = _parse(name, text, hints[name])
    return replace(config, **values)


def _parse(name: str, text: str, hint: Any) -> Any:
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if type(None) in args and text.strip().lower() in ("none", "null"):
        return None
    for kind in args:
        if typing.get_origin(kind) is typing.Literal and text in typing.get_args(kind):
            return text
        if kind is bool and text.lower() in ("true", "false", "1", "0", "yes", "no"):
            return text.lower() in ("true", "1", "yes")
        if kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
        if kind is str:
            return text
    raise OptionError(f"option {name}: cannot read {text!r} as {hint}")
