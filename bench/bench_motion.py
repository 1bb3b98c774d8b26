"""Accuracy and speed of global motion estimation, and speed of the averages.

Accuracy: RMS error (LR px) of the estimated global trajectory against the truth, on simulated
40-frame movies (``cryozssr.simulate.simulate_movie``, 512x512 LR at 3 A/px; falls back to a
synthetic Gaussian-correlated scene if the simulator is missing) at 0.5, 1 and 2 e/A^2 per frame,
for cryozssr's estimator (with and without trajectory smoothing) and, with ``--tmc``,
torch-motion-correction's ``estimate_local_motion`` (1x1 grid, one knot per frame).
Speed: seconds per 40-frame movie at 512x512 and 2048x2048 LR (synthetic scene), plus the
dose-weighted average and K=16 averages.

    /work/venv/bin/python bench/bench_motion.py [--seeds 1] [--sizes 512 2048] [--tmc]
        [--accuracy-size 512] [--doses 0.5 1 2] [--out bench/out/bench_motion.json]

Writes the JSON (default ``bench/out/bench_motion.json``) and prints it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from cryozssr.dose import Exposure
from cryozssr.motion.averages import (
    choose_references,
    dose_weighted_average,
    reference_aligned_averages,
)
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.ops import box_sum, fourier_shift

LR_PIXEL_ANGSTROM = 3.0
OUT = Path(__file__).parent / "out" / "bench_motion.json"


def synthetic_movie(size_lr: int, n_frames: int, dose: float, seed: int):
    """Gaussian-correlated scene (10% contrast), smooth beam-induced-like drift, Poisson counts."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * size_lr
    ky = torch.fft.fftfreq(n)[:, None]
    kx = torch.fft.rfftfreq(n)[None, :]
    spec = torch.fft.rfft2(torch.randn(n, n, generator=g)) * torch.exp(
        -2 * (math.pi * 3) ** 2 * (ky**2 + kx**2)
    )
    img = torch.fft.irfft2(spec, s=(n, n))
    img = 0.1 * img / img.std()
    t = torch.arange(n_frames, dtype=torch.float32)[:, None]
    a, b = torch.randn(2, 2, generator=g)
    traj = 5 * (1 - torch.exp(-t / 6)) * a + 0.05 * t * b
    traj = traj - traj[0]
    counts = dose * LR_PIXEL_ANGSTROM**2
    frames = torch.stack([box_sum(counts / 4 * (1 + fourier_shift(img, 2 * s))) for s in traj])
    return torch.poisson(frames, generator=g), traj


def simulated_movie(size_lr: int, dose: float, seed: int):
    from cryozssr.simulate.config import SimulationConfig
    from cryozssr.simulate.movie import simulate_movie

    cfg = SimulationConfig(
        size_hr=2 * size_lr,
        frames=40,
        dose_per_frame_e_per_a2=dose,
        pixel_size_hr_angstrom=LR_PIXEL_ANGSTROM / 2,
    )
    sim = simulate_movie(cfg, seed=seed)
    return sim.lr_counts.float(), sim.motion.scaled(0.5).global_shifts_px


def tmc_global(frames: torch.Tensor) -> torch.Tensor:
    """torch-motion-correction: 1x1 spatial grid, one spline knot per frame -> (t, 2) LR px."""
    from torch_motion_correction import (
        FourierFilterConfig,
        PatchSamplingConfig,
        estimate_local_motion,
    )

    t, h, w = frames.shape
    field, _ = estimate_local_motion(
        frames,
        pixel_spacing=LR_PIXEL_ANGSTROM,
        deformation_field_resolution=(t, 1, 1),
        patch_sampling=PatchSamplingConfig(patch_shape=(h, w), overlap=0.0),
        fourier_filter=FourierFilterConfig(
            b_factor=500, frequency_range=(300, 2.5 * LR_PIXEL_ANGSTROM)
        ),
    )
    shifts = field.data.detach()[:, :, 0, 0].T.double() / LR_PIXEL_ANGSTROM  # (t, 2) (y, x)
    return shifts - shifts[0]


def rms(est: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    e = est.double() - truth.double()
    return {
        "rms_px": float(e.pow(2).sum(-1).mean().sqrt()),
        "rms_px_without_offset": float((e - e.mean(0)).pow(2).sum(-1).mean().sqrt()),
    }


def accuracy(size_lr: int, doses: list[float], seeds: int, use_tmc: bool) -> tuple[str, list[dict]]:
    try:
        import cryozssr.simulate.movie  # noqa: F401

        source = f"cryozssr.simulate.simulate_movie, {size_lr}x{size_lr} LR, 3 A/px, 40 frames"
    except ImportError:
        source = f"synthetic Gaussian-correlated scene, {size_lr}x{size_lr} LR, 3 A/px, 40 frames"
    rows = []
    for dose in doses:
        for seed in range(seeds):
            if source.startswith("cryozssr"):
                frames, truth = simulated_movie(size_lr, dose, seed)
            else:
                frames, truth = synthetic_movie(size_lr, 40, dose, seed)
            row = {
                "dose_e_per_a2_per_frame": dose,
                "seed": seed,
                "counts_per_lr_px": float(frames.mean()),
            }
            for name, cfg in (
                ("cryozssr", MotionConfig()),
                ("cryozssr_unsmoothed", MotionConfig(smoothing_frames=0)),
            ):
                t0 = time.perf_counter()
                est = estimate_motion(frames, config=cfg).global_shifts_px
                row[name] = {**rms(est, truth), "seconds": round(time.perf_counter() - t0, 2)}
            if use_tmc:
                t0 = time.perf_counter()
                est = tmc_global(frames)
                sign = min(
                    (1, -1), key=lambda s: rms(s * est, truth)["rms_px"]
                )  # its sign convention
                row["torch_motion_correction"] = {
                    **rms(sign * est, truth),
                    "sign": sign,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            print(json.dumps(row))
            rows.append(row)
    return source, rows


def speed(sizes: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        frames, _ = synthetic_movie(size, 40, 1.0, 0)
        t0 = time.perf_counter()
        motion = estimate_motion(frames)
        t_est = time.perf_counter() - t0
        t0 = time.perf_counter()
        dose_weighted_average(frames, motion, exposure=Exposure(LR_PIXEL_ANGSTROM, 1.0))
        t_avg = time.perf_counter() - t0
        t0 = time.perf_counter()
        reference_aligned_averages(frames, motion, choose_references(40, 16))
        t_k = time.perf_counter() - t0
        row = {
            "size_lr": size,
            "frames": 40,
            "estimate_motion_s": round(t_est, 2),
            "dose_weighted_average_s": round(t_avg, 2),
            "k16_averages_s": round(t_k, 2),
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="*", default=[512, 2048], help="LR sizes timed")
    p.add_argument("--accuracy-size", type=int, default=512, help="LR size of the accuracy movies")
    p.add_argument(
        "--doses", type=float, nargs="*", default=[0.5, 1.0, 2.0], help="e/A^2 per frame"
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--tmc", action="store_true", help="also run torch-motion-correction (~5 min/movie)"
    )
    args = p.parse_args()
    source, acc = accuracy(args.accuracy_size, args.doses, args.seeds, args.tmc)
    result = {
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "note": "CPU shared with other jobs when measured: timings are pessimistic",
        "accuracy_source": source,
        "accuracy": acc,
        "speed_source": "synthetic Gaussian-correlated scene at 1 e/A^2/frame",
        "speed": speed(args.sizes),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
