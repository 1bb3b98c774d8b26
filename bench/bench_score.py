"""Does the no-truth alias score rank methods as the truth does? (issue 16)

Five sets, every method on every movie, exactly as ``cryozssr run --half-sets`` makes them
(:func:`cryozssr.pipeline.methods.super_resolve` on all frames, on the even and on the odd frames):

* ``sim``: the plain simulation (:func:`cryozssr.simulate.simulate_movie`, apoferritin, K3 MTF,
  dose 1.5 e/A^2/frame, local motion, an ideal counter: ``noise_model="poisson"``), motion
  estimated (global) on the LR frames; truth = the noiseless CTF-modulated HR micrograph at the
  frame-0 position (``truth_ctf``).
* ``k3``, ``falcon4``: the same with the detector's counting statistics (the simulator's default
  ``noise_model="counting"``; ``--detector k3`` / ``falcon4ec``: issue 13's realistic detectors).
* ``real``: ``bench_real.py``'s pseudo-movie of a real Falcon 3 micrograph (its texture is the
  specimen), drift seeded per movie; truth = the specimen.
* ``noise``: a flat Poisson movie (no specimen), the true drift given as the motion (estimating
  motion on pure noise is meaningless): every method must score 0 within noise.

Per movie and method: the score (:func:`cryozssr.evaluate.score.alias_score`: ``rho``, ``z``,
share of the frames' aliased signal, its Wiener bound and the fraction of it), the truth FRC
bands (:data:`FRC_BANDS`; their radial rings include in-band corners of the LR square) and
``truth_past_nyquist``: the FRC with the truth over HR frequencies outside the LR square up to
1.67x the LR Nyquist (what the score measures).
Pairs of methods (ordered by ``z``, which orders the methods of one movie as ``rho`` does and
exists where the aliased signal is too weak for ``rho``): the truth difference over movies (mean,
standard error = the noise from repeats); a pair is *resolved* when ``|mean| > 2 SE``; the score
must order every resolved pair as the truth does. Beside the sign of the score's difference, the
order ``cryozssr evaluate`` states (:func:`cryozssr.evaluate.score.compare_methods` on the raw
``z``: a paired t over the movies, two-sided 5%): ``score_order`` and ``stated_against_truth`` per
pair. ``--combine NAME PATH:SET...`` makes one set of the movies of several runs of it (repeats
added later). Where a truth exists it is scored too, as if a
method had returned it from both halves (``truth (oracle)``: ``rho ~ 1``, above the Wiener bound of
an estimate from the frames).

Ablations of the simulated sets (session 8, the Falcon 4 misorder): ``--local-motion-a MIN MAX``
(the simulator's local motion, default 1-3 A), ``--no-ice``, ``--no-damage``, the set
``falcon4_poisson`` (Falcon 4's MTF with independent Poisson counts), ``--motion true-score`` /
``true`` (the simulator's own motion for the score / for the methods and the score) and
``--global-motion-score`` (the score's forward model without the local motion). Every row also
has ``truth_past_nyquist_patches``: the same FRC on 3 x 3 patches each registered on its own.

    python bench/bench_score.py --sets sim,real,noise --n-movies 3 --frames 24
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_real
import cryozssr
from _machine import machine
from cryozssr.dose import Exposure
from cryozssr.evaluate.compare import dataset_verdict, score_figures
from cryozssr.evaluate.frc import FRC_BANDS, register_and_frc
from cryozssr.evaluate.score import (
    DEFAULT_FOLDS,
    alias_score,
    compare_methods,
    fit_frames,
    interpolation_baselines,
    local_tile_shifts,
    measure_frames,
    plan_folds,
)
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.estimate import estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum
from cryozssr.pipeline import methods
from cryozssr.pipeline.config import RunConfig
from cryozssr.zssr import config_from_preset

METHODS = ("bilinear", "bicubic", "fourier", "shift-add", "misr", "mmse")
ORACLE = "truth (oracle)"
Z = "z_beyond_interpolation"  # the score the verdict and the ranking use
INTERPOLATORS = ("bilinear", "bicubic", "fourier")


class Movie(NamedTuple):
    """A benchmark movie: LR frames, the motion estimated on them, exposure, truth (HR) and, for
    simulated sets, the simulator's own motion in LR px (the ``--motion`` ablations)."""

    lr: torch.Tensor
    motion: MotionField
    exposure: Exposure
    truth: torch.Tensor | None
    true_motion: MotionField | None = None


def truth_past_nyquist(image: torch.Tensor, truth: torch.Tensor) -> float:
    """FRC of ``image`` with ``truth`` past the LR Nyquist (outside the LR square, to 1.67x)."""
    return register_and_frc(image, truth).past_nyquist


def truth_past_nyquist_patches(image: torch.Tensor, truth: torch.Tensor, *, n: int = 3) -> float:
    """:func:`truth_past_nyquist` with each of ``n x n`` patches registered on its own, pooled.

    The truth shows the specimen where it was in frame 0; a method that corrects only the global
    drift puts each region where the frames it weights most saw it, which can differ by a
    fraction of a pixel where the specimen moved locally. The whole-image FRC counts that offset
    against the method (differently for methods that weight the frames differently); a particle's
    own alignment downstream does not. Pooled: ``sum num / sqrt(sum |a|^2 sum |b|^2)``.
    """
    from cryozssr.evaluate.frc import edge_taper, past_nyquist_sums, tapered
    from cryozssr.ops import fourier_shift
    from cryozssr.register import estimate_shift

    size = min(image.shape[-2:]) // n
    window = edge_taper((size, size), width_px=16, device=image.device).double()
    sums = torch.zeros(3, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            cut = (slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size))
            a, b = image[cut].double(), truth[cut].double()
            a = fourier_shift(a, estimate_shift(a, b, max_shift_px=4.0))
            sums += torch.tensor(past_nyquist_sums(tapered(a, window), tapered(b, window)))
    num, power_a, power_b = sums.tolist()
    return num / (power_a * power_b) ** 0.5 if power_a * power_b > 0 else 0.0


DETECTOR_SETS = {
    "sim": ("k3", "poisson"),
    "k3": ("k3", "counting"),
    "falcon4": ("falcon4ec", "counting"),
    "falcon4_poisson": ("falcon4ec", "poisson"),  # ablation: the MTF without the counting
}


def sim_movie(index: int, args, *, detector: str = "k3", noise_model: str = "poisson") -> Movie:
    from cryozssr.simulate import SimulationConfig, simulate_movie

    cfg = SimulationConfig(
        size_hr=2 * args.size_lr,
        frames=args.frames,
        particles=args.particles,
        detector=detector,
        noise_model=noise_model,
        dose_per_frame_e_per_a2=args.dose,
        **(
            {}
            if args.local_motion_a is None
            else {"local_motion_range_angstrom": args.local_motion_a}
        ),
        ice=not args.no_ice,
        radiation_damage=not args.no_damage,
    )
    movie = simulate_movie(cfg, seed=(args.seed, index))
    lr = movie.lr_counts.float()
    exposure = Exposure(
        pixel_size_angstrom=cfg.pixel_size_lr_angstrom,
        dose_per_frame_e_per_a2=cfg.dose_per_frame_e_per_a2,
    )
    true_motion = movie.motion.scaled(0.5, tuple(lr.shape[-2:]))
    return Movie(lr, estimate_motion(lr), exposure, movie.truth_ctf.double(), true_motion)


def real_movie(index: int, args) -> Movie:
    micrograph, px = bench_real.read_image(args.micrograph)
    px_hr = 2 * (px or 0.6666)
    margin = bench_real.MARGIN_HR_PX
    padded = bench_real.specimen_crop(micrograph, 2 * args.size_lr, margin)
    drift = bench_real.drift(args.frames, total_px=4.0, seed=args.seed + index)
    hr = bench_real.pseudo_movie(
        padded, drift, counts_per_px=1.5 * px_hr**2, margin=margin, seed=args.seed + index
    )
    lr = box_sum(hr)
    exposure = Exposure(pixel_size_angstrom=2 * px_hr, dose_per_frame_e_per_a2=None)
    return Movie(lr, estimate_motion(lr), exposure, padded[margin:-margin, margin:-margin])


def noise_movie(index: int, args) -> Movie:
    g = torch.Generator().manual_seed(args.seed + 100 + index)
    drift = bench_real.drift(args.frames, total_px=4.0, seed=args.seed + 100 + index)
    n = 2 * args.size_lr
    hr = torch.poisson(torch.full((args.frames, n, n), 3.4, dtype=torch.float64), generator=g)
    lr = box_sum(hr).float()  # a flat specimen: its shifts change nothing but are the motion
    motion = MotionField(drift / 2, (args.size_lr, args.size_lr))
    return Movie(lr, motion, Exposure(pixel_size_angstrom=3.0, dose_per_frame_e_per_a2=None), None)


def run_method(name: str, frames, motion: MotionField, exposure: Exposure, seed: int):
    """The method's 2x output for ``frames`` exactly as ``cryozssr run --method ...`` makes it."""
    method, _, regime = name.partition("/")  # zssr/REGIME: that regime of run's preset (fast)
    method_config = None
    if method == "zssr":
        method_config = config_from_preset("fast", regime=regime or "journal")
    cfg = RunConfig(method=method, method_config=method_config, device="cpu", seed=seed)
    average = None
    if not methods.forms_average(method, motion):
        average = dose_weighted_average(frames, motion, exposure=exposure)
    inputs = methods.MethodInputs(frames=frames, motion=motion, average=average, exposure=exposure)
    return methods.super_resolve(inputs, cfg).image.double()


def score_movie(
    lr,
    motion,
    exposure,
    truth,
    method_names,
    seed,
    n_folds,
    *,
    global_only: bool = False,
    score_motion: MotionField | None = None,
) -> dict:
    t = lr.shape[0]
    held = plan_folds(t, n_folds=n_folds)
    fit_sets = [fit_frames(t, h) for h in held]
    t0 = time.perf_counter()
    baselines = interpolation_baselines(lr, motion, held, exposure=exposure)
    score_motion = motion if score_motion is None else score_motion
    side = measure_frames(
        lr,
        score_motion.global_shifts_px,
        held_out=held,
        exposure=exposure,
        baselines=baselines,
        local_hr_px=None
        if global_only
        else local_tile_shifts(score_motion, [0, 0, *lr.shape[-2:]]),
    )
    t_side = time.perf_counter() - t0
    out = {}
    for name in method_names:
        print(f"  {name}", flush=True)
        t0 = time.perf_counter()
        full = run_method(name, lr, motion, exposure, seed)
        t_full = time.perf_counter() - t0
        fits = [
            run_method(name, lr[f], motion.select(f), exposure.subset(f), seed) for f in fit_sets
        ]
        t_fits = time.perf_counter() - t0 - t_full
        t1 = time.perf_counter()
        score = alias_score(side, fits)
        t_score = time.perf_counter() - t1
        out[name] = _row(score, full, truth, t_full, t_fits, t_score, t_side)
        if truth is not None:  # what the score judges: the fits (all frames but a fold each)
            out[name]["truth_past_nyquist_fits"] = round(
                sum(truth_past_nyquist(f, truth) for f in fits) / len(fits), 4
            )
    if truth is not None:
        print(f"  {ORACLE}", flush=True)
        t1 = time.perf_counter()
        score = alias_score(side, [truth] * len(held))
        out[ORACLE] = _row(score, truth, truth, 0.0, 0.0, time.perf_counter() - t1, t_side)
    return out


def _row(score, full, truth, t_full, t_fits, t_score, t_side) -> dict:
    row = {
        "score": {k: v for k, v in score.to_dict().items() if not k.startswith("shells")},
        "seconds": {
            "full": round(t_full, 2), "fits": round(t_fits, 2), "score": round(t_score, 2),
            "frames_side": round(t_side, 2),
        },
    }  # fmt: skip
    if truth is not None:
        row["truth_frc"] = {k: round(v, 4) for k, v in register_and_frc(full, truth).bands.items()}
        row["truth_past_nyquist"] = round(truth_past_nyquist(full, truth), 4)
        row["truth_past_nyquist_patches"] = round(truth_past_nyquist_patches(full, truth), 4)
    s = row["score"]
    rho = s["rho"] if s["rho"] is None else round(s["rho"], 3)
    print(
        f"    rho {rho!s:>6} z {s['z']:7.1f} beyond interp. z {s['z_beyond_interpolation']:7.1f}"
        f" rho {s['rho_beyond_interpolation'] or 0:.3f} snr {s['aliased_signal_snr']:.4f} "
        f"bound {s['explained_share_bound'] or 0:.3f} (z {s['bound_z']:.1f}) "
        f"of bound {s['fraction_of_bound'] or 0:.2f}"
        f"  truth past Nyq {row.get('truth_past_nyquist', '-')!s:>7}  {row['seconds']}",
        flush=True,
    )
    return row


def pairs(movies: list[dict], method_names) -> list[dict]:
    """Per pair: truth difference (mean, SE over movies), score difference, resolved, agree."""
    result = []
    # the set's verdict per method, as `evaluate` words it over the same movies
    verdict = {
        k: dataset_verdict(score_figures([m[k]["score"] for m in movies])) for k in method_names
    }
    for a, b in itertools.combinations(method_names, 2):
        dt = [m[a]["truth_past_nyquist"] - m[b]["truth_past_nyquist"] for m in movies]
        # the verdict's score, z beyond interpolation (z = rho sqrt(S / sigma^2): on one movie it
        # orders methods as rho does, and it exists where the frames' aliased signal S is too
        # weak for rho, the simulated sets); the raw z beside it
        ds = [m[a]["score"][Z] - m[b]["score"][Z] for m in movies]
        dr = [m[a]["score"]["z"] - m[b]["score"]["z"] for m in movies]
        n = len(dt)
        mean = sum(dt) / n
        se = _se(dt)
        score_mean = sum(ds) / n
        resolved = abs(mean) > 2 * se
        stated = compare_methods(  # on the raw z, as `evaluate` (cryozssr.evaluate.pairs)
            [m[a]["score"]["z"] for m in movies],
            [m[b]["score"]["z"] for m in movies],
            neither_shows_detail=verdict[a] == verdict[b] == "no",
        )
        result.append({
            "pair": [a, b], "truth_diff": round(mean, 4), "truth_diff_se": round(se, 4),
            "score_diff": round(score_mean, 4), "score_diff_se": round(_se(ds), 4),
            "raw_z_diff": round(sum(dr) / n, 4), "raw_z_diff_se": round(_se(dr), 4),
            "resolved": resolved, "agree": mean * score_mean > 0 if resolved else None,
            "agree_raw_z": mean * sum(dr) > 0 if resolved else None,
            # the order `cryozssr evaluate` states (paired t over movies, two-sided 5%): +1 a
            # above b, -1 below, 0 not told apart; a stated order against the truth's is a miss
            "score_order": stated.order,
            # both methods' verdict is "no" (neither shows evidence of detail past the
            # Nyquist): `evaluate` states no order between them; t_order: the paired t's own
            "without_detail": stated.without_detail,
            "t_order": stated.t_order,
            "stated_against_truth": bool(resolved and stated.order and stated.order * mean < 0),
        })  # fmt: skip
    return result


def set_entry(movies: list[dict], method_names) -> dict:
    """A set's record: its movies, the summary table, and where a truth exists (not the noise
    set) the pairs and their counts."""
    entry = {"per_movie": movies, "summary": summary_table(movies, method_names)}
    if all(m[k].get("truth_past_nyquist") is not None for m in movies for k in method_names):
        entry["pairs"] = pairs(movies, method_names)
        resolved = [p for p in entry["pairs"] if p["resolved"]]
        entry["resolved_pairs_in_truth_order"] = (
            f"{sum(p['agree'] for p in resolved)}/{len(resolved)}"
        )
        entry["resolved_pairs_in_truth_order_raw_z"] = (
            f"{sum(p['agree_raw_z'] for p in resolved)}/{len(resolved)}"
        )
        entry["resolved_pairs_told_apart"] = (
            f"{sum(bool(p['score_order']) and not p['stated_against_truth'] for p in resolved)}"
            f"/{len(resolved)}"
        )
        entry["resolved_pairs_told_apart_against_truth"] = sum(
            p["stated_against_truth"] for p in resolved
        )
        entry["resolved_pairs_without_detail"] = sum(p["without_detail"] for p in resolved)
    entry["interpolators_recovered"] = {
        m: entry["summary"][m]["recovered"] for m in INTERPOLATORS if m in method_names
    }
    return entry


def _shown(score: dict) -> bool:
    """Whether "% of what the frames allow" is given (also on records of runs made before the
    rule that asks the held-out aliased signal to be measurable)."""
    return (
        score["fraction_of_bound"] is not None
        and score["rho"] is not None
        and score["explained_share_bound"] is not None
    )


def summary_table(movies: list[dict], method_names) -> dict:
    def stats(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0
        return {"mean": round(mean, 4), "sd": round(sd, 4), "n": len(vals)}

    table = {}
    for name in [*method_names, ORACLE]:
        if name not in movies[0]:
            continue
        rows = [m[name] for m in movies]
        table[name] = {
            "rho": stats([r["score"]["rho"] for r in rows]),
            "z": stats([r["score"]["z"] for r in rows]),
            Z: stats([r["score"][Z] for r in rows]),
            "rho_beyond_interpolation": stats(
                [r["score"]["rho_beyond_interpolation"] for r in rows]
            ),
            "explained_share": stats([r["score"]["explained_share"] for r in rows]),
            "explained_share_bound": stats([r["score"]["explained_share_bound"] for r in rows]),
            "fraction_of_bound": stats(  # the final rule: only where the signal is measurable
                [r["score"]["fraction_of_bound"] for r in rows if _shown(r["score"])]
            ),
            "recovered": [r["score"]["recovered"] for r in rows],
            "truth_past_nyquist": stats([r.get("truth_past_nyquist") for r in rows]),
            "truth_frc_nyquist_1.33x": stats(
                [r.get("truth_frc", {}).get("nyquist_1.33x") for r in rows]
            ),
            "seconds_full": stats([r["seconds"]["full"] for r in rows]),
            "seconds_fits_plus_score": stats(
                [
                    r["seconds"]["fits"] + r["seconds"]["score"] + r["seconds"]["frames_side"]
                    for r in rows
                ]
            ),
            "seconds_score_only": stats([r["seconds"]["score"] for r in rows]),
        }
    return table


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="sim,real,noise")
    ap.add_argument("--n-movies", type=int, default=3)
    ap.add_argument("--first-movie", type=int, default=0, help="index of the first movie (repeats)")
    ap.add_argument("--size-lr", type=int, default=512)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--particles", type=int, default=60)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--micrograph", type=Path, default=bench_real.DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/score.json"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--dose", type=float, default=1.5, help="simulated sets: e/A^2 per frame")
    ap.add_argument(
        "--local-motion-a",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="simulated sets: local motion range (A; default: the simulator's 1-3)",
    )
    ap.add_argument(
        "--global-motion-score",
        action="store_true",
        help="score with the global trajectory alone (the score before local motion entered it)",
    )
    ap.add_argument("--no-ice", action="store_true", help="simulated sets, ablation: no ice")
    ap.add_argument(
        "--no-damage", action="store_true", help="simulated sets, ablation: no radiation damage"
    )
    ap.add_argument(
        "--motion",
        choices=("estimated", "true-score", "true"),
        default="estimated",
        help="simulated sets, ablation: the simulator's own motion for the score (true-score)"
        " or for the methods and the score (true); default: estimated from the movie",
    )
    ap.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="cross-validation folds")
    ap.add_argument("--label", default="", help="suffix of the sets' names in the output")
    ap.add_argument("--merge", type=Path, nargs="*", help="merge these outputs into --out, stop")
    ap.add_argument(
        "--combine",
        nargs="+",
        metavar=("NAME", "PATH:SET"),
        help="one set NAME of the movies of PATH:SET... (repeats of a set) into --out, stop",
    )
    ap.add_argument("--markdown", action="store_true", help="print --out's tables, stop")
    args = ap.parse_args()
    if args.combine:
        combine(args.combine[1:], args.combine[0], args.out)
        return
    if args.merge:
        merge(args.merge, args.out)
        return
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    method_names = [m for m in args.methods.split(",") if m]
    load_start = os.getloadavg()
    t_all = time.perf_counter()
    makers = {"real": real_movie, "noise": noise_movie}
    for key, (detector, noise_model) in DETECTOR_SETS.items():
        makers[key] = functools.partial(sim_movie, detector=detector, noise_model=noise_model)
    results: dict[str, dict] = {}
    for name in [s for s in args.sets.split(",") if s]:
        if name == "real" and not args.micrograph.exists():
            print(f"skipping real: no micrograph at {args.micrograph}")
            results[name] = {"skipped": f"no micrograph at {args.micrograph}"}
            continue
        movies = []
        for i in range(args.first_movie, args.first_movie + args.n_movies):
            print(f"{name} movie {i + 1}/{args.first_movie + args.n_movies}", flush=True)
            lr, motion, exposure, truth, true_motion = makers[name](i, args)
            score_motion = motion
            if args.motion != "estimated":  # ablation: the simulator's own motion
                if true_motion is None:
                    raise SystemExit(f"--motion {args.motion} needs a simulated set, not {name}")
                score_motion = true_motion
                motion = score_motion if args.motion == "true" else motion
            movies.append(
                score_movie(
                    lr,
                    motion,
                    exposure,
                    truth,
                    method_names,
                    args.seed,
                    args.folds,
                    global_only=args.global_motion_score,
                    score_motion=score_motion,
                )
            )
        entry = set_entry(movies, method_names)
        results[name + args.label] = entry
        print(
            json.dumps({k: v for k, v in entry.items() if k != "per_movie"}, indent=1), flush=True
        )
    summary = {
        "cryozssr_version": cryozssr.__version__,
        "command": "python " + " ".join(sys.argv),
        "sizes": f"{args.size_lr}^2 LR, {args.frames} frames, {args.n_movies} movies per set",
        "folds": args.folds,
        "bands_cycles_per_hr_px": FRC_BANDS,
        "sets": results,
        "total_seconds": round(time.perf_counter() - t_all, 1),
        "machine": machine(load_start),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out} ({summary['total_seconds']:.0f} s)")


def combine(sources: list[str], name: str, out: Path) -> None:
    """One set ``name`` from the movies of several runs of it (``PATH:SET`` each, in order): its
    summary and pairs recomputed over all of them (repeats added to a set)."""
    movies, runs = [], []
    for source in sources:
        path, _, set_name = source.rpartition(":")
        record = json.loads(Path(path).read_text())
        movies += record["sets"][set_name]["per_movie"]
        runs.append(record.get("runs", {}).get(set_name, record))  # a merged file: per set
    methods_of = [[k for k in m if k != ORACLE] for m in movies]
    if any(m != methods_of[0] for m in methods_of):
        raise SystemExit(f"--combine {name}: the runs score different methods")
    size = runs[-1]["sizes"].rsplit(",", 1)[0]
    record = {
        "command": " ; ".join(r["command"] for r in runs),
        "sizes": f"{size}, {len(movies)} movies per set",
        "folds": runs[-1]["folds"],
        "bands_cycles_per_hr_px": FRC_BANDS,
        "sets": {name: set_entry(movies, methods_of[0])},
        "machine": runs[-1].get("machine"),
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}: {name}, {len(movies)} movies")


def merge(paths: list[Path], out: Path) -> None:
    """One file from several runs (one per set, run in parallel): sets, commands, machines."""
    merged: dict = {"cryozssr_version": cryozssr.__version__, "runs": {}, "sets": {}}
    for path in paths:
        record = json.loads(path.read_text())
        for name, entry in record["sets"].items():
            if "per_movie" in entry:  # the summary and pairs as this script makes them now
                methods = [k for k in entry["per_movie"][0] if k != ORACLE]
                entry = set_entry(entry["per_movie"], methods)
            merged["sets"][name] = entry
            run = record.get("runs", {}).get(name, record)  # a merged file keeps them per set
            merged["runs"][name] = {
                k: run.get(k)
                for k in ("command", "sizes", "folds", "total_seconds", "machine", "note")
                if run.get(k) is not None
            }
        merged["bands_cycles_per_hr_px"] = record["bands_cycles_per_hr_px"]
    out.write_text(json.dumps(merged, indent=1))
    print(f"wrote {out}: {', '.join(merged['sets'])}")


def _se(values: list[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else math.inf


def overview(record: dict) -> str:
    """One line per set with a truth: of the pairs the truth resolves, how many the score's sign
    and `evaluate`'s stated order put in the truth's order, against it, and not at all."""
    out = [
        "| set | movies | pairs the truth resolves | score's sign agrees | `evaluate` states "
        'in the truth\'s order | states against it | not told apart | both "no": not ordered |',
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in record["sets"].items():
        if "pairs" not in entry:
            continue
        resolved = [p for p in entry["pairs"] if p["resolved"]]
        ordered = sum(bool(p["score_order"]) and not p["stated_against_truth"] for p in resolved)
        against = sum(p["stated_against_truth"] for p in resolved)
        nothing = sum(bool(p.get("without_detail")) for p in resolved)
        ties = sum(p["score_order"] == 0 and not p.get("without_detail") for p in resolved)
        out.append(
            f"| {name} | {len(entry['per_movie'])} | {len(resolved)} | "
            f"{sum(bool(p['agree']) for p in resolved)} | {ordered} | {against} | {ties} | "
            f"{nothing} |"
        )
    return "\n".join(out)


def markdown(record: dict) -> str:
    """The README's validation tables and pair lists from a (merged) output."""

    def ms(st, fmt="{:.3f}", scale=1.0):
        if not st:
            return "–"
        text = fmt.format(scale * st["mean"])
        return text + (" ± " + fmt.format(scale * st["sd"]) if st["n"] > 1 else "")

    out = [overview(record), ""]
    for name, entry in record["sets"].items():
        if "summary" not in entry:
            continue
        run = record.get("runs", {}).get(name, {})
        out.append(
            f"**{name}** ({run.get('sizes', '')}): resolved pairs in the truth's order "
            f"{entry.get('resolved_pairs_in_truth_order', '–')} (raw z: "
            f"{entry.get('resolved_pairs_in_truth_order_raw_z', '–')})"
            + (
                "; told apart by the score in the truth's order (`evaluate`'s paired test) "
                f"{entry['resolved_pairs_told_apart']}, against it "
                f"{entry['resolved_pairs_told_apart_against_truth']}"
                if "resolved_pairs_told_apart" in entry
                else ""
            )
            + (
                f"; of the resolved pairs, {entry['resolved_pairs_without_detail']} between "
                'methods that both score "no" (not ordered)'
                if entry.get("resolved_pairs_without_detail")
                else ""
            )
            + "\n"
        )
        out.append(
            "| method | truth past Nyq | z beyond interp. | raw z | score ρ | % of what the "
            "frames allow | bound ρ²max | yes (movies) | s: run / folds + score |"
        )
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        movies = entry["per_movie"]
        for method, st in entry["summary"].items():
            secs = "–"
            if method != ORACLE:
                secs = (
                    f"{st['seconds_full']['mean']:.0f} / "
                    f"{st['seconds_fits_plus_score']['mean']:.0f}"
                )
            out.append(
                f"| {method} | {ms(st['truth_past_nyquist'])} | {ms(st.get(Z), '{:.1f}')} | "
                f"{ms(st['z'], '{:.1f}')} | {ms(st['rho'])} | "
                f"{ms(st['fraction_of_bound'], '{:.0f}', 100)} | "
                f"{ms(st['explained_share_bound'])} | "
                f"{sum(st['recovered'])}/{len(st['recovered'])} | {secs} |"
            )  # fmt: skip
        n_pct = sum(
            m[method]["score"]["fraction_of_bound"] is not None
            and m[method]["score"]["rho"] is not None
            for m in movies
            for method in m
            if method not in (ORACLE, *INTERPOLATORS)
        )
        n_runs = sum(1 for m in movies for method in m if method not in (ORACLE, *INTERPOLATORS))
        bz = [m[method]["score"]["bound_z"] for m in movies for method in m if method != ORACLE]
        line = f"\n% of what the frames allow given on {n_pct}/{n_runs} movie × multi-frame-method runs"
        if n_pct:
            line += f"; the bound's significance per movie {min(bz):.1f}–{max(bz):.1f}"
        out.append(line)
        for p in entry.get("pairs", []):
            a, b = p["pair"]
            misordered = p["resolved"] and not (p["agree"] and p["agree_raw_z"])
            if not misordered and {a, b} != {"misr", "mmse"}:
                continue  # the README lists misses and misr − mmse; the JSON has every pair
            halves = ""
            if "truth_past_nyquist_fits" in movies[0][a]:
                dh = [
                    m[a]["truth_past_nyquist_fits"] - m[b]["truth_past_nyquist_fits"]
                    for m in movies
                ]
                halves = f", truth of the fits {sum(dh) / len(dh):+.4f} ± {_se(dh):.4f}"
            verdict = "not resolved"
            if p["resolved"]:
                verdict = "resolved, " + ("agrees" if p["agree"] else "MISORDERED")
                if p.get("without_detail"):
                    verdict += "; not ordered by the score: neither shows evidence of detail"
                elif "score_order" in p:
                    verdict += {
                        0: "; not told apart by the score",
                        None: "",
                    }.get(p["score_order"], "; told apart by the score")
                verdict += " (raw z: " + ("agrees" if p["agree_raw_z"] else "misordered") + ")"
            out.append(
                f"\n{a} − {b}: truth {p['truth_diff']:+.4f} ± {p['truth_diff_se']:.4f} (SE over "
                f"movies){halves}, z beyond interp. {p['score_diff']:+.1f} ± "
                f"{p['score_diff_se']:.1f}, raw z {p['raw_z_diff']:+.1f} ± "
                f"{p['raw_z_diff_se']:.1f}: {verdict}"
            )
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
