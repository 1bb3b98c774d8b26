"""What an evaluation says in words and tables: verdicts, column legends, the 80-column summary.

Pure formatting of :class:`~cryozssr.evaluate.compare.Row` figures (no I/O). Bands are named in
Angstrom from the LR pixel size (the LR row's), every column says which direction is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cryozssr.evaluate.compare import Row, dataset_verdict, verdict_z
from cryozssr.evaluate.frc import PAST_NYQUIST_LIMIT
from cryozssr.evaluate.score import FRACTION_RECOVERED, Z_RECOVERED, Z_WEAK

#: Fewer particles than this make the 3D columns noise (the demo's 25 per micrograph gave 7-9 A
#: spreads between identical inputs).
MIN_PARTICLES_3D = 1000


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    fmt: str
    better: str  # "higher", "lower" or "" (a count or a setting)
    legend: str


def columns(lr_pixel_angstrom: float) -> list[Column]:
    """The report's columns, with band edges in Angstrom for this LR pixel size."""
    nyq = 2 * lr_pixel_angstrom  # LR Nyquist resolution, A
    a133, a167 = nyq / (4 / 3), nyq / (5 / 3)
    far = nyq * 0.25 / PAST_NYQUIST_LIMIT
    return [
        Column("score_percent_of_bound", "past-Nyq detail, % of what frames allow", "{:.0f}",
               "higher",
               "No truth needed (--half-sets runs): the method is run on all frames but a "
               "held-out 1/K, K times (cross-validation, K = --score-folds); the share of the "
               "held-out frames' aliased signal that its detail past the LR Nyquist predicts, "
               "over the share the best linear (Wiener) estimate from the same frames could "
               "predict given their measured signal and noise. 0 = interpolation or "
               "invented detail, 100 = all the frames allow; above 100 only with prior knowledge "
               "of the specimen."),
        Column("score_rho", "alias score ρ", "{:.3f}", "higher",
               "Correlation (−1..1) of that detail with the frames' aliased signal; the truth "
               "itself scores 1, no estimate from the frames can (their noise)."),
        Column("score_z", "alias score z", "{:.1f}", "higher",
               f"Significance of the score: ≥ {Z_RECOVERED:g} = real detail past the Nyquist; "
               "about 0 ± 1 = none. "
               "Exists even where the frames' aliased signal is too weak for ρ and %."),
        Column("score_z_beyond", "alias score z beyond interp.", "{:.1f}", "higher",
               "Significance of the prediction beyond what a bilinear interpolation of the same "
               f"frames predicts (and beyond predicting nothing): ≥ {Z_RECOVERED:g} = detail "
               "interpolation "
               "cannot give; interpolation itself scores ≤ 0."),
        Column("score_z_pooled", "dataset z (pooled)", "{:.1f}", "higher",
               "The verdict's significance for the dataset: the movies' z beyond interpolation "
               f"pooled (Σ z / √n, Stouffer; movies are independent). ≥ {Z_RECOVERED:g} = yes; "
               f"{Z_WEAK:g}–{Z_RECOVERED:g} = not established (weak evidence: more movies would "
               "settle it)."),
        Column("score_recovered", "recovered (movies)", "{}", "higher",
               "Movies where the detail predicts the held-out frames better than interpolation "
               f"and than nothing (z beyond interp. ≥ {Z_RECOVERED:g}) and, where ρ is "
               f"measurable, explains ≥ {100 * FRACTION_RECOVERED:g}% more of their aliased "
               "signal."),
        Column("frc_past_nyquist", f"FRC vs truth past Nyq ({nyq:.1f}–{far:.1f} Å)", "{:.3f}",
               "higher", "Simulations only: correlation with the truth over the frequencies past "
               "the LR Nyquist only (outside the LR pixel's square band): what the score estimates."),
        Column("frc_below_nyquist", f"FRC vs truth > {nyq:.1f} Å", "{:.3f}", "higher",
               "Simulations only: FRC with the truth below the LR Nyquist (what LR already has)."),
        Column("frc_nyquist_1.33x", f"FRC vs truth {nyq:.1f}–{a133:.1f} Å", "{:.3f}", "higher",
               "Radial ring just past the LR Nyquist (includes the LR square's corners, so "
               "interpolation scores > 0 here)."),
        Column("frc_nyquist_1.33x_vs_hr", "÷ HR ceiling", "{:.2f}", "higher",
               "The ring's FRC divided by the HR movie's (a real 2x camera): 1 = as good as HR."),
        Column("frc_1.33x_1.67x", f"FRC vs truth {a133:.1f}–{a167:.1f} Å", "{:.3f}", "higher",
               "The next ring."),
        Column("frc_1.33x_1.67x_vs_hr", "÷ HR ceiling ", "{:.2f}", "higher", "As above."),
        Column("half_frc_nyquist_1.33x", f"half-set FRC {nyq:.1f}–{a133:.1f} Å", "{:.3f}", "",
               "Even- vs odd-frame outputs. Caution: it rewards anything both halves compute "
               "alike (interpolation's mirror images score high); use the alias score instead."),
        Column("ctf_fit_resolution_angstrom", "CTF fit res (Å)", "{:.2f}", "lower",
               "CTFFIND4-style fit: finest resolution where the fit holds (mean over micrographs)."),
        Column("ctf_score", "CTF score", "{:.3f}", "higher", "Fit cross-correlation."),
        Column("ctf_defocus_error_percent", "defocus err (%)", "{:.2f}", "lower",
               "Simulations only: |fitted − true mean defocus| / true."),
        Column("n_particles", "particles (3D)", "{:.0f}", "",
               "Particles in the oracle-pose 3D reconstruction (more = less noisy 3D columns)."),
        Column("fsc_half_0.143_angstrom", "FSC half 0.143 (Å)", "{:.2f}", "lower",
               "Half-map FSC of the oracle-pose reconstruction at 0.143."),
        Column("fsc_truth_0.5_angstrom", "FSC truth 0.5 (Å)", "{:.2f}", "lower",
               "FSC of the full map against the true map at 0.5."),
        Column("seconds_per_movie", "s / movie", "{:.1f}", "lower",
               "Wall time of `cryozssr run` per movie (read, motion, method, half sets, score)."),
    ]  # fmt: skip


def cell(row: Row, col: Column) -> str:
    """One formatted cell: mean ± spread over micrographs where there is one, ``–`` if absent."""
    f = row.figures
    if col.key == "score_recovered":
        if f.get("score_scored") is None:
            return "–"
        return f"{f['score_recovered']}/{f['score_movies']}"
    v = f.get(col.key)
    if v is None:
        return "–"
    if col.key == "score_z_pooled":  # rounded down, as in the verdict beside it
        return _z_text(v)
    text = col.fmt.format(v)
    if f.get(col.key.removesuffix("_angstrom") + "_beyond_last_shell"):
        text = "<" + text  # FSC never fell below its threshold: finer than the last shell
    sd = f.get(f"{col.key}_sd")
    if sd is not None:
        text += " ± " + col.fmt.format(sd)
    return text


def table(rows: Sequence[Row]) -> tuple[list[Column], list[list[str]]]:
    """The columns some row has, and one list of cells per row (method name first)."""
    cols = [c for c in columns(rows[0].pixel_size_angstrom) if any(cell(r, c) != "–" for r in rows)]
    return cols, [[r.name] + [cell(r, c) for c in cols] for r in rows]


def verdict(row: Row) -> str:
    """One sentence per method: detail past the Nyquist, the no-truth score, the truth if any."""
    f = row.figures
    parts = []
    if row.name == "LR":
        return "LR: the motion-corrected, dose-weighted average at the camera's pixel (the input)."
    if row.name == "HR":
        return "HR: the same movie recorded with 2x smaller pixels (simulation only): the ceiling."
    if f.get("score_scored"):
        pct = f.get("score_percent_of_bound")
        n, rec = f["score_scored"], f["score_recovered"]
        yes = dataset_verdict(f)
        what = "z beyond interpolation " if f.get("score_z_beyond") is not None else "z = "
        pooled = n > 1 and f.get("score_z_pooled") is not None
        z = f"{what}{_z_text(verdict_z(f))}" + (f" pooled over {n} movies" if pooled else "")
        share = (
            f"{pct:.0f}% of what the frames allow, {z}"
            if pct is not None
            else f"{z}; what the frames allow is not measurable here"
        )
        alone = f"{rec}/{n} movies on their own" if n > 1 else f"{rec}/{n} movies"
        if yes == "not established":
            alone += f"; {Z_RECOVERED:.0f} is needed: more movies or frames would settle it"
        parts.append(f"recovered detail past the Nyquist: {yes} ({share}; {alone})")
    elif f.get("score_movies"):
        parts.append("not scored (see the run records)")
    else:
        parts.append("no alias score (run with --half-sets to get one)")
    if f.get("frc_past_nyquist") is not None:
        parts.append(f"truth: FRC past the Nyquist {f['frc_past_nyquist']:.2f}")
    return f"{row.name}: " + "; ".join(parts)


def _z_text(z: float) -> str:
    """``z`` to 0.1, rounded down: 3.96 reads 3.9, not the 4.0 a "no" beside it would contradict."""
    return f"{math.floor(z * 10) / 10:.1f}"


def warnings(rows: Sequence[Row]) -> list[str]:
    """Plain-words warnings: underpowered 3D, movies left out, no score."""
    out = []
    counts = [r.figures.get("n_particles") for r in rows if r.figures.get("n_particles")]
    if counts and min(counts) < MIN_PARTICLES_3D:
        out.append(
            f"The 3D columns rest on {int(min(counts))} particles (fewer than "
            f"{MIN_PARTICLES_3D}): differences of a few tenths of an Å between methods are "
            "noise here. Use more micrographs or particles before reading them."
        )
    for r in rows:
        if r.left_out:
            listed = "; ".join(f"{stem}: {why}" for stem, why in list(r.left_out.items())[:3])
            more = f" (and {len(r.left_out) - 3} more)" if len(r.left_out) > 3 else ""
            out.append(
                f"{r.name}: {len(r.left_out)} movie(s) left out, not done according to the "
                f"run's manifest ({listed}{more})."
            )
    if not any(r.figures.get("score_scored") for r in rows):
        out.append(
            "No method has an alias score: run `cryozssr run --half-sets` to check recovered "
            "detail without a ground truth."
        )
    return out


def terminal_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """An 80-column summary: method, verdict, score, truth past the Nyquist, CTF fit, time."""
    head = ["method", "past Nyquist", "score", "truth", "CTF Å", "s/movie"]
    cells = []
    for r in rows:
        f = r.figures
        if f.get("score_scored"):
            pct = f.get("score_percent_of_bound")
            rec, n = f["score_recovered"], f["score_scored"]
            yes = dataset_verdict(f)
            yes = {"in some movies": f"{rec}/{n}", "not established": "unsure"}.get(yes, yes)
            verdict_cell = f"{yes} {pct:.0f}%" if pct is not None else yes
        else:
            verdict_cell = "–"
        score = _num(f, "score_rho", "{:.2f}")
        if score == "–" and f.get("score_scored"):
            score = f"z {_z_text(verdict_z(f))}"
        cells.append([
            r.name[:16], verdict_cell, score,
            _num(f, "frc_past_nyquist", "{:.2f}"), _num(f, "ctf_fit_resolution_angstrom", "{:.2f}"),
            _num(f, "seconds_per_movie", "{:.0f}"),
        ])  # fmt: skip
    return head, cells


def _num(figures: dict, key: str, fmt: str) -> str:
    v = figures.get(key)
    return "–" if v is None else fmt.format(v)
