"""Every switch of Cryo-ZSSR in one typed config, and the two presets.

The two regimes of the papers (Huang et al.); ``journal`` is the default. (The closed-form
estimate that was the ``explicit`` regime trains no network: it is the method
:func:`cryozssr.baselines.mmse`.)

* ``workshop`` (ECCV-W 2020 style): the ``K`` all-frame averages (aligned to ``K`` reference
  frames) are the HR targets, their 2x2 box-sum-downsampled versions the inputs (ZSSR's
  cross-scale pairs); MSE + total variation; ShiftNet + Lanczos registration before the loss.
* ``journal`` (Biological Imaging 2023 style): late-half averages aligned to the ``K`` references,
  box-downsampled 2x, are the inputs; the early-half average (aligned to the centre frame) is the
  target; MAE + a Fourier loss that down-weights high frequencies with a Gaussian.

Learning-rate rule (ZSSR, Shocher et al. 2018): every ``lr_check_every`` iterations fit a line to
the last ``lr_fit_window`` training losses; if ``-lr_slope_ratio * slope`` is smaller than the
slope's standard error (ZSSR's test, from ``np.polyfit(..., cov=True)``), divide the rate by 10, at
most once per ``lr_min_gap`` iterations; stop when the rate falls below ``lr_stop``. ZSSR's own
defaults (check every 60, window 256, gap 256, stop below 9e-6) cannot stop before ~900 iterations;
the papers stop near 200. Ours (10, 40, 40, three drops: 1e-3 -> 1e-6 < 1e-5) stop no earlier than
~130 iterations and typically around 150-250 on simulated movies; ``max_iterations`` bounds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from cryozssr.errors import OptionError

Regime = Literal["journal", "workshop"]
REGIMES: tuple[str, ...] = ("journal", "workshop")
ReferenceMode = Literal["spread", "first", "random"]
InputMode = Literal["fourier", "grouped"]


@dataclass(frozen=True)
class ZssrConfig:
    """Cryo-ZSSR options. Sizes in pixels; ``hr_crop`` is the target crop, the input crop is half."""

    regime: Regime = "journal"
    n_inputs: int = 4
    """``K``: number of reference-aligned averages fed to the network."""
    references: ReferenceMode = "spread"
    """``spread``: ``K`` reference frames evenly spaced over the movie; ``first``: frames 0..K-1;
    ``random``: ``K`` frames drawn with the run's seed (the workshop paper's choice)."""
    inputs: InputMode = "fourier"
    """``fourier``: the papers' ``K`` reference-aligned averages (Fourier shifts; with global motion
    shifted copies of one average); ``grouped``: frames grouped by the fractional part of their
    shift, aligned by whole pixels (:mod:`cryozssr.zssr.subpixel`), keeping sub-pixel diversity."""
    channels: int = 64
    res_blocks: int = 2
    hr_crop: int = 256
    batch_size: int = 1
    augment: bool = True
    """Random flips and 90-degree rotations of inputs and target together."""
    tv_weight: float = 1e-3
    """Total-variation weight (workshop loss: MSE + tv_weight * TV)."""
    fourier_weight: float = 1.0
    """Fourier-loss weight (journal loss: MAE + fourier_weight * Fourier loss)."""
    fourier_sigma_cycles_per_px: float = 0.25
    """Gaussian down-weighting of the Fourier loss, ``exp(-k^2 / (2 sigma^2))`` (target grid)."""
    shiftnet: bool | None = None
    """ShiftNet + Lanczos registration before the loss; ``None``: on for workshop, off for journal."""
    shift_penalty: float = 1e-3
    """Weight of the squared ShiftNet shift (keeps the registration small, as HighRes-net does)."""
    lr_initial: float = 1e-3
    lr_stop: float = 1e-5
    lr_check_every: int = 10
    lr_fit_window: int = 40
    lr_min_gap: int = 40
    lr_slope_ratio: float = 1.5
    max_iterations: int = 300
    fine_tune_iterations: int = 30
    """Iterations when training starts from a dataset-level checkpoint (instead of ``max_iterations``)."""
    ensemble: bool = True
    """8-fold geometric self-ensemble (median) at inference."""
    backprojection_iterations: int = 10
    """Irani-Peleg iterations with a bilinear kernel, closed by one exact projection; 0: none."""
    tile_size: int = 256
    """Inference tile side in LR pixels (bounded memory); the image is processed in tiles."""
    tile_overlap: int = 32
    """Overlap of neighbouring tiles in LR pixels (blended with linear ramps). Raised to what the
    network's receptive field needs; tiles are made at least twice the overlap."""

    @property
    def lr_crop(self) -> int:
        return self.hr_crop // 2

    @property
    def use_shiftnet(self) -> bool:
        return self.regime == "workshop" if self.shiftnet is None else self.shiftnet

    def __post_init__(self) -> None:
        if self.regime == "explicit":
            raise OptionError(
                "regime 'explicit' is no longer a zssr regime: the closed-form estimate is the"
                " method mmse (cryozssr.baselines.mmse)"
            )
        if self.regime not in REGIMES:
            raise OptionError(f"regime must be one of {', '.join(REGIMES)}, got {self.regime!r}")
        if self.references not in ("spread", "first", "random"):
            raise OptionError(
                f"references must be 'spread', 'first' or 'random', got {self.references!r}"
            )
        if self.inputs not in ("fourier", "grouped"):
            raise OptionError(f"inputs must be 'fourier' or 'grouped', got {self.inputs!r}")
        positive = (
            "n_inputs",
            "channels",
            "batch_size",
            "lr_check_every",
            "max_iterations",
            "fine_tune_iterations",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.res_blocks < 0 or self.backprojection_iterations < 0:
            raise OptionError("res_blocks and backprojection_iterations must be >= 0")
        if self.hr_crop < 8 or self.hr_crop % 2:
            raise OptionError(f"hr_crop must be an even number >= 8, got {self.hr_crop}")
        if self.lr_fit_window < 3:
            raise OptionError(f"lr_fit_window must be >= 3, got {self.lr_fit_window}")
        if not 0 < self.lr_stop <= self.lr_initial:
            raise OptionError("need 0 < lr_stop <= lr_initial")
        if self.tile_size < 16 or self.tile_overlap < 0:
            raise OptionError("need tile_size >= 16 and tile_overlap >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, ZssrConfig] = {
    # HighRes-net's encoder (64 channels, 2 residual blocks), the papers' 256/128 crops
    "paper": ZssrConfig(),
    # small and quick: 16 channels, 1 residual block, 128/64 crops, at most 150 iterations; the
    # papers' inference (ensemble + back-projection) is kept: on the simulator benchmark
    # (bench/bench_zssr.py) back-projection raised every band. On the sparse synthetic movie of the
    # tests it beats bilinear below the Nyquist; on the simulator benchmark it does not.
    "fast": ZssrConfig(channels=16, res_blocks=1, hr_crop=128, max_iterations=150),
}


def config_from_preset(name: str = "paper", **overrides: Any) -> ZssrConfig:
    """The preset ``name`` with ``overrides`` applied (unknown keys are an :class:`OptionError`)."""
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    known = {f.name for f in fields(ZssrConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise OptionError(f"unknown Cryo-ZSSR option(s): {', '.join(unknown)}")
    return replace(PRESETS[name], **overrides)
