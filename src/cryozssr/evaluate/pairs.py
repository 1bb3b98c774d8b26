"""Method against method: which method the alias score puts above which, on the movies both ran.

Pure formatting of :class:`~cryozssr.evaluate.compare.Row` records (no I/O). The test is
:func:`cryozssr.evaluate.score.compare_methods` (paired over movies, two-sided 5%) on the movies'
raw ``z``: the difference of two methods' raw ``z`` on a movie is the contrast of their
normalised predictions with the held-out frames, ``<P^_a - P^_b, Y> / sigma``, unbiased (zero
when they predict the aliasing equally well) and the interpolation baseline cancels in it. The
verdict's ``z`` beyond interpolation is a minimum of two tests: for methods that recover nothing
it is biased below zero by an amount that differs from method to method (bilinear's is
``min(z, 0)``), which an order between them would read as a difference. Where a truth
exists its FRC past the Nyquist is compared on the same movies beside it (mean difference and
its standard error over movies), so a reader sees both yardsticks side by side. Two methods
whose dataset verdict is "no" are not ordered (:func:`shows_detail`;
:func:`~cryozssr.evaluate.score.compare_methods`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from cryozssr.evaluate.compare import Row, dataset_verdict, score_figures
from cryozssr.evaluate.score import MIN_PAIR_MOVIES, PAIR_LEVEL, compare_methods


def method_pairs(rows: Sequence[Row]) -> list[dict]:
    """Every pair of scored methods: ``first``, ``second``, the score's comparison
    (:class:`~cryozssr.evaluate.score.MethodComparison` as a dict) on the movies both scored,
    and ``truth_difference`` / ``truth_difference_se`` (``None`` without a truth)."""
    scored = [r for r in rows if any(s.get("z") is not None for s in r.scores.values())]
    out = []
    for a, b in itertools.combinations(scored, 2):
        stems = sorted(
            s
            for s in set(a.scores) & set(b.scores)
            if a.scores[s].get("z") is not None and b.scores[s].get("z") is not None
        )
        cmp = compare_methods(
            [a.scores[s]["z"] for s in stems],
            [b.scores[s]["z"] for s in stems],
            neither_shows_detail=not (shows_detail(a) or shows_detail(b)),
        )
        entry = {"first": a.name, "second": b.name, **cmp.to_dict()}
        entry["truth_difference"], entry["truth_difference_se"] = _truth(a, b, stems)
        out.append(entry)
    return out


def shows_detail(row: Row) -> bool:
    """Whether the dataset's verdict for ``row`` is anything but "no" (from all its scored movies,
    as the page's verdict line: :func:`~cryozssr.evaluate.compare.dataset_verdict`)."""
    scored = [s for s in row.scores.values() if s.get("z") is not None]
    return bool(scored) and dataset_verdict(score_figures(scored)) != "no"


def _truth(a: Row, b: Row, stems: list[str]) -> tuple[float | None, float | None]:
    if not stems or not all(s in a.truth_past_nyquist and s in b.truth_past_nyquist for s in stems):
        return None, None
    d = [a.truth_past_nyquist[s] - b.truth_past_nyquist[s] for s in stems]
    mean = sum(d) / len(d)
    if len(d) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1) / len(d))


def comparable(pairs: Sequence[dict]) -> bool:
    """Whether any pair has the movies an order needs."""
    return any(p["order"] is not None for p in pairs)


def cell(pair: dict, *, flip: bool = False) -> str:
    """The report's matrix cell of ``first`` against ``second`` (``flip``: the other way)."""
    if pair["order"] is None:
        return f"{pair['n_movies']} movies: too few"
    sign = -1 if flip else 1
    word = {1: "above", -1: "below", 0: "not told apart"}[sign * pair["order"]]
    if pair.get("without_detail"):
        word = "neither shows evidence of detail"
    text = f"{word} ({sign * pair['z_difference']:+.1f} ± {pair['z_difference_se']:.1f})"
    if pair["truth_difference"] is not None:
        se = pair["truth_difference_se"]
        text += f"; truth {sign * pair['truth_difference']:+.3f}" + (
            f" ± {se:.3f}" if se is not None else ""
        )
    return text


def terminal_line(pairs: Sequence[dict]) -> str | None:
    """One line for the terminal: the orders the score states, and how many pairs it cannot."""
    if not comparable(pairs):
        return None
    told = [p for p in pairs if p["order"]]
    names = [
        f"{p['first']} > {p['second']}" if p["order"] > 0 else f"{p['second']} > {p['first']}"
        for p in told
    ]
    nothing = sum(1 for p in pairs if p.get("without_detail"))
    rest = sum(1 for p in pairs if p["order"] == 0) - nothing
    return (
        "score, method against method: "
        + (", ".join(names) if names else "no order")
        + f"; {rest} pair(s) not told apart"
        + (f", {nothing} without evidence of detail in either" if nothing else "")
        + " (report)"
    )


__all__ = [
    "MIN_PAIR_MOVIES",
    "PAIR_LEVEL",
    "cell",
    "comparable",
    "method_pairs",
    "shows_detail",
    "terminal_line",
]
