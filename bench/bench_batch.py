"""Batch throughput: movies per hour with 1 and 2 local worker processes (``cryozssr run --workers``).

    python bench/bench_batch.py                        # 4 movies, 1024 px HR (512 px LR), 40 frames
    python bench/bench_batch.py --n-movies 2 --size-hr 512 --workers 1,2   # quicker

Simulates the benchmark movies once (``--out``/sim), then runs the batch runner on them into a
fresh folder per worker count. Movies per hour is counted on the wall clock from the call to the
last movie, so worker start-up (a spawned process imports torch) is included, as a user sees it.
With N workers each gets cores / N torch threads. Writes ``bench/results/batch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from _machine import machine
from cryozssr import __version__
from cryozssr.pipeline.config import RunConfig
from cryozssr.pipeline.runner import BatchOptions, run_batch
from cryozssr.simulate import SimulationConfig
from cryozssr.simulate.dataset import simulate_dataset


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("bench/out/batch"))
    ap.add_argument("--n-movies", type=int, default=4)
    ap.add_argument("--size-hr", type=int, default=1024)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--method", default="zssr")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--summary", type=Path, default=Path("bench/results/batch.json"))
    args = ap.parse_args()
    load_start = os.getloadavg()
    cores = os.cpu_count() or 1

    sim = SimulationConfig(n_movies=args.n_movies, size_hr=args.size_hr, frames=args.frames)
    sim_dir = args.out / "sim"
    movies = sorted((sim_dir / "movies_lr").glob("*.mrc"))
    if len(movies) != args.n_movies:
        shutil.rmtree(sim_dir, ignore_errors=True)
        simulate_dataset(sim_dir, sim, seed=0, command="bench_batch")
        movies = sorted((sim_dir / "movies_lr").glob("*.mrc"))
    cfg = RunConfig(
        method=args.method,
        device="cpu",
        dose_per_frame_e_per_a2=sim.dose_per_frame_e_per_a2,
        voltage_kv=sim.voltage_kv,
    )
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        threads = max(1, cores // workers)
        torch.set_num_threads(threads)
        out = args.out / f"workers{workers}"
        shutil.rmtree(out, ignore_errors=True)
        load = os.getloadavg()
        t0 = time.perf_counter()
        summary = run_batch(
            movies, cfg, out, options=BatchOptions(workers=workers, threads=threads)
        )
        wall = time.perf_counter() - t0
        per_movie = [o.seconds for o in summary.outcomes if o.state == "done"]
        runs.append(
            {
                "workers": workers,
                "torch_threads_per_worker": threads,
                "movies": len(movies),
                "done": summary.count("done"),
                "failed": len(summary.failed),
                "wall_seconds": round(wall, 2),
                "movies_per_hour": round(3600 * summary.count("done") / wall, 1),
                "seconds_per_movie_in_worker": [round(s, 2) for s in per_movie],
                "load_average_before": load,
            }
        )
        print(json.dumps(runs[-1]))
    result = {
        "cryozssr_version": __version__,
        "command": "python bench/bench_batch.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "method": args.method,
        "movie": {"size_hr": args.size_hr, "size_lr": args.size_hr // 2, "frames": args.frames},
        "runs": runs,
        "machine": machine(load_start),
    }
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
