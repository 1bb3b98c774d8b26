"""Drive an evaluation: load runs (and the simulation's truth), compute every figure per row.

Rows: ``LR`` (the motion-corrected dose-weighted average on its own grid), one per run folder
(its method's 2x output) and, with a simulation, ``HR`` (the dose-weighted average of the HR
movie: the ceiling). Compute lives in :mod:`.frc`, :mod:`.ctf_fit`, :mod:`.reconstruct`; files are
read through :mod:`.collect`; nothing here writes files.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from cryozssr.errors import InputError, OptionError
from cryozssr.evaluate.collect import RunDir, SimDir, image_shape, load_image
from cryozssr.evaluate.ctf_fit import CtfFit, CtfFitConfig, Microscope, fit_ctf
from cryozssr.evaluate.frc import FRC_BANDS, register_and_frc
from cryozssr.evaluate.particles import ParticleSet, evaluate_3d
from cryozssr.evaluate.reconstruct import symmetry_matrices
from cryozssr.evaluate.score import Z_WEAK, is_recovered, pooled_z
from cryozssr.ops import box_sum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateConfig:
    """Options of :func:`evaluate_runs`. ``symmetry=None``: from ``simulation.json`` (else C1)."""

    do_3d: bool = True
    symmetry: str | None = None
    ctf: CtfFitConfig = field(default_factory=CtfFitConfig)
    wiener_constant: float = 0.01
    mask_radius_fraction: float = 0.45


@dataclass
class Row:
    """Every figure of one row, plus the curves and images the report plots."""

    name: str
    pixel_size_angstrom: float
    figures: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    ctf_fits: dict[str, CtfFit] = field(default_factory=dict)
    crop: torch.Tensor | None = None
    particles: ParticleSet | None = None
    truth_crop: torch.Tensor | None = None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)  # movies the run did not finish
    truth_past_nyquist: dict[str, float] = field(default_factory=dict)  # per movie, with a truth


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _hr_average(sim: SimDir, stem: str, run: RunDir) -> torch.Tensor:
    """The HR movie's motion-corrected dose-weighted average (motion from its 2x2 box sums)."""
    from cryozssr.motion.averages import dose_weighted_average
    from cryozssr.motion.estimate import estimate_motion

    frames = sim.read_hr_movie(stem)
    motion = estimate_motion(box_sum(frames)).scaled(2, tuple(frames.shape[-2:]))
    lr = run.exposure(stem)
    exposure = replace(lr, pixel_size_angstrom=lr.pixel_size_angstrom / 2)
    return dose_weighted_average(frames, motion, exposure=exposure)


def _accumulate(row: Row, prefix: str, res) -> None:
    """Add one micrograph's FRC bands (averaged later) and curve (summed, divided later)."""
    for name, v in res.bands.items():
        row.figures.setdefault(f"{prefix}_{name}", []).append(v)
    if res.past_nyquist is not None:
        row.figures.setdefault(f"{prefix}_past_nyquist", []).append(res.past_nyquist)
    k_a = (res.k / row.pixel_size_angstrom).tolist()
    entry = row.curves.setdefault(prefix, {"k_per_angstrom": k_a, "frc": [0.0] * len(k_a), "n": 0})
    entry["frc"] = [a + float(v) for a, v in zip(entry["frc"], res.frc, strict=True)]
    entry["n"] += 1


def _frc_entry(row: Row, stem: str, image, truth, *, lr: bool) -> tuple[float, float]:
    bands = {k: (2 * lo, 2 * hi) for k, (lo, hi) in FRC_BANDS.items()} if lr else FRC_BANDS
    res = register_and_frc(image, box_sum(truth) if lr else truth, bands=bands, hr_grid=not lr)
    _accumulate(row, "frc", res)
    if res.past_nyquist is not None:
        row.truth_past_nyquist[stem] = float(res.past_nyquist)
    return res.shift_px


def evaluate_runs(
    runs: list[RunDir],
    sim: SimDir | None,
    *,
    config: EvaluateConfig = EvaluateConfig(),
    on_progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Evaluate run folders (one method each) on the movies they share; see the module docstring."""
    say = on_progress or (lambda msg: None)
    stems = sorted(set.intersection(*(set(r.stems) for r in runs)))
    if not stems:
        raise InputError("the run folders share no movie: nothing to compare")
    base = runs[0]
    px_lr = float(base.records[stems[0]]["input_pixel_size_angstrom"])
    for r in runs:
        p = float(r.records[stems[0]]["input_pixel_size_angstrom"])
        if abs(p - px_lr) > 1e-3 * px_lr:
            raise InputError(f"{r.path}: pixel size {p} A differs from {base.path} ({px_lr} A)")
    rows = [Row("LR", px_lr)] + [Row(r.method, px_lr / 2, left_out=r.left_out) for r in runs]
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise InputError(f"two run folders hold the same method ({', '.join(names[1:])})")
    if sim is not None:
        rows.append(Row("HR", px_lr / 2))
    do_3d = config.do_3d and sim is not None
    symmetry = config.symmetry or (sim.symmetry if sim is not None else "C1")
    try:
        symmetry_matrices(symmetry)
    except ValueError as exc:
        raise OptionError(f"symmetry: {exc}") from None
    if do_3d:
        assert sim is not None
        box_hr = int(sim.map.shape[-1])
        if (
            abs(sim.map_pixel_size_angstrom - px_lr / 2) > 0.02 * px_lr
            and sim.map_pixel_size_angstrom > 0
        ):
            raise InputError(
                f"{sim.path / 'map.mrc'}: pixel {sim.map_pixel_size_angstrom} A is not half the "
                f"movie pixel {px_lr} A"
            )
        for row in rows:
            box = box_hr // 2 if row.name == "LR" else box_hr
            row.particles = ParticleSet(box_px=box, pixel_size_angstrom=row.pixel_size_angstrom)

    _check_shapes(runs, sim, stems)
    for i_stem, stem in enumerate(stems):
        say(f"micrograph {i_stem + 1}/{len(stems)}: {stem}")
        scope_src = base.exposure(stem)
        scope = Microscope(
            scope_src.voltage_kv, scope_src.spherical_aberration_mm, scope_src.amplitude_contrast
        )
        truth = None
        if sim is not None:
            tp = sim.truth_path(stem)
            truth = load_image(tp)[0]
        for row in rows:
            if row.name == "LR":
                image = load_image(base.file(stem, "avg"))[0]
            elif row.name == "HR":
                say(f"{stem}: HR dose-weighted average")
                image = _hr_average(sim, stem, base)
            else:
                run = runs[names.index(row.name) - 1]
                image = load_image(run.file(stem, "sr"))[0]
                record = run.records[stem]
                if isinstance(record.get("alias_score"), dict):
                    row.scores[stem] = record["alias_score"]
                timings = record.get("timings_seconds") or {}
                row.seconds[stem] = float(sum(timings.values()))
                even, odd = run.file(stem, "sr_even"), run.file(stem, "sr_odd")
                if even is not None and odd is not None:
                    res = register_and_frc(load_image(even)[0], load_image(odd)[0])
                    _accumulate(row, "half_frc", res)
            shift = (0.0, 0.0)
            if truth is not None:
                shift = _frc_entry(row, stem, image, truth, lr=row.name == "LR")
            try:
                fit = fit_ctf(
                    image,
                    pixel_size_angstrom=row.pixel_size_angstrom,
                    microscope=scope,
                    config=config.ctf,
                )
            except ValueError as exc:
                raise OptionError(f"CTF fit of {row.name} {stem}: {exc}") from None
            row.ctf_fits[stem] = fit
            if row.crop is None:
                c = min(256 if row.name == "LR" else 512, image.shape[-1], image.shape[-2])
                row.crop = image[:c, :c].clone()
                if truth is not None and row.name != "LR":
                    row.truth_crop = truth[:c, :c].clone()
            if do_3d and row.particles is not None:
                assert sim is not None
                row.particles.add_micrograph(
                    image,
                    sim.particles_of(stem),
                    scope,
                    lr=row.name == "LR",
                    shift_px=shift,
                    periodic=True,  # the simulated field of view wraps around
                )
            del image

    for row in rows:
        _summarise(row, sim, stems)
    hr = rows[-1] if rows[-1].name == "HR" else None
    if hr is not None:
        for row in rows:
            for band in FRC_BANDS:
                key = f"frc_{band}"
                if key in row.figures and hr.figures.get(key):
                    row.figures[f"{key}_vs_hr"] = row.figures[key] / hr.figures[key]
    if do_3d:
        assert sim is not None
        for row in rows:
            say(f"3D reconstruction: {row.name}")
            assert row.particles is not None
            res = evaluate_3d(
                row.particles,
                sim.map,
                symmetry=symmetry,
                wiener_constant=config.wiener_constant,
                mask_radius_fraction=config.mask_radius_fraction,
            )
            row.figures.update(res.figures)
            row.curves.update(res.curves)
            row.figures["symmetry"] = symmetry
    return rows


def _check_shapes(runs: list[RunDir], sim: SimDir | None, stems: list[str]) -> None:
    """Fail before any computation if an image is missing or its size does not match."""
    for stem in stems:
        lr = image_shape(runs[0].file(stem, "avg"))
        hr = (2 * lr[0], 2 * lr[1])
        for run in runs:
            for key in ("sr", "sr_even", "sr_odd"):
                path = run.file(stem, key)
                if path is not None and image_shape(path) != hr:
                    raise InputError(
                        f"{path}: {image_shape(path)} px, expected 2x the average {lr}"
                    )
        if sim is not None:
            tp = sim.truth_path(stem)
            if not tp.is_file():
                raise InputError(f"{tp}: truth image missing from the simulation folder")
            if image_shape(tp) != hr:
                raise InputError(
                    f"{tp}: {image_shape(tp)} px does not match the 2x micrographs {hr}"
                )
            mp = sim.hr_movie_path(stem)
            if not mp.is_file():
                raise InputError(f"{mp}: HR movie missing from the simulation folder")
            if image_shape(mp) != hr:
                raise InputError(f"{mp}: frames {image_shape(mp)} px, expected {hr}")


def _beyond(s: dict) -> bool:
    return s.get("z_beyond_interpolation") is not None


def _recovered(s: dict) -> bool:
    """The current rule (beyond the interpolation baseline); records of older versions, which
    have no baseline, on their raw score."""
    if _beyond(s):
        return is_recovered(
            s["z_beyond_interpolation"],
            s.get("explained_share_beyond_interpolation"),
            measurable=s.get("rho_beyond_interpolation") is not None,
        )
    return is_recovered(
        s["z"],
        s.get("explained_share", s.get("fraction_allowed")),  # (its name before 0.1.0's end)
        measurable=s.get("rho") is not None,
    )


def _pooled_verdict(scored: list[dict]) -> dict[str, Any]:
    """The dataset's verdict from all its movies' evidence: Stouffer's ``sum z_i / sqrt(n)``.

    Movies are independent (their own frames and noise), so under "nothing beyond interpolation"
    each ``z_i`` is ``N(0, 1)`` and so is the pooled ``z``; the rule is the movie's
    (:func:`~cryozssr.evaluate.score.is_recovered`: pooled ``z >= 4``, and where measurable the
    mean share explained beyond interpolation ``>= 1%``). A dataset of n alike movies has
    ``sqrt(n)`` times one movie's ``z``: two 256 px demo movies at ``z`` 3.1 and 3.9 (neither a
    "yes") are a dataset at 4.96. The share threshold keeps a large dataset from calling a
    negligible gain.
    """
    if not scored:
        return {}
    beyond = all(_beyond(s) for s in scored)
    key = "z_beyond_interpolation" if beyond else "z"
    share_key = "explained_share_beyond_interpolation" if beyond else "explained_share"
    z = pooled_z([float(s[key]) for s in scored])
    shares = [float(s[share_key]) for s in scored if s.get(share_key) is not None]
    share = _mean(shares) if shares else None
    return {
        "score_z_pooled": z,
        "score_share_pooled": share,
        "score_pooled_recovered": is_recovered(z, share, measurable=share is not None),
    }


def score_figures(scored: Sequence[dict]) -> dict[str, Any]:
    """What the dataset's verdict (:func:`dataset_verdict`) is read from, over the movies
    ``scored`` (their ``alias_score`` records): how many, how many pass on their own, and the
    pooled verdict."""
    return {
        "score_scored": len(scored),
        "score_recovered": sum(_recovered(s) for s in scored),
        **_pooled_verdict(list(scored)),
    }


def dataset_verdict(f: dict) -> str:
    """Yes when the dataset's pooled evidence passes the rule (a summary made before pooling:
    when most movies pass on their own); "in some movies" when it does not but a movie does;
    "not established" when its ``z`` is short of the rule's but above
    :data:`~cryozssr.evaluate.score.Z_WEAK` (at most 2.3% of datasets that hold nothing beyond
    interpolation reach it: weak evidence a larger dataset would settle, not a "no"); else "no"."""
    rec, n = f["score_recovered"], f["score_scored"]
    pooled = f.get("score_pooled_recovered")
    if pooled if pooled is not None else rec * 2 > n:
        return "yes"
    if rec:
        return "in some movies"
    return "not established" if verdict_z(f) >= Z_WEAK else "no"


def verdict_z(f: dict) -> float:
    """The z the dataset's verdict used: pooled over the movies, beyond interpolation (older
    summaries: the movies' mean, beyond interpolation or raw)."""
    for key in ("score_z_pooled", "score_z_beyond", "score_z"):
        if f.get(key) is not None:
            return float(f[key])
    return 0.0


def _summarise_scores(row: Row) -> None:
    """Per-dataset summary of the runs' alias scores (mean, spread, counts) and timing."""
    if row.seconds:
        row.figures["seconds_per_movie"] = _mean(list(row.seconds.values()))
    scored = [s for s in row.scores.values() if s.get("z") is not None]
    if not row.scores:
        return
    row.figures["score_movies"] = len(row.scores)
    row.figures.update(score_figures(scored))
    fracs = [100 * s["fraction_of_bound"] for s in scored if s.get("fraction_of_bound") is not None]
    for key, values in (
        ("score_rho", [s["rho"] for s in scored if s.get("rho") is not None]),
        ("score_z", [s["z"] for s in scored]),
        ("score_z_beyond", [s["z_beyond_interpolation"] for s in scored if _beyond(s)]),
        ("score_percent_of_bound", fracs),
    ):
        row.figures[key] = _mean(values)
        if len(values) > 1:
            row.figures[f"{key}_sd"] = statistics.stdev(values)


def _summarise(row: Row, sim: SimDir | None, stems: list[str]) -> None:
    _summarise_scores(row)
    for curve in row.curves.values():
        n = curve.pop("n", 0)
        if n:
            curve["frc"] = [v / n for v in curve["frc"]]
    row.figures["n_micrographs"] = len(stems)
    for key in list(row.figures):
        values = row.figures[key]
        if isinstance(values, list):
            row.figures[key] = _mean(values)
            if len(values) > 1:
                row.figures[f"{key}_sd"] = statistics.stdev(values)
    fits = [row.ctf_fits[s] for s in stems if s in row.ctf_fits]
    row.figures["ctf_fit_resolution_angstrom"] = _mean([f.fit_resolution_angstrom for f in fits])
    row.figures["ctf_score"] = _mean([f.score for f in fits])
    if sim is not None:
        errs = []
        for s in stems:
            parts = sim.particles_of(s)
            if len(parts) and s in row.ctf_fits:
                true_mean = float(parts["rlnDefocusU"].iloc[0] + parts["rlnDefocusV"].iloc[0]) / 2
                f = row.ctf_fits[s]
                fit_mean = (f.defocus_u_angstrom + f.defocus_v_angstrom) / 2
                errs.append(abs(fit_mean - true_mean) / true_mean * 100)
        row.figures["ctf_defocus_error_percent"] = _mean(errs)
    row.figures["ctf_fits"] = {s: f.summary() for s, f in row.ctf_fits.items()}
