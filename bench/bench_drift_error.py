"""Motion against the simulator's injected motion: largest and RMS error per movie, LR px.

    python bench/bench_drift_error.py --sim DIR [DIR ...] [--movies 2]

For every ``cryozssr simulate`` folder: the estimated global trajectory minus the simulator's
global drift, both relative to frame 0; and ``cryozssr run``'s default motion (``--patches auto``:
global + local where the movie shows it) against the simulator's global + local motion at the
5 x 5 nodes (:func:`bench_mmse.motion_error`). Writes ``bench/results/drift_error.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _machine import machine
from bench_mmse import exact_motion, motion_error
from cryozssr.io import open_movie
from cryozssr.motion.estimate import MotionConfig, estimate_motion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sim", type=Path, nargs="+", required=True)
    ap.add_argument("--movies", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/drift_error.json"))
    args = ap.parse_args()
    load = os.getloadavg()
    rows = []
    for sim in args.sim:
        for path in sorted((sim / "movies_lr").glob("*.mrc"))[: args.movies]:
            with open_movie(path) as movie:
                frames = movie.read()
            truth = exact_motion(sim / "truth" / f"{path.stem}_motion.json", frames.shape[-2:])
            err = estimate_motion(frames).global_shifts_px - truth.global_shifts_px
            err = err - err[:1]
            auto = estimate_motion(frames, config=MotionConfig(patches="auto"))
            pixel = json.loads((sim / "simulation.json").read_text())["config"]
            auto_error = motion_error(auto, truth, 2 * pixel["pixel_size_hr_angstrom"])
            row = {
                "sim": str(sim),
                "movie": path.stem,
                "true_drift_lr_px": float(truth.global_shifts_px.norm(dim=-1).max()),
                "global_max_error_lr_px": float(err.norm(dim=-1).max()),
                "global_rms_error_lr_px": float(err.pow(2).sum(-1).mean().sqrt()),
                "true_local_max_lr_px": float(truth.local_shifts_px.norm(dim=-1).max())
                if truth.local_shifts_px is not None
                else 0.0,
                "auto_local_kept": auto.local_shifts_px is not None,
                "auto_max_error_lr_px": auto_error["max_lr_px"],
                "auto_rms_error_angstrom": auto_error["rms_angstrom"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {
        "command": "python bench/bench_drift_error.py --sim "
        + " ".join(str(s) for s in args.sim)
        + f" --movies {args.movies}",
        "machine": machine(load),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
