"""Global motion against the simulator's injected drift: largest and RMS error per movie, LR px.

    python bench/bench_drift_error.py --sim DIR [DIR ...] [--movies 2]

For every ``cryozssr simulate`` folder: the estimated global trajectory (``cryozssr run``'s
default motion) minus the simulator's global drift, both relative to frame 0. Writes
``bench/results/drift_error.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _machine import machine
from bench_mmse import exact_motion
from cryozssr.io import open_movie
from cryozssr.motion.estimate import estimate_motion


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
            row = {
                "sim": str(sim),
                "movie": path.stem,
                "true_drift_lr_px": float(truth.global_shifts_px.norm(dim=-1).max()),
                "global_max_error_lr_px": float(err.norm(dim=-1).max()),
                "global_rms_error_lr_px": float(err.pow(2).sum(-1).mean().sqrt()),
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
