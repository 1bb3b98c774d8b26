"""The project's headline: every method on one simulated apoferritin data set, evaluated the same way.

    python bench/bench_headline.py                       # 4 movies, 1024 px HR, 100 particles each
    python bench/bench_headline.py --n-movies 1 --size-hr 512 --particles 25   # quicker

Writes the evaluation (report.html, evaluation.json, plots) under ``--out`` and a summary JSON
(every row's figures, seconds per method per movie, the machine) to ``bench/results/headline.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _machine import machine
from cryozssr import __version__
from cryozssr.pipeline.demo import DemoConfig, evaluate_demo, run_demo

ALL = (
    "bilinear",
    "bicubic",
    "fourier",
    "shift-add",
    "misr",
    "mmse",
    "zssr/journal",
    "zssr/workshop",
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("bench/out/headline"))
    ap.add_argument("--n-movies", type=int, default=4)
    ap.add_argument("--size-hr", type=int, default=1024)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--detector", default="k3")
    # the README's headline table: an ideal counter (independent Poisson counts) behind the K3 MTF
    ap.add_argument("--noise-model", default="poisson", choices=("poisson", "counting"))
    ap.add_argument("--methods", default=",".join(ALL))
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--seed", type=int, default=0)
    # the no-truth score has its own validation (bench_score.py); here it would double the run time
    ap.add_argument(
        "--score", action="store_true", help="also run the half sets and the alias score"
    )
    ap.add_argument("--summary", type=Path, default=Path("bench/results/headline.json"))
    ap.add_argument(
        "--evaluate-only",
        action="store_true",
        help="evaluate the finished runs of --methods already in --out (e.g. after stopping the"
        " slowest methods) instead of simulating and running them",
    )
    args = ap.parse_args()

    config = DemoConfig(
        out_dir=args.out,
        n_movies=args.n_movies,
        size_hr=args.size_hr,
        frames=args.frames,
        particles=args.particles,
        detector=args.detector,
        noise_model=args.noise_model,
        methods=tuple(m for m in args.methods.split(",") if m),
        zssr_preset=args.preset,
        device="cpu",
        seed=args.seed,
        score=args.score,
    )
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    if args.evaluate_only:
        run_dirs = [args.out / "runs" / m.replace("/", "-") for m in config.methods]
        _rows, report = evaluate_demo(
            config, run_dirs, command="bench/bench_headline.py", on_stage=print
        )
    else:
        _rows, report = run_demo(
            config, command="bench/bench_headline.py", on_stage=lambda m: print(m, flush=True)
        )
    seconds = time.perf_counter() - t0

    timings: dict[str, list[dict]] = {}
    for run_dir in sorted((args.out / "runs").iterdir()):
        if run_dir.name not in {m.replace("/", "-") for m in config.methods}:
            continue
        for js in sorted(run_dir.glob("*.json")):
            rec = json.loads(js.read_text())
            if "timings_seconds" in rec:
                timings.setdefault(run_dir.name, []).append(rec["timings_seconds"])
    evaluation = json.loads((Path(report).parent / "evaluation.json").read_text())
    summary = {
        "cryozssr_version": __version__,
        "command": "python bench/bench_headline.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "summary")
        ),
        "machine": machine(load_start),
        "total_seconds": round(seconds, 1),
        "per_movie_timings_seconds": timings,
        "evaluation": evaluation,
        "report": str(report),
    }
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.summary} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
