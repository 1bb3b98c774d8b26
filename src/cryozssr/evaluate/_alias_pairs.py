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

On the benchmark sets (``bench/bench_score.py``, README "Checking your own data") the orders it
states agree with the truth's FRC past the Nyquist on every set but one: interpolation against
the multi-frame methods wherever the frames hold aliased signal, shift-add, misr and mmse among
themselves only where they differ by more than the score's noise (not at all at Falcon 4's
384 px x 20 frames, 22 movies, where they differ by 5-15%; at the 1024 px x 40 frames a real
detector's movie is scored on, 6 movies, mmse above misr and shift-add, shift-add and misr not
told apart). The exception is 15 e/A^2 per
frame, where damage leaves the frames almost no aliased signal: 2 of 13 pairs the truth
resolves are stated against it (0.65 expected at 5% by chance).
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
    ``0`` not told apart; ``None`` with fewer than :data:`MIN_PAIR_MOVIES` movies)."""

    n_movies: int
    difference: float | None
    difference_se: float | None
    order: int | None

    def to_dict(self) -> dict:
        return {
            "n_movies": self.n_movies,
            "z_difference": self.difference,
            "z_difference_se": self.difference_se,
            "order": self.order,
        }


def compare_methods(z_first: Sequence[float], z_second: Sequence[float]) -> MethodComparison:
    """Paired comparison of two methods' per-movie ``z`` (same movies, same order)."""
    if len(z_first) != len(z_second):
        raise ValueError(f"{len(z_first)} and {len(z_second)} scores: not the same movies")
    d = [float(a) - float(b) for a, b in zip(z_first, z_second, strict=True)]
    n = len(d)
    if n == 0:
        return MethodComparison(0, None, None, None)
    mean = sum(d) / n
    if n < MIN_PAIR_MOVIES:
        return MethodComparison(n, mean, None, None)
    se = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1) / n)
    critical = _t_quantile(1 - PAIR_LEVEL / 2, n - 1)
    order = 0
    if se == 0:
        order = (mean > 0) - (mean < 0)
    elif abs(mean) > critical * se:
        order = 1 if mean > 0 else -1
    return MethodComparison(n, mean, se, order)


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, dof))
