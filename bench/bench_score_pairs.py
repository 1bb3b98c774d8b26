"""Method against method, movie by movie: would a paired test with the held-out frames' own noise
order the methods better than ``cryozssr evaluate``'s t over movies? (issue 16, session 10)

``evaluate`` compares two methods by a paired Student's t over movies of their raw ``z``
(:func:`cryozssr.evaluate.score.compare_methods`): the spread is the movies' own, which needs
3 movies and pays the t's few degrees of freedom. Scored *together* on one movie, two methods have
a per-movie test whose noise is known: the alias score's test beyond interpolation
(``_alias_result._beyond``) with the second method in place of the bilinear baseline,
``z_ab = <P^a - P^b, Y> / sqrt(sum sigma^2 |P^a - P^b|^2)`` over the headline band (``P^``: a
method's prediction of the held-out frames' aliasing, normalised; ``Y`` the held-out frames), an
``N(0, 1)`` when the two correlate equally with the frames' aliased signal. Over movies, its
Stouffer sum ``sum z_ab / sqrt(n)`` (two-sided 5%) is set beside the t, against the truth's FRC
past the Nyquist of the methods' full outputs (the same movies as ``bench_score.py``'s sets).

It needs every method's fold images at once, which ``cryozssr run`` (one method per run) does not
keep: the question is whether it would be worth a joint scoring command.

    python bench/bench_score_pairs.py --set falcon4 --n-movies 8 --out /tmp/pairs_falcon4.json
    python bench/bench_score_pairs.py --analyse bench/results/score_pairs.json   # the tables
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_score
from cryozssr.evaluate._alias_folds import N_ROWS, _projected_prediction
from cryozssr.evaluate._alias_result import HEADLINE_BAND, _beyond, shell_centres_k_lr
from cryozssr.evaluate.score import (
    DEFAULT_FOLDS,
    PAIR_LEVEL,
    fit_frames,
    local_tile_shifts,
    measure_frames,
    plan_folds,
    pooled_z,
)


def _headline_shells() -> torch.Tensor:
    centres = torch.tensor(shell_centres_k_lr())
    return (centres >= HEADLINE_BAND[0]) & (centres < HEADLINE_BAND[1])


def movie_pairs(movie: bench_score.Movie, names: list[str], *, seed: int = 0) -> dict:
    """Per method: raw ``z`` and the truth past the Nyquist; per pair: the paired ``z_ab``."""
    lr, motion, exposure, truth = movie.lr, movie.motion, movie.exposure, movie.truth
    t = lr.shape[0]
    held = plan_folds(t, n_folds=DEFAULT_FOLDS)
    side = measure_frames(
        lr,
        motion.global_shifts_px,
        held_out=held,
        exposure=exposure,
        local_hr_px=local_tile_shifts(motion, [0, 0, *lr.shape[-2:]]),
    )
    hc, wc = side.crop
    band = _headline_shells()[side.shell.expand(hc, wc)] & side.use.expand(hc, wc)
    held_frames = [side.spectra[fold.held][:, band] for fold in side.folds]
    sigma2 = [fold.sigma2[band] for fold in side.folds]
    preds, methods = {}, {}
    for name in names:
        fits = [
            bench_score.run_method(name, lr[f], motion.select(f), exposure.subset(f), seed)
            for f in (fit_frames(t, h) for h in held)
        ]
        full = bench_score.run_method(name, lr, motion, exposure, seed)
        preds[name] = [
            _projected_prediction(side, fold, image)[:, band]
            for fold, image in zip(side.folds, fits, strict=True)
        ]
        methods[name] = {
            "truth_past_nyquist": None
            if truth is None
            else bench_score.truth_past_nyquist(full, truth)
        }
    sums = {}
    for name, ps in preds.items():
        c = sum(float((p.conj() * y).real.sum()) for p, y in zip(ps, held_frames, strict=True))
        pp = sum(float(p.abs().pow(2).sum()) for p in ps)
        var = sum(float((s * p.abs().pow(2).sum(0)).sum()) for p, s in zip(ps, sigma2, strict=True))
        sums[name] = (c, pp, var)
        methods[name]["z"] = c / math.sqrt(var)
    pairs = {}
    for a, b in itertools.combinations(names, 2):
        cross = sum(
            float((s * (p.conj() * q).real.sum(0)).sum())
            for p, q, s in zip(preds[a], preds[b], sigma2, strict=True)
        )
        # the score's own test beyond interpolation, b in the baseline's rows (ROWS)
        pooled = torch.zeros(N_ROWS, dtype=torch.float64)
        pooled[[0, 1, 4]] = torch.tensor(sums[a], dtype=torch.float64)
        pooled[[9, 10, 11]] = torch.tensor(sums[b], dtype=torch.float64)
        pooled[13] = cross
        pairs[f"{a}|{b}"] = {
            "z": _beyond(pooled)[1],
            "noise_correlation": cross / math.sqrt(sums[a][2] * sums[b][2]),
        }
    return {"methods": methods, "pairs": pairs}


def analyse(movies: list[dict]) -> list[dict]:
    """Per pair over ``movies``: the truth's difference (mean, SE), the t over movies of the raw
    ``z`` (``evaluate``'s) and the Stouffer sum of ``z_ab``, each with the order it states."""
    from scipy.stats import norm
    from scipy.stats import t as student

    n = len(movies)
    critical = float(student.ppf(1 - PAIR_LEVEL / 2, n - 1))
    level_z = float(norm.ppf(1 - PAIR_LEVEL / 2))
    rows = []
    for key in movies[0]["pairs"]:
        a, b = key.split("|")
        truth = [
            m["methods"][a]["truth_past_nyquist"] - m["methods"][b]["truth_past_nyquist"]
            for m in movies
        ]
        dz = [m["methods"][a]["z"] - m["methods"][b]["z"] for m in movies]
        zab = [m["pairs"][key]["z"] for m in movies]
        t_mean, t_se = statistics.mean(truth), statistics.stdev(truth) / math.sqrt(n)
        d_mean, d_se = statistics.mean(dz), statistics.stdev(dz) / math.sqrt(n)
        t_stat = d_mean / d_se if d_se > 0 else 0.0
        stouffer = pooled_z(zab)
        t_order = int(t_stat > critical) - int(t_stat < -critical)
        s_order = int(stouffer > level_z) - int(stouffer < -level_z)
        # the same z_ab with the movies' own spread (random effects): a t over movies of z_ab
        t_ab = statistics.mean(zab) / (statistics.stdev(zab) / math.sqrt(n))
        t_ab_order = int(t_ab > critical) - int(t_ab < -critical)
        resolved = abs(t_mean) > 2 * t_se
        rows.append({
            "pair": [a, b],
            "truth_diff": round(t_mean, 4), "truth_diff_se": round(t_se, 4),
            "resolved": resolved,
            "raw_z_diff": round(d_mean, 3), "raw_z_diff_se": round(d_se, 3),
            "t_order": t_order,
            "stouffer_z": round(stouffer, 2),
            "z_ab_sd_over_movies": round(statistics.stdev(zab), 2),
            "stouffer_order": s_order,
            "t_verdict": _verdict(resolved, t_order, t_mean),
            "stouffer_verdict": _verdict(resolved, s_order, t_mean),
            "t_on_z_ab": round(t_ab, 2),
            "t_on_z_ab_verdict": _verdict(resolved, t_ab_order, t_mean),
        })  # fmt: skip
    return rows


def _verdict(resolved: bool, order: int, truth: float) -> str:
    if not resolved:
        return "truth: not resolved"
    if order == 0:
        return "not told apart"
    return "truth's order" if order * truth > 0 else "AGAINST the truth"


def _counts(rows: list[dict], key: str) -> dict:
    resolved = [r for r in rows if r["resolved"]]
    return {
        "resolved_pairs": len(resolved),
        "in_truth_order": sum(r[key] == "truth's order" for r in resolved),
        "against_truth": sum(r[key] == "AGAINST the truth" for r in resolved),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", default="falcon4", choices=[*bench_score.DETECTOR_SETS, "real"])
    ap.add_argument("--first-movie", type=int, default=0)
    ap.add_argument("--n-movies", type=int, default=8)
    ap.add_argument("--size-lr", type=int, default=384)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--particles", type=int, default=40)
    ap.add_argument("--dose", type=float, default=1.5)
    ap.add_argument("--methods", default=",".join(bench_score.METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--analyse", type=Path, help="per-movie outputs to analyse (written into the file), stop"
    )
    args = ap.parse_args()
    if args.analyse:
        record = json.loads(args.analyse.read_text())
        record["analysis"] = {}
        for name, movies in record["sets"].items():
            rows = analyse(movies)
            counts = {k: _counts(rows, f"{k}_verdict") for k in ("t", "stouffer", "t_on_z_ab")}
            record["analysis"][name] = {"n_movies": len(movies), **counts, "pairs": rows}
            print(f"== {name} ({len(movies)} movies)\n{json.dumps(counts)}")
            for r in rows:
                print(
                    f"  {'|'.join(r['pair']):20s} truth {r['truth_diff']:+.4f} ± "
                    f"{r['truth_diff_se']:.4f}  t: {r['t_verdict']:18s} Stouffer "
                    f"{r['stouffer_z']:+6.2f}: {r['stouffer_verdict']}"
                )
        args.analyse.write_text(json.dumps(record, indent=1))
        return
    if args.out is None:
        ap.error("--out is needed to run movies")
    torch.set_num_threads(args.threads)
    movie_args = argparse.Namespace(
        size_lr=args.size_lr, frames=args.frames, particles=args.particles, dose=args.dose,
        local_motion_a=None, no_ice=False, no_damage=False, seed=0,
        micrograph=bench_score.bench_real.DATA,
    )  # fmt: skip
    names = [m for m in args.methods.split(",") if m]
    movies = []
    for i in range(args.first_movie, args.first_movie + args.n_movies):
        t0 = time.perf_counter()
        if args.set == "real":
            movie = bench_score.real_movie(i, movie_args)
        else:
            detector, noise_model = bench_score.DETECTOR_SETS[args.set]
            movie = bench_score.sim_movie(i, movie_args, detector=detector, noise_model=noise_model)
        movies.append({"movie": i, **movie_pairs(movie, names)})
        print(f"{args.set} movie {i}: {time.perf_counter() - t0:.0f} s", flush=True)
        record = {"command": "python " + " ".join(sys.argv), "sets": {args.set: movies}}
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
