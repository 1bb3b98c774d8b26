r"""Counting statistics of a real electron-counting detector: what turns expected electrons into counts.

An ideal counting detector records every electron once in one pixel: the counts are independent
Poisson variables (white noise, variance = mean). Real counting detectors depart from that in
three ways that matter for super-resolution past the pixel Nyquist, all modelled here per pixel
and per frame:

1. **Detection efficiency** ``efficiency``: a fraction of the electrons is never counted (events
   below threshold, back-scatter that leaves too little signal). Thinning a Poisson process keeps
   it Poisson: the counts stay white, with fewer of them (DQE(0) falls by that fraction).
2. **Coincidence loss** (paralysable): two electrons landing close together within one readout of
   the sensor are counted as one. The fraction recorded at a local electron rate ``r`` (e/px/s) is
   ``exp(-r * tau)``, with ``tau`` = readout period x event footprint (px): it grows with the dose
   rate and is larger where the image is brighter (a slight compression of contrast). The variance
   reduction that dead time also causes (sub-Poisson counts, Zambon 2024, Front. Phys. 12:1408430)
   is not modelled.
3. **Multiple counting**: an event is counted again in a random 4-neighbour pixel with probability
   ``p`` (charge spread over a pixel border found as two events). Neighbouring pixels' noise is then
   positively correlated and the noise power spectrum is no longer flat:

   .. math::

      \mathrm{NPS}(k) = \mu_e \left[1 + p\,(1 + \cos 2\pi k_x + \cos 2\pi k_y)\right],\qquad
      T(k) = \frac{1 + \tfrac{p}{2}(\cos 2\pi k_x + \cos 2\pi k_y)}{1 + p}

   per detected electron rate ``mu_e`` (``k`` in cycles/px), with signal transfer ``T`` (normalised
   to 1 at ``k = 0``). The simulator divides the detector's *measured* MTF by ``T`` before counting,
   so that the counted images show the tabulated MTF; the noise keeps the correlation.

``DQE(k) = MTF(k)^2 mean^2 / (NPS(k) * incident)`` follows: ``DQE(0) = efficiency * exp(-r tau)
(1 + p)^2 / (1 + 3 p)``.

The per-detector values in :data:`COUNTING` are **illustrative**, of the order of published
characterisations of each camera (DQE(0) of 0.7-0.9 in counting mode, a few per cent of
coincidence loss at the vendors' recommended dose rates, neighbour noise correlation of a few per
cent to ~10 %); they are not a fit to any one camera, and every method is scored on the same
movies. :func:`noise_power_spectrum` and :func:`dqe` give what a set of values implies.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from cryozssr.errors import OptionError


@dataclass(frozen=True)
class CountingStatistics:
    """How one detector turns expected electrons per pixel into counts (module docstring).

    ``efficiency``: fraction of electrons counted at a vanishing dose rate (0-1].
    ``coincidence_s``: ``tau`` of the paralysable loss, seconds (readout period x event footprint).
    ``multiple_count_probability``: chance that an event is counted again in a 4-neighbour pixel.
    ``dose_rate_e_per_px_per_s``: the dose rate on the detector at which movies are recorded.
    """

    efficiency: float
    coincidence_s: float
    multiple_count_probability: float
    dose_rate_e_per_px_per_s: float

    def __post_init__(self) -> None:
        if not 0 < self.efficiency <= 1:
            raise OptionError(f"detection efficiency must be in (0, 1], got {self.efficiency}")
        if not 0 <= self.multiple_count_probability < 1:
            raise OptionError(
                f"multiple-count probability must be in [0, 1), got {self.multiple_count_probability}"
            )
        for name, value in (
            ("coincidence time", self.coincidence_s),
            ("dose rate", self.dose_rate_e_per_px_per_s),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise OptionError(f"{name} must be finite and >= 0, got {value}")

    @property
    def recorded_fraction(self) -> float:
        """Mean counts per incident electron at the set dose rate (on a flat field)."""
        p = self.multiple_count_probability
        return self.efficiency * self.coincidence_fraction(1.0) * (1 + p)

    def coincidence_fraction(
        self, relative_intensity: float | torch.Tensor
    ) -> float | torch.Tensor:
        """``exp(-r tau)`` at ``relative_intensity`` x the set dose rate."""
        rate_tau = self.dose_rate_e_per_px_per_s * self.coincidence_s
        if isinstance(relative_intensity, torch.Tensor):
            return torch.exp(-rate_tau * relative_intensity)
        return math.exp(-rate_tau * relative_intensity)


# readout period x ~4 px event footprint; dose rates typical of high-resolution data collection
COUNTING: dict[str, CountingStatistics] = {
    "k2": CountingStatistics(0.80, 4 / 400, 0.10, 8.0),  # 400 frames/s
    "k3": CountingStatistics(0.85, 4 / 1500, 0.08, 15.0),  # 1500 frames/s
    "falcon3ec": CountingStatistics(0.80, 4 / 40, 0.15, 0.8),  # 40 frames/s, low-rate counting
    "falcon4ec": CountingStatistics(0.90, 4 / 248, 0.12, 5.0),  # 248 frames/s
}
NOISE_MODELS = ("counting", "poisson")
"""``counting``: the detector's :data:`COUNTING` statistics; ``poisson``: an ideal counter."""


def counting_statistics(
    detector: str, noise_model: str, *, dose_rate_e_per_px_per_s: float | None = None
) -> CountingStatistics | None:
    """The statistics the simulator applies (``None``: ideal Poisson counting), at the given dose
    rate (``None``: the detector's typical one)."""
    if noise_model not in NOISE_MODELS:
        raise OptionError(
            f"noise model must be one of {', '.join(NOISE_MODELS)}, got {noise_model!r}"
        )
    if noise_model == "poisson" or detector == "ideal":
        return None
    try:
        stats = COUNTING[detector]
    except KeyError:
        raise OptionError(f"no counting statistics for detector {detector!r}") from None
    if dose_rate_e_per_px_per_s is not None:
        stats = dataclasses.replace(stats, dose_rate_e_per_px_per_s=dose_rate_e_per_px_per_s)
    return stats


def counting_record(config) -> dict | None:
    """What :class:`~cryozssr.simulate.config.SimulationConfig` ``config`` implies, for the record."""
    stats = counting_statistics(
        config.detector,
        config.noise_model,
        dose_rate_e_per_px_per_s=config.dose_rate_e_per_px_per_s,
    )
    if stats is None:
        return None
    return {
        **dataclasses.asdict(stats),
        "counts_per_electron": stats.recorded_fraction,
        "dqe_at_zero": dqe_at_zero(stats),
        "nps_nyquist_over_zero_along_axis": (1 + stats.multiple_count_probability)
        / (1 + 3 * stats.multiple_count_probability),
    }


def multiple_count_transfer_rfft(
    shape: tuple[int, int], *, oversample: int, p: float, device: torch.device | None = None
) -> torch.Tensor:
    """``T(k)`` of the module docstring on the rfft grid of an image ``oversample`` x finer than the
    pixel (``k`` in cycles per detector pixel; periodic, as the pixel grid is)."""
    ky = torch.fft.fftfreq(shape[0], dtype=torch.float64, device=device) * oversample
    kx = torch.fft.rfftfreq(shape[1], dtype=torch.float64, device=device) * oversample
    cos_sum = torch.cos(2 * math.pi * ky)[:, None] + torch.cos(2 * math.pi * kx)[None, :]
    return ((1 + 0.5 * p * cos_sum) / (1 + p)).float()


def noise_power_spectrum(
    k_y: torch.Tensor, k_x: torch.Tensor, *, stats: CountingStatistics, electrons_per_px: float
) -> torch.Tensor:
    """Expected NPS (counts^2 per pixel, ``|fft2|^2 / n``) of a flat field of ``electrons_per_px``."""
    p = stats.multiple_count_probability
    detected = electrons_per_px * stats.efficiency * stats.coincidence_fraction(1.0)
    return detected * (1 + p * (1 + torch.cos(2 * math.pi * k_y) + torch.cos(2 * math.pi * k_x)))


def dqe_at_zero(stats: CountingStatistics) -> float:
    """``DQE(0)`` that the statistics imply (module docstring)."""
    p = stats.multiple_count_probability
    return stats.efficiency * stats.coincidence_fraction(1.0) * (1 + p) ** 2 / (1 + 3 * p)


def count_electrons(
    expected_e_per_px: torch.Tensor,
    *,
    stats: CountingStatistics | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Counts ``(..., h, w)`` int32 from expected incident electrons per pixel (same shape).

    ``stats=None``: ideal counting (Poisson of the expectation). Otherwise efficiency and
    coincidence loss thin the electrons (the local rate relative to the frame's mean sets the
    loss), then each count is repeated in a random 4-neighbour with probability ``p`` (periodic
    borders, as the simulated frame is periodic).
    """
    lam = _detected_rate(expected_e_per_px, stats)
    counts = torch.poisson(lam, generator=generator)
    if stats is None:
        return counts.to(torch.int32)
    p = stats.multiple_count_probability
    if p == 0:
        return counts.to(torch.int32)
    extra = torch.binomial(counts, torch.full_like(counts, p), generator=generator)
    out = counts.clone()
    remaining = extra
    # split the repeats among the 4 neighbours: binomial thinning, 1/4, 1/3, 1/2, the rest
    for i, (shift, dim) in enumerate(((1, -2), (-1, -2), (1, -1), (-1, -1))):
        if i < 3:
            share = torch.binomial(
                remaining, torch.full_like(remaining, 1 / (4 - i)), generator=generator
            )
            remaining = remaining - share
        else:
            share = remaining
        out += torch.roll(share, shift, dims=dim)
    return out.to(torch.int32)


def expected_counts(
    expected_e_per_px: torch.Tensor, *, stats: CountingStatistics | None
) -> torch.Tensor:
    """The mean of :func:`count_electrons` (float, same shape): the detected rate after
    efficiency and coincidence loss, plus the ``p / 4`` of each 4-neighbour's detected rate that
    multiple counting adds to a pixel (periodic borders)."""
    lam = _detected_rate(expected_e_per_px, stats)
    if stats is None or stats.multiple_count_probability == 0:
        return lam
    near = sum(torch.roll(lam, k, dims=d) for k in (1, -1) for d in (-2, -1))
    return lam + stats.multiple_count_probability / 4 * near


def _detected_rate(expected_e_per_px: torch.Tensor, stats: CountingStatistics | None):
    """Electrons per pixel that are counted (before multiple counting): all of them for an ideal
    counter; else thinned by the efficiency and the coincidence loss at the local rate relative
    to the frame's mean."""
    lam = expected_e_per_px.clamp(min=0)
    if stats is None:
        return lam
    mean = lam.mean(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
    return lam * stats.efficiency * stats.coincidence_fraction(lam / mean)
