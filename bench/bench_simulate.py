"""Speed of the simulator: the potential (once per data set) and whole movies.

* ``build_potential`` of the shipped apoferritin 24-mer at the 1.5 A HR pixel (cold), and its
  projection DFT (computed on first use);
* one default movie: 1024x1024 HR, 40 frames, 100 particles, ice, K3 (the issue's target: <= 60 s);
* the small in-memory movie other tests use: 256x256 HR, 8 frames, 6 particles.

    /work/venv/bin/python bench/bench_simulate.py [--threads N] [--quick]

Writes ``bench/out/bench_simulate.json`` and prints it: wall-clock seconds of one run (``*_s``) and
the process's CPU seconds (``*_cpu_s``, all threads), which a shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from cryozssr import __version__
from cryozssr.simulate import SimulationConfig, build_potential, simulate_movie

OUT = Path(__file__).parent / "out" / "bench_simulate.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="skip the 1024^2 movie")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {
        "cryozssr_version": __version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "load_average_at_start": os.getloadavg(),
    }

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        result[f"{name}_s"] = time.perf_counter() - wall
        result[f"{name}_cpu_s"] = time.process_time() - cpu
        return out

    potential = timed("potential_build", lambda: build_potential(None, "O", 1.5))
    timed("projection_dft", lambda: potential.project(torch.eye(3)[None], voltage_kv=300.0))
    result["potential_box_fine_px"] = potential.box_size
    small = SimulationConfig(size_hr=256, frames=8, particles=6)
    timed(
        "movie_256_8frames_6particles", lambda: simulate_movie(small, seed=0, potential=potential)
    )
    if not args.quick:
        big = SimulationConfig()  # 1024x1024 HR, 40 frames, 100 particles
        movie = timed(
            "movie_1024_40frames_100particles",
            lambda: simulate_movie(big, seed=0, potential=potential),
        )
        result["mean_counts_per_hr_px_per_frame"] = float(movie.hr_counts.float().mean())
    result["load_average_at_end"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
