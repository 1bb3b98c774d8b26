"""Local motion accuracy: global-only against ``--patches`` on simulated movies with and without
local motion, and the large-drift movie of the tests.

    python bench/bench_local_motion.py [--size-hr 512] [--seeds 0 1 2 3] [--grid 5]

Movies: the project's simulator (apoferritin, K3 MTF, ideal counting so that the figures compare
with earlier sessions' benchmarks), ``--size-hr`` HR px at 1.5 A (LR 3 A/px), 40 frames; seeds in
``--with-local`` get the simulator's default local motion (1-3 A), the others none. Error: RMS over
frames and the patch-grid nodes of (estimated - true) total shift, relative to frame 0, in A at the
LR pixel; also "gauge-free" (each node's mean over time removed: a constant offset of a region
does not blur an average). Writes ``bench/results/local_motion.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from _machine import machine
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.simulate import SimulationConfig, build_potential, simulate_movie

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _drift import drift_movie

OUT = Path("bench/results/local_motion.json")


def _errors(estimate, truth, at, pixel_angstrom):
    err = estimate.shifts_at(at) - truth.shifts_at(at)  # (t, n, 2)
    err = err - err[:1]
    gauge_free = err - err.mean(dim=0, keepdim=True)
    return {
        "rms_angstrom": float(err.pow(2).sum(-1).mean().sqrt()) * pixel_angstrom,
        "rms_gauge_free_angstrom": float(gauge_free.pow(2).sum(-1).mean().sqrt()) * pixel_angstrom,
        "max_angstrom": float(err.norm(dim=-1).max()) * pixel_angstrom,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-hr", type=int, default=512)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--with-local", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--grid", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()
    pot = build_potential(None, "O", 1.5)
    rows = []
    for seed in args.seeds:
        local = (1.0, 3.0) if seed in args.with_local else (0.0, 0.0)
        cfg = SimulationConfig(
            size_hr=args.size_hr,
            particles=max(args.size_hr**2 // 10000, 1),
            local_motion_range_angstrom=local,
            noise_model="poisson",
        )
        sim = simulate_movie(cfg, seed=seed, potential=pot)
        h = args.size_hr // 2
        truth = sim.motion.scaled(0.5, (h, h))
        nodes = (torch.arange(args.grid) + 0.5) * h / args.grid - 0.5
        yy, xx = torch.meshgrid(nodes, nodes, indexing="ij")
        at = torch.stack([yy.flatten(), xx.flatten()], dim=-1)
        true_local = truth.shifts_at(at) - truth.global_shifts_px[:, None]
        row = {
            "seed": seed,
            "true_local_rms_angstrom": float(true_local.pow(2).sum(-1).mean().sqrt())
            * cfg.pixel_size_lr_angstrom,
        }
        for name, patches in (("global", None), ("patches", (args.grid, args.grid))):
            t0 = time.perf_counter()
            est = estimate_motion(sim.lr_counts.float(), config=MotionConfig(patches=patches))
            row[name] = {
                **_errors(est, truth, at, cfg.pixel_size_lr_angstrom),
                "local_kept": est.local_shifts_px is not None,
                "seconds": time.perf_counter() - t0,
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    frames, path = drift_movie()
    est = estimate_motion(frames.float())
    drift = {
        "movie": "tests/_drift.py: 192 px LR, 16 frames, 150 px drift + 8 px first-frame jump",
        "max_error_lr_px": float((est.global_shifts_px - path).norm(dim=-1).max()),
    }
    result = {
        "command": "python bench/bench_local_motion.py " + " ".join(sys.argv[1:]),
        "size_hr": args.size_hr,
        "rows": rows,
        "drift": drift,
        "machine": machine(load),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(drift))


if __name__ == "__main__":
    main()
