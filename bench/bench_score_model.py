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

* ``--expected-frames`` adds ``expected``: the same statistic against the simulator's *expected*
  frames of the same movie (its counting noise removed; the counts drawn are unchanged). Then
  ``frames - expected`` is what the held-out frames' counting noise adds: zero-mean when the
  fits do not depend on it.
* ``--true-motion``: the simulator's motion for the methods and the score; ``--fold-motion``:
  each fold's motion estimated on its fit frames alone and the held-out frames' shifts
  interpolated from it (no frame's noise in another's motion).

    python bench/bench_score_model.py --sets falcon4 --n-movies 7 --out score_model.json
    python bench/bench_score_model.py --sets falcon4 --n-movies 7 --expected-frames --out x.json
    (and with --true-motion or --fold-motion)

Found (session 9, ``bench/results/score_model_noise.json``): on the 7 Falcon 4 movies that
misordered shift-add, misr and mmse, the expected frames order the three as the truth does
(shift-add − mmse −0.12 ± 0.05, misr − mmse −0.20 ± 0.07 of misr's value); the real frames'
counting noise turns them (+0.46 ± 0.17, +0.25 ± 0.14), and fold-wise motion does not undo it.
15 new movies of the set order the three pairs as the truth (``bench_score.py --first-movie 7``):
the misorder was those 7 movies' noise.
"""

from __future__ import annotations

import argparse
import contextlib
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
from cryozssr.evaluate._alias_folds import _cut, _projected_prediction, measure_frames
from cryozssr.evaluate.score import fit_frames, plan_folds
from cryozssr.ops import box_sum

METHODS = ("bilinear", "shift-add", "misr", "mmse")


@contextlib.contextmanager
def recording_expectations():
    """Patch the simulator's counting to also keep each frame's expected counts (HR, float64:
    :func:`cryozssr.simulate.counting.expected_counts`). The counts drawn are unchanged."""
    import cryozssr.simulate.movie as sim
    from cryozssr.simulate.counting import expected_counts

    kept = []
    original = sim.count_electrons

    def counting(expected_e_per_px, *, stats, generator=None):
        kept.append(expected_counts(expected_e_per_px.double(), stats=stats).cpu())
        return original(expected_e_per_px, stats=stats, generator=generator)

    sim.count_electrons = counting
    try:
        yield kept
    finally:
        sim.count_electrons = original


def fold_motions(lr, motion) -> tuple[list, torch.Tensor]:
    """Per fold, the fit frames' motion estimated on them alone (no held-out frame's noise in it),
    put on the whole movie's origin by one constant offset; and every frame's shift as its own
    fold interpolates it from the fit frames' trajectory (linear in the frame index)."""
    import numpy as np

    from cryozssr.motion import estimate_motion
    from cryozssr.motion.field import MotionField

    t = lr.shape[0]
    shifts = torch.zeros(t, 2, dtype=torch.float64)
    fits = []
    for held in plan_folds(t):
        held = sorted(held)
        fit = fit_frames(t, held)
        g = estimate_motion(lr[fit]).global_shifts_px.double()
        g = g + (motion.global_shifts_px[fit].double() - g).mean(0)
        fits.append(MotionField(g.float(), tuple(lr.shape[-2:])))
        for axis in range(2):
            y = g[:, axis].numpy()
            inner = np.interp(held, fit, y)
            for k, i in enumerate(held):  # extrapolate past the ends along the nearest two
                if i < fit[0] or i > fit[-1]:
                    a, b = (0, 1) if i < fit[0] else (-2, -1)
                    slope = (y[b] - y[a]) / (fit[b] - fit[a])
                    inner[k] = y[a] + slope * (i - fit[a])
            shifts[held, axis] = torch.as_tensor(inner)
    return fits, shifts


def model_movie(
    lr, motion, exposure, truth, method_names, expected_lr=None, fold_motion=False
) -> dict:
    shifts = motion.global_shifts_px
    fits = None
    if fold_motion:
        fits, shifts = fold_motions(lr, motion)
    side = measure_frames(lr, shifts, held_out=plan_folds(lr.shape[0]), exposure=exposure)
    frames = [side.spectra[f.held] for f in side.folds]
    expected = None
    if expected_lr is not None:
        cut = [_cut(side, i, expected_lr[i].double()) for i in range(lr.shape[0])]
        expected = [torch.stack([cut[i] for i in f.held]).to(torch.complex64) for f in side.folds]
    model = [_projected_prediction(side, f, truth) for f in side.folds]

    def dot(a, b) -> float:
        return sum(float((x.conj() * y).real[:, side.use].sum()) for x, y in zip(a, b, strict=True))

    tt = dot(model, model)
    out = {}
    for name in method_names:
        full = bench_score.run_method(name, lr, motion, exposure, 0)
        preds = [
            _projected_prediction(
                side, f, bench_score.run_method(
                    name, lr[f.fit], motion.select(f.fit) if fits is None else fits[j],
                    exposure.subset(f.fit), 0,
                ),
            )
            for j, f in enumerate(side.folds)
        ]  # fmt: skip
        pp = dot(preds, preds)
        out[name] = {
            "truth": bench_score.truth_past_nyquist(full, truth),
            "model_rho": dot(preds, model) / math.sqrt(pp * tt),
            "frames": dot(preds, frames) / math.sqrt(pp),
        }
        if expected is not None:
            out[name]["expected"] = dot(preds, expected) / math.sqrt(pp)
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
            for key in ("frames", "expected"):
                if key in movies[0][a]:
                    row[f"{key}_relative"] = mean_se(
                        [(m[a][key] - m[b][key]) / abs(m[ref][key]) for m in movies]
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
    ap.add_argument("--no-ice", action="store_true")
    ap.add_argument("--no-damage", action="store_true")
    ap.add_argument(
        "--expected-frames",
        action="store_true",
        help="also score against the simulator's expected (noiseless) frames of the same movie",
    )
    ap.add_argument(
        "--true-motion",
        action="store_true",
        help="the simulator's own motion for the methods and the score (not the estimate)",
    )
    ap.add_argument(
        "--fold-motion",
        action="store_true",
        help="each fold's motion estimated on its fit frames alone (held-out shifts interpolated)",
    )
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
            if args.expected_frames:
                with recording_expectations() as hr_expected:
                    lr, motion, exposure, truth, true_motion = make(i, args)
                expected_lr = box_sum(torch.stack(hr_expected)).float()
            else:
                lr, motion, exposure, truth, true_motion = make(i, args)
                expected_lr = None
            if args.true_motion:
                motion = true_motion
            movies.append(
                model_movie(lr, motion, exposure, truth, names, expected_lr, args.fold_motion)
            )
        entry = {"per_movie": movies}
        if len(movies) > 1:
            entry["pairs"] = pair_table(movies, names)
        record["sets"][name] = entry
    record["machine"] = machine(load)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v.get("pairs") for k, v in record["sets"].items()}, indent=1))


if __name__ == "__main__":
    main()
