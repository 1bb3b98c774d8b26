"""Quality and speed of the classical 2x baselines (bilinear, bicubic, fourier, shift-add, misr).

For every movie and every method: band-mean FRC against the ground truth (after sub-pixel
registration and an edge taper, :func:`cryozssr.evaluate.frc.register_and_frc`) in the bands of
:data:`cryozssr.evaluate.frc.FRC_BANDS` (cycles/HR px: below the LR Nyquist, LR Nyquist -> 1.33x,
1.33x -> 1.67x), with the exact motion and with the motion estimated from the LR movie; seconds per
method (LR average included for the interpolators). The HR movie's dose-weighted average with the
exact motion is the reference ("hr_average": what a camera with 2x smaller pixels would give).

Movies: a synthetic band-limited texture (periodic, global drift, Poisson counts at the default
exposure) and, with ``--simulated N``, movies of :func:`cryozssr.simulate.simulate_movie`
(apoferritin in ice, CTF, K3 MTF, damage, global + local motion). Writes ``bench/out/baselines.json``.

    python bench/bench_baselines.py                  # 512x512 LR, 40 frames, 1 synthetic + 1 simulated
    python bench/bench_baselines.py --quick          # 128x128 LR smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from cryozssr.baselines import misr, shift_add, upsample
from cryozssr.dose import Exposure
from cryozssr.evaluate.frc import FRC_BANDS, register_and_frc
from cryozssr.motion.averages import dose_weighted_average
from cryozssr.motion.estimate import MotionConfig, estimate_motion
from cryozssr.motion.field import MotionField
from cryozssr.ops import box_sum, fourier_shift, rfft_radius

OUT = Path(__file__).parent / "out" / "baselines.json"


def synthetic_movie(size_lr: int, n_frames: int, counts_per_hr_px: float, seed: int):
    """Band-limited texture (content to 0.47 cycles/HR px, 30% contrast), drifting by a random walk."""
    gen = torch.Generator().manual_seed(seed)
    n = 2 * size_lr
    r = rfft_radius((n, n)).double()
    spec = torch.fft.rfft2(torch.randn(n, n, generator=gen, dtype=torch.float64))
    scene = torch.fft.irfft2(spec * (r < 0.47) / torch.sqrt(1 + (r / 0.05) ** 2), s=(n, n))
    scene = counts_per_hr_px * (1 + 0.3 * scene / scene.std())
    steps = torch.randn(n_frames, 2, generator=gen, dtype=torch.float64) * 0.8  # HR px per frame
    shifts_hr = torch.cumsum(steps, 0) - steps[0]
    hr = torch.stack([fourier_shift(scene, s) for s in shifts_hr]).clamp(min=0)
    hr_counts = torch.poisson(hr, generator=gen)
    motion_lr = MotionField(shifts_hr.float() / 2, (size_lr, size_lr))
    exposure = Exposure(pixel_size_angstrom=1.0)  # no damage simulated: no dose weighting
    return hr_counts.float(), box_sum(hr_counts).float(), scene.float(), motion_lr, exposure


def simulated_movie(size_lr: int, seed: int):
    from cryozssr.simulate.config import SimulationConfig
    from cryozssr.simulate.movie import simulate_movie

    particles = max(1, round(100 * (size_lr / 512) ** 2))  # the default density at any size
    config = SimulationConfig(size_hr=2 * size_lr, particles=particles)
    sim = simulate_movie(config, seed=seed)
    motion_lr = sim.motion.scaled(0.5, (size_lr, size_lr))
    exposure = Exposure(
        pixel_size_angstrom=config.pixel_size_lr_angstrom,
        dose_per_frame_e_per_a2=config.dose_per_frame_e_per_a2,
        voltage_kv=config.voltage_kv,
    )
    return sim.hr_counts.float(), sim.lr_counts.float(), sim.truth_ctf, motion_lr, exposure


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def evaluate_movie(name, hr, lr, truth, motion_exact, exposure, *, patches) -> dict:
    entry: dict = {"movie": name, "shape_lr": list(lr.shape), "rows": []}

    def record(method, motion_kind, image, seconds):
        res = register_and_frc(image, truth)
        entry["rows"].append(
            {
                "method": method,
                "motion": motion_kind,
                "seconds": round(seconds, 2),
                "shift_to_truth_px": [round(v, 3) for v in res.shift_px],
                **{f"frc_{k}": round(v, 4) for k, v in res.bands.items()},
            }
        )
        print(f"  {method:10s} {motion_kind:9s} {seconds:7.1f} s  ", res.bands, flush=True)

    hr_exposure = replace(exposure, pixel_size_angstrom=exposure.pixel_size_angstrom / 2)
    motion_hr = motion_exact.scaled(2, tuple(hr.shape[-2:]))
    ref, sec = timed(lambda: dose_weighted_average(hr, motion_hr, exposure=hr_exposure))
    record("hr_average", "exact", ref, sec)

    config = MotionConfig(patches=patches)
    motion_est, sec = timed(lambda: estimate_motion(lr, config=config))
    entry["motion_estimation_seconds"] = round(sec, 2)
    err = (motion_est.global_shifts_px - motion_exact.global_shifts_px).norm(dim=-1)
    entry["global_motion_rms_error_lr_px"] = round(float(err.pow(2).mean().sqrt()), 4)

    for kind, motion in (("exact", motion_exact), ("estimated", motion_est)):
        average, sec_avg = timed(lambda m=motion: dose_weighted_average(lr, m, exposure=exposure))
        for method in ("bilinear", "bicubic", "fourier"):
            image, sec = timed(lambda m=method, a=average: upsample(a, method=m))
            record(method, kind, image, sec + sec_avg)
        image, sec = timed(lambda m=motion: shift_add(lr, m, exposure=exposure))
        record("shift_add", kind, image, sec)
        image, sec = timed(lambda m=motion: misr(lr, m, exposure=exposure))
        record("misr", kind, image, sec)
        if kind == "exact":  # sensitivity: the Wiener (MSE) weight of a white prior, rho = 1
            image, sec = timed(lambda m=motion: misr(lr, m, exposure=exposure, regularisation=1.0))
            record("misr_rho1", kind, image, sec)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-lr", type=int, default=512)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--simulated", type=int, default=1, help="number of simulated movies")
    parser.add_argument("--quick", action="store_true", help="128 px LR, 1 simulated movie")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    size = 128 if args.quick else args.size_lr
    torch.manual_seed(0)
    results = {
        "bands_cycles_per_hr_px": FRC_BANDS,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "note": "timings on a CPU shared with other jobs: pessimistic",
        "movies": [],
    }
    print(f"synthetic texture, {size}x{size} LR, {args.frames} frames", flush=True)
    hr, lr, truth, motion, exposure = synthetic_movie(size, args.frames, 3.375, seed=1)
    results["movies"].append(
        evaluate_movie("synthetic", hr, lr, truth, motion, exposure, patches=None)
    )
    for i in range(args.simulated):
        print(f"simulated movie {i} ({size}x{size} LR, 40 frames)", flush=True)
        hr, lr, truth, motion, exposure = simulated_movie(size, seed=i)
        results["movies"].append(
            evaluate_movie(f"simulated_{i}", hr, lr, truth, motion, exposure, patches=(5, 5))
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
