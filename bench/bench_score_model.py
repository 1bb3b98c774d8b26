"""Is a misorder of the alias score in its statistic or in the frames? Score against the model.

Per movie and method, three correlations of the method's fold images' past-Nyquist detail:

* ``truth``: the FRC with the truth past the Nyquist (``bench_score.truth_past_nyquist``) of its
  output from all frames, the yardstick the score is validated against;
* ``model_rho``: the score's own statistic (projected predictions of the held-out frames, the
  same frequencies, folds and normalisation) against the truth's *noiseless* prediction of them
  through the score's forward model: what the score would measure if the frames were exactly
  the model's;
* ``frames``: the same statistic against the real held-out frames, ``<Pi P, Y> / |Pi P|``
  (the score's ``C`` over the prediction's norm; its scale is the movie's).

If ``model_rho`` orders the methods as the truth does and ``frames`` does not, the misorder comes
from the frames departing from the forward model, not from how the score weights frequencies.

    python bench/bench_score_model.py --sets falcon4 --n-movies 7 --out score_model.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_score
from _machine import machine
from cryozssr.evaluate._alias_folds import _projected_prediction, measure_frames
from cryozssr.evaluate.score import plan_folds

METHODS = ("bilinear", "shift-add", "misr", "mmse")


def model_movie(lr, motion, exposure, truth, method_names) -> dict:
    side = measure_frames(
        lr, motion.global_shifts_px, held_out=plan_folds(lr.shape[0]), exposure=exposure
    )
    frames = [side.spectra[f.held] for f in side.folds]
    model = [_projected_prediction(side, f, truth) for f in side.folds]

    def dot(a, b) -> float:
        return sum(float((x.conj() * y).real[:, side.use].sum()) for x, y in zip(a, b, strict=True))

    tt = dot(model, model)
    out = {}
    for name in method_names:
        full = bench_score.run_method(name, lr, motion, exposure, 0)
        preds = [
            _projected_prediction(
                side, f, bench_score.run_method(name, lr[f.fit], motion.select(f.fit),
                                                exposure.subset(f.fit), 0),
            )
            for f in side.folds
        ]  # fmt: skip
        pp = dot(preds, preds)
        out[name] = {
            "truth": bench_score.truth_past_nyquist(full, truth),
            "model_rho": dot(preds, model) / math.sqrt(pp * tt),
            "frames": dot(preds, frames) / math.sqrt(pp),
        }
        print(f"  {name}: {out[name]}", flush=True)
    return out


def pair_table(movies: list[dict], names) -> dict:
    """Mean difference ± SE over movies per pair; ``frames`` relative to misr's (or the first)."""

    def mean_se(v):
        return statistics.mean(v), statistics.stdev(v) / math.sqrt(len(v))

    ref = "misr" if "misr" in names else names[0]
    table = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            row = {}
            for key in ("truth", "model_rho"):
                row[key] = mean_se([m[a][key] - m[b][key] for m in movies])
            row["frames_relative"] = mean_se(
                [(m[a]["frames"] - m[b]["frames"]) / abs(m[ref]["frames"]) for m in movies]
            )
            table[f"{a} - {b}"] = {k: [round(x, 5) for x in v] for k, v in row.items()}
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", default="falcon4", help="simulated sets of bench_score.py")
    ap.add_argument("--n-movies", type=int, default=7)
    ap.add_argument("--first-movie", type=int, default=0)
    ap.add_argument("--size-lr", type=int, default=384)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--particles", type=int, default=40)
    ap.add_argument("--dose", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--local-motion-a", type=float, nargs=2, default=None)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [m for m in args.methods.split(",") if m]
    record = {"command": "python " + " ".join(sys.argv), "sets": {}}
    load = os.getloadavg()
    for name in args.sets.split(","):
        detector, noise_model = bench_score.DETECTOR_SETS[name]
        make = functools.partial(bench_score.sim_movie, detector=detector, noise_model=noise_model)
        movies = []
        for i in range(args.first_movie, args.first_movie + args.n_movies):
            print(f"{name} movie {i + 1}", flush=True)
            lr, motion, exposure, truth, _ = make(i, args)
            movies.append(model_movie(lr, motion, exposure, truth, names))
        entry = {"per_movie": movies}
        if len(movies) > 1:
            entry["pairs"] = pair_table(movies, names)
        record["sets"][name] = entry
    record["machine"] = machine(load)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v.get("pairs") for k, v in record["sets"].items()}, indent=1))


if __name__ == "__main__":
    main()
