"""mmse (was zssr's explicit regime) against misr, movie by movie: global and local motion.

    python bench/bench_mmse.py                       # the headline simulation (run it first)
    python bench/bench_mmse.py --sim DIR --movies 2  # any `cryozssr simulate` folder
    python bench/bench_mmse.py --sim DIR --kinds estimated_global estimated_patches5 exact_global_local

For every movie: band-mean FRC against the ground truth (:func:`cryozssr.evaluate.frc.register_and_frc`,
bands of :data:`cryozssr.evaluate.frc.FRC_BANDS`) and seconds, for ``misr`` and ``mmse``
with (a) the global motion estimated from the LR movie (what ``cryozssr run`` does by default),
(b) global + local motion estimated with ``--patches 5``, (c) the simulator's exact global + local
motion, and (a) and (b) refined against the forward model of the super-resolved estimate
(:mod:`cryozssr.motion.refine`, ``--motion-refine``); mmse's ground-truth-free half-set FRC past the
Nyquist alongside. For every motion: its error against the simulator's (RMS over frames and the
5 x 5 patch-grid nodes, relative to frame 0, in A; and the largest error in LR px), and the
fraction of the gap between estimated global and exact motion it closes for ``mmse``. Writes
``bench/results/mmse.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from _machine import machine
from cryozssr.baselines import misr, mmse
from cryozssr.dose import Exposure
from cryozssr.evaluate.collect import load_image, read_sim_dir
from cryozssr.evaluate.frc import register_and_frc
from cryozssr.io import open_movie
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.motion.refine import refine_motion

KINDS = (
    "estimated_global",
    "refined_global",
    "estimated_patches5",
    "refined_patches5",
    "exact_global_local",
)


def exact_motion(path: Path, shape_lr: tuple[int, int]) -> MotionField:
    """The simulator's motion record (x, y in HR px) as a MotionField in LR px (y, x)."""
    record = json.loads(path.read_text())
    global_lr = torch.tensor(record["global_lr_px"], dtype=torch.float32).flip(-1)
    local = torch.tensor(record["local"]["shifts_hr_px"], dtype=torch.float32).flip(-1) / 2
    return MotionField(global_lr, shape_lr, local)


def motion_error(motion: MotionField, exact: MotionField, pixel_angstrom: float) -> dict:
    """RMS (A) and largest (LR px) error of the total shift at the 5 x 5 nodes, frame 0 as zero."""
    h, w = motion.image_shape
    ys = (torch.arange(5) + 0.5) * h / 5 - 0.5
    xs = (torch.arange(5) + 0.5) * w / 5 - 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    at = torch.stack([yy.flatten(), xx.flatten()], -1)
    err = motion.shifts_at(at) - exact.shifts_at(at)
    err = err - err[:1]
    return {
        "rms_angstrom": float(err.pow(2).sum(-1).mean().sqrt()) * pixel_angstrom,
        "max_lr_px": float(err.norm(dim=-1).max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sim", type=Path, default=Path("bench/out/headline/sim"))
    ap.add_argument("--movies", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("bench/results/mmse.json"))
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kinds = [k for k in KINDS if k in args.kinds or k in ("estimated_global", "exact_global_local")]

    sim = read_sim_dir(args.sim)
    cfg = sim.info["config"]
    exposure = Exposure(
        pixel_size_angstrom=2 * cfg["pixel_size_hr_angstrom"],
        dose_per_frame_e_per_a2=cfg["dose_per_frame_e_per_a2"],
        voltage_kv=cfg["voltage_kv"],
    )
    stems = sorted(p.stem for p in (args.sim / "movies_lr").glob("*.mrc"))[: args.movies]
    load_start = os.getloadavg()
    rows = []
    for stem in stems:
        with open_movie(args.sim / "movies_lr" / f"{stem}.mrc") as movie:
            frames = movie.read()
        truth, _ = load_image(sim.truth_path(stem))
        shape = tuple(frames.shape[-2:])
        seconds_motion = {}
        t0 = time.perf_counter()
        motions = {"estimated_global": estimate_motion(frames)}
        seconds_motion["global"] = time.perf_counter() - t0
        infos = {}
        if "refined_global" in kinds:
            t0 = time.perf_counter()
            motions["refined_global"], infos["refined_global"] = refine_motion(
                frames, motions["estimated_global"], exposure=exposure
            )
            seconds_motion["refine_global"] = time.perf_counter() - t0
        if "estimated_patches5" in kinds or "refined_patches5" in kinds:
            t0 = time.perf_counter()
            motions["estimated_patches5"] = estimate_motion(
                frames, config=MotionConfig(patches=(5, 5))
            )
            seconds_motion["patches5"] = time.perf_counter() - t0
        if "refined_patches5" in kinds:
            t0 = time.perf_counter()
            motions["refined_patches5"], infos["refined_patches5"] = refine_motion(
                frames, motions["estimated_patches5"], exposure=exposure
            )
            seconds_motion["refine_patches5"] = time.perf_counter() - t0
        motions["exact_global_local"] = exact_motion(
            args.sim / "truth" / f"{stem}_motion.json", shape
        )
        motions = {k: motions[k] for k in kinds}
        for kind, motion in motions.items():
            t0 = time.perf_counter()
            base = misr(frames, motion, exposure=exposure)
            seconds_misr = time.perf_counter() - t0
            result = mmse(frames, motion, exposure=exposure)
            row = {
                "movie": stem,
                "motion": kind,
                "misr": register_and_frc(base, truth).bands,
                "mmse": register_and_frc(result.image, truth).bands,
                "mmse_half_set_frc": result.half_set_frc,
                "motion_error": motion_error(
                    motion, motions["exact_global_local"], exposure.pixel_size_angstrom
                ),
                "local_motion_kept": motion.local_shifts_px is not None,
                "refine": _jsonable(infos.get(kind)),
                "seconds": {"misr": round(seconds_misr, 2), "mmse": round(result.seconds, 2)},
            }
            row["ratio_mmse_to_misr"] = {k: row["mmse"][k] / row["misr"][k] for k in row["misr"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
        rows[-1]["seconds_motion"] = {k: round(v, 2) for k, v in seconds_motion.items()}

    summary = {}
    for kind in kinds:
        sel = [r for r in rows if r["motion"] == kind]
        summary[kind] = {
            method: {band: sum(r[method][band] for r in sel) / len(sel) for band in sel[0][method]}
            for method in ("misr", "mmse")
        }
        summary[kind]["seconds"] = {
            m: sum(r["seconds"][m] for r in sel) / len(sel) for m in ("misr", "mmse")
        }
        summary[kind]["motion_rms_angstrom"] = sum(
            r["motion_error"]["rms_angstrom"] for r in sel
        ) / len(sel)
        summary[kind]["motion_max_error_lr_px"] = max(r["motion_error"]["max_lr_px"] for r in sel)
    for kind in kinds:
        for method in ("misr", "mmse"):
            est, exact = (summary[k][method] for k in ("estimated_global", "exact_global_local"))
            summary[kind][f"{method}_gap_closed"] = {
                band: (summary[kind][method][band] - est[band]) / (exact[band] - est[band])
                for band in ("nyquist_1.33x", "1.33x_1.67x")
                if abs(exact[band] - est[band]) > 1e-9
            }
    record = {
        "command": "python bench/bench_mmse.py "
        + f"--sim {args.sim} --movies {args.movies} --kinds {' '.join(kinds)}"
        + (f" --threads {args.threads}" if args.threads else ""),
        "machine": machine(load_start),
        "mean_over_movies": summary,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(summary, indent=1))


def _jsonable(info) -> dict | None:
    return None if info is None else dataclasses.asdict(info)


if __name__ == "__main__":
    main()
