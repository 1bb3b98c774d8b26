"""The alias score's summary from its pooled sums: ``rho``, ``z``, beyond interpolation, the bound
and the verdict (pure; the principle is in :mod:`.score`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from cryozssr.evaluate._alias_folds import N_SHELLS

#: LR-radius bands (cycles/LR px) named after the HR bands their aliases fall in (on the axes).
SCORE_BANDS: dict[str, tuple[float, float]] = {
    "nyquist_1.33x": (1.0 / 3.0, 0.5),
    "1.33x_1.67x": (1.0 / 6.0, 1.0 / 3.0),
}
#: The pooled band of the headline score: LR ``|k|`` from 1/6 to 1/2 (aliases at Nyquist-1.67x).
HEADLINE_BAND: tuple[float, float] = (1.0 / 6.0, 0.5)
#: ``z`` above which a method is said to recover detail (one-sided, ~3e-5 false alarms).
Z_RECOVERED = 4.0
#: Pooled ``z`` beyond interpolation below which a dataset shows no evidence of detail past the
#: Nyquist (at most 2.3% of datasets that hold nothing beyond interpolation reach it): with no
#: movie passing on its own, its verdict is "no" rather than "not established", and no order is
#: read between two methods whose verdict is "no" (:func:`~._alias_pairs.compare_methods`).
Z_WEAK = 2.0
#: Smallest share of the frames' aliased signal called a recovery (below it: "nothing useful").
FRACTION_RECOVERED = 0.01
#: Significance of the Wiener bound's signal below which "what the frames allow" is not given.
Z_BOUND = 3.0
#: Aliased signal power over noise power below which the frames are said to hold nothing to check.
MIN_ALIASED_SNR = 1e-3


def is_recovered(z: float, explained_share: float | None, *, measurable: bool) -> bool:
    """The verdict's rule on the score *beyond interpolation* (``z_beyond_interpolation`` and
    its share): ``z >= Z_RECOVERED`` and, if measurable, share ``>= FRACTION_RECOVERED``."""
    if z < Z_RECOVERED:
        return False
    return not measurable or (explained_share or 0.0) >= FRACTION_RECOVERED


def pooled_z(z_per_movie: Sequence[float]) -> float:
    """Stouffer's ``sum z_i / sqrt(n)``: independent movies' evidence as one ``z``; ``N(0, 1)``
    where each movie's is, and below it where each is biased low (``z`` beyond interpolation,
    a minimum of two tests, for a method that recovers nothing); ``sqrt(n)`` times one movie's
    ``z`` for ``n`` alike movies."""
    if not z_per_movie:
        raise ValueError("no movies to pool")
    return sum(float(z) for z in z_per_movie) / math.sqrt(len(z_per_movie))


@dataclass(frozen=True)
class AliasScore:
    """The pooled score and its parts; ``shells`` are LR radii (cycles/LR px) with ``rho`` per shell.

    ``rho``, ``z``: the method's prediction of the held-out frames' aliasing (raw).
    ``rho_beyond``, ``z_beyond``: how much better it correlates with them than the interpolation
    baseline's (``rho - rho_base`` and its paired significance; ``None`` when scored without a
    baseline); the verdict uses these.
    """

    rho: float | None
    z: float
    explained_share: float | None
    explained_share_bound: float | None
    fraction_of_bound: float | None
    bound_z: float
    aliased_signal_snr: float
    n_folds: int
    n_fit_frames: int
    rho_beyond: float | None = None
    z_beyond: float | None = None
    bands: dict[str, float | None] = field(default_factory=dict)
    shells_k_lr: list[float] = field(default_factory=list)
    shells_rho: list[float | None] = field(default_factory=list)

    @property
    def explained_share_beyond(self) -> float | None:
        """``rho^2 - rho_base^2`` (signed squares): the share explained beyond the baseline."""
        if self.rho_beyond is None or self.rho is None:
            return None
        base = self.rho - self.rho_beyond
        return math.copysign(self.rho**2, self.rho) - math.copysign(base**2, base)

    @property
    def fraction_of_bound_se(self) -> float | None:
        """Standard error of :attr:`fraction_of_bound`: ``C`` (``1 / z``, squared) and ``W``."""
        if self.fraction_of_bound is None or self.z == 0:
            return None
        return abs(self.fraction_of_bound) * math.sqrt(1 / self.bound_z**2 + 4 / self.z**2)

    @property
    def recovered(self) -> bool:
        """Beyond interpolation: significant (``z`` >= 4) and, where measurable, at least 1% of
        the held-out frames' aliased signal explained (without a baseline: the raw score)."""
        if self.z_beyond is None:
            return is_recovered(self.z, self.explained_share, measurable=self.rho is not None)
        return is_recovered(
            self.z_beyond, self.explained_share_beyond, measurable=self.rho_beyond is not None
        )

    def verdict(self) -> str:
        """One plain sentence for the report."""
        head = f"recovered detail past the Nyquist: {'yes' if self.recovered else 'no'}"
        if self.fraction_of_bound is not None:
            pct = 100 * max(self.fraction_of_bound, 0.0)
            se = 100 * (self.fraction_of_bound_se or 0.0)
            return f"{head}, {pct:.0f}% (± {se:.0f}%) of what the frames allow"
        if self.rho is not None:
            return f"{head} (rho = {self.rho:.2f}; what the frames allow is not measurable)"
        why = "the frames' aliased signal is too weak to measure against their noise"
        z = self.z if self.z_beyond is None else self.z_beyond
        return f"{head} (z = {z:.1f}); {why}"

    def to_dict(self) -> dict:
        return {
            "rho": self.rho,
            "z": self.z,
            "rho_beyond_interpolation": self.rho_beyond,
            "z_beyond_interpolation": self.z_beyond,
            "explained_share": self.explained_share,
            "explained_share_beyond_interpolation": self.explained_share_beyond,
            "explained_share_bound": self.explained_share_bound,
            "fraction_of_bound": self.fraction_of_bound,
            "fraction_of_bound_se": self.fraction_of_bound_se,
            "bound_z": self.bound_z,
            "aliased_signal_snr": self.aliased_signal_snr,
            "n_folds": self.n_folds,
            "n_fit_frames": self.n_fit_frames,
            "recovered": self.recovered,
            "verdict": self.verdict(),
            "bands": self.bands,
            "shells_k_lr": self.shells_k_lr,
            "shells_rho": self.shells_rho,
        }


def _rho(sums: torch.Tensor, rows=(0, 1, 4)) -> tuple[float | None, float, float]:
    """``(rho, z, aliased SNR)`` from pooled sums (``C``, ``|P|^2``, ``sigma^2 |P|^2`` at
    ``rows``); ``rho`` is ``None`` without signal."""
    c, pp, var_c = (float(sums[r]) for r in rows)
    yp, noise = float(sums[2]), float(sums[3])
    z = c / math.sqrt(var_c) if var_c > 0 else 0.0
    signal = yp - noise
    snr = signal / noise if noise > 0 else 0.0
    if pp <= 0 or signal <= 0 or snr < MIN_ALIASED_SNR:
        return None, z, snr
    return c / math.sqrt(pp * signal), z, snr


def _beyond(sums: torch.Tensor) -> tuple[float | None, float]:
    """``(rho - rho_base, z)`` from pooled sums: how much better the method's prediction
    correlates with the held-out frames' aliased signal than the interpolation baseline's, and
    the paired significance of it. Both predictions are normalised to unit power over the band
    (``P^ = Pi P / |Pi P|``, ``B^`` likewise: a correlation does not depend on the scale), so
    ``rho - rho_base = <P^ - B^, Pi Y> / sqrt(S)`` and its noise is the held-out frames' own along
    ``P^ - B^``: ``z = <P^ - B^, Y> / sqrt(sum sigma^2 |P^ - B^|^2)`` (``N(0, 1)`` when the two
    correlate equally). A method that predicts nothing is a zero ``P^`` (``rho`` 0); one whose
    prediction *is* the baseline's has ``P^ = B^``: 0 and 0."""
    c, pp, var_c = float(sums[0]), float(sums[1]), float(sums[4])
    cb, bb, var_cb = float(sums[9]), float(sums[10]), float(sums[11])
    var_x = float(sums[13])
    if bb <= 0:
        return None, 0.0
    np_ = math.sqrt(pp) if pp > 0 else math.inf  # nothing predicted: P^ = 0
    nb = math.sqrt(bb)
    diff = c / np_ - cb / nb
    var = var_c / np_**2 + var_cb / nb**2 - 2 * var_x / (np_ * nb)
    if var <= 1e-9 * (var_cb / nb**2):  # P^ = B^ up to rounding
        return 0.0, 0.0
    signal = float(sums[2] - sums[3])
    noise = float(sums[3])
    rho_diff = None
    if signal > 0 and noise > 0 and signal / noise >= MIN_ALIASED_SNR:
        rho_diff = diff / math.sqrt(signal)
    return rho_diff, diff / math.sqrt(var)


def _bound(sums: torch.Tensor) -> tuple[float | None, float | None, float]:
    """From pooled sums: ``rho_max^2 = W / S_held`` (``None`` where the held-out frames' aliased
    signal is not measurable, with all frames' noise or with their own), the fraction of it a method reaches,
    ``rho^2 / rho_max^2 = C |C| / (|Pi P|^2 W)`` (``None`` unless ``W`` is significant: the
    held-out signal cancels, only ``W``'s noise is left) and ``W``'s significance."""
    c, pp, noise = float(sums[0]), float(sums[1]), float(sums[3])
    explained, var, signal = float(sums[5]), float(sums[6]), float(sums[7])
    own_signal = float(sums[2]) - noise  # with the held-out frames' own noise (rho's)
    bound_z = explained / math.sqrt(var) if var > 0 else 0.0
    if bound_z < Z_BOUND:
        return None, None, bound_z
    measurable = signal > 0 and noise > 0 and signal / noise >= MIN_ALIASED_SNR
    if not measurable or own_signal <= 0 or pp <= 0:
        # the frames' aliased signal is not measurable: on the simulated sets their noise grows
        # by 1-3% over the exposure, which the model of equal noise per frame reads as less
        # aliased signal than there is (bench/bench_frame_noise.py): no "what the frames allow"
        return None, None, bound_z
    return explained / signal, c * abs(c) / (pp * explained), bound_z


def shell_centres_k_lr() -> list[float]:
    """Centres of the score's :data:`N_SHELLS` LR shells (cycles/LR px, to the corner)."""
    edges = torch.arange(N_SHELLS + 1, dtype=torch.float64) * (0.5 * math.sqrt(2) / N_SHELLS)
    return ((edges[:-1] + edges[1:]) / 2).tolist()


def summarise(sums: torch.Tensor, *, n_folds: int, n_fit: int, beyond: bool) -> AliasScore:
    centres = shell_centres_k_lr()

    def pooled(lo: float, hi: float) -> torch.Tensor:
        sel = [i for i, k in enumerate(centres) if lo <= k < hi]
        return sums[:, sel].sum(1)

    headline = pooled(*HEADLINE_BAND)
    rho, z, snr = _rho(headline)
    rho_b, z_b = None, None
    if beyond:  # it must beat both baselines: predicting nothing (raw) and the interpolation
        rho_b, z_b = _beyond(headline)
        z_b = min(z, z_b)
        rho_b = None if rho is None or rho_b is None else min(rho, rho_b)
    bound, fraction, bound_z = _bound(headline)
    bands = {name: _rho(pooled(lo, hi))[0] for name, (lo, hi) in SCORE_BANDS.items()}
    return AliasScore(
        rho=rho,
        z=z,
        explained_share=None if rho is None else math.copysign(rho * rho, rho),
        explained_share_bound=bound,
        fraction_of_bound=fraction,
        bound_z=bound_z,
        aliased_signal_snr=snr,
        n_folds=n_folds,
        n_fit_frames=n_fit,
        rho_beyond=rho_b,
        z_beyond=z_b,
        bands=bands,
        shells_k_lr=[round(k, 4) for k in centres],
        shells_rho=[_rho(sums[:, i])[0] for i in range(N_SHELLS)],
    )
