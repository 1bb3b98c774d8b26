"""Cryo-ZSSR quality and speed on simulated movies (issue 7).

Band-mean FRC with the noiseless truth (``truth_ctf``, frame-0 position) in three bands of the HR
grid: below the LR Nyquist [0.02, 0.25), [0.25, 0.333) = [Nyquist, 1.33x) and [0.333, 0.417) =
[1.33x, 1.67x) cycles/HR px; each output is registered to the truth (sub-pixel) first. Figures
are also given as a ratio to the HR dose-weighted average's (the ceiling). Methods:

* ``bilinear``: bilinear 2x of the LR dose-weighted average (global motion), / 4;
* ``zssr/<preset>/<regime>``: :func:`cryozssr.zssr.super_resolve` as configured; and
  ``.../+bp`` the same output back-projected onto the LR plain average afterwards (what the
  ``paper`` preset does inside: it is computed from the same trained network, not retrained).

Motion: the simulation's exact global trajectory (every method, the ceiling included, uses global
motion only: the faithful regimes ignore local motion, as the papers do). Seconds are wall-clock for
training and inference on this CPU with ``--threads`` intra-op threads (shared CPU: pessimistic).

Usage::

    python bench/bench_zssr.py --presets fast --regimes journal workshop            # ~minutes
    python bench/bench_zssr.py --presets fast paper --size-hr 1024 --frames 40      # the full table
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import cryozssr
from cryozssr.dose import Exposure, dose_weights_rfft
from cryozssr.motion.averages import align_frames
from cryozssr.ops import fourier_shift
from cryozssr.register import band_mean, estimate_shift, frc_curve
from cryozssr.simulate import SimulationConfig, simulate_movie
from cryozssr.zssr import config_from_preset, super_resolve
from cryozssr.zssr.inference import back_project
from cryozssr.zssr.network import upsample2x

BANDS = {
    "below_nyquist": (0.02, 0.25),
    "nyquist_1.33x": (0.25, 1 / 3),
    "1.33x_1.67x": (1 / 3, 5 / 12),
}


def dose_weighted_average(frames, motion, *, exposure: Exposure) -> torch.Tensor:
    """``(h, w)`` dose-weighted average of ``(t, h, w)`` frames aligned to frame 0 (global motion)."""
    aligned = align_frames(frames.float(), motion)
    w = dose_weights_rfft(
        tuple(frames.shape[-2:]),
        frames.shape[0],
        dose_per_frame_e_per_a2=exposure.dose_per_frame_e_per_a2,
        pixel_size_angstrom=exposure.pixel_size_angstrom,
        voltage_kv=exposure.voltage_kv,
    )
    return torch.fft.irfft2((w * torch.fft.rfft2(aligned)).sum(0), s=frames.shape[-2:])


def band_frcs(image: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    shift = estimate_shift(truth, image)
    k, frc = frc_curve(fourier_shift(image, -shift.to(image.dtype)), truth)
    return {name: band_mean(k, frc, lo, hi) for name, (lo, hi) in BANDS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fast"], choices=["fast", "paper"])
    parser.add_argument("--regimes", nargs="+", default=["journal", "workshop"])
    parser.add_argument("--size-hr", type=int, default=1024, help="HR side (LR = half)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a ZssrConfig field for every run (JSON value), e.g. --set n_inputs=1",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "zssr.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}

    sim = SimulationConfig(size_hr=args.size_hr, frames=args.frames, particles=args.particles)
    start = time.perf_counter()
    movie = simulate_movie(sim, seed=args.seed)
    seconds_simulation = time.perf_counter() - start
    truth = movie.truth_ctf.float()
    motion_lr = movie.motion.scaled(0.5)
    exposure_hr = Exposure(sim.pixel_size_hr_angstrom, sim.dose_per_frame_e_per_a2)
    exposure_lr = Exposure(sim.pixel_size_lr_angstrom, sim.dose_per_frame_e_per_a2)
    frames = movie.lr_counts.float()
    ceiling = dose_weighted_average(movie.hr_counts, movie.motion, exposure=exposure_hr)
    lr_dw = dose_weighted_average(frames, motion_lr, exposure=exposure_lr)
    lr_plain = align_frames(frames, motion_lr).mean(0)
    results: dict[str, dict] = {
        "hr_dose_weighted_average": {"frc": band_frcs(ceiling, truth)},
        "bilinear": {"frc": band_frcs(upsample2x(lr_dw) / 4, truth)},
    }
    for preset in args.presets:
        for regime in args.regimes:
            config = config_from_preset(preset, **{"regime": regime, **overrides})
            run = super_resolve(
                frames, motion_lr, exposure=exposure_lr, config=config, seed=args.seed
            )
            h = run.history
            name = f"zssr/{preset}/{regime}"
            results[name] = {
                "frc": band_frcs(run.image, truth),
                "seconds_training": h.seconds_training,
                "seconds_inference": h.seconds_inference,
                "iterations": h.iterations,
                "stopped_by": h.stopped_by,
                "lr_steps": h.lr_steps,
                "config": config.to_dict(),
            }
            if config.backprojection_iterations == 0:
                bp = back_project(run.image * 4, lr_plain, iterations=10) / 4
                results[name + "/+bp"] = {"frc": band_frcs(bp, truth)}
            print(
                name, results[name]["frc"], f"{h.seconds_training:.0f}+{h.seconds_inference:.0f} s"
            )
    top = results["hr_dose_weighted_average"]["frc"]
    for entry in results.values():
        entry["ratio_to_hr_average"] = {b: entry["frc"][b] / top[b] for b in BANDS}
    out = {
        "bench": "zssr",
        "cryozssr_version": cryozssr.__version__,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "movie": {
            "simulator": "cryozssr.simulate.simulate_movie",
            "size_lr": args.size_hr // 2,
            "frames": args.frames,
            "particles": args.particles,
            "seed": args.seed,
            "motion": "exact global trajectory from the simulation (LR px)",
            "seconds_simulation": seconds_simulation,
        },
        "overrides": overrides,
        "bands_cycles_per_hr_px": BANDS,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    for name, entry in results.items():
        cells = "  ".join(
            f"{b}: {entry['frc'][b]:.3f} ({entry['ratio_to_hr_average'][b]:.2f})" for b in BANDS
        )
        print(f"{name:28s} {cells}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
