"""Method against method on the same movies: does the alias score tell two methods apart? (pure)

Each movie gives each method a ``z`` (:mod:`.score`; :mod:`cryozssr.evaluate.pairs` says which).
Two methods run on the same movies are compared movie by movie: the differences ``d_i = z_a,i -
z_b,i`` are independent across movies (their own frames and noise), and their spread is *not*
known in advance (it depends on how alike the two methods' outputs are), so the test is a paired
Student's t: ``t = mean(d) / (sd(d) / sqrt(n))`` against the two-sided ``PAIR_LEVEL`` quantile
with ``n - 1`` degrees of freedom. Only past it does the score state an order; short of it the two
methods are "not told apart": a tie within the score's noise, not evidence that they are equal.
Fewer than :data:`MIN_PAIR_MOVIES` movies state no order at all (a spread from two differences
is no spread).

**Two methods without evidence of detail are not ordered.** Where the dataset's verdict
(:func:`cryozssr.evaluate.compare.dataset_verdict`) is "no" for both methods (no movie passes on
its own and their ``z`` beyond interpolation pooled over all their movies is under
:data:`~._alias_result.Z_WEAK`), the page says that neither shows evidence of detail past the
Nyquist, and an order between them would read what the score does not measure: the difference of
two such methods' raw ``z`` comes from how they predict the held-out aliasing with the in-band
content (interpolation's mirror of it), which the score is built not to reward. The rule only
removes statements, so the rate of stated orders between two methods that score alike stays at
most ``PAIR_LEVEL``; its threshold is the verdict's, not one fitted to the benchmark sets.

On the benchmark sets (``bench/bench_score.py``, README "Checking your own data") every order it
states agrees with the truth's FRC past the Nyquist: interpolation against the multi-frame methods
wherever the frames hold aliased signal, shift-add, misr and mmse among themselves only where they
differ by more than the score's noise (not at all at Falcon 4's 384 px x 20 frames, 22 movies,
where they differ by 5-15%; at the 1024 px x 40 frames a real detector's movie is scored on, mmse
above misr and shift-add, shift-add and misr not told apart). At 15 e/A^2 per frame, where
damage leaves the frames almost no aliased signal and every method scores "no", the paired test
alone stated 2 of the 13 pairs the truth resolves against it (13 x 2.5% = 0.33 expected by
chance); with no method showing evidence of detail, none is stated there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Two-sided false-order rate of a stated order between two methods that score alike.
PAIR_LEVEL = 0.05
#: Fewest movies on which an order between two methods is stated.
MIN_PAIR_MOVIES = 3


@dataclass(frozen=True)
class MethodComparison:
    """Two methods' scores on the same movies: mean difference ``first - second`` with its
    standard error over movies, and the order stated (``+1`` first above, ``-1`` second above,
    ``0`` not told apart; ``None`` with fewer than :data:`MIN_PAIR_MOVIES` movies).
    ``without_detail``: neither method shows evidence of detail past the Nyquist on the dataset,
    so no order is read between them (``order`` is ``0`` whatever the paired test says).
    ``t_order``: the paired test's own order (``order`` before that rule)."""

    n_movies: int
    difference: float | None
    difference_se: float | None
    order: int | None
    without_detail: bool = False
    t_order: int | None = None

    def to_dict(self) -> dict:
        return {
            "n_movies": self.n_movies,
            "z_difference": self.difference,
            "z_difference_se": self.difference_se,
            "order": self.order,
            "without_detail": self.without_detail,
            "t_order": self.t_order,
        }


def compare_methods(
    z_first: Sequence[float],
    z_second: Sequence[float],
    *,
    neither_shows_detail: bool = False,
) -> MethodComparison:
    """Paired comparison of two methods' per-movie raw ``z`` (same movies, same order).

    ``neither_shows_detail``: the dataset's verdict is "no" for both methods (the caller's, from
    all their movies: :func:`cryozssr.evaluate.compare.dataset_verdict`); no order is stated."""
    if len(z_first) != len(z_second):
        raise ValueError(f"{len(z_first)} and {len(z_second)} scores: not the same movies")
    n, mean, se, order = _paired_t(z_first, z_second)
    if neither_shows_detail and order is not None:
        return MethodComparison(n, mean, se, 0, without_detail=True, t_order=order)
    return MethodComparison(n, mean, se, order, t_order=order)


def _paired_t(
    z_first: Sequence[float], z_second: Sequence[float]
) -> tuple[int, float | None, float | None, int | None]:
    """``(n, mean difference, its SE, order)`` of the paired t over movies."""
    d = [float(a) - float(b) for a, b in zip(z_first, z_second, strict=True)]
    n = len(d)
    if n == 0:
        return 0, None, None, None
    mean = sum(d) / n
    if n < MIN_PAIR_MOVIES:
        return n, mean, None, None
    se = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1) / n)
    critical = _t_quantile(1 - PAIR_LEVEL / 2, n - 1)
    order = 0
    if se == 0:
        order = (mean > 0) - (mean < 0)
    elif abs(mean) > critical * se:
        order = 1 if mean > 0 else -1
    return n, mean, se, order


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, dof))
